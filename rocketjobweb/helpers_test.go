package rocketjobweb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// Credentials of the test users file.
const (
	testToken     = "test-token-0123456789abcdef"
	adminUser     = "alice"
	adminPassword = "alice-password"
	readUser      = "bob"
	readPassword  = "bob-password"
)

// appPage starts the answers of the app that mounts the handler under a
// prefix (options.prefix) for every other path.
const appPage = "the app's own page: "

// bundle is one test's database, client, server process and UI.
type bundle struct {
	reg    *rocketjob.Registry
	client *rocketjob.Client
	h      *rocketjobweb.Handler
	ts     *httptest.Server
	logs   *syncBuffer
}

type options struct {
	server    bool   // run an in-process server
	auth      bool   // token and users file
	maxUpload int64  // 0: the default
	prefix    string // mount the handler under this prefix of an app's mux
	tlsProxy  bool   // Options.BehindTLSProxy
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	b := &bundle{reg: rocketjob.NewRegistry(), logs: &syncBuffer{}}
	must(t, examples.Register(b.reg))
	must(t, sliced.RegisterCSV(b.reg, "csv_upcase", func(_ context.Context, header, row []string) ([]string, error) {
		out := make([]string, len(row))
		for i, f := range row {
			out[i] = strings.ToUpper(f)
		}
		return out, nil
	}, nil))
	type item struct {
		N int `json:"n"`
	}
	type doubled struct {
		N int `json:"n"`
		D int `json:"double"`
	}
	must(t, sliced.RegisterJSONL(b.reg, "jsonl_double", func(_ context.Context, in item) (doubled, error) {
		return doubled{N: in.N, D: 2 * in.N}, nil
	}, nil))
	jobs, work := dbtest.DBNames(t)
	b.client = newClient(t, b.reg, jobs, work)
	if o.server {
		startServer(t, newClient(t, b.reg, jobs, work), "test-server")
	}
	cfg := rocketjobweb.Options{
		Listen:         "127.0.0.1:0",
		MaxUpload:      o.maxUpload,
		SampleInterval: 200 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.auth {
		cfg.Token = testToken
		cfg.UsersFile = writeUsers(t)
	}
	cfg.Prefix = o.prefix
	cfg.BehindTLSProxy = o.tlsProxy
	h, err := rocketjobweb.NewHandler(b.client, &cfg)
	must(t, err)
	b.h = h
	if o.prefix == "" {
		b.ts = httptest.NewServer(h)
	} else {
		// The app's own mux: the handler under the prefix, the app elsewhere.
		mux := http.NewServeMux()
		mux.Handle(o.prefix+"/", h)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, appPage+r.URL.Path)
		})
		b.ts = httptest.NewServer(mux)
	}
	t.Cleanup(func() {
		b.ts.Close()
		h.Close()
		if t.Failed() {
			logs := strings.Split(b.logs.String(), "\n")
			t.Logf("last web logs:\n%s", strings.Join(logs[max(0, len(logs)-30):], "\n"))
		}
	})
	return b
}

func newClient(t *testing.T, reg *rocketjob.Registry, jobs, work string) *rocketjob.Client {
	t.Helper()
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	must(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// startServer runs a server until the test ends.
func startServer(t *testing.T, client *rocketjob.Client, name string) {
	t.Helper()
	srv, err := server.New(client, &server.Config{
		Name: name, Workers: 2, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: 2 * time.Second, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "the server's first heartbeat", func() bool {
		list, err := client.Servers(context.Background())
		return err == nil && len(list) > 0
	})
}

// writeUsers writes a users file: alice (admin, bcrypt), bob (read-only, SHA-256).
func writeUsers(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	// bcrypt of alice-password (cost 4) and SHA-256 of bob-password.
	content := "# test users\n\n" +
		"alice:admin:" + bcryptHash(t, adminPassword) + "\n" +
		"bob:read-only:" + sha256Hex(readPassword) + "\n"
	must(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitJob waits until job id has ended.
func (b *bundle) waitJob(t *testing.T, id string) *rocketjob.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := b.client.Wait(ctx, id, 50*time.Millisecond)
	must(t, err)
	return job
}

// req is one API request.
type req struct {
	method, path string
	body         io.Reader
	ctype        string
	header       map[string]string
	token        string    // bearer token
	basic        [2]string // user, password
	cookie       *http.Cookie
}

// resp is an answer, body read.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not JSON (%d): %v\n%s", r.status, err, r.body)
	}
	return m
}

// errCode returns the error code of a JSON error answer.
func (r resp) errCode(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	return e["code"].(string)
}

// noRedirect is a client that shows redirects and leaves compression alone.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableCompression: true},
	Timeout:       30 * time.Second,
}

func (b *bundle) do(t *testing.T, q req) resp {
	t.Helper()
	hr, err := http.NewRequest(q.method, b.ts.URL+q.path, q.body)
	must(t, err)
	if q.ctype != "" {
		hr.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	if q.token != "" {
		hr.Header.Set("Authorization", "Bearer "+q.token)
	}
	if q.basic[0] != "" {
		hr.SetBasicAuth(q.basic[0], q.basic[1])
	}
	if q.cookie != nil {
		hr.AddCookie(q.cookie)
	}
	res, err := noRedirect.Do(hr)
	must(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	must(t, err)
	return resp{status: res.StatusCode, header: res.Header, body: body}
}

// get and post are API calls with the admin token.
func (b *bundle) get(t *testing.T, path string) resp {
	t.Helper()
	return b.do(t, req{method: "GET", path: path, token: testToken})
}

func (b *bundle) postJSON(t *testing.T, path string, v any) resp {
	t.Helper()
	body, err := json.Marshal(v)
	must(t, err)
	return b.do(t, req{method: "POST", path: path, body: bytes.NewReader(body), ctype: "application/json", token: testToken})
}

// multipartBody builds a form: fields in order, then the file (if name != "").
func multipartBody(t *testing.T, fields [][2]string, filename string, content []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		must(t, mw.WriteField(f[0], f[1]))
	}
	if filename != "" {
		fw, err := mw.CreateFormFile("file", filename)
		must(t, err)
		_, err = fw.Write(content)
		must(t, err)
	}
	must(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

// upload posts a file with the admin token and returns the new job's id.
func (b *bundle) upload(t *testing.T, fields [][2]string, filename string, content []byte) string {
	t.Helper()
	body, ct := multipartBody(t, fields, filename, content)
	r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
	if r.status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	return r.json(t)["id"].(string)
}

// syncBuffer is a buffer safe for concurrent writers (the logger).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// lines returns "1\n2\n...n\n".
func lines(n int, f func(i int) string) []byte {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(f(i))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
