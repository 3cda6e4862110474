package server_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// endSeen is what an end hook saw.
type endSeen struct {
	State      rocketjob.State
	Failed     int64
	Dropped    int64
	Categories map[string]int64
	Statistics map[string]int64
	Even       string // the "even" output, read from the hook
}

// receiver is a webhook endpoint that refuses the first POST of each
// delivery with a 500 and keeps the bodies it accepted.
type receiver struct {
	mu       sync.Mutex
	tries    map[string]int
	accepted map[string][]server.Notification
	badSig   atomic.Int32
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	r := &receiver{tries: map[string]int{}, accepted: map[string][]server.Notification{}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !hmac.Equal([]byte(req.Header.Get(server.SignatureHeader)), []byte(server.Sign(secret, body))) {
			r.badSig.Add(1)
		}
		key := req.Header.Get(server.DeliveryHeader)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.tries[key]++; r.tries[key] == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		var n server.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		r.accepted[n.ID] = append(r.accepted[n.ID], n)
	}))
	t.Cleanup(ts.Close)
	return r, ts
}

func (r *receiver) got(id string) []server.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]server.Notification(nil), r.accepted[id]...)
}

// TestEndHooksAndWebhook: on two servers, each end of a job (complete, fail
// with failed records, abort by a client, abort as expired) runs the type's hook once, with the final
// counts, categories and statistics, and posts one signed webhook (retried
// after a 500) naming the results, on both claim strategies.
func TestEndHooksAndWebhook(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			var mu sync.Mutex
			seen := map[string][]endSeen{}
			record := func(ctx context.Context, job *rocketjob.Job, _ struct{}) error {
				e := endSeen{State: job.State, Failed: job.FailedRecordCount, Dropped: job.DroppedCount, Categories: job.Categories, Statistics: job.Statistics}
				if job.State != rocketjob.StateAborted {
					var out strings.Builder
					if _, err := sliced.DownloadCategory(ctx, b.client, job.ID.Hex(), "even", &out); err != nil {
						return err
					}
					e.Even = out.String()
				}
				mu.Lock()
				defer mu.Unlock()
				seen[job.ID.Hex()] = append(seen[job.ID.Hex()], e)
				return nil
			}
			must(t, sliced.Register(b.reg, "triage_hooked", sliced.Type[struct{}]{
				Categories: []string{"even", "odd"}, Perform: examples.Triage,
				OnComplete: record, OnFail: record, OnAbort: record,
				Options: &sliced.Options{SliceSize: 2},
			}))
			const secret = "s3cret"
			rcv, ts := newReceiver(t, secret)
			upload := func(in string, opts *sliced.UploadOptions) string {
				opts.NotifyURL = ts.URL + "/hook"
				job, err := sliced.Upload(ctx, b.client, "triage_hooked", strings.NewReader(in), opts)
				must(t, err)
				return job.ID.Hex()
			}
			ok := upload("1\n2\n\n4\n", &sliced.UploadOptions{})
			bad := upload("1\nx\n2\n", &sliced.UploadOptions{})
			later := upload("6\n", &sliced.UploadOptions{RunAt: time.Now().Add(time.Hour)})
			_, err := b.client.Abort(ctx, later)
			must(t, err)
			// Due after it expired: a server aborts it (its end is marked by
			// the server, not found by reading every job).
			expired := upload("8\n", &sliced.UploadOptions{RunAt: time.Now().Add(time.Second), ExpiresAt: time.Now().Add(500 * time.Millisecond)})
			for _, name := range []string{"s1", "s2"} {
				b.runServer(t, server.Config{
					Name: name, Workers: 2, PollInterval: 50 * time.Millisecond, ReCheck: 100 * time.Millisecond,
					HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookSecret: secret,
					PublicURL: "https://jobs.example/rj", WebhookBackoff: 10 * time.Millisecond,
				})
			}
			for _, id := range []string{ok, bad, later, expired} {
				b.wait(t, id)
				waitFor(t, "the webhook of job "+id, func() bool { return len(rcv.got(id)) > 0 })
			}
			waitFor(t, "the end hooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 4 })
			mu.Lock()
			defer mu.Unlock()
			want := map[string]endSeen{
				ok: {State: rocketjob.StateCompleted, Dropped: 1, Categories: map[string]int64{"even": 2, "odd": 1},
					Statistics: map[string]int64{"even": 2, "odd": 1}, Even: "2\n4\n"},
				bad: {State: rocketjob.StateFailed, Failed: 1, Categories: map[string]int64{"even": 1, "odd": 1},
					Statistics: map[string]int64{"even": 1, "odd": 1}, Even: "2\n"},
				later:   {State: rocketjob.StateAborted, Categories: map[string]int64{"even": 0, "odd": 0}},
				expired: {State: rocketjob.StateAborted, Categories: map[string]int64{"even": 0, "odd": 0}},
			}
			for id, w := range want {
				if got := seen[id]; len(got) != 1 || !reflect.DeepEqual(got[0], w) {
					t.Errorf("job %s: hooks saw %+v, want once %+v", id, got, w)
				}
				n := rcv.got(id)
				if len(n) != 1 || n[0].State != string(w.State) || !reflect.DeepEqual(n[0].Categories, w.Categories) || n[0].FailedRecordCount != w.Failed {
					t.Errorf("job %s: webhook %+v", id, n)
					continue
				}
				if n[0].Results["even"] != "https://jobs.example/rj/api/jobs/"+id+"/output?category=even" || n[0].Results["failed"] == "" {
					t.Errorf("job %s: result URLs %v", id, n[0].Results)
				}
			}
			if n := rcv.badSig.Load(); n != 0 {
				t.Errorf("%d webhook POSTs had a bad signature", n)
			}
			rcv.mu.Lock()
			for key, n := range rcv.tries {
				if n != 2 {
					t.Errorf("delivery %s was tried %d times, want 2 (refused once)", key, n)
				}
			}
			rcv.mu.Unlock()
		})
	}
}

