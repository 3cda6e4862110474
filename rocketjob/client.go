package rocketjob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// Config says where the databases are and which job types exist.
type Config struct {
	// URI of the jobs database server (jobs, servers). Default: $ROCKETJOB_URI,
	// else mongodb://127.0.0.1:27017/.
	URI string
	// WorkURI of the work database server (slices). Default: $ROCKETJOB_WORK_URI, else URI.
	WorkURI string
	// DB is the jobs database name. Default: $ROCKETJOB_DB, else "rocketjob".
	DB string
	// WorkDB is the work database name. Default: $ROCKETJOB_WORK_DB, else "rocketjob_work".
	WorkDB string
	// Registry holds the job types this program knows. Enqueue refuses other types.
	Registry *Registry
	// Keyring holds the keys of encrypted jobs. Default: the key file named by
	// KeyFile, else $ROCKETJOB_KEYS, else none (encrypted jobs are refused).
	Keyring *encryption.Keyring
	// KeyFile is a file of keys, one per line, current first; it must not be
	// readable by other users.
	KeyFile string
	// ClaimStrategy forces how slices are claimed: "findandmodify" (atomic
	// updates, as on a MongoDB replica set; refused on a FerretDB work
	// database with ErrClaimStrategyUnsafe), "insert" (unique inserts into
	// side collections: correct on MongoDB and on FerretDB) or "auto" (the
	// default: insert on FerretDB, findandmodify on MongoDB). Every process
	// working on the same databases must use the same strategy: the first
	// one records its strategy in the work database, and NewClient refuses
	// the other one with an error wrapping ErrClaimStrategyMismatch.
	ClaimStrategy string
}

func (c Config) withEnv() Config {
	env := func(v *string, name string) {
		if *v == "" {
			*v = os.Getenv(name)
		}
	}
	env(&c.URI, "ROCKETJOB_URI")
	env(&c.WorkURI, "ROCKETJOB_WORK_URI")
	env(&c.DB, "ROCKETJOB_DB")
	env(&c.WorkDB, "ROCKETJOB_WORK_DB")
	if c.Registry == nil {
		c.Registry = NewRegistry()
	}
	return c
}

// Client enqueues, finds and changes jobs. It is safe for concurrent use.
type Client struct {
	store    *store.Store
	registry *Registry
	keyring  *encryption.Keyring
	inserter inserter // batches the writes of concurrent Enqueue calls
}

// NewClient connects to the databases named by cfg (empty fields come from the
// environment). It fails within a few seconds, with the URI in the message
// (password hidden), when a database cannot be reached.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withEnv()
	if cfg.Keyring == nil {
		kr, err := encryption.LoadKeyring(cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Keyring = kr
	}
	s, err := store.Open(ctx, store.Config{URI: cfg.URI, WorkURI: cfg.WorkURI, DB: cfg.DB, WorkDB: cfg.WorkDB, ClaimStrategy: cfg.ClaimStrategy})
	if err != nil {
		return nil, err
	}
	return &Client{store: s, registry: cfg.Registry, keyring: cfg.Keyring}, nil
}

// Keyring returns the client's keys (nil when none are configured).
func (c *Client) Keyring() *encryption.Keyring { return c.keyring }

// codec returns the codec that seals and opens a job's slices. For an
// encrypted job it fails (wrapping encryption.ErrNoKey or ErrNoKeyring) when
// this process lacks the job's key. Package sliced, the servers and the web
// UI reach it through internal/clientjob.
func (c *Client) codec(job *Job) (*encryption.Codec, error) {
	if job.Encrypt && job.KeyID != "" && !c.keyring.Has(job.KeyID) {
		if c.keyring == nil {
			return nil, fmt.Errorf("job %s is encrypted: %w", job.ID.Hex(), encryption.ErrNoKeyring)
		}
		return nil, fmt.Errorf("job %s is encrypted with key %q: %w (have %s)", job.ID.Hex(), job.KeyID, encryption.ErrNoKey, c.keyring)
	}
	return encryption.NewCodec(job.ID.Hex(), c.keyring, job.Compress, job.Encrypt)
}

