package rocketjobweb_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// failedSquareJob uploads 1, x, 3, 4, y as a square job (slices of 2)
// and waits until it has failed with records 2 and 5.
func failedSquareJob(t *testing.T, b *bundle) string {
	t.Helper()
	job, err := sliced.Upload(context.Background(), b.client, "square", strings.NewReader("1\nx\n3\n4\ny\n"), &sliced.UploadOptions{SliceSize: 2})
	must(t, err)
	id := job.ID.Hex()
	if got := b.waitJob(t, id); got.State != rocketjob.StateFailed || got.FailedRecordCount != 2 {
		t.Fatalf("job %s with %d failed records", got.State, got.FailedRecordCount)
	}
	return id
}

// TestFixFailedRecordsAPI: a failed record is viewed, corrected and
// deleted through REST by an admin (read-only users and cross-site
// requests refused, bad requests 400/404/409), each change in the job's
// history under the user's name; the page's forms do the same with their
// CSRF token; the retry runs the fixes and the output is in input order.
func TestFixFailedRecordsAPI(t *testing.T) {
	b := setup(t, options{server: true, auth: true})
	id := failedSquareJob(t, b)
	base := "/api/jobs/" + id + "/failures/"

	if r := b.get(t, base+"2"); r.status != http.StatusOK || r.json(t)["input"] != "x" || r.json(t)["fix"] != nil {
		t.Fatalf("GET failed record: %d %s", r.status, r.body)
	}
	for _, p := range []string{"3", "0", "abc"} {
		if r := b.get(t, base+p); r.status != http.StatusNotFound {
			t.Errorf("GET record %s: %d", p, r.status)
		}
	}
	bob := [2]string{readUser, readPassword}
	if r := b.do(t, req{method: "GET", path: base + "2", basic: bob}); r.status != http.StatusOK {
		t.Errorf("read-only GET: %d", r.status)
	}
	for name, q := range map[string]req{
		"edit":   {method: "POST", path: base + "2", basic: bob, body: strings.NewReader(`{"record":"2"}`), ctype: "application/json"},
		"delete": {method: "DELETE", path: base + "5", basic: bob},
	} {
		if r := b.do(t, q); r.status != http.StatusForbidden || r.errCode(t) != "forbidden" {
			t.Errorf("read-only %s: %d %s", name, r.status, r.body)
		}
	}
	if r := b.do(t, req{method: "POST", path: base + "2", token: testToken, body: strings.NewReader(`{"record":"2"}`), ctype: "application/json",
		header: map[string]string{"Origin": "https://evil.example"}}); r.status != http.StatusForbidden {
		t.Errorf("cross-site edit: %d", r.status)
	}
	if r := b.get(t, base+"2"); r.json(t)["fix"] != nil {
		t.Fatal("a refused request fixed the record")
	}
	if r := b.do(t, req{method: "POST", path: base + "2", token: testToken, body: strings.NewReader(`{"recrod":"2"}`), ctype: "application/json"}); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", r.status)
	}
	if r := b.do(t, req{method: "POST", path: base + "2", token: testToken, body: strings.NewReader(`{}`), ctype: "application/json"}); r.status != http.StatusBadRequest {
		t.Errorf("no record: %d", r.status)
	}
	if r := b.postJSON(t, base+"3", map[string]string{"record": "3"}); r.status != http.StatusNotFound {
		t.Errorf("fix of a record that did not fail: %d", r.status)
	}
	r := b.postJSON(t, base+"2", map[string]string{"record": "2"})
	if r.status != http.StatusOK || r.json(t)["fix"].(map[string]any)["input"] != "2" || r.json(t)["fix"].(map[string]any)["user"] != "token" {
		t.Fatalf("fix: %d %s", r.status, r.body)
	}

	// The page: the read-only user sees the records without forms; the
	// admin's form needs its CSRF token.
	bobSession := login(t, b, readUser, readPassword)
	page, _ := bobSession.page("/jobs/" + id + "/failures")
	if page.status != http.StatusOK || !bytes.Contains(page.body, []byte(`data-record="5"`)) || bytes.Contains(page.body, []byte("fix-form")) {
		t.Errorf("read-only failures page: %d", page.status)
	}
	alice := login(t, b, adminUser, adminPassword)
	page, csrf := alice.page("/jobs/" + id + "/failures")
	if page.status != http.StatusOK || !bytes.Contains(page.body, []byte("fix-form")) || !bytes.Contains(page.body, []byte("corrected to")) {
		t.Fatalf("failures page: %d", page.status)
	}
	if r := alice.post("/jobs/"+id+"/failures/5/delete", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Errorf("delete form without its CSRF token: %d", r.status)
	}
	if r := alice.post("/jobs/"+id+"/failures/5/delete", url.Values{"csrf_token": {csrf}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete form: %d %s", r.status, r.body)
	}
	if r := b.get(t, base+"5"); r.json(t)["fix"].(map[string]any)["delete"] != true {
		t.Errorf("after the delete form: %s", r.body)
	}

	if r := b.postJSON(t, "/api/jobs/"+id+"/retry", nil); r.status != http.StatusOK {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if got := b.waitJob(t, id); got.State != rocketjob.StateCompleted || got.DroppedCount != 1 {
		t.Fatalf("after the retry: %s, dropped %d", got.State, got.DroppedCount)
	}
	var out bytes.Buffer
	_, err := sliced.Download(context.Background(), b.client, id, &out)
	must(t, err)
	if out.String() != "1\n4\n9\n16\n" {
		t.Errorf("output: %q", out.String())
	}
	if r := b.postJSON(t, base+"2", map[string]string{"record": "2"}); r.status != http.StatusConflict || r.errCode(t) != "not_fixable" {
		t.Errorf("fix of a completed job: %d %s", r.status, r.body)
	}
	h := b.get(t, "/api/jobs/"+id+"/history").json(t)["history"].([]any)
	var got []string
	for _, e := range h {
		m := e.(map[string]any)
		got = append(got, m["user"].(string)+" "+m["action"].(string))
	}
	if want := "token edit failed record|alice delete failed record|token retry"; strings.Join(got, "|") != want {
		t.Errorf("history %q, want %q", strings.Join(got, "|"), want)
	}
}