// TestEndHooksOncePerEnd: a job that fails, is retried and then completes
// has two ends: its OnFail hook and then its OnComplete hook run once each,
// and its webhook is delivered once per end (two delivery ids), with the
// state of each end, on both claim strategies.
func TestEndHooksOncePerEnd(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			var fixed atomic.Bool
			var mu sync.Mutex
			var ends []string
			record := func(_ context.Context, job *rocketjob.Job, _ struct{}) error {
				mu.Lock()
				defer mu.Unlock()
				ends = append(ends, fmt.Sprintf("%s failed=%d ok=%d", job.State, job.FailedRecordCount, job.Categories["ok"]))
				return nil
			}
			must(t, sliced.Register(b.reg, "flaky", sliced.Type[struct{}]{
				Categories: []string{"ok"},
				Perform: func(_ context.Context, _ struct{}, rec []byte) ([]rocketjob.Output, error) {
					if string(rec) == "bad" && !fixed.Load() {
						return nil, errors.New("not yet")
					}
					return sliced.To("ok", rec), nil
				},
				OnComplete: record, OnFail: record,
				Options: &sliced.Options{SliceSize: 2},
			}))
			rcv, ts := newReceiver(t, "")
			job, err := sliced.Upload(ctx, b.client, "flaky", strings.NewReader("a\nbad\nc\n"), &sliced.UploadOptions{NotifyURL: ts.URL})
			must(t, err)
			id := job.ID.Hex()
			for _, name := range []string{"s1", "s2"} {
				b.runServer(t, server.Config{
					Name: name, Workers: 2, PollInterval: 50 * time.Millisecond, ReCheck: 100 * time.Millisecond,
					HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookBackoff: 10 * time.Millisecond,
				})
			}
			if j := b.wait(t, id); j.State != rocketjob.StateFailed {
				t.Fatalf("first end: %s", j.State)
			}
			waitFor(t, "the first webhook", func() bool { return len(rcv.got(id)) == 1 })
			fixed.Store(true)
			_, err = b.client.Retry(ctx, id)
			must(t, err)
			waitFor(t, "the job completes", func() bool {
				j, err := b.client.Get(ctx, id)
				return err == nil && j.State == rocketjob.StateCompleted
			})
			waitFor(t, "the second webhook", func() bool { return len(rcv.got(id)) == 2 })
			waitFor(t, "both end hooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(ends) == 2 })
			mu.Lock()
			got := append([]string(nil), ends...)
			mu.Unlock()
			if want := []string{"failed failed=1 ok=2", "completed failed=0 ok=3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("end hooks ran %q, want %q", got, want)
			}
			n := rcv.got(id)
			if n[0].State != "failed" || n[1].State != "completed" || n[1].Categories["ok"] != 3 {
				t.Errorf("webhooks %+v", n)
			}
			rcv.mu.Lock()
			if len(rcv.tries) != 2 {
				t.Errorf("%d delivery ids, want 2 (one per end): %v", len(rcv.tries), rcv.tries)
			}
			rcv.mu.Unlock()
			// Destroying the job removes what the enders recorded about it.
			handled := dbtest.Client(t).Database(b.jobs).Collection("job_ends")
			byJob := bson.D{{Key: "job", Value: job.ID}}
			if n, err := handled.CountDocuments(ctx, byJob); err != nil || n != 2 {
				t.Fatalf("%d handled ends recorded (%v), want 2", n, err)
			}
			must(t, b.client.Destroy(ctx, id))
			if n, err := handled.CountDocuments(ctx, byJob); err != nil || n != 0 {
				t.Errorf("%d handled ends left after destroy (%v)", n, err)
			}
		})
	}
}