// Close disconnects from the databases.
func (c *Client) Close(ctx context.Context) error { return c.store.Close(ctx) }

// Registry returns the client's job types.
func (c *Client) Registry() *Registry { return c.registry }

// EnqueueOptions are per-job settings; nil means the type's defaults.
type EnqueueOptions struct {
	// Priority 1..100, 1 runs first; 0 means the type's default (50 unless set).
	Priority int
	// RunAt delays the job until then; zero means now.
	RunAt time.Time
	// Description is free text shown in listings.
	Description string
	// RetryLimit overrides the type's retry limit when not nil.
	RetryLimit *int
	// ExpiresAt: if the job has not started by then it is aborted as
	// expired and never runs. Zero means never.
	ExpiresAt time.Time
	// DependsOn holds ids of jobs that must complete first; if one of them
	// fails, is aborted or destroyed, this job fails with that cause.
	DependsOn []string
	// Window restricts processing to a daily window; nil means any time.
	Window *Window
	// Cron makes the job recurring: a schedule such as "0 2 * * *" (an
	// optional leading seconds field, descriptors like @hourly and a
	// "CRON_TZ=Europe/Berlin " prefix are accepted). The first instance runs
	// at the schedule's next time (RunAt is ignored); each instance that
	// completes or fails enqueues the next. One schedule of a type runs as a
	// single chain: enqueuing it again while an instance is live is refused.
	Cron string
}

// Enqueue writes a new simple job of type typ with args (the type's argument
// struct, a pointer to it, or bson.Raw) and returns it. An unknown type, a bad
// priority or arguments that do not fit the type are errors (ErrUnknownType,
// ErrBadPriority, ErrBadArgs) and nothing is written.
func (c *Client) Enqueue(ctx context.Context, typ string, args any, opts *EnqueueOptions) (*Job, error) {
	spec, err := c.registry.Lookup(typ)
	if err != nil {
		return nil, err
	}
	if spec.Kind != KindSimple {
		return nil, fmt.Errorf("job type %q is a sliced job: upload its input with the sliced package or `rocketjob upload`", typ)
	}
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	job, err := c.newJob(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	if opts.Cron != "" {
		if err := c.cronStart(ctx, job, opts.Cron); err != nil {
			return nil, err
		}
	}
	if job.Params, err = encodeArgs(spec, args); err != nil {
		return nil, err
	}
	job.RetryLimit, job.RetryBase = spec.RetryLimit, spec.RetryBase
	if opts.RetryLimit != nil {
		if *opts.RetryLimit < 0 {
			return nil, fmt.Errorf("%w: retry limit must not be negative", ErrBadArgs)
		}
		job.RetryLimit = *opts.RetryLimit
	}
	if err := c.inserter.insert(ctx, c.store, job); err != nil {
		return nil, fmt.Errorf("enqueuing %s job: %w", typ, err)
	}
	return job, nil
}

// newJob builds, without writing it, a queued job of the type spec (simple
// or sliced) with opts' priority (0: the type's default), run time,
// description, expiry, dependencies and window, checked as Enqueue checks
// them: a bad priority wraps ErrBadPriority, a missing dependency
// ErrJobNotFound, a bad window ErrBadWindow. Cron, RetryLimit and the
// arguments are left to the caller. Enqueue, EnqueueMany and (through
// internal/clientjob) sliced.Upload start from it.
func (c *Client) newJob(ctx context.Context, spec *TypeSpec, opts *EnqueueOptions) (*Job, error) {
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	priority, runAt := opts.Priority, opts.RunAt
	if priority == 0 {
		priority = spec.Priority
	}
	if priority == 0 {
		priority = DefaultPriority
	}
	if err := CheckPriority(priority); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if runAt.IsZero() {
		runAt = now
	}
	job := &Job{
		ID:          bson.NewObjectID(),
		Type:        spec.Name,
		Kind:        spec.Kind,
		State:       StateQueued,
		Priority:    priority,
		Description: opts.Description,
		RunAt:       runAt.UTC().Truncate(time.Millisecond),
		CreatedAt:   now,
	}
	if !opts.ExpiresAt.IsZero() {
		job.ExpiresAt = new(opts.ExpiresAt.UTC().Truncate(time.Millisecond))
	}
	for _, id := range opts.DependsOn {
		dep, err := c.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("dependency: %w", err)
		}
		job.DependsOn = append(job.DependsOn, dep.ID)
	}
	if w := opts.Window; w != nil {
		if err := w.Check(); err != nil {
			return nil, err
		}
		job.WindowStart, job.WindowDuration, job.WindowLocation = w.Start, w.Duration, w.Location
	}
	return job, nil
}

