package rocketjobweb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestAPIJobs drives every job endpoint over a real HTTP server, a real
// database and an in-process server process.
func TestAPIJobs(t *testing.T) {
	b := setup(t, options{server: true, auth: true})
	input := lines(250, func(i int) string { return fmt.Sprintf("line-%03d", i) })
	var want bytes.Buffer
	for _, l := range strings.SplitAfter(string(input), "\n") {
		if l != "" {
			want.WriteString(reverse(strings.TrimSuffix(l, "\n")) + "\n")
		}
	}

	// POST /api/jobs: multipart, fields then the file.
	body, ct := multipartBody(t, [][2]string{{"type", "reverse"}, {"priority", "20"}, {"slice_size", "40"}, {"description", "nightly reversal"}}, "in.txt", input)
	r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %s", r.status, r.body)
	}
	created := r.json(t)
	id := created["id"].(string)
	if created["status_url"] != "/api/jobs/"+id || created["results_url"] != "/api/jobs/"+id+"/output" || r.header.Get("Location") != "/api/jobs/"+id {
		t.Fatalf("created: %v, Location %q", created, r.header.Get("Location"))
	}
	job := b.waitJob(t, id)
	if job.State != rocketjob.StateCompleted || job.Priority != 20 || job.SliceSize != 40 || !job.CollectOutput || job.DestroyOnComplete {
		t.Fatalf("job after upload: %+v", job)
	}

	t.Run("get", func(t *testing.T) {
		m := b.get(t, "/api/jobs/"+id).json(t)
		p := m["progress"].(map[string]any)
		if m["state"] != "completed" || p["total"] != 250.0 || p["processed"] != 250.0 || p["succeeded"] != 250.0 || p["failed"] != 0.0 || p["percent"] != 100.0 {
			t.Fatalf("job: %v", m)
		}
		if s := p["slices"].(map[string]any); s["total"] != 7.0 || s["done"] != 7.0 {
			t.Fatalf("slices: %v", s)
		}
		tm := m["timings"].(map[string]any)
		if tm["started_at"] == nil || tm["completed_at"] == nil || tm["duration_seconds"] == nil {
			t.Fatalf("timings: %v", tm)
		}
		if m["description"] != "nightly reversal" || m["options"].(map[string]any)["slice_size"] != 40.0 {
			t.Fatalf("job: %v", m)
		}
	})

	t.Run("get unknown and malformed ids are 404", func(t *testing.T) {
		for _, path := range []string{"/api/jobs/0123456789abcdef01234567", "/api/jobs/nope", "/api/jobs/%00%ff", "/api/jobs/0123456789abcdef01234567/output", "/api/jobs/x/failures"} {
			r := b.get(t, path)
			if r.status != http.StatusNotFound || r.errCode(t) != "not_found" {
				t.Errorf("GET %s: %d %s", path, r.status, r.body)
			}
		}
	})

	t.Run("output streamed", func(t *testing.T) {
		r := b.get(t, "/api/jobs/"+id+"/output")
		if r.status != http.StatusOK || !bytes.Equal(r.body, want.Bytes()) {
			t.Fatalf("output: %d %q...", r.status, truncate(r.body))
		}
		if !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("Content-Disposition %q", r.header.Get("Content-Disposition"))
		}
	})

	t.Run("output gzip when asked", func(t *testing.T) {
		r := b.do(t, req{method: "GET", path: "/api/jobs/" + id + "/output", token: testToken, header: map[string]string{"Accept-Encoding": "gzip"}})
		if r.header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q", r.header.Get("Content-Encoding"))
		}
		if got := gunzip(t, r.body); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("gunzipped output differs: %q", truncate(got))
		}
		r = b.get(t, "/api/jobs/"+id+"/output?gzip=1")
		if r.header.Get("Content-Type") != "application/gzip" || !strings.Contains(r.header.Get("Content-Disposition"), ".gz") {
			t.Fatalf("gzip file headers: %v", r.header)
		}
		if got := gunzip(t, r.body); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("gz file differs")
		}
	})

	t.Run("output paged JSON", func(t *testing.T) {
		m := b.get(t, "/api/jobs/"+id+"/output?offset=38&limit=5").json(t)
		recs := m["records"].([]any)
		if len(recs) != 5 || recs[0] != reverse("line-039") || recs[4] != reverse("line-043") || m["next_offset"] != 43.0 {
			t.Fatalf("page: %v", m)
		}
		m = b.get(t, "/api/jobs/"+id+"/output?format=json&offset=248").json(t)
		if recs := m["records"].([]any); len(recs) != 2 || m["next_offset"] != nil {
			t.Fatalf("last page: %v", m)
		}
		for _, q := range []string{"offset=-1", "limit=0", "limit=100000", "offset=x", "format=xml"} {
			r := b.get(t, "/api/jobs/"+id+"/output?"+q)
			if r.status != http.StatusBadRequest || r.errCode(t) != "bad_parameter" {
				t.Errorf("?%s: %d %s", q, r.status, r.body)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		other := b.upload(t, [][2]string{{"type", "upcase"}, {"description", "shout"}}, "a.txt", []byte("a\nb\n"))
		b.waitJob(t, other)
		m := b.get(t, "/api/jobs?state=completed&type=reverse").json(t)
		jobs := m["jobs"].([]any)
		if len(jobs) != 1 || jobs[0].(map[string]any)["id"] != id {
			t.Fatalf("list: %v", m)
		}
		if p := jobs[0].(map[string]any)["progress"].(map[string]any); p["processed"] != 250.0 {
			t.Fatalf("list progress: %v", p)
		}
		// Most urgent first: priority 20 before 50.
		m = b.get(t, "/api/jobs?per_page=1").json(t)
		if jobs := m["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != id || m["next_page"] != 2.0 {
			t.Fatalf("page 1: %v", m)
		}
		m = b.get(t, "/api/jobs?per_page=1&page=2").json(t)
		if jobs := m["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != other || m["next_page"] != nil {
			t.Fatalf("page 2: %v", m)
		}
		// Newest first: the job uploaded last, whatever its priority.
		m = b.get(t, "/api/jobs?per_page=1&order=newest").json(t)
		if jobs := m["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != other || m["next_page"] != 2.0 {
			t.Fatalf("newest, page 1: %v", m)
		}
		m = b.get(t, "/api/jobs?per_page=1&page=2&order=newest").json(t)
		if jobs := m["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != id {
			t.Fatalf("newest, page 2: %v", m)
		}
		// Search by description and by id.
		for q, wantID := range map[string]string{"SHOUT": other, "nightly": id, id: id} {
			m = b.get(t, "/api/jobs?q="+url.QueryEscape(q)).json(t)
			if jobs := m["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != wantID {
				t.Errorf("q=%s: %v", q, m)
			}
		}
		for _, q := range []string{"state=bogus", "page=0", "page=x", "per_page=1000", "state=queued,nope", "order=oldest"} {
			r := b.get(t, "/api/jobs?"+q)
			if r.status != http.StatusBadRequest || r.errCode(t) != "bad_parameter" {
				t.Errorf("?%s: %d %s", q, r.status, r.body)
			}
		}
	})

	t.Run("failures", func(t *testing.T) {
		sq := b.upload(t, [][2]string{{"type", "square"}, {"slice_size", "3"}}, "sq.txt", []byte("1\nabc\n3\n4\nbad\n6\n"))
		job := b.waitJob(t, sq)
		if job.State != rocketjob.StateFailed || job.FailedRecordCount != 2 {
			t.Fatalf("square job: %+v", job)
		}
		m := b.get(t, "/api/jobs/"+sq+"/failures").json(t)
		fs := m["failures"].([]any)
		if len(fs) != 2 {
			t.Fatalf("failures: %v", m)
		}
		f0, f1 := fs[0].(map[string]any), fs[1].(map[string]any)
		if f0["record"] != 2.0 || f0["input"] != "abc" || !strings.Contains(f0["error"].(string), "abc") || f1["record"] != 5.0 || f1["input"] != "bad" {
			t.Fatalf("failures: %v", fs)
		}
		m = b.get(t, "/api/jobs/"+sq+"/failures?offset=1&limit=1").json(t)
		if fs := m["failures"].([]any); len(fs) != 1 || fs[0].(map[string]any)["record"] != 5.0 {
			t.Fatalf("failures page: %v", m)
		}
		r := b.get(t, "/api/jobs/"+sq+"/failures?format=csv")
		if r.status != http.StatusOK || !strings.HasPrefix(string(r.body), "record,error,input\n2,") || !strings.Contains(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("failures CSV: %d %s", r.status, r.body)
		}
		// The good output of a failed job is downloadable.
		if r := b.get(t, "/api/jobs/"+sq+"/output"); r.status != http.StatusOK || string(r.body) != "1\n9\n16\n36\n" {
			t.Fatalf("output of the failed job: %d %q", r.status, r.body)
		}
		// Retry re-runs the failed slices (they fail again: same input).
		retried := time.Now()
		r = b.do(t, req{method: "POST", path: "/api/jobs/" + sq + "/retry", token: testToken})
		if r.status != http.StatusOK || r.json(t)["state"] == "failed" {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
		if job := b.waitJob(t, sq); job.State != rocketjob.StateFailed || job.CompletedAt == nil || job.CompletedAt.Before(retried.Add(-time.Second)) {
			t.Fatalf("after retry: %+v", job)
		}
	})

	t.Run("actions", func(t *testing.T) {
		// A job that stays queued: it runs in an hour.
		j, err := b.client.Enqueue(context.Background(), "nap", nil, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(time.Hour)})
		must(t, err)
		jid := j.ID.Hex()
		post := func(action string, body any) resp {
			if body == nil {
				return b.do(t, req{method: "POST", path: "/api/jobs/" + jid + "/" + action, token: testToken})
			}
			return b.postJSON(t, "/api/jobs/"+jid+"/"+action, body)
		}
		if r := post("priority", map[string]any{"priority": 7}); r.status != http.StatusOK || r.json(t)["priority"] != 7.0 {
			t.Fatalf("priority: %d %s", r.status, r.body)
		}
		if got, _ := b.client.Get(context.Background(), jid); got.Priority != 7 {
			t.Fatalf("priority in the database: %d", got.Priority)
		}
		// Form field and query parameter forms.
		r := b.do(t, req{method: "POST", path: "/api/jobs/" + jid + "/priority", body: strings.NewReader("priority=9"), ctype: "application/x-www-form-urlencoded", token: testToken})
		if r.status != http.StatusOK || r.json(t)["priority"] != 9.0 {
			t.Fatalf("form priority: %d %s", r.status, r.body)
		}
		if r := b.do(t, req{method: "POST", path: "/api/jobs/" + jid + "/priority?priority=11", token: testToken}); r.json(t)["priority"] != 11.0 {
			t.Fatalf("query priority: %s", r.body)
		}
		for _, bad := range []any{map[string]any{"priority": 0}, map[string]any{"priority": 101}, map[string]any{"priority": "x"}, map[string]any{"priority": 1.5}, map[string]any{}, "not an object"} {
			r := post("priority", bad)
			if r.status != http.StatusBadRequest {
				t.Errorf("priority %v: %d %s", bad, r.status, r.body)
			} else if code := r.errCode(t); code != "bad_priority" && code != "bad_request" {
				t.Errorf("priority %v: code %s", bad, code)
			}
		}
		if r := post("priority", map[string]any{"priority": 101}); r.errCode(t) != "bad_priority" {
			t.Fatalf("priority 101: %s", r.body)
		}
		if r := post("pause", nil); r.status != http.StatusOK || r.json(t)["state"] != "paused" {
			t.Fatalf("pause: %d %s", r.status, r.body)
		}
		if r := post("pause", nil); r.status != http.StatusConflict || r.errCode(t) != "invalid_transition" {
			t.Fatalf("pause twice: %d %s", r.status, r.body)
		}
		if r := post("resume", nil); r.status != http.StatusOK || r.json(t)["state"] != "queued" {
			t.Fatalf("resume: %d %s", r.status, r.body)
		}
		if r := post("retry", nil); r.status != http.StatusConflict || r.errCode(t) != "invalid_transition" {
			t.Fatalf("retry a queued job: %d %s", r.status, r.body)
		}
		if r := post("abort", nil); r.status != http.StatusOK || r.json(t)["state"] != "aborted" {
			t.Fatalf("abort: %d %s", r.status, r.body)
		}
		if r := post("priority", map[string]any{"priority": 3}); r.status != http.StatusConflict {
			t.Fatalf("priority of an aborted job: %d %s", r.status, r.body)
		}
		if r := post("explode", nil); r.status != http.StatusNotFound || r.errCode(t) != "not_found" {
			t.Fatalf("unknown action: %d %s", r.status, r.body)
		}
		if r := b.do(t, req{method: "POST", path: "/api/jobs/0123456789abcdef01234567/pause", token: testToken}); r.status != http.StatusNotFound {
			t.Fatalf("pause an unknown job: %d %s", r.status, r.body)
		}
		if r := b.do(t, req{method: "POST", path: "/api/jobs/bad-id/priority", token: testToken, body: strings.NewReader(`{"priority":5}`), ctype: "application/json"}); r.status != http.StatusNotFound {
			t.Fatalf("priority of a malformed id: %d %s", r.status, r.body)
		}
		// The output of a job that is not done is a conflict, not an error.
		if r := b.get(t, "/api/jobs/"+jid+"/output"); r.status != http.StatusConflict || r.errCode(t) != "no_output" {
			t.Fatalf("output of a simple job: %d %s", r.status, r.body)
		}
		// DELETE.
		if r := b.do(t, req{method: "DELETE", path: "/api/jobs/" + jid, token: testToken}); r.status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := b.get(t, "/api/jobs/"+jid); r.status != http.StatusNotFound {
			t.Fatalf("after delete: %d %s", r.status, r.body)
		}
		for _, p := range []string{"/api/jobs/" + jid, "/api/jobs/nope"} {
			if r := b.do(t, req{method: "DELETE", path: p, token: testToken}); r.status != http.StatusNotFound || r.errCode(t) != "not_found" {
				t.Fatalf("delete %s: %d %s", p, r.status, r.body)
			}
		}
	})

	t.Run("output of an unfinished job", func(t *testing.T) {
		later := b.upload(t, [][2]string{{"type", "copy"}, {"run_at", "1h"}}, "x.txt", []byte("x\n"))
		r := b.get(t, "/api/jobs/"+later+"/output")
		if r.status != http.StatusConflict || r.errCode(t) != "not_ready" {
			t.Fatalf("output of a queued job: %d %s", r.status, r.body)
		}
	})

	t.Run("stats", func(t *testing.T) {
		waitFor(t, 10*time.Second, "stats to count the completed jobs", func() bool {
			m := b.get(t, "/api/stats").json(t)
			return m["counts"].(map[string]any)["completed"].(float64) >= 2
		})
		m := b.get(t, "/api/stats").json(t)
		if bt := m["by_type"].(map[string]any)["reverse"].(map[string]any); bt["completed"] != 1.0 {
			t.Fatalf("by_type: %v", m["by_type"])
		}
		if m["oldest_queued"] != nil { // the queued copy job is not due for an hour
			t.Fatalf("oldest_queued: %v", m["oldest_queued"])
		}
		tp := m["throughput"].(map[string]any)
		if _, ok := tp["records_per_second"].(float64); !ok || tp["computed_by"] == "" {
			t.Fatalf("throughput: %v", tp)
		}
		if s := m["servers"].(map[string]any); s["total"] != 1.0 || s["workers"] != 2.0 {
			t.Fatalf("servers: %v", s)
		}
	})

	t.Run("types", func(t *testing.T) {
		m := b.get(t, "/api/types").json(t)
		if !strings.Contains(fmt.Sprint(m["types"]), "name:reverse") {
			t.Fatalf("types: %v", m)
		}
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		if r := b.get(t, "/api/nothing"); r.status != http.StatusNotFound || r.errCode(t) != "not_found" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// TestAPICreate covers the shapes of POST /api/jobs and its refusals.
func TestAPICreate(t *testing.T) {
	b := setup(t, options{server: true, auth: true})

	t.Run("JSON lines records, records before type", func(t *testing.T) {
		r := b.postJSON(t, "/api/jobs", map[string]any{"records": []string{"abc", "héllo", ""}, "type": "reverse", "priority": 3})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		b.waitJob(t, id)
		m := b.get(t, "/api/jobs/"+id+"/output?format=json").json(t)
		if fmt.Sprint(m["records"]) != "[cba olléh ]" {
			t.Fatalf("records: %v", m["records"])
		}
	})

	t.Run("JSON CSV records", func(t *testing.T) {
		r := b.postJSON(t, "/api/jobs", map[string]any{"type": "csv_upcase", "records": [][]string{{"name", "city"}, {"ada", "london"}, {"grace", "new york, ny"}}})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		b.waitJob(t, id)
		m := b.get(t, "/api/jobs/"+id+"/output?format=json").json(t)
		if fmt.Sprint(m["header"]) != "[name city]" || fmt.Sprint(m["records"]) != "[[ADA LONDON] [GRACE NEW YORK, NY]]" {
			t.Fatalf("CSV page: %v", m)
		}
		if out := b.get(t, "/api/jobs/"+id+"/output"); string(out.body) != "name,city\nADA,LONDON\nGRACE,\"NEW YORK, NY\"\n" {
			t.Fatalf("CSV output: %q", out.body)
		}
	})

	t.Run("JSON JSONL records", func(t *testing.T) {
		r := b.postJSON(t, "/api/jobs", map[string]any{"type": "jsonl_double", "records": []any{map[string]int{"n": 2}, map[string]int{"n": 21}}})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		b.waitJob(t, id)
		m := b.get(t, "/api/jobs/"+id+"/output?format=json").json(t)
		recs := m["records"].([]any)
		if len(recs) != 2 || recs[1].(map[string]any)["double"] != 42.0 {
			t.Fatalf("JSONL page: %v", m)
		}
	})

	t.Run("simple job with params", func(t *testing.T) {
		r := b.postJSON(t, "/api/jobs", map[string]any{"type": "nap", "params": map[string]any{"ms": 1}, "description": "short nap"})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		m := r.json(t)
		if _, has := m["results_url"]; has {
			t.Fatalf("a simple job has no results: %v", m)
		}
		job := b.waitJob(t, m["id"].(string))
		if job.State != rocketjob.StateCompleted {
			t.Fatalf("nap: %+v", job)
		}
		if got := b.get(t, "/api/jobs/"+job.ID.Hex()).json(t); fmt.Sprint(got["params"]) != "map[fail:false ms:1]" && fmt.Sprint(got["params"]) != "map[ms:1]" {
			t.Fatalf("params: %v", got["params"])
		}
	})

	t.Run("gzip file", func(t *testing.T) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte("a\nb\n"))
		must(t, zw.Close())
		id := b.upload(t, [][2]string{{"type", "upcase"}}, "in.txt.gz", gz.Bytes())
		b.waitJob(t, id)
		if r := b.get(t, "/api/jobs/"+id+"/output"); string(r.body) != "A\nB\n" {
			t.Fatalf("output: %q", r.body)
		}
	})

	// Refusals: 4xx with a code, and no job left behind.
	before := countJobs(t, b)
	cases := []struct {
		name   string
		fields [][2]string
		file   []byte
		json   any
		status int
		code   string
	}{
		{"unknown type", [][2]string{{"type", "nope"}}, []byte("a\n"), nil, 400, "unknown_type"},
		{"missing type", nil, []byte("a\n"), nil, 400, "bad_parameter"},
		{"priority 0", [][2]string{{"type", "copy"}, {"priority", "0"}}, []byte("a\n"), nil, 400, "bad_priority"},
		{"priority 101", [][2]string{{"type", "copy"}, {"priority", "101"}}, []byte("a\n"), nil, 400, "bad_priority"},
		{"priority text", [][2]string{{"type", "copy"}, {"priority", "high"}}, []byte("a\n"), nil, 400, "bad_priority"},
		{"slice size", [][2]string{{"type", "copy"}, {"slice_size", "0"}}, []byte("a\n"), nil, 400, "bad_parameter"},
		{"format", [][2]string{{"type", "copy"}, {"format", "xml"}}, []byte("a\n"), nil, 400, "bad_parameter"},
		{"unknown option", [][2]string{{"type", "copy"}, {"colour", "red"}}, []byte("a\n"), nil, 400, "bad_parameter"},
		{"run_at", [][2]string{{"type", "copy"}, {"run_at", "tomorrow"}}, []byte("a\n"), nil, 400, "bad_parameter"},
		{"no file", [][2]string{{"type", "copy"}}, nil, nil, 400, "missing_file"},
		{"empty file", [][2]string{{"type", "copy"}}, []byte{}, nil, 400, "bad_input"},
		{"simple job file", [][2]string{{"type", "nap"}}, []byte("a\n"), nil, 400, "simple_job"},
		{"bad CSV", [][2]string{{"type", "csv_upcase"}}, []byte("a,b\n\"x,y\n"), nil, 400, "bad_input"},
		{"JSON lines number", nil, nil, map[string]any{"type": "copy", "records": []any{"a", 5}}, 400, "bad_input"},
		{"JSON line break", nil, nil, map[string]any{"type": "copy", "records": []any{"a\nb"}}, 400, "bad_input"},
		{"JSON CSV shape", nil, nil, map[string]any{"type": "csv_upcase", "records": []any{[]string{"h"}, "row"}}, 400, "bad_input"},
		{"JSON no records", nil, nil, map[string]any{"type": "copy", "records": []any{}}, 400, "bad_input"},
		{"JSON records not array", nil, nil, map[string]any{"type": "copy", "records": "abc"}, 400, "bad_input"},
		{"JSON records for a simple job", nil, nil, map[string]any{"type": "nap", "records": []any{"a"}}, 400, "bad_parameter"},
		{"JSON bad params", nil, nil, map[string]any{"type": "nap", "params": map[string]any{"ms": "long"}}, 400, "bad_args"},
		{"JSON params not object", nil, nil, map[string]any{"type": "nap", "params": []int{1}}, 400, "bad_args"},
		{"JSON negative nap", nil, nil, map[string]any{"type": "nap", "params": map[string]any{"ms": -1}}, 400, "bad_args"},
		{"JSON priority", nil, nil, map[string]any{"type": "nap", "priority": 500}, 400, "bad_priority"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r resp
			if c.json != nil {
				r = b.postJSON(t, "/api/jobs", c.json)
			} else {
				name := "in.txt"
				if c.file == nil {
					name = ""
				}
				body, ct := multipartBody(t, c.fields, name, c.file)
				r = b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
			}
			if r.status != c.status || r.errCode(t) != c.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
	t.Run("raw JSON syntax", func(t *testing.T) {
		r := b.do(t, req{method: "POST", path: "/api/jobs", body: strings.NewReader(`{"type": "copy", "records": [`), ctype: "application/json", token: testToken})
		if r.status != http.StatusBadRequest || r.errCode(t) != "bad_request" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("unsupported media type", func(t *testing.T) {
		r := b.do(t, req{method: "POST", path: "/api/jobs", body: strings.NewReader("a\n"), ctype: "text/plain", token: testToken})
		if r.status != http.StatusUnsupportedMediaType || r.errCode(t) != "unsupported_media_type" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	if after := countJobs(t, b); after != before {
		t.Fatalf("refused uploads left jobs behind: %d before, %d after", before, after)
	}

	t.Run("too large", func(t *testing.T) {
		small := setup(t, options{auth: true, maxUpload: 2000})
		body, ct := multipartBody(t, [][2]string{{"type", "copy"}}, "big.txt", lines(1000, func(i int) string { return "0123456789" }))
		r := small.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
		if r.status != http.StatusRequestEntityTooLarge || r.errCode(t) != "too_large" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = small.postJSON(t, "/api/jobs", map[string]any{"type": "copy", "records": strings.Split(strings.Repeat("0123456789 ", 400), " ")})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("JSON: %d %s", r.status, r.body)
		}
		if n := countJobs(t, small); n != 0 {
			t.Fatalf("%d jobs after refused uploads", n)
		}
	})
}

// TestAPIServers covers the server endpoints.
func TestAPIServers(t *testing.T) {
	b := setup(t, options{server: true, auth: true})
	m := b.get(t, "/api/servers").json(t)
	list := m["servers"].([]any)
	if len(list) != 1 {
		t.Fatalf("servers: %v", m)
	}
	s := list[0].(map[string]any)
	if s["name"] != "test-server" || s["state"] != "running" || s["workers"] != 2.0 || s["heartbeat_age_seconds"].(float64) > 5 {
		t.Fatalf("server: %v", s)
	}
	state := func() string {
		list, err := b.client.Servers(context.Background())
		must(t, err)
		return list[0].State
	}
	if r := b.do(t, req{method: "POST", path: "/api/servers/test-server/pause", token: testToken}); r.status != http.StatusAccepted {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "the server to pause", func() bool { return state() == "paused" })
	if r := b.do(t, req{method: "POST", path: "/api/servers/*/resume", token: testToken}); r.status != http.StatusAccepted {
		t.Fatalf("resume all: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "the server to resume", func() bool { return state() == "running" })
	if r := b.do(t, req{method: "POST", path: "/api/servers/nobody/stop", token: testToken}); r.status != http.StatusNotFound || r.errCode(t) != "not_found" {
		t.Fatalf("unknown server: %d %s", r.status, r.body)
	}
	if r := b.do(t, req{method: "POST", path: "/api/servers/test-server/explode", token: testToken}); r.status != http.StatusNotFound {
		t.Fatalf("unknown command: %d %s", r.status, r.body)
	}
	// Metrics: the server's heartbeat and workers.
	r := b.get(t, "/metrics")
	for _, want := range []string{`rocketjob_server_workers{server="test-server"} 2`, `rocketjob_server_heartbeat_age_seconds{server="test-server"}`, "rocketjob_stats_up 1"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestMetricsAndHealth checks /metrics, /healthz and /readyz.
func TestMetricsAndHealth(t *testing.T) {
	b := setup(t, options{server: true, auth: true})
	id := b.upload(t, [][2]string{{"type", "square"}, {"priority", "30"}}, "n.txt", []byte("1\n2\nx\n"))
	b.waitJob(t, id)
	waitFor(t, 10*time.Second, "the records counters and the failed job", func() bool {
		body := string(b.get(t, "/metrics").body)
		return strings.Contains(body, "rocketjob_records_processed_total 3") && strings.Contains(body, "rocketjob_records_failed_total 1") &&
			strings.Contains(body, `rocketjob_jobs{state="failed",type="square"} 1`)
	})
	body := string(b.get(t, "/metrics").body)
	for _, want := range []string{
		`rocketjob_jobs{state="failed",type="square"} 1`,
		`rocketjob_oldest_queued_job_age_seconds 0`,
		`rocketjob_records_per_second`,
		`rocketjob_http_requests_total{code="202",method="POST",route="POST /api/jobs"} 1`,
		`rocketjob_http_request_duration_seconds_bucket{route="GET /metrics"`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Queue depth by priority.
	_, err := b.client.Enqueue(context.Background(), "nap", nil, &rocketjob.EnqueueOptions{Priority: 4, RunAt: time.Now().Add(time.Hour)})
	must(t, err)
	waitFor(t, 10*time.Second, "the queue depth", func() bool {
		return strings.Contains(string(b.get(t, "/metrics").body), `rocketjob_queue_depth_jobs{priority="4"} 1`)
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		r := b.do(t, req{method: "GET", path: path}) // no credentials needed
		if r.status != http.StatusOK {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := b.do(t, req{method: "GET", path: "/metrics"}); r.status != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d", r.status)
	}
}

func countJobs(t *testing.T, b *bundle) int {
	t.Helper()
	jobs, err := b.client.List(context.Background(), nil)
	must(t, err)
	return len(jobs)
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	must(t, err)
	out, err := io.ReadAll(zr)
	must(t, err)
	return out
}

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
