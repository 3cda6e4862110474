package rocketjobweb_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
)

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	must(t, err)
	return string(h)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// queuedJob enqueues a job that waits an hour, so it stays changeable.
func queuedJob(t *testing.T, b *bundle) string {
	t.Helper()
	j, err := b.client.Enqueue(context.Background(), "nap", nil, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(time.Hour)})
	must(t, err)
	return j.ID.Hex()
}

func (b *bundle) priority(t *testing.T, id string) int {
	t.Helper()
	j, err := b.client.Get(context.Background(), id)
	must(t, err)
	return j.Priority
}

func TestAuthAPI(t *testing.T) {
	b := setup(t, options{auth: true})
	id := queuedJob(t, b)
	pause := "/api/jobs/" + id + "/pause"

	t.Run("401 without or with wrong credentials", func(t *testing.T) {
		for name, q := range map[string]req{
			"none":           {method: "GET", path: "/api/jobs"},
			"wrong token":    {method: "GET", path: "/api/jobs", token: "wrong"},
			"wrong password": {method: "GET", path: "/api/jobs", basic: [2]string{adminUser, "nope"}},
			"unknown user":   {method: "GET", path: "/api/jobs", basic: [2]string{"mallory", adminPassword}},
			"other scheme":   {method: "GET", path: "/api/jobs", header: map[string]string{"Authorization": "Digest x"}},
			"action":         {method: "POST", path: pause},
			"metrics":        {method: "GET", path: "/metrics"},
			"stats":          {method: "GET", path: "/api/stats"},
		} {
			r := b.do(t, q)
			if r.status != http.StatusUnauthorized || r.errCode(t) != "unauthorized" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", name, r.header.Get("WWW-Authenticate"))
			}
		}
		if b.priority(t, id) != 50 {
			t.Fatal("an unauthenticated request changed the job")
		}
	})

	t.Run("pages redirect to the login", func(t *testing.T) {
		r := b.do(t, req{method: "GET", path: "/jobs?state=queued"})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next="+url.QueryEscape("/jobs?state=queued") {
			t.Fatalf("%d Location %q", r.status, r.header.Get("Location"))
		}
		if r := b.do(t, req{method: "GET", path: "/login"}); r.status != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
			t.Fatalf("login page: %d", r.status)
		}
	})

	t.Run("403 for read-only users on actions", func(t *testing.T) {
		bob := [2]string{readUser, readPassword}
		if r := b.do(t, req{method: "GET", path: "/api/jobs/" + id, basic: bob}); r.status != http.StatusOK {
			t.Fatalf("read-only GET: %d %s", r.status, r.body)
		}
		if r := b.do(t, req{method: "GET", path: "/metrics", basic: bob}); r.status != http.StatusOK {
			t.Fatalf("read-only metrics: %d", r.status)
		}
		body, ct := multipartBody(t, [][2]string{{"type", "copy"}}, "a.txt", []byte("a\n"))
		for name, q := range map[string]req{
			"pause":    {method: "POST", path: pause, basic: bob},
			"priority": {method: "POST", path: "/api/jobs/" + id + "/priority", basic: bob, body: strings.NewReader(`{"priority": 1}`), ctype: "application/json"},
			"delete":   {method: "DELETE", path: "/api/jobs/" + id, basic: bob},
			"create":   {method: "POST", path: "/api/jobs", basic: bob, body: body, ctype: ct},
			"server":   {method: "POST", path: "/api/servers/*/stop", basic: bob},
		} {
			r := b.do(t, q)
			if r.status != http.StatusForbidden || r.errCode(t) != "forbidden" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		if b.priority(t, id) != 50 || countJobs(t, b) != 1 {
			t.Fatal("a read-only user changed something")
		}
	})

	t.Run("admin user and token may act", func(t *testing.T) {
		r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority", basic: [2]string{adminUser, adminPassword}, body: strings.NewReader(`{"priority": 12}`), ctype: "application/json"})
		if r.status != http.StatusOK || b.priority(t, id) != 12 {
			t.Fatalf("admin: %d %s", r.status, r.body)
		}
		// A bearer token needs no CSRF token, but a cross-site state change
		// is refused whatever the credentials.
		r = b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=14", token: testToken, header: map[string]string{"Origin": "https://elsewhere.example"}})
		if r.status != http.StatusForbidden || r.errCode(t) != "csrf" || b.priority(t, id) != 12 {
			t.Fatalf("cross-site token: %d %s", r.status, r.body)
		}
		r = b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=13", token: testToken})
		if r.status != http.StatusOK || b.priority(t, id) != 13 {
			t.Fatalf("token: %d %s", r.status, r.body)
		}
	})

	t.Run("cross-site Basic request refused", func(t *testing.T) {
		r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=1", basic: [2]string{adminUser, adminPassword}, header: map[string]string{"Origin": "https://evil.example"}})
		if r.status != http.StatusForbidden || r.errCode(t) != "csrf" || b.priority(t, id) != 13 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	t.Run("secure headers", func(t *testing.T) {
		for _, path := range []string{"/login", "/api/jobs"} {
			r := b.do(t, req{method: "GET", path: path, token: testToken})
			for k, want := range map[string]string{
				"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff",
				"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
			} {
				if !strings.Contains(r.header.Get(k), want) {
					t.Errorf("%s: %s = %q", path, k, r.header.Get(k))
				}
			}
		}
	})
}

// session is a cookie session of a test browser.
type session struct {
	t      *testing.T
	b      *bundle
	cookie *http.Cookie
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// login signs in through the login form (user "" means the token).
func login(t *testing.T, b *bundle, user, password string) *session {
	t.Helper()
	form := url.Values{"user": {user}, "password": {password}, "next": {"/jobs"}}
	r := b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/jobs" {
		t.Fatalf("login %q: %d %s", user, r.status, r.body)
	}
	res := http.Response{Header: r.header}
	for _, c := range res.Cookies() {
		if c.Name == "rocketjob_session" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie: %+v", c)
			}
			return &session{t: t, b: b, cookie: c}
		}
	}
	t.Fatalf("no session cookie: %v", r.header)
	return nil
}