// cronStart makes job the first instance of a cron chain, refusing a second
// chain of the same type and schedule.
func (c *Client) cronStart(ctx context.Context, job *Job, spec string) error {
	next, err := NextCronRun(spec, time.Now())
	if err != nil {
		return err
	}
	live, err := c.store.ListJobs(ctx, store.JobFilter{Type: job.Type, States: []State{StateQueued, StateRunning, StatePaused}})
	if err != nil {
		return err
	}
	for _, j := range live {
		if j.Cron == spec {
			return fmt.Errorf("%w: job type %q already runs on schedule %q: job %s is %s", ErrCronRunning, job.Type, spec, j.ID.Hex(), j.State)
		}
	}
	job.Cron, job.RunAt, job.ID = spec, next, model.CronJobID(job.Type, spec, next)
	return nil
}

// Window returns the job's daily processing window, or nil when it may
// run at any time.
func (j *Job) Window() *Window {
	if j.WindowStart == "" {
		return nil
	}
	return &Window{Start: j.WindowStart, Duration: j.WindowDuration, Location: j.WindowLocation}
}

// ParseID turns a job id string into its ObjectID, or an error wrapping
// ErrJobNotFound for a malformed id.
func ParseID(id string) (bson.ObjectID, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return oid, fmt.Errorf("%w: %q is not a job id (24 hex digits)", ErrJobNotFound, id)
	}
	return oid, nil
}

// Get reads a job.
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	oid, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	job, err := c.store.GetJob(ctx, oid)
	return publicJob(job), err
}

// ListOptions filter and order List; the zero value lists every job, most
// urgent first.
type ListOptions struct {
	States []State
	Type   string
	Limit  int64
	Skip   int64
	// Newest lists the most recently created jobs first, whatever their
	// priority, instead of the most urgent first.
	Newest bool
}

// List returns jobs ordered by priority, then age, or newest first
// (opts.Newest). With a limit, its cost does not grow with the number of
// jobs that have ended (completed, failed, aborted): on FerretDB a
// newest-first listing reads every running and paused job's entry and
// every queued job's enqueued one at a time (those of EnqueueMany only as
// far as the page reaches), and a page past the newest thousand or so
// reads every job.
func (c *Client) List(ctx context.Context, opts *ListOptions) ([]Job, error) {
	if opts == nil {
		opts = &ListOptions{}
	}
	jobs, err := c.store.ListJobs(ctx, store.JobFilter{States: opts.States, Type: opts.Type, Limit: opts.Limit, Skip: opts.Skip, Newest: opts.Newest})
	return publicJobs(jobs), err
}

// change reads the job, lets decide pick the operation (store.Op: a
// transition, or an update that keeps the state), and applies it, reading
// again when another process got there first.
func (c *Client) change(ctx context.Context, id string, decide func(*Job) (store.Op, error)) (*Job, error) {
	oid, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		job, err := c.store.GetJob(ctx, oid)
		if err != nil {
			return nil, err
		}
		op, err := decide(publicJob(job))
		if err != nil {
			return nil, err
		}
		updated, err := c.store.Do(ctx, job, op, "client")
		if errors.Is(err, ErrConflict) && attempt < 20 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
			}
			continue
		}
		return publicJob(updated), err
	}
}

// SetPriority changes a job's priority (1 runs first). It takes effect on
// queued and running jobs: workers re-check priorities after every slice and
// every re-check interval.
func (c *Client) SetPriority(ctx context.Context, id string, priority int) (*Job, error) {
	if err := CheckPriority(priority); err != nil {
		return nil, err
	}
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		if !j.State.Live() {
			return store.Op{}, fmt.Errorf("job %s is %s: %w", j.ID.Hex(), j.State, &InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: j.State})
		}
		return store.SetPriority(priority), nil
	})
}

