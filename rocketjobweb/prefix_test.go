package rocketjobweb_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// siteLinks finds the links of a page: href, action and src attributes.
var siteLinks = regexp.MustCompile(`\s(?:href|action|src)="([^"]*)"`)

// checkLinks fails for every link of a page that leaves the prefix.
func checkLinks(t *testing.T, what string, r resp, prefix string) {
	t.Helper()
	links := siteLinks.FindAllSubmatch(r.body, -1)
	if len(links) == 0 {
		t.Errorf("%s: no links in %s", what, r.body)
	}
	for _, m := range links {
		if link := string(m[1]); !strings.HasPrefix(link, prefix+"/") {
			t.Errorf("%s: link %q is not under %s/", what, link, prefix)
		}
	}
}

// The handler mounted under a prefix of an app's own mux: every page,
// link, redirect, asset and API link stays under the prefix, the login
// comes back to it, the session cookie is scoped to it, and the CSRF and
// Origin checks work as at the root. The app keeps its other paths.
func TestMountedUnderPrefix(t *testing.T) {
	const prefix = "/ops/rocketjob"
	b := setup(t, options{auth: true, prefix: prefix})
	id := queuedJob(t, b)

	// The app still owns every other path.
	if r := b.do(t, req{method: "GET", path: "/jobs"}); r.status != http.StatusOK || string(r.body) != appPage+"/jobs" {
		t.Fatalf("the app's /jobs: %d %s", r.status, r.body)
	}
	// The prefix itself leads to the dashboard under it (the app's mux
	// redirects it before the handler sees it).
	if r := b.do(t, req{method: "GET", path: prefix}); r.status/100 != 3 || r.header.Get("Location") != prefix+"/" {
		t.Fatalf("GET %s: %d %v", prefix, r.status, r.header)
	}
	// The redirects of the handler's own routing stay under the prefix too.
	for path, want := range map[string]string{
		prefix + "?x=1":           prefix + "/?x=1",
		prefix + "/assets":        prefix + "/assets/",
		prefix + "//jobs?state=a": prefix + "/jobs?state=a",
		prefix + "/x/../jobs":     prefix + "/jobs",
	} {
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code/100 != 3 || rec.Header().Get("Location") != want {
			t.Errorf("the handler, GET %s: %d %v, want Location %s", path, rec.Code, rec.Header(), want)
		}
	}

	// Not signed in: the login redirect stays under the prefix and
	// remembers the page (a path of the handler).
	r := b.do(t, req{method: "GET", path: prefix + "/jobs/" + id})
	if want := prefix + "/login?next=" + url.QueryEscape("/jobs/"+id); r.status != http.StatusSeeOther || r.header.Get("Location") != want {
		t.Fatalf("jobs page signed out: %d, Location %q, want %q", r.status, r.header.Get("Location"), want)
	}
	r = b.do(t, req{method: "GET", path: prefix + "/login?next=" + url.QueryEscape("/jobs/"+id)})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `action="`+prefix+`/login"`) ||
		!strings.Contains(string(r.body), `value="/jobs/`+id+`"`) {
		t.Fatalf("login page: %d %s", r.status, r.body)
	}
	checkLinks(t, "login page", r, prefix)
	// The API answers 401, not a redirect.
	if r := b.do(t, req{method: "GET", path: prefix + "/api/jobs"}); r.status != http.StatusUnauthorized {
		t.Fatalf("API signed out: %d %s", r.status, r.body)
	}

	// Sign in: back to the page asked for, under the prefix, with a
	// cookie scoped to the prefix.
	form := url.Values{"user": {adminUser}, "password": {adminPassword}, "next": {"/jobs/" + id}}
	r = b.do(t, req{method: "POST", path: prefix + "/login", body: strings.NewReader(form.Encode()),
		ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != prefix+"/jobs/"+id {
		t.Fatalf("login: %d, Location %q", r.status, r.header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "rocketjob_session" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Path != prefix || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v", cookie)
	}
	br := &session{t: t, b: b, cookie: cookie}
	// A next that leaves the site still lands under the prefix.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		form := url.Values{"user": {adminUser}, "password": {adminPassword}, "next": {next}}
		r := b.do(t, req{method: "POST", path: prefix + "/login", body: strings.NewReader(form.Encode()),
			ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != prefix+"/" {
			t.Errorf("login with next %q: %d, Location %q", next, r.status, r.header.Get("Location"))
		}
	}

	// The pages, their links and the asset they load.
	for _, path := range []string{"/", "/jobs", "/jobs?state=queued", "/upload", "/servers"} {
		r, _ := br.page(prefix + path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		checkLinks(t, path, r, prefix)
	}
	jobs, _ := br.page(prefix + "/jobs")
	if !strings.Contains(string(jobs.body), `href="`+prefix+`/jobs/`+id+`"`) {
		t.Errorf("jobs page: no link to the job under the prefix:\n%s", jobs.body)
	}
	page, csrf := br.page(prefix + "/jobs/" + id)
	if page.status != http.StatusOK || csrf == "" {
		t.Fatalf("job page: %d, csrf %q", page.status, csrf)
	}
	checkLinks(t, "job page", page, prefix)
	action := prefix + "/jobs/" + id + "/priority"
	if !strings.Contains(string(page.body), `action="`+action+`"`) {
		t.Errorf("job page: no form posting to %s", action)
	}
	css := regexp.MustCompile(`href="(` + regexp.QuoteMeta(prefix) + `/assets/app\.css\?v=[0-9a-f]+)"`).FindSubmatch(page.body)
	if css == nil {
		t.Fatal("job page: no stylesheet under the prefix")
	}
	if r := b.do(t, req{method: "GET", path: string(css[1])}); r.status != http.StatusOK ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || len(r.body) == 0 {
		t.Fatalf("asset %s: %d %q", css[1], r.status, r.header.Get("Content-Type"))
	}
	nf, _ := br.page(prefix + "/no-such-page")
	if nf.status != http.StatusNotFound {
		t.Fatalf("unknown page: %d", nf.status)
	}
	checkLinks(t, "error page", nf, prefix)

	// A state change without the CSRF token is refused, one from another
	// site too; with the token it goes through and comes back under the
	// prefix.
	if r := br.post(action, url.Values{"priority": {"7"}}, nil); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "CSRF token") || b.priority(t, id) != 50 {
		t.Fatalf("no CSRF token: %d %s", r.status, r.body)
	}
	if r := br.post(action, url.Values{"priority": {"7"}, "csrf_token": {csrf}}, map[string]string{"Origin": "https://evil.example"}); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "cross-site") || b.priority(t, id) != 50 {
		t.Fatalf("cross-site: %d %s", r.status, r.body)
	}
	r = br.post(action, url.Values{"priority": {"7"}, "csrf_token": {csrf}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != prefix+"/jobs/"+id || b.priority(t, id) != 7 {
		t.Fatalf("with the CSRF token: %d, Location %q, priority %d", r.status, r.header.Get("Location"), b.priority(t, id))
	}

	// The API's links carry the prefix.
	r = b.get(t, prefix+"/api/jobs/"+id)
	links, _ := r.json(t)["links"].(map[string]any)
	if r.status != http.StatusOK || links["self"] != prefix+"/api/jobs/"+id || links["page"] != prefix+"/jobs/"+id {
		t.Fatalf("API job: %d %s", r.status, r.body)
	}
	body, ct := multipartBody(t, [][2]string{{"type", "copy"}}, "in.txt", []byte("a\nb\n"))
	r = b.do(t, req{method: "POST", path: prefix + "/api/jobs", body: body, ctype: ct, token: testToken})
	if m := r.json(t); r.status != http.StatusAccepted || r.header.Get("Location") != prefix+"/api/jobs/"+m["id"].(string) ||
		m["results_url"] != prefix+"/api/jobs/"+m["id"].(string)+"/output" {
		t.Fatalf("API upload: %d %v %s", r.status, r.header, r.body)
	}

	// Signing out goes back to the login page under the prefix.
	if r := br.post(prefix+"/logout", url.Values{"csrf_token": {csrf}}, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != prefix+"/login" {
		t.Fatalf("logout: %d, Location %q", r.status, r.header.Get("Location"))
	}
}

// A handler reached outside its prefix (mounted at another path, or behind
// http.StripPrefix) says so instead of serving pages whose links lead
// nowhere.
func TestOutsidePrefix(t *testing.T) {
	b := setup(t, options{auth: true, prefix: "/rj"})
	stripped := http.StripPrefix("/rj", b.h)
	for _, c := range []struct {
		name string
		h    http.Handler
		path string
		want int
	}{
		{"mounted", b.h, "/rj/jobs", http.StatusOK},
		{"mounted", b.h, "/rjx/jobs", http.StatusNotFound},
		{"mounted", b.h, "/other", http.StatusNotFound},
		{"stripped", stripped, "/rj/jobs", http.StatusNotFound},
		{"stripped", stripped, "/rjx/jobs", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", c.path, nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		c.h.ServeHTTP(rec, r)
		if rec.Code != c.want || c.want == http.StatusNotFound && !strings.Contains(rec.Body.String(), "this handler serves /rj/ (mount it there without http.StripPrefix)") {
			t.Errorf("%s %s: %d %s", c.name, c.path, rec.Code, rec.Body)
		}
	}
}
