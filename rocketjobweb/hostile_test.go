package rocketjobweb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
)

// doHost sends q like b.do, with its Host header set to host.
func doHost(t *testing.T, b *bundle, host string, q req) resp {
	t.Helper()
	hr, err := http.NewRequest(q.method, b.ts.URL+q.path, q.body)
	must(t, err)
	hr.Host = host
	if q.ctype != "" {
		hr.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	if q.token != "" {
		hr.Header.Set("Authorization", "Bearer "+q.token)
	}
	res, err := noRedirect.Do(hr)
	must(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	must(t, err)
	return resp{status: res.StatusCode, header: res.Header, body: body}
}

// Without a login the UI answers only to its own host names: a page on a
// DNS-rebinding domain (its name re-resolved to 127.0.0.1) must neither
// read nor change anything, even with an Origin that matches its Host.
func TestHostileHostHeader(t *testing.T) {
	b := setup(t, options{server: true})
	id := queuedJob(t, b)
	port := b.ts.URL[strings.LastIndex(b.ts.URL, ":")+1:]

	t.Run("refused", func(t *testing.T) {
		for _, host := range []string{
			"evil.example:" + port, "evil.example", "127.0.0.1.nip.io:" + port, "localhost.evil.example:" + port,
			"localhost.:" + port, "0.0.0.0:" + port, "[::]:" + port, "10.0.0.1:" + port, "[fe80::1]:" + port,
		} {
			for _, q := range []req{
				{method: "GET", path: "/api/jobs/" + id},
				{method: "GET", path: "/"},
				{method: "POST", path: "/api/jobs/" + id + "/pause", header: map[string]string{"Origin": "http://" + host}},
				{method: "POST", path: "/api/servers/*/pause", header: map[string]string{"Origin": "http://" + host}},
				{method: "DELETE", path: "/api/jobs/" + id},
			} {
				r := doHost(t, b, host, q)
				if r.status != http.StatusMisdirectedRequest || r.errCode(t) != "bad_host" {
					t.Errorf("Host %q, %s %s: %d %s", host, q.method, q.path, r.status, r.body)
				}
				if bytes.Contains(r.body, []byte(id)) {
					t.Errorf("Host %q, %s %s: the answer shows the job", host, q.method, q.path)
				}
			}
		}
		job, err := b.client.Get(context.Background(), id)
		must(t, err)
		if job.State != rocketjob.StateQueued {
			t.Fatalf("a request for another host changed the job: %s", job.State)
		}
		servers, err := b.client.Servers(context.Background())
		must(t, err)
		if len(servers) != 1 || servers[0].State != "running" {
			t.Fatalf("a request for another host changed the servers: %+v", servers)
		}
	})

	t.Run("accepted", func(t *testing.T) {
		for _, host := range []string{
			"127.0.0.1:" + port, "127.0.0.1", "localhost:" + port, "LocalHost:" + port, "localhost",
			"[::1]:" + port, "[::1]", "127.0.0.2:" + port, "[::ffff:127.0.0.1]:" + port,
		} {
			if r := doHost(t, b, host, req{method: "GET", path: "/api/jobs/" + id}); r.status != http.StatusOK {
				t.Errorf("Host %q: %d %s", host, r.status, r.body)
			}
		}
		r := doHost(t, b, "localhost:"+port, req{method: "POST", path: "/api/jobs/" + id + "/priority?priority=7", header: map[string]string{"Origin": "http://localhost:" + port}})
		if r.status != http.StatusOK || b.priority(t, id) != 7 {
			t.Fatalf("same-origin change on localhost: %d %s", r.status, r.body)
		}
	})

	t.Run("any host with authentication", func(t *testing.T) {
		a := setup(t, options{auth: true})
		aid := queuedJob(t, a)
		if r := doHost(t, a, "ui.example.com", req{method: "GET", path: "/api/jobs/" + aid, token: testToken}); r.status != http.StatusOK {
			t.Fatalf("behind a proxy: %d %s", r.status, r.body)
		}
		if r := doHost(t, a, "ui.example.com", req{method: "GET", path: "/api/jobs/" + aid}); r.status != http.StatusUnauthorized {
			t.Fatalf("without credentials: %d %s", r.status, r.body)
		}
	})
}

// A state change from another site is refused in every mode: no login,
// token, users file (Basic) and browser session; reads are not.
func TestHostileOrigin(t *testing.T) {
	open := setup(t, options{})
	authed := setup(t, options{auth: true})
	for _, mode := range []struct {
		name string
		b    *bundle
		q    req
	}{
		{"no login", open, req{}},
		{"token", authed, req{token: testToken}},
		{"users file", authed, req{basic: [2]string{adminUser, adminPassword}}},
	} {
		id := queuedJob(t, mode.b)
		for name, h := range map[string]map[string]string{
			"Origin":                   {"Origin": "https://evil.example"},
			"Origin other port":        {"Origin": "http://127.0.0.1:1"},
			"null Origin":              {"Origin": "null"},
			"Sec-Fetch-Site":           {"Sec-Fetch-Site": "cross-site"},
			"Sec-Fetch-Site same-site": {"Sec-Fetch-Site": "same-site"},
			"Referer":                  {"Referer": "https://evil.example/page"},
		} {
			for _, q := range []req{
				{method: "POST", path: "/api/jobs/" + id + "/priority?priority=3"},
				{method: "POST", path: "/api/jobs/" + id + "/pause"},
				{method: "DELETE", path: "/api/jobs/" + id},
				{method: "POST", path: "/api/servers/*/stop"},
			} {
				q.token, q.basic, q.header = mode.q.token, mode.q.basic, h
				r := mode.b.do(t, q)
				if r.status != http.StatusForbidden || r.errCode(t) != "csrf" {
					t.Errorf("%s, %s, %s %s: %d %s", mode.name, name, q.method, q.path, r.status, r.body)
				}
			}
		}
		job, err := mode.b.client.Get(context.Background(), id)
		must(t, err)
		if job.State != rocketjob.StateQueued || job.Priority != 50 {
			t.Fatalf("%s: a cross-site request changed the job: %s, priority %d", mode.name, job.State, job.Priority)
		}
		// The same change from this site, or from no browser, goes through.
		q := mode.q
		q.method, q.path, q.header = "POST", "/api/jobs/"+id+"/priority?priority=4", map[string]string{"Origin": mode.b.ts.URL}
		if r := mode.b.do(t, q); r.status != http.StatusOK || mode.b.priority(t, id) != 4 {
			t.Fatalf("%s: same-origin change: %d %s", mode.name, r.status, r.body)
		}
		// A cross-site read is not a state change.
		q.method, q.path, q.header = "GET", "/api/jobs/"+id, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
		if r := mode.b.do(t, q); r.status != http.StatusOK {
			t.Fatalf("%s: cross-site read: %d %s", mode.name, r.status, r.body)
		}
	}
}

// browserTarget is where a browser goes for a Location header: it drops
// tabs and line breaks, reads a backslash as a slash and resolves the rest
// against the page's URL.
func browserTarget(t *testing.T, base, location string) *url.URL {
	t.Helper()
	loc := strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, strings.TrimSpace(location))
	bu, err := url.Parse(base)
	must(t, err)
	lu, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q does not parse: %v", location, err)
	}
	return bu.ResolveReference(lu)
}