// Pause stops a queued job from starting, or a running sliced job from
// claiming more slices: within one slice plus the servers' re-check interval
// its workers leave it, slices claimed ahead go back unprocessed and slices
// in flight finish. A running simple job cannot be paused, nor a sliced job
// while one server runs its before or after hook (a short step: pause it
// before or after).
func (c *Client) Pause(ctx context.Context, id string) (*Job, error) {
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		hook := j.State == StateRunning && j.Kind == KindSliced && j.Step != StepProcessing && j.Server != ""
		if j.State == StatePaused || j.State == StateRunning && j.Kind == KindSimple || hook {
			return store.Op{}, &InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: StatePaused}
		}
		return store.Pause(), nil
	})
}

// Resume continues a paused job.
func (c *Client) Resume(ctx context.Context, id string) (*Job, error) {
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		if j.State != StatePaused {
			return store.Op{}, &InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: StateRunning}
		}
		return store.Resume(j.Kind == KindSliced && j.StartedAt != nil), nil
	})
}

// Abort stops a live job for good. Within one slice plus the servers'
// re-check interval, a sliced job's workers leave it (its remaining slices
// are never processed) and a running simple job's or hook's context is
// cancelled with the cause ErrAborted; the result of a cancelled run is
// dropped.
func (c *Client) Abort(ctx context.Context, id string) (*Job, error) {
	job, err := c.change(ctx, id, func(j *Job) (store.Op, error) {
		if !j.State.Live() {
			return store.Op{}, &InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: StateAborted}
		}
		return store.Abort(nil, time.Now().UTC()), nil
	})
	if err == nil {
		err = c.store.ReleaseTypeSlot(ctx, job.ID, "")
	}
	if err == nil && job.EndHooks {
		// The servers find the ends to handle by these marks.
		err = c.store.MarkEndDue(ctx, job.ID)
	}
	return job, err
}

// Retry runs a failed job again. A sliced job re-runs only its failed
// records (as corrected or deleted by the operators' fixes; the other
// records of their slices keep their outputs, so the output stays in input
// order and exactly once), or, for a type with output categories or
// statistics, its slices with failed records whole; a simple job runs again
// from the start.
func (c *Client) Retry(ctx context.Context, id string) (*Job, error) {
	oid, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	job, err := c.store.GetJob(ctx, oid)
	if err != nil {
		return nil, err
	}
	if job.State != StateFailed {
		return nil, &InvalidTransitionError{JobID: id, From: job.State, To: StateQueued}
	}
	if job.Kind == KindSliced && job.Step == StepProcessing {
		// The plans first, while the failed slices' last attempts are the
		// finished ones: servers then re-run only the failed records.
		plans, fixes, err := c.store.PrepareRetry(ctx, oid)
		if err != nil {
			return nil, fmt.Errorf("job %s: preparing the retry of its failed records: %w", id, err)
		}
		if _, err := c.store.Slices().RetryFailed(ctx, oid); err != nil {
			return nil, fmt.Errorf("job %s: requeuing failed slices: %w", id, err)
		}
		if plans > 0 {
			_ = c.store.AddHistory(ctx, &store.HistoryEntry{Job: oid, User: UserFrom(ctx), Action: "retry",
				Detail: fmt.Sprintf("failed records of %d slices, %d fixed or deleted", plans, fixes)})
		}
	}
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		if j.State != StateFailed {
			return store.Op{}, &InvalidTransitionError{JobID: id, From: j.State, To: StateQueued}
		}
		if j.Kind == KindSliced && j.Step != "" {
			return store.RetryStep(), nil
		}
		// A simple job gets its retries again.
		return store.Rerun(time.Now()), nil
	})
}

