package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Webhook delivery defaults (Config.WebhookRetries, the first retry's
// delay doubling for each next one).
const (
	// DefaultWebhookRetries is how many times a webhook POST that failed
	// (a network error or a status other than 2xx) is sent again.
	DefaultWebhookRetries = 8
	// DefaultWebhookBackoff is the delay before the first retry; each next
	// one waits twice as long, up to maxWebhookBackoff.
	DefaultWebhookBackoff = time.Second
	maxWebhookBackoff     = 5 * time.Minute
	// webhookTimeout bounds one POST.
	webhookTimeout = 30 * time.Second
	// endWindow is how long after a job ended its end hook and webhook may
	// still be handled: a server that knows its type must run within it.
	endWindow = 24 * time.Hour
	// endSweep is the time between looks for every recent end on MongoDB
	// (an indexed query), in case an end-due mark was lost; ends are
	// otherwise found by their marks (store.MarkEndDue), which every final
	// transition of a job with end hooks writes: completions, failures,
	// expiries, failed dependencies and client aborts. FerretDB has no
	// such look (it would read every job).
	endSweep = time.Minute
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// under Config.WebhookSecret (absent without a secret).
	SignatureHeader = "X-Rocketjob-Signature"
	// DeliveryHeader names the job's end the POST reports: the same on
	// every retry of it, so a receiver can drop a repeat.
	DeliveryHeader = "X-Rocketjob-Delivery"
)

// Notification is the JSON body of a job's webhook POST, sent once when
// the job completes, fails or is aborted.
type Notification struct {
	ID                string           `json:"id"`
	Type              string           `json:"type"`
	State             string           `json:"state"`
	Description       string           `json:"description,omitempty"`
	Failure           string           `json:"failure,omitempty"`
	CompletedAt       *time.Time       `json:"completed_at,omitempty"`
	RecordCount       int64            `json:"record_count"`
	ProcessedCount    int64            `json:"processed_count"`
	FailedRecordCount int64            `json:"failed_record_count"`
	DroppedCount      int64            `json:"dropped_count"`
	OutputCount       int64            `json:"output_count"`
	Categories        map[string]int64 `json:"categories,omitempty"`
	Statistics        map[string]int64 `json:"statistics,omitempty"`
	// Results are the REST API's URLs of the job's outputs: "output" (the
	// default output), one per category by its name, and "failed".
	Results map[string]string `json:"results,omitempty"`
}

// enderConfig configures the ender service.
type enderConfig struct {
	Name      string        // this server's name, on the ends it takes
	Interval  time.Duration // time between looks for ended jobs
	Secret    string        // HMAC-SHA256 key of the webhook signature; "" signs nothing
	PublicURL string        // base of the result URLs (the web UI's address)
	Retries   int           // webhook retries (default DefaultWebhookRetries)
	Backoff   time.Duration // first retry's delay (default DefaultWebhookBackoff)
	HTTP      *http.Client  // nil: a client with webhookTimeout
}

func (c *enderConfig) defaults() {
	if c.Retries == 0 {
		c.Retries = DefaultWebhookRetries
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultWebhookBackoff
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: webhookTimeout}
	}
}

// ender runs the end hooks (TypeSpec.OnEnd) and webhooks of jobs that
// ended: completed, failed or aborted, whoever ended them (a server, or a
// client's abort). Whoever ends such a job marks its end as due; each pass
// reads the marks and takes each end not yet taken by a unique insert
// (store.TakeEnd), so one server handles each end, once; it runs the hook
// and delivers the webhook on goroutines of its own, never on a worker. An
// end taken by a server that crashes before it is done is not handled
// again: never twice. A pass reads the marks (a tiny collection) and the
// marked jobs by id, so its cost does not grow with the jobs collection.
type ender struct {
	ticker
	cfg    enderConfig
	store  *store.Store
	lookup func(string) (*rocketjob.TypeSpec, error)
	log    *slog.Logger

	work   sync.WaitGroup
	ctx    context.Context // handlers' context: ends at Stop
	cancel context.CancelFunc
	swept  time.Time // the last full look (only the ticker's goroutine uses it)
}