var nextInput = regexp.MustCompile(`name="next" value="([^"]*)"`)

// After a login, next leads only to a path of this site, whatever a
// browser makes of it.
func TestHostileLoginRedirect(t *testing.T) {
	b := setup(t, options{auth: true})
	for _, c := range []struct{ next, want string }{
		{"/jobs?state=queued", "/jobs?state=queued"},
		{"/jobs/abc", "/jobs/abc"},
		{"/jobs?q=%09%5C%2F%2F", "/jobs?q=%09%5C%2F%2F"}, // encoded in the query: harmless
		{"/%09/evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2f/evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%0d%0a/evil.example", "/"},
		{"", "/"},
		{"jobs", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"\t//evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/jobs\\..\\..\\/evil.example", "/"},
		{"https://evil.example/", "/"},
		{"http:/\\evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{" /evil.example", "/"},
		{"/login?next=//evil.example", "/"},
		{"%2F%2Fevil.example", "/"},
	} {
		t.Run(fmt.Sprintf("%q", c.next), func(t *testing.T) {
			form := url.Values{"user": {""}, "password": {testToken}, "next": {c.next}}
			r := b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
			loc := r.header.Get("Location")
			if r.status != http.StatusSeeOther || loc != c.want {
				t.Fatalf("%d Location %q, want %q", r.status, loc, c.want)
			}
			base := b.ts.URL + "/login"
			if u := browserTarget(t, base, loc); u.Host != strings.TrimPrefix(b.ts.URL, "http://") || u.Scheme != "http" {
				t.Fatalf("Location %q takes a browser to %s", loc, u)
			}
			// The login page keeps only a safe next for its form.
			page := b.do(t, req{method: "GET", path: "/login?next=" + url.QueryEscape(c.next)})
			m := nextInput.FindSubmatch(page.body)
			if m == nil {
				t.Fatalf("login page without next: %s", page.body)
			}
			if got := html2text(string(m[1])); got != c.want {
				t.Fatalf("login form next %q, want %q", got, c.want)
			}
		})
	}
}

// html2text undoes the escaping html/template applies to an attribute.
func html2text(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// postLogin submits the login form from this site.
func postLogin(t *testing.T, b *bundle, user, password string) resp {
	t.Helper()
	form := url.Values{"user": {user}, "password": {password}, "next": {"/jobs"}}
	return b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
}

// Failed logins are counted per credential tried, not per client address
// (every client here shares 127.0.0.1, as behind a proxy): wrong tokens
// never lock out the right one, a user's wrong passwords lock only that
// user, and past the global limit failures are slowed and answered 429
// while a correct credential still gets in at once.
func TestHostileLockout(t *testing.T) {
	t.Run("wrong tokens do not lock out the token", func(t *testing.T) {
		b := setup(t, options{auth: true})
		for i := range 30 {
			if r := postLogin(t, b, "", fmt.Sprintf("wrong-token-%d", i)); r.status != http.StatusUnauthorized {
				t.Fatalf("wrong token %d: %d", i, r.status)
			}
			r := b.do(t, req{method: "GET", path: "/api/jobs", token: fmt.Sprintf("wrong-bearer-%d", i)})
			if r.status != http.StatusUnauthorized || r.errCode(t) != "unauthorized" {
				t.Fatalf("wrong bearer %d: %d %s", i, r.status, r.body)
			}
		}
		// One wrong token tried over and over is locked...
		for i := range 10 {
			if r := postLogin(t, b, "", "same-wrong-token"); r.status != http.StatusUnauthorized {
				t.Fatalf("repeated wrong token %d: %d", i, r.status)
			}
		}
		if r := postLogin(t, b, "", "same-wrong-token"); r.status != http.StatusTooManyRequests {
			t.Fatalf("11th try of one wrong token: %d", r.status)
		}
		// ...but not the right one, by form or by API.
		if r := postLogin(t, b, "", testToken); r.status != http.StatusSeeOther || r.header.Get("Location") != "/jobs" {
			t.Fatalf("right token after 70 wrong ones: %d %s", r.status, r.body)
		}
		if r := b.get(t, "/api/jobs"); r.status != http.StatusOK {
			t.Fatalf("bearer token after 70 wrong ones: %d %s", r.status, r.body)
		}
		if r := postLogin(t, b, adminUser, adminPassword); r.status != http.StatusSeeOther {
			t.Fatalf("user after wrong tokens: %d", r.status)
		}
	})

	t.Run("a user's failures lock only that user", func(t *testing.T) {
		b := setup(t, options{auth: true})
		for i := range 10 {
			if r := postLogin(t, b, adminUser, fmt.Sprintf("guess-%d", i)); r.status != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d", i, r.status)
			}
		}
		if r := postLogin(t, b, adminUser, adminPassword); r.status != http.StatusTooManyRequests {
			t.Fatalf("alice after 10 wrong passwords: %d", r.status)
		}
		r := b.do(t, req{method: "GET", path: "/api/jobs", basic: [2]string{adminUser, adminPassword}})
		if r.status != http.StatusTooManyRequests || r.errCode(t) != "too_many_attempts" {
			t.Fatalf("alice by Basic after 10 wrong passwords: %d %s", r.status, r.body)
		}
		if r := postLogin(t, b, readUser, readPassword); r.status != http.StatusSeeOther {
			t.Fatalf("bob while alice is locked: %d", r.status)
		}
		if r := b.do(t, req{method: "GET", path: "/api/jobs", basic: [2]string{readUser, readPassword}}); r.status != http.StatusOK {
			t.Fatalf("bob by Basic while alice is locked: %d", r.status)
		}
		if r := postLogin(t, b, "", testToken); r.status != http.StatusSeeOther {
			t.Fatalf("token while alice is locked: %d", r.status)
		}
	})

	t.Run("past the global limit the right token still gets in", func(t *testing.T) {
		b := setup(t, options{auth: true})
		// 100 failures (any keys) within a minute are answered at once.
		for i := range 100 {
			r := b.do(t, req{method: "GET", path: "/api/jobs", token: fmt.Sprintf("flood-%d", i)})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d %s", i, r.status, r.body)
			}
		}
		// The next one is held, then refused with 429.
		r := b.do(t, req{method: "GET", path: "/api/jobs", token: "flood-100"})
		if r.status != http.StatusTooManyRequests || r.errCode(t) != "too_many_attempts" {
			t.Fatalf("failure past the global limit: %d %s", r.status, r.body)
		}
		if r := postLogin(t, b, "", "flood-101"); r.status != http.StatusTooManyRequests {
			t.Fatalf("form failure past the global limit: %d", r.status)
		}
		if r := b.get(t, "/api/jobs"); r.status != http.StatusOK {
			t.Fatalf("right token past the global limit: %d %s", r.status, r.body)
		}
		if r := postLogin(t, b, "", testToken); r.status != http.StatusSeeOther {
			t.Fatalf("right token by form past the global limit: %d %s", r.status, r.body)
		}
		if r := b.do(t, req{method: "GET", path: "/api/jobs", basic: [2]string{readUser, readPassword}}); r.status != http.StatusOK {
			t.Fatalf("bob past the global limit: %d", r.status)
		}
	})
}

