package rocketjobweb_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestDirmonAPI: Dirmon entries through REST and the page's forms: added
// (checked: 400 for entries that cannot work, 409 for a name in use),
// listed, disabled, enabled and removed by admins; read-only users see
// them and can change nothing; cross-site and token-less form posts are
// refused.
func TestDirmonAPI(t *testing.T) {
	b := setup(t, options{auth: true})
	folder := filepath.Join(t.TempDir(), "in")
	entries := func() []any {
		t.Helper()
		r := b.get(t, "/api/dirmon")
		if r.status != http.StatusOK {
			t.Fatalf("GET /api/dirmon: %d %s", r.status, r.body)
		}
		m := r.json(t)
		if files, ok := m["files"].([]any); !ok || len(files) != 0 {
			t.Errorf("files: %v", m["files"])
		}
		return m["entries"].([]any)
	}
	if len(entries()) != 0 {
		t.Fatal("entries before any was added")
	}
	r := b.postJSON(t, "/api/dirmon", map[string]any{"name": "drop", "folder": folder, "pattern": "*.txt", "type": "copy",
		"enabled": true, "options": map[string]any{"priority": 12, "window": "22:00,2h"}})
	if r.status != http.StatusCreated {
		t.Fatalf("POST /api/dirmon: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["archive"] != filepath.Join(folder, "archive") || m["failed"] != filepath.Join(folder, "failed") {
		t.Errorf("defaults: %v", m)
	}
	for name, body := range map[string]string{
		"relative folder":  `{"name":"x","folder":"in","type":"copy"}`,
		"pattern with ..":  `{"name":"x","folder":"/tmp/in","pattern":"../*","type":"copy"}`,
		"archive relative": `{"name":"x","folder":"/tmp/in","archive":"../etc","type":"copy"}`,
		"simple type":      `{"name":"x","folder":"/tmp/in","type":"nap"}`,
		"unknown type":     `{"name":"x","folder":"/tmp/in","type":"nope"}`,
		"unknown field":    `{"name":"x","folder":"/tmp/in","type":"copy","root":"/"}`,
		"bad name":         `{"name":"../x","folder":"/tmp/in","type":"copy"}`,
		"bad window":       `{"name":"x","folder":"/tmp/in","type":"copy","options":{"window":"25:00,1h"}}`,
		"two values":       `{"name":"x","folder":"/tmp/in","type":"copy"} {}`,
	} {
		r := b.do(t, req{method: "POST", path: "/api/dirmon", body: strings.NewReader(body), ctype: "application/json", token: testToken})
		if r.status != http.StatusBadRequest || r.errCode(t) != "bad_parameter" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := b.postJSON(t, "/api/dirmon", map[string]any{"name": "drop", "folder": folder, "type": "copy"}); r.status != http.StatusConflict {
		t.Errorf("a name in use: %d %s", r.status, r.body)
	}
	list := entries()
	if len(list) != 1 {
		t.Fatalf("entries: %v", list)
	}
	e := list[0].(map[string]any)
	if e["name"] != "drop" || e["enabled"] != true || e["options"].(map[string]any)["priority"] != float64(12) {
		t.Errorf("entry: %v", e)
	}

	bob := [2]string{readUser, readPassword}
	if r := b.do(t, req{method: "GET", path: "/api/dirmon", basic: bob}); r.status != http.StatusOK {
		t.Errorf("read-only GET: %d", r.status)
	}
	for name, q := range map[string]req{
		"add":     {method: "POST", path: "/api/dirmon", basic: bob, body: strings.NewReader(`{"name":"y","folder":"/tmp/y","type":"copy"}`), ctype: "application/json"},
		"disable": {method: "POST", path: "/api/dirmon/drop/disable", basic: bob},
		"remove":  {method: "DELETE", path: "/api/dirmon/drop", basic: bob},
	} {
		if r := b.do(t, q); r.status != http.StatusForbidden || r.errCode(t) != "forbidden" {
			t.Errorf("read-only %s: %d %s", name, r.status, r.body)
		}
	}
	if r := b.do(t, req{method: "POST", path: "/api/dirmon/drop/disable", token: testToken, header: map[string]string{"Origin": "https://evil.example"}}); r.status != http.StatusForbidden {
		t.Errorf("cross-site disable: %d", r.status)
	}
	if e := entries()[0].(map[string]any); e["enabled"] != true || len(entries()) != 1 {
		t.Fatal("a refused request changed an entry")
	}

	if r := b.postJSON(t, "/api/dirmon/drop/disable", nil); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if e := entries()[0].(map[string]any); e["enabled"] != false {
		t.Errorf("disable left it enabled")
	}
	if r := b.postJSON(t, "/api/dirmon/drop/enable", nil); r.status != http.StatusOK || entries()[0].(map[string]any)["enabled"] != true {
		t.Errorf("enable: %d %s", r.status, r.body)
	}
	if r := b.postJSON(t, "/api/dirmon/drop/explode", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown action: %d", r.status)
	}
	if r := b.postJSON(t, "/api/dirmon/nope/disable", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown entry: %d", r.status)
	}
	if r := b.do(t, req{method: "DELETE", path: "/api/dirmon/drop", token: testToken}); r.status != http.StatusOK || len(entries()) != 0 {
		t.Errorf("remove: %d %s", r.status, r.body)
	}
	if r := b.do(t, req{method: "DELETE", path: "/api/dirmon/drop", token: testToken}); r.status != http.StatusNotFound {
		t.Errorf("removing again: %d", r.status)
	}

	// The page's forms.
	br := login(t, b, adminUser, adminPassword)
	page, csrf := br.page("/dirmon")
	if page.status != http.StatusOK || csrf == "" || !bytes.Contains(page.body, []byte(`id="dirmon-form"`)) {
		t.Fatalf("dirmon page: %d, csrf %q", page.status, csrf)
	}
	form := url.Values{"name": {"web"}, "folder": {folder}, "pattern": {"*.csv"}, "type": {"copy"}, "priority": {"3"},
		"enabled": {"on"}, "compress": {"on"}}
	if r := br.post("/dirmon", form, nil); r.status != http.StatusForbidden {
		t.Errorf("form without its CSRF token: %d", r.status)
	}
	form.Set("csrf_token", csrf)
	if r := br.post("/dirmon", form, nil); r.status != http.StatusSeeOther {
		t.Fatalf("add form: %d %s", r.status, r.body)
	}
	got, err := sliced.DirmonEntries(context.Background(), b.client)
	must(t, err)
	if len(got) != 1 || got[0].Name != "web" || got[0].Options.Priority != 3 || got[0].Options.Compress == nil || !*got[0].Options.Compress || !got[0].Enabled {
		t.Fatalf("entry from the form: %+v", got)
	}
	pform := url.Values{"csrf_token": {csrf}, "name": {"pre"}, "folder": {folder}, "type": {"prefix"}, "params": {"text=> \r\n"}}
	if r := br.post("/dirmon", pform, nil); r.status != http.StatusSeeOther {
		t.Fatalf("add form with a parameter: %d %s", r.status, r.body)
	}
	pform.Set("name", "pre2")
	pform.Set("params", "")
	if r := br.post("/dirmon", pform, nil); r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("parameter text is required")) {
		t.Errorf("add form without the required parameter: %d", r.status)
	}
	must(t, sliced.RemoveDirmon(context.Background(), b.client, "pre"))
	form.Set("folder", "relative")
	form.Set("name", "web2")
	if r := br.post("/dirmon", form, nil); r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("not an absolute path")) {
		t.Errorf("bad form: %d", r.status)
	}
	if r := br.post("/dirmon/web/disable", url.Values{"csrf_token": {csrf}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("disable form: %d", r.status)
	}
	got, _ = sliced.DirmonEntries(context.Background(), b.client)
	if got[0].Enabled {
		t.Error("the disable form left the entry enabled")
	}
	bobSession := login(t, b, readUser, readPassword)
	page, bobCSRF := bobSession.page("/dirmon")
	if page.status != http.StatusOK || bytes.Contains(page.body, []byte(`id="dirmon-form"`)) || !bytes.Contains(page.body, []byte("web")) {
		t.Errorf("read-only page: %d", page.status)
	}
	if r := bobSession.post("/dirmon/web/remove", url.Values{"csrf_token": {bobCSRF}}, nil); r.status != http.StatusForbidden {
		t.Errorf("read-only remove form: %d", r.status)
	}
	if got, _ := sliced.DirmonEntries(context.Background(), b.client); len(got) != 1 {
		t.Error("a read-only user removed an entry")
	}
}