func newEnder(cfg enderConfig, st *store.Store, lookup func(string) (*rocketjob.TypeSpec, error), log *slog.Logger) *ender {
	cfg.defaults()
	e := &ender{cfg: cfg, store: st, lookup: lookup, log: log}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.ticker = ticker{interval: cfg.Interval, pass: e.pass}
	return e
}

// Stop ends the passes and the handlers (a webhook still being retried is
// given up) and waits for them.
func (e *ender) Stop(ctx context.Context) error {
	err := e.ticker.Stop(ctx)
	e.cancel()
	done := make(chan struct{})
	go func() { e.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// endDue tells the enders that job, which this server just ended (err is
// the transition's error: nil when it happened), has an end to handle now.
func (s *Server) endDue(ctx context.Context, job *model.Job, err error) {
	if err != nil || !job.EndHooks {
		return
	}
	if err := s.store.MarkEndDue(ctx, job.ID); err != nil {
		s.log.Warn("marking a job's end as due: its end hooks and webhook will not run (on MongoDB: at the next look, within a minute)", "job", job.ID.Hex(), "err", err)
	}
}

// pass handles the ends marked due (each job read by its id) and, on
// MongoDB, once every endSweep, every recent end (an indexed query) in case
// a mark was lost. An end-due mark is cleared once the end is handled here
// or by another server, or cannot be (the job is gone, or did not end
// within endWindow of the mark); a job of a type this server does not know
// keeps its mark for a server that knows it.
func (e *ender) pass(ctx context.Context) {
	due, err := e.store.EndsDue(ctx)
	if err != nil {
		return
	}
	var clear []bson.ObjectID
	for _, d := range due {
		job, err := e.store.GetJob(ctx, d.Job)
		switch {
		case errors.Is(err, model.ErrJobNotFound):
			clear = append(clear, d.ID)
			continue
		case err != nil:
			continue
		case !job.EndHooks || !ended(job.State):
			if time.Since(d.ID.Timestamp()) > endWindow || !job.EndHooks {
				clear = append(clear, d.ID)
			}
			continue
		}
		if e.take(ctx, job) {
			clear = append(clear, d.ID)
		}
	}
	_ = e.store.ClearEndsDue(ctx, clear)

	if time.Since(e.swept) < endSweep {
		return
	}
	e.swept = time.Now()
	jobs, err := e.store.EndedJobs(ctx, time.Now().Add(-endWindow))
	if err != nil {
		return // on FerretDB: ErrNotFlat, the marks alone
	}
	for i := range jobs {
		if taken, err := e.store.EndTaken(ctx, store.EndKey(&jobs[i])); err == nil && !taken {
			e.take(ctx, &jobs[i])
		}
	}
}

// ended reports whether a job in state st has an end to handle.
func ended(st model.State) bool {
	return st == model.StateCompleted || st == model.StateFailed || st == model.StateAborted
}

// take takes job's end if no server did yet and starts its handler; it
// reports whether the end is settled (handled here or taken by another
// server), false when this server cannot handle it (an unknown type) or
// the database failed.
func (e *ender) take(ctx context.Context, job *model.Job) bool {
	spec, err := e.lookup(job.Type)
	if err != nil {
		return false // a server that knows the type handles it
	}
	key := store.EndKey(job)
	won, err := e.store.TakeEnd(ctx, job.ID, key, e.cfg.Name)
	if err != nil {
		return false
	}
	if won {
		e.work.Add(1)
		go func() {
			defer e.work.Done()
			e.handle(e.ctx, spec, job, key)
		}()
	}
	return true
}

// handle runs job's end hook, then delivers its webhook.
func (e *ender) handle(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job, key string) {
	log := e.log.With("job", job.ID.Hex(), "type", job.Type, "state", job.State)
	e.final(ctx, job)
	if spec.OnEnd != nil {
		hctx, _ := scope.New(jobrun.WithJob(ctx, public(job)))
		if err := call(func() error { return spec.OnEnd(hctx, public(job)) }); err != nil {
			log.Error("end hook failed", "err", err)
		}
	}
	if job.NotifyURL != "" {
		e.deliver(ctx, log, job, key)
	}
}

// final fills in the counts of a job that ended without them (aborted,
// stopped at its first failed record, failed in its before hook) from its
// slices, when they are still there.
func (e *ender) final(ctx context.Context, job *model.Job) {
	if job.Kind != model.KindSliced || job.Totals {
		return
	}
	if p, err := e.store.Slices().Progress(ctx, job.ID, job.SliceCount, job.RecordCount); err == nil {
		job.ProcessedCount, job.FailedRecordCount = p.Processed, p.FailedRecords
	}
	t, err := e.store.Slices().Totals(ctx, job.ID)
	if err != nil {
		return
	}
	job.Statistics = scope.Add(job.HookStatistics, t.Statistics)
	job.DroppedCount = t.Dropped
	if len(job.CategoryNames) > 0 {
		job.Categories = map[string]int64{}
		for _, name := range job.CategoryNames {
			job.Categories[name] = t.Categories[name]
		}
	} else if job.CollectOutput {
		job.OutputCount = job.ProcessedCount - job.FailedRecordCount - job.DroppedCount
	}
}

// notification is job's webhook body.
func (e *ender) notification(job *model.Job) Notification {
	n := Notification{
		ID: job.ID.Hex(), Type: job.Type, State: string(job.State), Description: job.Description, CompletedAt: job.CompletedAt,
		RecordCount: job.RecordCount, ProcessedCount: job.ProcessedCount, FailedRecordCount: job.FailedRecordCount,
		DroppedCount: job.DroppedCount, OutputCount: job.OutputCount, Categories: job.Categories, Statistics: job.Statistics,
	}
	if job.Failure != nil && !job.Encrypt {
		n.Failure = job.Failure.Message
	}
	if job.Kind == model.KindSliced {
		base := strings.TrimSuffix(e.cfg.PublicURL, "/") + "/api/jobs/" + job.ID.Hex()
		n.Results = map[string]string{"failed": base + "/failures"}
		if len(job.CategoryNames) == 0 && job.CollectOutput {
			n.Results["output"] = base + "/output"
		}
		for _, c := range job.CategoryNames {
			n.Results[c] = base + "/output?category=" + url.QueryEscape(c)
		}
	}
	return n
}

// Sign returns the value of SignatureHeader for body under secret:
// "sha256=" and the hex HMAC-SHA256. A receiver computes the same over the
// raw body and compares with hmac.Equal.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver POSTs job's notification, retrying with backoff until a 2xx
// answer, the retries run out or the server stops. A 2xx answer ends it:
// the POST is never sent again for this end.
func (e *ender) deliver(ctx context.Context, log *slog.Logger, job *model.Job, key string) {
	body, err := json.Marshal(e.notification(job))
	if err != nil {
		log.Error("webhook: encoding the notification", "err", err)
		return
	}
	delay := e.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err := e.post(ctx, job.NotifyURL, key, body)
		if err == nil {
			log.Info("webhook delivered", "attempts", attempt+1)
			return
		}
		if attempt >= e.cfg.Retries || ctx.Err() != nil {
			log.Error("webhook not delivered", "attempts", attempt+1, "err", err)
			return
		}
		log.Warn("webhook failed; retrying", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			log.Error("webhook not delivered: server stopping", "attempts", attempt+1, "err", err)
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxWebhookBackoff)
	}
}

// errStatus is a webhook answer other than 2xx.
var errStatus = errors.New("webhook answered")

func (e *ender) post(ctx context.Context, target, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(DeliveryHeader, key)
	if e.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(e.cfg.Secret, body))
	}
	resp, err := e.cfg.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials: keep it out of logs
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w %s", errStatus, resp.Status)
	}
	return nil
}
