package rocketjobweb_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestCreateJobOptions (issue 18, parity): every option of `upload` and
// `job enqueue` goes through REST: a multipart upload with stop_on_error,
// max_workers, window, expires_at, after and collect_output; a JSON
// enqueue with retry_limit, cron, expires_at, after (an array) and window;
// a bulk enqueue with options in the query. An option of the other kind of
// job, a bad cron, window or time and an unknown job to wait for are 400s,
// a second cron chain a 409.
func TestCreateJobOptions(t *testing.T) {
	b := setup(t, options{auth: true})
	ctx := context.Background()
	dep := queuedJob(t, b)

	id := b.upload(t, [][2]string{{"type", "reverse"}, {"stop_on_error", "on"}, {"max_workers", "3"}, {"window", "22:00,2h,Europe/London"},
		{"expires_at", "1h"}, {"after", dep}, {"collect_output", "false"}, {"run_at", "5m"}}, "in.txt", []byte("a\nb\n"))
	job, err := b.client.Get(ctx, id)
	must(t, err)
	if !job.StopOnError || job.MaxWorkers != 3 || job.WindowStart != "22:00" || job.WindowDuration != 2*time.Hour || job.WindowLocation != "Europe/London" ||
		job.ExpiresAt == nil || time.Until(*job.ExpiresAt) < 50*time.Minute || len(job.DependsOn) != 1 || job.DependsOn[0].Hex() != dep ||
		job.CollectOutput || time.Until(job.RunAt) < 4*time.Minute {
		t.Errorf("uploaded job: stop %v workers %d window %v expires %v after %v collect %v run at %v",
			job.StopOnError, job.MaxWorkers, job.WindowStart, job.ExpiresAt, job.DependsOn, job.CollectOutput, job.RunAt)
	}

	r := b.postJSON(t, "/api/jobs", map[string]any{"type": "nap", "params": map[string]any{"ms": 1}, "retry_limit": 2,
		"cron": "0 2 * * *", "expires_at": "2h", "after": []string{dep}, "window": "01:00,1h", "description": "nightly"})
	if r.status != http.StatusAccepted {
		t.Fatalf("enqueue: %d %s", r.status, r.body)
	}
	job, err = b.client.Get(ctx, r.json(t)["id"].(string))
	must(t, err)
	if job.RetryLimit != 2 || job.Cron != "0 2 * * *" || job.ExpiresAt == nil || len(job.DependsOn) != 1 || job.WindowStart != "01:00" || job.Description != "nightly" {
		t.Errorf("enqueued job: retry %d cron %q expires %v after %v window %v", job.RetryLimit, job.Cron, job.ExpiresAt, job.DependsOn, job.WindowStart)
	}
	if r := b.postJSON(t, "/api/jobs", map[string]any{"type": "nap", "cron": "0 2 * * *"}); r.status != http.StatusConflict {
		t.Errorf("a second cron chain: %d %s", r.status, r.body)
	}

	r = b.do(t, req{method: "POST", path: "/api/jobs?type=nap&retry_limit=4&expires_at=1h&after=" + dep, token: testToken,
		body: strings.NewReader(`[{"ms": 1}, {"ms": 2}]`), ctype: "application/json"})
	if r.status != http.StatusAccepted && r.status != http.StatusCreated {
		t.Fatalf("bulk enqueue: %d %s", r.status, r.body)
	}
	jobs, err := b.client.List(ctx, &rocketjob.ListOptions{Type: "nap"})
	must(t, err)
	bulk := 0
	for _, j := range jobs {
		if j.RetryLimit == 4 && j.ExpiresAt != nil && len(j.DependsOn) == 1 {
			bulk++
		}
	}
	if bulk != 2 {
		t.Errorf("bulk jobs with their options: %d, want 2", bulk)
	}

	for name, body := range map[string]map[string]any{
		"retry_limit on a sliced job": {"type": "reverse", "records": []string{"a"}, "retry_limit": 1},
		"cron on a sliced job":        {"type": "reverse", "records": []string{"a"}, "cron": "* * * * *"},
		"max_workers on a simple job": {"type": "nap", "max_workers": 2},
		"stop_on_error on a simple":   {"type": "nap", "stop_on_error": true},
		"bad cron":                    {"type": "nap", "cron": "every day"},
		"bad window":                  {"type": "nap", "window": "25:00,1h"},
		"bad expires_at":              {"type": "nap", "expires_at": "tomorrow"},
		"unknown job to wait for":     {"type": "nap", "after": "65a1b2c3d4e5f60718293a4b"},
		"not a job id":                {"type": "nap", "after": []string{"x"}},
		"negative max_workers":        {"type": "reverse", "records": []string{"a"}, "max_workers": -1},
	} {
		if r := b.postJSON(t, "/api/jobs", body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

// TestJobViewAndEditAPI: the API job view shows every option a job has
// (schedule: expires_at, after, window, cron, retry_limit; options:
// max_workers), and POST /api/jobs/{id}/edit changes a live job's
// description and max workers (400 for nothing to change or a bad value,
// 409 for a finished job; read-only users refused).
func TestJobViewAndEditAPI(t *testing.T) {
	b := setup(t, options{auth: true})
	dep := queuedJob(t, b)
	id := b.upload(t, [][2]string{{"type", "reverse"}, {"max_workers", "2"}, {"window", "22:00,2h"}, {"after", dep}, {"expires_at", "1h"}},
		"in.txt", []byte("a\n"))
	v := b.get(t, "/api/jobs/"+id).json(t)
	sched, _ := v["schedule"].(map[string]any)
	opts, _ := v["options"].(map[string]any)
	if sched == nil || sched["window"] != "22:00,2h0m0s" || sched["expires_at"] == nil || len(sched["after"].([]any)) != 1 || opts["max_workers"] != float64(2) {
		t.Fatalf("job view: schedule %v options %v", sched, opts)
	}
	r := b.postJSON(t, "/api/jobs", map[string]any{"type": "nap", "cron": "0 3 * * *", "retry_limit": 5})
	cron := r.json(t)["id"].(string)
	v = b.get(t, "/api/jobs/"+cron).json(t)
	if s := v["schedule"].(map[string]any); s["cron"] != "0 3 * * *" || s["retry_limit"] != float64(5) {
		t.Errorf("cron job view: %v", s)
	}

	if r := b.postJSON(t, "/api/jobs/"+id+"/edit", map[string]any{"description": "edited", "max_workers": 4}); r.status != http.StatusOK {
		t.Fatalf("edit: %d %s", r.status, r.body)
	}
	job, err := b.client.Get(context.Background(), id)
	must(t, err)
	if job.Description != "edited" || job.MaxWorkers != 4 {
		t.Errorf("after edit: %q %d", job.Description, job.MaxWorkers)
	}
	for name, body := range map[string]any{
		"nothing":  map[string]any{},
		"negative": map[string]any{"max_workers": -1},
		"unknown":  map[string]any{"priority": 3},
	} {
		if r := b.postJSON(t, "/api/jobs/"+id+"/edit", body); r.status != http.StatusBadRequest {
			t.Errorf("edit %s: %d %s", name, r.status, r.body)
		}
	}
	if r := b.postJSON(t, "/api/jobs/"+cron+"/edit", map[string]any{"max_workers": 1}); r.status != http.StatusBadRequest {
		t.Errorf("max workers of a simple job: %d %s", r.status, r.body)
	}
	if r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/edit", basic: [2]string{readUser, readPassword},
		body: strings.NewReader(`{"description":"x"}`), ctype: "application/json"}); r.status != http.StatusForbidden {
		t.Errorf("read-only edit: %d", r.status)
	}
	must(t, func() error { _, err := b.client.Abort(context.Background(), dep); return err }())
	if r := b.postJSON(t, "/api/jobs/"+dep+"/edit", map[string]any{"description": "late"}); r.status != http.StatusConflict {
		t.Errorf("edit of an aborted job: %d %s", r.status, r.body)
	}
}

// TestUploadFormColumns: the upload form's column checks refuse a CSV file
// whose header lacks a required column, and show the form again with the
// values typed.
func TestUploadFormColumns(t *testing.T) {
	b := setup(t, options{auth: true})
	alice := login(t, b, adminUser, adminPassword)
	page, csrf := alice.page("/upload")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `name="require_columns"`) {
		t.Fatalf("upload page: %d", page.status)
	}
	body, ct := multipartBody(t, [][2]string{{"csrf_token", csrf}, {"type", "csv_upcase"}, {"require_columns", "id,amount"}}, "p.csv", []byte("name,age\nann,3\n"))
	r := b.do(t, req{method: "POST", path: "/upload", body: body, ctype: ct, cookie: alice.cookie, header: map[string]string{"Origin": b.ts.URL}})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `value="id,amount"`) || !strings.Contains(string(r.body), "upload-error") {
		t.Errorf("refused upload: %d", r.status)
	}
	if n := countJobs(t, b); n != 0 {
		t.Errorf("%d jobs after a refused upload", n)
	}
}
