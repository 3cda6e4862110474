package rocketjobweb_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
)

// TestCreateManyJobs posts an array of params and checks every job as
// stored, in order.
func TestCreateManyJobs(t *testing.T) {
	b := setup(t, options{auth: true})
	body := `  [{"ms": 1}, {"ms": 2, "fail": true}, {}]`
	r := b.do(t, req{method: "POST", path: "/api/jobs?type=nap&priority=12&description=bulk", body: strings.NewReader(body), ctype: "application/json", token: testToken})
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	ids, _ := m["ids"].([]any)
	if len(ids) != 3 || m["count"] != float64(3) || m["type"] != "nap" {
		t.Fatalf("answer %s: want type nap, count 3 and 3 ids", r.body)
	}
	want := []examples.NapArgs{{MS: 1}, {MS: 2, Fail: true}, {}}
	for i, id := range ids {
		job, err := b.client.Get(context.Background(), id.(string))
		if err != nil {
			t.Fatal(err)
		}
		var a examples.NapArgs
		must(t, bson.Unmarshal(job.Params, &a))
		if a != want[i] || job.Priority != 12 || job.Description != "bulk" || job.State != rocketjob.StateQueued {
			t.Errorf("job %d: %+v, args %+v; want args %+v, priority 12, description bulk, queued", i, job, a, want[i])
		}
	}
	// A single JSON object still creates one job.
	r = b.do(t, req{method: "POST", path: "/api/jobs", body: strings.NewReader(`{"type": "nap", "params": {"ms": 5}}`), ctype: "application/json", token: testToken})
	if r.status != http.StatusAccepted || r.json(t)["id"] == nil {
		t.Fatalf("single object: status %d: %s", r.status, r.body)
	}
}

// TestCreateManyRefusesBadInput checks that a bad element, option or body
// is a 400 and writes no job.
func TestCreateManyRefusesBadInput(t *testing.T) {
	b := setup(t, options{auth: true})
	cases := []struct {
		query, body, code, msg string
	}{
		{"?type=nap", `[{"ms": 1}, {"ms": -1}]`, "bad_args", "[1]"},
		{"?type=nap", `[{"ms": 1}, {"ms": "x"}]`, "bad_args", "[1]"},
		{"?type=nap", `[{"ms": 1}, 7]`, "bad_args", "[1]: params must be a JSON object"},
		{"?type=nap", `[{"ms": 1}, {"ms": }]`, "bad_request", "element 1"},
		{"?type=nap", `[{"ms": 1}] [2]`, "bad_request", "after the array"},
		{"?type=nap", `[]`, "bad_args", "empty"},
		{"", `[{"ms": 1}]`, "bad_parameter", "missing type"},
		{"?type=nope", `[{"ms": 1}]`, "unknown_type", "nope"},
		{"?type=copy", `[{"ms": 1}]`, "bad_parameter", "sliced job"},
		{"?type=nap&slice_size=5", `[{"ms": 1}]`, "bad_parameter", "slice_size"},
		{"?type=nap&priority=0", `[{"ms": 1}]`, "bad_priority", ""},
	}
	for _, tc := range cases {
		r := b.do(t, req{method: "POST", path: "/api/jobs" + tc.query, body: strings.NewReader(tc.body), ctype: "application/json", token: testToken})
		if r.status != http.StatusBadRequest || r.errCode(t) != tc.code || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s %s: status %d %s; want 400 %s mentioning %q", tc.query, tc.body, r.status, r.body, tc.code, tc.msg)
		}
	}
	jobs, err := b.client.List(context.Background(), nil)
	must(t, err)
	if len(jobs) != 0 {
		t.Fatalf("refused requests wrote %d jobs", len(jobs))
	}
}

// BenchmarkCreateJob measures POST /api/jobs with one job per request from
// 8 concurrent clients, and with arrays of 1,000 jobs.
//
//	go test ./rocketjobweb -run '^$' -bench CreateJob -benchtime 2000x
func BenchmarkCreateJob(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("single/%d-clients", clients), func(b *testing.B) { benchSingle(b, clients) })
	}
	b.Run("array-of-1000", func(b *testing.B) {
		bb := setupB(b)
		body := "[" + strings.TrimSuffix(strings.Repeat(`{"ms": 0},`, 1000), ",") + "]"
		start := time.Now()
		for b.Loop() {
			if status := bb.post(b, "/api/jobs?type=nap", body); status != http.StatusAccepted {
				b.Fatalf("status %d", status)
			}
		}
		b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "jobs/s")
	})
}

// benchUI is a UI on fresh databases for a benchmark.
type benchUI struct{ url string }

// benchClient keeps a connection per concurrent client.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func (u *benchUI) post(b *testing.B, path, body string) int {
	resp, err := benchClient.Post(u.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func setupB(b *testing.B) *benchUI {
	b.Helper()
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		b.Fatal(err)
	}
	jobs, work := dbtest.DBNames(b)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	h, err := rocketjobweb.NewHandler(c, &rocketjobweb.Options{Listen: "127.0.0.1:0", SampleInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	b.Cleanup(func() {
		ts.Close()
		h.Close()
		_ = c.Close(context.Background())
	})
	return &benchUI{url: ts.URL}
}

// benchSingle posts one job per request from clients concurrent clients.
func benchSingle(b *testing.B, clients int) {
	bb := setupB(b)
	var wg sync.WaitGroup
	work := make(chan int)
	start := time.Now()
	var lat time.Duration
	var mu sync.Mutex
	for range clients {
		wg.Go(func() {
			for range work {
				t0 := time.Now()
				status := bb.post(b, "/api/jobs", `{"type": "nap", "params": {"ms": 0}}`)
				d := time.Since(t0)
				mu.Lock()
				lat += d
				mu.Unlock()
				if status != http.StatusAccepted {
					b.Errorf("status %d", status)
				}
			}
		})
	}
	for i := 0; i < b.N; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
	b.ReportMetric(float64(lat.Milliseconds())/float64(b.N), "ms/request")
	b.ReportMetric(0, "ns/op")
}