// page GETs a page and returns it with its CSRF token.
func (br *session) page(path string) (resp, string) {
	br.t.Helper()
	r := br.b.do(br.t, req{method: "GET", path: path, cookie: br.cookie})
	m := csrfInput.FindSubmatch(r.body)
	if m == nil {
		return r, ""
	}
	return r, string(m[1])
}

// post submits a form like a browser on this site would (Origin set).
func (br *session) post(path string, form url.Values, header map[string]string) resp {
	br.t.Helper()
	h := map[string]string{"Origin": br.b.ts.URL}
	for k, v := range header {
		h[k] = v
	}
	return br.b.do(br.t, req{method: "POST", path: path, body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", cookie: br.cookie, header: h})
}

func TestAuthBrowserSession(t *testing.T) {
	b := setup(t, options{auth: true})
	id := queuedJob(t, b)
	br := login(t, b, "", testToken)
	page, csrf := br.page("/jobs/" + id)
	if page.status != http.StatusOK || csrf == "" || !strings.Contains(string(page.body), `id="set-priority"`) {
		t.Fatalf("job page: %d, csrf %q", page.status, csrf)
	}
	action := "/jobs/" + id + "/priority"

	t.Run("cross-site POST refused", func(t *testing.T) {
		for name, h := range map[string]map[string]string{
			"Origin":         {"Origin": "https://evil.example"},
			"Sec-Fetch-Site": {"Sec-Fetch-Site": "cross-site"},
			"null Origin":    {"Origin": "null"},
		} {
			r := br.post(action, url.Values{"priority": {"2"}, "csrf_token": {csrf}}, h)
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "cross-site") {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		r := b.do(t, req{method: "POST", path: action, body: strings.NewReader("priority=2&csrf_token=" + url.QueryEscape(csrf)), ctype: "application/x-www-form-urlencoded", cookie: br.cookie, header: map[string]string{"Referer": "https://evil.example/form"}})
		if r.status != http.StatusForbidden {
			t.Errorf("cross-site Referer: %d", r.status)
		}
		if b.priority(t, id) != 50 {
			t.Fatal("a cross-site request changed the priority")
		}
	})

	t.Run("missing or wrong CSRF token refused", func(t *testing.T) {
		for name, form := range map[string]url.Values{
			"missing": {"priority": {"2"}},
			"wrong":   {"priority": {"2"}, "csrf_token": {"x" + csrf}},
		} {
			r := br.post(action, form, nil)
			if r.status != http.StatusForbidden {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		// The API with the session cookie needs the token in a header.
		r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/pause", cookie: br.cookie, header: map[string]string{"Origin": b.ts.URL}})
		if r.status != http.StatusForbidden || r.errCode(t) != "csrf" {
			t.Errorf("API without X-CSRF-Token: %d %s", r.status, r.body)
		}
		if b.priority(t, id) != 50 {
			t.Fatal("a request without the CSRF token changed the priority")
		}
	})

	t.Run("same-site form with the token works", func(t *testing.T) {
		r := br.post(action, url.Values{"priority": {"2"}, "csrf_token": {csrf}}, nil)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/jobs/"+id || b.priority(t, id) != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		page, _ := br.page("/jobs/" + id)
		if !strings.Contains(string(page.body), "Priority set to 2.") {
			t.Fatal("no flash message after the change")
		}
		// A bad priority from the form is a message, not a 500.
		r = br.post(action, url.Values{"priority": {"0"}, "csrf_token": {csrf}}, nil)
		if r.status != http.StatusSeeOther {
			t.Fatalf("bad priority: %d %s", r.status, r.body)
		}
		if page, _ := br.page("/jobs/" + id); !strings.Contains(string(page.body), "priority must be between 1 and 100") {
			t.Fatal("no error message for a bad priority")
		}
		r = b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/pause", cookie: br.cookie, header: map[string]string{"Origin": b.ts.URL, "X-CSRF-Token": csrf}})
		if r.status != http.StatusOK {
			t.Fatalf("API with X-CSRF-Token: %d %s", r.status, r.body)
		}
	})

	t.Run("logout ends the session", func(t *testing.T) {
		r := br.post("/logout", url.Values{"csrf_token": {csrf}}, nil)
		if r.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.status)
		}
		if r, _ := br.page("/"); r.status != http.StatusSeeOther {
			t.Fatalf("after logout: %d", r.status)
		}
		// A form sent with the dead session goes to the login page.
		r = br.post(action, url.Values{"priority": {"3"}, "csrf_token": {csrf}}, nil)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" || b.priority(t, id) != 2 {
			t.Fatalf("form after logout: %d %q", r.status, r.header.Get("Location"))
		}
	})

	t.Run("read-only session", func(t *testing.T) {
		bob := login(t, b, readUser, readPassword)
		page, csrf := bob.page("/jobs/" + id)
		if page.status != http.StatusOK || strings.Contains(string(page.body), `id="set-priority"`) || !strings.Contains(string(page.body), "read-only") {
			t.Fatalf("read-only job page: %d", page.status)
		}
		r := bob.post(action, url.Values{"priority": {"9"}, "csrf_token": {csrf}}, nil)
		if r.status != http.StatusForbidden || b.priority(t, id) != 2 {
			t.Fatalf("read-only form: %d", r.status)
		}
		if r, _ := bob.page("/upload"); r.status != http.StatusOK {
			t.Fatalf("read-only upload page: %d", r.status)
		}
	})

	t.Run("login refusals", func(t *testing.T) {
		form := url.Values{"user": {""}, "password": {testToken}, "next": {"//evil.example/x"}}
		r := b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded"})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
			t.Fatalf("open redirect: %d %q", r.status, r.header.Get("Location"))
		}
		r = b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": "https://evil.example"}})
		if r.status != http.StatusForbidden {
			t.Fatalf("cross-site login: %d", r.status)
		}
		bad := url.Values{"user": {adminUser}, "password": {"wrong"}}
		for i := 0; i < 10; i++ {
			r = b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(bad.Encode()), ctype: "application/x-www-form-urlencoded"})
			if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "Wrong user name") {
				t.Fatalf("failed login %d: %d", i, r.status)
			}
		}
		good := url.Values{"user": {adminUser}, "password": {adminPassword}}
		r = b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(good.Encode()), ctype: "application/x-www-form-urlencoded"})
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("after 10 failures: %d", r.status)
		}
	})
}