// Destroy removes a job and all its slices, whatever its state. Within one
// slice plus the servers' re-check interval its workers leave it and a
// running simple job's or hook's context is cancelled with the cause
// ErrDestroyed; results that arrive later are dropped. The deletion is
// decided as a transition is: a change made to the job at the same moment
// (by a server, or another client) either comes first, and the job is read
// again and destroyed, or fails with ErrConflict; it is never reported done
// and then destroyed. A transition claimed by a server that died holds the
// job until it can be rolled forward (10 seconds): Destroy waits for it,
// and returns ErrConflict only after 15 seconds of races.
func (c *Client) Destroy(ctx context.Context, id string) error {
	oid, err := ParseID(id)
	if err != nil {
		return err
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		job, err := c.store.GetJob(ctx, oid)
		if errors.Is(err, ErrJobNotFound) && attempt > 0 {
			return nil // destroyed meanwhile by another caller, as asked
		}
		if err != nil {
			return err
		}
		err = c.destroyAt(ctx, job)
		if !errors.Is(err, ErrConflict) || time.Since(start) > destroyRetryFor {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*20*time.Millisecond, 500*time.Millisecond)):
		}
	}
}

// destroyRetryFor is how long Destroy tries again after conflicts: longer
// than a dead writer's claim holds a job (rollForwardAfter in the store).
const destroyRetryFor = 15 * time.Second

// destroyAt destroys job (as read), unless it changed since: ErrConflict.
func (c *Client) destroyAt(ctx context.Context, job *model.Job) error {
	oid, id := job.ID, job.ID.Hex()
	if err := c.store.DeleteJobAt(ctx, oid, job.Version); err != nil {
		return err
	}
	if err := c.store.ReleaseTypeSlot(ctx, oid, ""); err != nil {
		return err
	}
	if job.EndHooks {
		if err := c.store.DropEnds(ctx, oid); err != nil {
			return fmt.Errorf("job %s: dropping its handled ends: %w", id, err)
		}
	}
	if job.Kind == KindSliced {
		if err := c.store.Slices().Drop(ctx, oid); err != nil {
			return fmt.Errorf("job %s: dropping slices: %w", id, err)
		}
	}
	if err := c.store.DropFixes(ctx, oid); err != nil {
		return fmt.Errorf("job %s: dropping its fixes and history: %w", id, err)
	}
	return nil
}