// errMessage returns the message of a JSON error answer.
func errMessage(t *testing.T, r resp) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// testKey is an encryption key for the encrypted upload.
var testKey = func() string {
	k, err := encryption.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}()

// setupWithKey is setup with the token and an encryption key.
func setupWithKey(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{reg: rocketjob.NewRegistry(), logs: &syncBuffer{}}
	must(t, examples.Register(b.reg))
	kr, err := encryption.ParseKeyring(testKey)
	must(t, err)
	jobs, work := dbtest.DBNames(t)
	b.client, err = rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: b.reg, Keyring: kr})
	must(t, err)
	b.h, err = rocketjobweb.NewHandler(b.client, &rocketjobweb.Options{Listen: "127.0.0.1:0", Token: testToken, Logger: slog.New(slog.NewTextHandler(b.logs, nil))})
	must(t, err)
	b.ts = httptest.NewServer(b.h)
	t.Cleanup(func() {
		b.ts.Close()
		b.h.Close()
		_ = b.client.Close(context.Background())
	})
	return b
}

// part is one part of a hand-built multipart form.
type part struct {
	name, filename string
	content        []byte
}

func form(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		must(t, err)
		_, err = w.Write(p.content)
		must(t, err)
	}
	must(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

func field(name, value string) part { return part{name: name, content: []byte(value)} }

func file(name string, content []byte) part {
	return part{name: "file", filename: name, content: content}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

// sliceCollections lists the work database's slice collections.
func sliceCollections(t *testing.T, b *bundle) []string {
	t.Helper()
	names, err := clientstore.Of(b.client).WorkCollections(context.Background())
	must(t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "slices_") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// A multipart upload takes exactly one file with every option before it,
// or is refused with 400 and leaves nothing behind: never a dropped file,
// never a dropped option (encrypt least of all).
func TestHostileMultipartUpload(t *testing.T) {
	b := setupWithKey(t)
	big := lines(5000, func(i int) string { return fmt.Sprintf("record %d", i) })
	for _, c := range []struct {
		name  string
		query string
		parts []part
		want  string // in the error message
	}{
		{"two files", "", []part{field("type", "copy"), file("a.txt", []byte("a\n")), file("b.txt", []byte("b\n"))}, "more than one file"},
		{"an empty second file", "", []part{field("type", "copy"), file("a.txt", []byte("a\n")), file("b.txt", nil)}, "more than one file"},
		{"a second file under another name", "", []part{field("type", "copy"), file("a.txt", []byte("a\n")), {name: "other", filename: "b.txt", content: []byte("b\n")}}, "more than one file"},
		{"encrypt after the file", "", []part{field("type", "copy"), file("a.txt", []byte("secret\n")), field("encrypt", "true")}, `"encrypt" comes after the file`},
		{"priority after the file", "", []part{field("type", "copy"), file("a.txt", []byte("a\n")), field("priority", "5")}, `"priority" comes after the file`},
		{"description after the file", "", []part{field("type", "copy"), file("a.txt", []byte("a\n")), field("description", "x")}, `"description" comes after the file`},
		{"type after the file", "type=copy", []part{file("a.txt", []byte("a\n")), field("description", "x")}, `"description" comes after the file`},
		{"an empty file then an option", "", []part{field("type", "copy"), file("a.txt", nil), field("encrypt", "true")}, `"encrypt" comes after the file`},
		{"many slices then an option", "", []part{field("type", "copy"), field("slice_size", "1"), file("big.txt", big), field("encrypt", "true")}, `"encrypt" comes after the file`},
		{"gzip then an option", "", []part{field("type", "copy"), file("big.txt.gz", gzipped(t, big)), field("compress", "true")}, `"compress" comes after the file`},
		{"gzip then a file", "", []part{field("type", "copy"), file("big.txt.gz", gzipped(t, big)), file("b.txt", []byte("b\n"))}, "more than one file"},
		{"an option twice", "", []part{field("type", "copy"), field("priority", "5"), field("priority", "7"), file("a.txt", []byte("a\n"))}, `"priority" is given twice`},
		{"an option in the query and the form", "priority=5", []part{field("type", "copy"), field("priority", "7"), file("a.txt", []byte("a\n"))}, `"priority" is given twice`},
		{"type twice by alias", "", []part{field("type", "copy"), field("job", "upcase"), file("a.txt", []byte("a\n"))}, `"job" is given twice`},
		{"an option twice in the query", "encrypt=false&encrypt=true", []part{field("type", "copy"), file("a.txt", []byte("a\n"))}, `"encrypt" is given twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, collections := countJobs(t, b), sliceCollections(t, b)
			body, ct := form(t, c.parts...)
			path := "/api/jobs"
			if c.query != "" {
				path += "?" + c.query
			}
			r := b.do(t, req{method: "POST", path: path, body: body, ctype: ct, token: testToken})
			if r.status != http.StatusBadRequest || r.errCode(t) != "bad_parameter" || !strings.Contains(errMessage(t, r), c.want) {
				t.Fatalf("got %d %s, want 400 with %s", r.status, r.body, c.want)
			}
			if n := countJobs(t, b); n != before {
				t.Fatalf("a refused upload left a job: %d jobs before, %d after", before, n)
			}
			if after := sliceCollections(t, b); !slices.Equal(after, collections) {
				t.Fatalf("a refused upload left slices: %v before, %v after", collections, after)
			}
		})
	}

	t.Run("options before the file are all kept", func(t *testing.T) {
		body, ct := form(t, field("type", "copy"), field("encrypt", "true"), field("compress", "true"),
			field("priority", "9"), field("description", "cards"), field("slice_size", "100"), file("big.txt", big))
		r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		job, err := b.client.Get(context.Background(), r.json(t)["id"].(string))
		must(t, err)
		if !job.Encrypt || !job.Compress || job.Priority != 9 || job.Description != "cards" || job.SliceSize != 100 || job.RecordCount != 5000 {
			t.Fatalf("job options: encrypt %v, compress %v, priority %d, description %q, slice size %d, records %d",
				job.Encrypt, job.Compress, job.Priority, job.Description, job.SliceSize, job.RecordCount)
		}
	})

	t.Run("the upload page's form has every option before the file", func(t *testing.T) {
		page, _ := login(t, b, "", testToken).page("/upload")
		html := string(page.body)
		start := strings.Index(html, `id="upload-form"`)
		end := start + strings.Index(html[max(start, 0):], "</form>")
		if page.status != http.StatusOK || start < 0 || end < start {
			t.Fatalf("upload page: %d", page.status)
		}
		formHTML := html[start:end]
		fileAt := strings.Index(formHTML, `type="file"`)
		names := regexp.MustCompile(`name="([^"]+)"`).FindAllStringSubmatchIndex(formHTML, -1)
		if fileAt < 0 || len(names) < 8 {
			t.Fatalf("upload form: file at %d, %d fields", fileAt, len(names))
		}
		last := names[len(names)-1]
		if name := formHTML[last[2]:last[3]]; name != "file" {
			t.Fatalf("the form's last field is %q, not the file", name)
		}
		for _, m := range names[:len(names)-1] {
			if m[0] > fileAt {
				t.Fatalf("field %q comes after the file", formHTML[m[2]:m[3]])
			}
		}
	})
}

// The upload page's form, sent as a browser sends it (fields in document
// order, then the file), creates the job; a form with a field after the
// file is refused with the page and its message, and creates nothing.
func TestHostileUploadForm(t *testing.T) {
	b := setup(t, options{auth: true})
	br := login(t, b, "", testToken)
	_, csrf := br.page("/upload")
	if csrf == "" {
		t.Fatal("no CSRF token on the upload page")
	}
	send := func(parts ...part) resp {
		body, ct := form(t, parts...)
		return b.do(t, req{method: "POST", path: "/upload", body: body, ctype: ct, cookie: br.cookie, header: map[string]string{"Origin": b.ts.URL}})
	}
	before := countJobs(t, b)
	r := send(field("csrf_token", csrf), field("type", "copy"), file("a.txt", []byte("a\n")), field("priority", "3"))
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "options must come before the file part") {
		t.Fatalf("field after the file: %d %s", r.status, r.body)
	}
	if n := countJobs(t, b); n != before {
		t.Fatalf("a refused form left a job: %d before, %d after", before, n)
	}
	r = send(field("csrf_token", csrf), field("type", "copy"), field("priority", "3"), field("description", "from the form"), file("a.txt", []byte("a\n")))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/jobs/") {
		t.Fatalf("form upload: %d %s", r.status, r.body)
	}
	job, err := b.client.Get(context.Background(), strings.TrimPrefix(r.header.Get("Location"), "/jobs/"))
	must(t, err)
	if job.Priority != 3 || job.Description != "from the form" {
		t.Fatalf("form options lost: priority %d, description %q", job.Priority, job.Description)
	}
}