func TestNoAuthOnLoopback(t *testing.T) {
	b := setup(t, options{})
	id := queuedJob(t, b)
	// No login: the dashboard answers and sets a session for the CSRF token.
	r := b.do(t, req{method: "GET", path: "/"})
	if r.status != http.StatusOK {
		t.Fatalf("dashboard: %d", r.status)
	}
	res := http.Response{Header: r.header}
	if len(res.Cookies()) != 1 {
		t.Fatalf("cookies: %v", res.Cookies())
	}
	br := &session{t: t, b: b, cookie: res.Cookies()[0]}
	// A client without cookies (curl, scripts) may act.
	if r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=5"}); r.status != http.StatusOK {
		t.Fatalf("curl-like: %d %s", r.status, r.body)
	}
	// A browser must come from this site and bring its token.
	if r := b.do(t, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=6", header: map[string]string{"Origin": "https://evil.example"}}); r.status != http.StatusForbidden {
		t.Fatalf("cross-site: %d %s", r.status, r.body)
	}
	if r := br.post("/jobs/"+id+"/priority", url.Values{"priority": {"6"}}, nil); r.status != http.StatusForbidden {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
	_, csrf := br.page("/jobs/" + id)
	if r := br.post("/jobs/"+id+"/priority", url.Values{"priority": {"6"}, "csrf_token": {csrf}}, nil); r.status != http.StatusSeeOther || b.priority(t, id) != 6 {
		t.Fatalf("with token: %d %s", r.status, r.body)
	}
	if r := b.do(t, req{method: "GET", path: "/login"}); r.status != http.StatusSeeOther {
		t.Fatalf("login without auth: %d", r.status)
	}
}

