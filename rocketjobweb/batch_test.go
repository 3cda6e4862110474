package rocketjobweb_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestAPIBatchJobs: /api/types lists parameters and categories; POST
// /api/jobs takes parameters (param.NAME fields, or a JSON params object
// with records) and notify_url, refusing a missing required parameter with
// nothing stored; a job's categories download on their own
// (?category=NAME), and the job shows its statistics and categories, in the
// API, on its page (a download button per category) and in /metrics.
func TestAPIBatchJobs(t *testing.T) {
	b := setup(t, options{server: true, auth: true})

	types := b.get(t, "/api/types").json(t)["types"].([]any)
	var prefix, triage map[string]any
	for _, x := range types {
		m := x.(map[string]any)
		switch m["name"] {
		case "prefix":
			prefix = m
		case "triage":
			triage = m
		}
	}
	if ps, _ := prefix["params"].([]any); len(ps) != 1 || ps[0].(map[string]any)["name"] != "text" || ps[0].(map[string]any)["type"] != "string" {
		t.Errorf("prefix type: %v", prefix)
	}
	if cs, _ := triage["categories"].([]any); !reflect.DeepEqual(cs, []any{"even", "odd"}) {
		t.Errorf("triage type: %v", triage)
	}

	body, ct := multipartBody(t, [][2]string{{"type", "prefix"}}, "in.txt", []byte("a\n"))
	r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
	if r.status != http.StatusBadRequest || r.errCode(t) != "bad_args" || !strings.Contains(string(r.body), "text is required") {
		t.Fatalf("upload without text: %d %s", r.status, r.body)
	}
	r = b.postJSON(t, "/api/jobs", map[string]any{"type": "prefix", "records": []string{"a"}, "notify_url": "gopher://x"})
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad notify_url: %d %s", r.status, r.body)
	}
	if jobs := b.get(t, "/api/jobs").json(t)["jobs"].([]any); len(jobs) != 0 {
		t.Fatalf("refused uploads stored %d jobs", len(jobs))
	}

	pid := b.upload(t, [][2]string{{"type", "prefix"}, {"param.text", "> "}}, "in.txt", []byte("a\nb\n"))
	r = b.postJSON(t, "/api/jobs", map[string]any{"type": "prefix", "params": map[string]any{"text": "# "}, "records": []string{"c"}})
	if r.status != http.StatusAccepted {
		t.Fatalf("JSON upload with params: %d %s", r.status, r.body)
	}
	jid := r.json(t)["id"].(string)
	tid := b.upload(t, [][2]string{{"type", "triage"}, {"notify_url", "http://127.0.0.1:1/hook"}, {"slice_size", "2"}}, "in.txt", []byte("1\n2\n\n4\n7\n"))
	for _, id := range []string{pid, jid, tid} {
		if job := b.waitJob(t, id); job.State != rocketjob.StateCompleted {
			t.Fatalf("job %s ended %s: %+v", id, job.State, job.Failure)
		}
	}
	if got := string(b.get(t, "/api/jobs/"+pid+"/output").body); got != "> a\n> b\n" {
		t.Errorf("prefix output %q", got)
	}
	if got := string(b.get(t, "/api/jobs/"+jid+"/output").body); got != "# c\n" {
		t.Errorf("prefix (JSON) output %q", got)
	}
	for cat, want := range map[string]string{"even": "2\n4\n", "odd": "1\n7\n"} {
		if got := string(b.get(t, "/api/jobs/"+tid+"/output?category="+cat).body); got != want {
			t.Errorf("category %s: %q, want %q", cat, got, want)
		}
	}
	page := b.get(t, "/api/jobs/"+tid+"/output?category=odd&format=json").json(t)
	if recs := page["records"].([]any); !reflect.DeepEqual(recs, []any{"1", "7"}) {
		t.Errorf("odd page: %v", page)
	}
	for _, path := range []string{"/api/jobs/" + tid + "/output", "/api/jobs/" + tid + "/output?category=prime", "/api/jobs/" + pid + "/output?category=even"} {
		if r := b.get(t, path); r.status != http.StatusBadRequest || r.errCode(t) != "bad_category" {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	m := b.get(t, "/api/jobs/"+tid).json(t)
	counts := map[string]any{"even": 2.0, "odd": 2.0}
	if !reflect.DeepEqual(m["statistics"], counts) || !reflect.DeepEqual(m["categories"], counts) || m["notify_url"] != "http://127.0.0.1:1/hook" {
		t.Errorf("job: statistics %v, categories %v, notify_url %v", m["statistics"], m["categories"], m["notify_url"])
	}
	if p := m["progress"].(map[string]any); p["dropped"] != 1.0 {
		t.Errorf("progress: %v", p)
	}
	if links := m["links"].(map[string]any); links["output"] != nil || links["categories"].(map[string]any)["odd"] != "/api/jobs/"+tid+"/output?category=odd" {
		t.Errorf("links: %v", links)
	}
	if p := b.get(t, "/api/jobs/"+pid).json(t); !reflect.DeepEqual(p["params"], map[string]any{"text": "> "}) {
		t.Errorf("params: %v", p["params"])
	}
	html := string(b.do(t, req{method: "GET", path: "/jobs/" + tid, basic: [2]string{adminUser, adminPassword}}).body)
	for _, want := range []string{`data-category="even" href="/api/jobs/` + tid + `/output?category=even"`, "Statistics", `data-name="odd"`} {
		if !strings.Contains(html, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if page := string(b.do(t, req{method: "GET", path: "/jobs/" + pid, basic: [2]string{adminUser, adminPassword}}).body); !strings.Contains(page, "<h2>Parameters</h2>") || !strings.Contains(page, "text") {
		t.Errorf("the job page does not show the parameters")
	}
	form := string(b.do(t, req{method: "GET", path: "/upload", basic: [2]string{adminUser, adminPassword}}).body)
	if !strings.Contains(form, `name="param.text"`) || !strings.Contains(form, `name="notify_url"`) {
		t.Errorf("upload form lacks the parameter or notify fields")
	}
	// The statistics come from the UI's sampler, which may not have seen
	// the job end yet.
	waitFor(t, 10*time.Second, "the job's statistics and categories in /metrics", func() bool {
		metrics := string(b.get(t, "/metrics").body)
		return strings.Contains(metrics, `rocketjob_job_statistic{name="even",type="triage"} 2`) &&
			strings.Contains(metrics, `rocketjob_job_category_records{category="odd",type="triage"} 2`)
	})
}