// Wait polls a job until it completed, failed or was aborted (or ctx ends) and
// returns it.
func (c *Client) Wait(ctx context.Context, id string, poll time.Duration) (*Job, error) {
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		job, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if job.State == StateCompleted || job.State == StateFailed || job.State == StateAborted {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Progress is a sliced job's progress.
type Progress struct {
	Records   int64 `json:"record_count"`
	Processed int64 `json:"processed_count"`
	Failed    int64 `json:"failed_record_count"`
	// Slices counts each slice once: Queued + Claimed + Running + Failed +
	// Done = Total.
	Slices struct {
		Total  int64 `json:"total"`
		Queued int64 `json:"queued"`
		// Claimed: claimed by a server, waiting for one of its workers (or
		// processed and waiting to be written).
		Claimed int64 `json:"claimed"`
		// Running: a worker is on it now (as of the servers' last heartbeat).
		Running int64 `json:"running"`
		Failed  int64 `json:"failed"` // finished, with failed records
		Done    int64 `json:"done"`   // finished, every record in the output
	} `json:"slices"`
	Percent        float64       `json:"percent"`
	RecordsPerHour float64       `json:"records_per_hour"`
	Remaining      time.Duration `json:"remaining_ns"`
	// Statistics are the job's counters (see Inc) so far: a sliced job's
	// finished slices' and hooks', a simple job's runs'.
	Statistics map[string]int64 `json:"statistics,omitempty"`
	// Categories counts the output records of each of the job's output
	// categories so far (a type with categories).
	Categories map[string]int64 `json:"categories,omitempty"`
	// Dropped counts the records the job's code gave no output for.
	Dropped int64 `json:"dropped_count,omitempty"`
}

// batchTotals fills p's statistics, categories and dropped records: the
// job's final totals once it ended, else its finished slices' sums.
func (c *Client) batchTotals(ctx context.Context, job *Job, p *Progress) error {
	if job.Kind != KindSliced || job.Totals {
		p.Statistics, p.Categories, p.Dropped = job.Statistics, job.Categories, job.DroppedCount
		return nil
	}
	t, err := c.store.Slices().Totals(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("job %s: statistics: %w", job.ID.Hex(), err)
	}
	p.Statistics, p.Dropped = scope.Add(job.HookStatistics, t.Statistics), t.Dropped
	if len(job.CategoryNames) > 0 {
		p.Categories = map[string]int64{}
		for _, name := range job.CategoryNames {
			p.Categories[name] = t.Categories[name]
		}
	}
	return nil
}

// Progress counts a sliced job's slices and records. It reads the slice
// collections, so call it for display, not in a loop.
func (c *Client) Progress(ctx context.Context, job *Job) (*Progress, error) {
	p := &Progress{Records: job.RecordCount}
	p.Slices.Total = job.SliceCount
	if err := c.batchTotals(ctx, job, p); err != nil {
		return nil, err
	}
	if job.Kind != KindSliced {
		return p, nil
	}
	if job.State == StateCompleted {
		p.Processed, p.Failed = job.ProcessedCount, job.FailedRecordCount
		p.Slices.Done = job.SliceCount
	} else {
		sp, err := c.store.Slices().Progress(ctx, job.ID, job.SliceCount, job.RecordCount)
		if err != nil {
			return nil, fmt.Errorf("job %s: progress: %w", job.ID.Hex(), err)
		}
		p.Processed, p.Failed = sp.Processed, sp.FailedRecords
		p.Slices.Failed = sp.Failed
		p.Slices.Done = sp.Done - sp.Failed
		// sp.Running counts every claimed, unfinished slice: the servers'
		// heartbeats say how many of them a worker is on.
		p.Slices.Running = min(sp.Running, c.processingNow(ctx, job.ID))
		p.Slices.Claimed = sp.Running - p.Slices.Running
		p.Slices.Queued = max(0, job.SliceCount-sp.Done-sp.Running)
	}
	if job.RecordCount > 0 {
		p.Percent = 100 * float64(p.Processed) / float64(job.RecordCount)
	} else if job.State == StateCompleted {
		p.Percent = 100
	}
	if job.StartedAt != nil && p.Processed > 0 {
		end := time.Now()
		if job.CompletedAt != nil {
			end = *job.CompletedAt
		}
		elapsed := end.Sub(*job.StartedAt)
		if elapsed > 0 {
			p.RecordsPerHour = float64(p.Processed) / elapsed.Hours()
			if left := job.RecordCount - p.Processed; left > 0 {
				p.Remaining = time.Duration(float64(left) / p.RecordsPerHour * float64(time.Hour))
			}
		}
	}
	return p, nil
}

// processingNow sums the slices of job that live servers reported
// processing at their last heartbeat.
func (c *Client) processingNow(ctx context.Context, job bson.ObjectID) int64 {
	servers, err := c.store.ListServers(ctx)
	if err != nil {
		return 0
	}
	var n int64
	for i := range servers {
		srv := &servers[i]
		if time.Since(srv.HeartbeatAt) < srv.DeadAfterOr(0) {
			n += int64(srv.Processing[job.Hex()])
		}
	}
	return n
}

// Servers lists the server processes.
func (c *Client) Servers(ctx context.Context) ([]Server, error) {
	list, err := c.store.ListServers(ctx)
	out := make([]Server, len(list))
	for i := range list {
		out[i] = Server(list[i])
	}
	return out, err
}

// Server commands.
const (
	CommandPause  = "pause"
	CommandResume = "resume"
	CommandStop   = "stop"
)

// CommandServer sends pause, resume or stop to the server named name, or to
// every server when name is empty. Servers act on it at their next heartbeat.
func (c *Client) CommandServer(ctx context.Context, name, command string) error {
	switch command {
	case CommandPause, CommandResume, CommandStop:
	default:
		return fmt.Errorf("unknown server command %q (pause, resume, stop)", command)
	}
	target := name
	if name == "" {
		target = store.AllServers
	} else if _, err := c.store.GetServer(ctx, name); err != nil {
		return err
	}
	return c.store.SendCommand(ctx, target, command)
}