func TestConfig(t *testing.T) {
	jobs, work := dbtest.DBNames(t)
	client := newClient(t, rocketjob.NewRegistry(), jobs, work)
	newHandler := func(cfg rocketjobweb.Options) error {
		h, err := rocketjobweb.NewHandler(client, &cfg)
		if err == nil {
			h.Close()
		}
		return err
	}
	// Without authentication only a loopback Listen is accepted; an empty
	// one (the handler cannot know where it is served) is not.
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:80", "example.com:80", "[::]:8080", ""} {
		err := newHandler(rocketjobweb.Options{Listen: listen})
		if !errors.Is(err, rocketjobweb.ErrAuthRequired) || listen != "" && !strings.Contains(err.Error(), "refusing to serve on "+listen+" without Token, Users or UsersFile") {
			t.Errorf("%q: %v", listen, err)
		}
		if err := newHandler(rocketjobweb.Options{Listen: listen, Token: testToken}); err != nil {
			t.Errorf("%q with a token: %v", listen, err)
		}
		if err := newHandler(rocketjobweb.Options{Listen: listen, Users: []rocketjobweb.User{{Name: "ann", Role: rocketjobweb.RoleReadOnly, PasswordHash: sha256Hex("secret")}}}); err != nil {
			t.Errorf("%q with a user: %v", listen, err)
		}
	}
	if _, err := rocketjobweb.NewHandler(client, nil); !errors.Is(err, rocketjobweb.ErrAuthRequired) {
		t.Errorf("nil options: %v", err)
	}
	for _, listen := range []string{"127.0.0.1:8080", "127.0.0.2:0", "[::1]:8080", "localhost:80"} {
		if err := newHandler(rocketjobweb.Options{Listen: listen}); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
	if err := newHandler(rocketjobweb.Options{Listen: "8080"}); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("no port: %v", err)
	}
	for _, prefix := range []string{"/rocketjob", "/rocketjob/", "/a/b-c_d.e~f", "/", ""} {
		if err := newHandler(rocketjobweb.Options{Token: testToken, Prefix: prefix}); err != nil {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
	for _, prefix := range []string{"rocketjob", "//evil.example", "/a//b", "/a/../b", "/a/./b", "/a b", "/a%2fb", "/a?b", "/a\\b", "/a\"b", "/é"} {
		if err := newHandler(rocketjobweb.Options{Token: testToken, Prefix: prefix}); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
	secret := sha256Hex("secret")
	for name, users := range map[string][]rocketjobweb.User{
		"no name":   {{Role: rocketjobweb.RoleAdmin, PasswordHash: secret}},
		"colon":     {{Name: "a:b", Role: rocketjobweb.RoleAdmin, PasswordHash: secret}},
		"bad role":  {{Name: "ann", Role: "root", PasswordHash: secret}},
		"bad hash":  {{Name: "ann", Role: rocketjobweb.RoleAdmin, PasswordHash: "secret"}},
		"duplicate": {{Name: "ann", Role: rocketjobweb.RoleAdmin, PasswordHash: secret}, {Name: "ann", Role: rocketjobweb.RoleReadOnly, PasswordHash: secret}},
	} {
		if err := newHandler(rocketjobweb.Options{Users: users}); err == nil || strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("users %s: %v", name, err)
		}
	}
	secretHash := sha256Hex("secret")
	dir := t.TempDir()
	for name, c := range map[string]struct{ content, want string }{
		"bad role":   {"ann:root:" + secretHash + "\n", `line 1: unknown role "root"`},
		"bad hash":   {"# users\nann:admin:" + secretHash[:40] + "\n", "line 2: the hash must be 64 hex digits"},
		"bad bcrypt": {"ann:admin:$2y$10$short\n", "line 1: malformed bcrypt hash"},
		"no role":    {"ann\n", "line 1: want name:role:hash"},
		"duplicate":  {"ann:admin:" + secretHash + "\nann:read-only:" + secretHash + "\n", `line 2: user "ann" appears twice`},
		"empty":      {"# nobody\n", "has no users"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		must(t, os.WriteFile(path, []byte(c.content), 0o600))
		err := newHandler(rocketjobweb.Options{Listen: "0.0.0.0:1", UsersFile: path})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), secretHash[:20]) {
			t.Errorf("%s: the error shows the hash: %v", name, err)
		}
	}
	if err := newHandler(rocketjobweb.Options{UsersFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing users file is not an error")
	}
	path := filepath.Join(dir, "ann")
	must(t, os.WriteFile(path, []byte("ann:admin:"+secretHash+"\n"), 0o600))
	if err := newHandler(rocketjobweb.Options{UsersFile: path, Users: []rocketjobweb.User{{Name: "ann", Role: rocketjobweb.RoleAdmin, PasswordHash: secretHash}}}); err == nil || !strings.Contains(err.Error(), `user "ann" appears twice`) {
		t.Errorf("a user in Users and in the users file: %v", err)
	}
	if err := newHandler(rocketjobweb.Options{Token: testToken, SampleInterval: -1}); err == nil {
		t.Error("a negative sample interval is not an error")
	}
}
