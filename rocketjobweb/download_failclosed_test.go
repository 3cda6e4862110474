package rocketjobweb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// uiOn serves the API (with auth) of a client on jobs and work databases.
func uiOn(t *testing.T, reg *rocketjob.Registry, jobs, work string) *bundle {
	t.Helper()
	b := &bundle{reg: reg, logs: &syncBuffer{}, client: newClient(t, reg, jobs, work)}
	h, err := rocketjobweb.NewHandler(b.client, &rocketjobweb.Options{
		Listen: "127.0.0.1:0", Token: testToken, UsersFile: writeUsers(t), SampleInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	must(t, err)
	b.h, b.ts = h, httptest.NewUnstartedServer(h)
	// Small send buffers: a download to a client that stops reading blocks
	// the handler mid-stream instead of finishing into the kernel's buffers.
	b.ts.Listener = smallBuffers{b.ts.Listener}
	b.ts.Start()
	t.Cleanup(func() {
		b.ts.Close()
		h.Close()
		if t.Failed() {
			t.Logf("web logs:\n%s", b.logs.String())
		}
	})
	return b
}

// smallBuffers is a listener whose connections have 8 KB send buffers.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// slowClient reads through 8 KB receive buffers and leaves compression alone.
var slowClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(8 << 10)
		}
		return c, err
	}},
	Timeout: time.Minute,
}

// uploadRun uploads content as a job of type typ that keeps its output,
// waits until it ends and returns it.
func uploadRun(t *testing.T, b *bundle, typ string, content []byte, sliceSize int) *rocketjob.Job {
	t.Helper()
	keep, no := true, false
	job, err := sliced.Upload(context.Background(), b.client, typ, bytes.NewReader(content),
		&sliced.UploadOptions{SliceSize: sliceSize, CollectOutput: &keep, DestroyOnComplete: &no})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the machine may be busy
	defer cancel()
	done, err := b.client.Wait(ctx, job.ID.Hex(), 50*time.Millisecond)
	must(t, err)
	return done
}

func TestRESTDownloadFromAnotherWorkDatabaseIsAnError(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, examples.Register(reg))
	jobs, work := dbtest.DBNames(t)
	right := uiOn(t, reg, jobs, work)
	startServer(t, newClient(t, reg, jobs, work), "s1")
	done := uploadRun(t, right, "reverse", lines(500, func(i int) string { return fmt.Sprintf("line-%04d", i) }), 50)
	failed := uploadRun(t, right, "square", []byte("1\nx\n3\ny\n5\n"), 2)
	if done.State != rocketjob.StateCompleted || failed.State != rocketjob.StateFailed || failed.FailedRecordCount != 2 {
		t.Fatalf("jobs ended %s and %s (%d failed records)", done.State, failed.State, failed.FailedRecordCount)
	}
	for _, path := range []string{"/api/jobs/" + done.ID.Hex() + "/output", "/api/jobs/" + failed.ID.Hex() + "/failures?format=csv"} {
		if r := right.get(t, path); r.status != http.StatusOK || len(r.body) == 0 {
			t.Fatalf("GET %s from the right work database: %d %q", path, r.status, r.body)
		}
	}

	// The same jobs database with a work database that lacks the slices.
	wrong := uiOn(t, reg, jobs, work+"_typo")
	t.Cleanup(func() { _ = dbtest.Client(t).Database(work + "_typo").Drop(context.Background()) })
	for _, c := range []struct {
		path    string
		headers map[string]string
		want    string
	}{
		{"/api/jobs/" + done.ID.Hex() + "/output", nil, "0 of its 500 output records"},
		{"/api/jobs/" + done.ID.Hex() + "/output", map[string]string{"Accept-Encoding": "gzip"}, "0 of its 500 output records"},
		{"/api/jobs/" + done.ID.Hex() + "/output?gzip=1", nil, "0 of its 500 output records"},
		{"/api/jobs/" + done.ID.Hex() + "/output?format=json", nil, "0 of its 500 output records"},
		{"/api/jobs/" + done.ID.Hex() + "/output?format=json&offset=400", nil, "0 of its 500 output records"},
		{"/api/jobs/" + failed.ID.Hex() + "/output", nil, "0 of its 3 output records"},
		{"/api/jobs/" + failed.ID.Hex() + "/failures?format=csv", nil, "0 of its 2 failed records"},
		{"/api/jobs/" + failed.ID.Hex() + "/failures", nil, "0 of its 2 failed records"},
	} {
		r := wrong.do(t, req{method: "GET", path: c.path, token: testToken, header: c.headers})
		if r.status != http.StatusInternalServerError || r.header.Get("Content-Disposition") != "" {
			t.Errorf("GET %s %v from the wrong work database: %d %v %q, want a 500 error before any byte", c.path, c.headers, r.status, r.header, r.body)
			continue
		}
		if code := r.errCode(t); code != "incomplete" {
			t.Errorf("GET %s: error code %q", c.path, code)
		}
		if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, c.want) {
			t.Errorf("GET %s: message %q lacks %q", c.path, msg, c.want)
		}
	}
}

// TestRESTDownloadRacingDestroy destroys a job while its output streams to
// a slow client: the client gets either the whole file or a broken
// transfer, never a clean 200 with a short body.
func TestRESTDownloadRacingDestroy(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, examples.Register(reg))
	jobs, work := dbtest.DBNames(t)
	b := uiOn(t, reg, jobs, work)
	startServer(t, newClient(t, reg, jobs, work), "s1")
	pad := strings.Repeat("x", 90)
	const n = 12000 // 100 bytes a line: 1.2 MB, far more than the buffers hold
	input := lines(n, func(i int) string { return fmt.Sprintf("%08d%s", i, pad) })
	job := uploadRun(t, b, "copy", input, 10) // 1,200 slices: many cursor batches
	start := time.Now()
	if job.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", job.State)
	}
	id := job.ID.Hex()

	hr, err := http.NewRequest("GET", b.ts.URL+"/api/jobs/"+id+"/output", nil)
	must(t, err)
	hr.Header.Set("Authorization", "Bearer "+testToken)
	res, err := slowClient.Do(hr)
	must(t, err)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("output: %d", res.StatusCode)
	}
	head := make([]byte, 4096)
	if _, err := io.ReadFull(res.Body, head); err != nil {
		t.Fatal(err)
	}
	must(t, b.client.Destroy(context.Background(), id))
	t.Logf("destroyed %s after the first response bytes", time.Since(start).Round(time.Millisecond))
	rest, err := io.ReadAll(res.Body)
	body := append(head, rest...)
	switch {
	case err != nil:
		t.Logf("broken transfer after %d bytes: %v", len(body), err)
	case bytes.Equal(body, input):
		t.Logf("the whole file arrived before the destroy took effect")
	default:
		t.Fatalf("clean 200 with %d of %d bytes after a destroy", len(body), len(input))
	}
	if r := b.get(t, "/api/jobs/"+id+"/output"); r.status != http.StatusNotFound {
		t.Errorf("output after the destroy: %d %s", r.status, r.body)
	}
}

// TestRESTDownloadDuringDestroy starts downloads while a destroy runs:
// each gets the whole file, 404 or 409, or a broken transfer; never a 500
// and never a clean short body.
func TestRESTDownloadDuringDestroy(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, examples.Register(reg))
	jobs, work := dbtest.DBNames(t)
	b := uiOn(t, reg, jobs, work)
	startServer(t, newClient(t, reg, jobs, work), "s1")
	input := lines(4000, func(i int) string { return fmt.Sprintf("%06d-%s", i, strings.Repeat("y", 40)) })
	for round := range 2 {
		job := uploadRun(t, b, "copy", input, 40) // 100 slices: the drops take a while
		if job.State != rocketjob.StateCompleted {
			t.Fatalf("job %s", job.State)
		}
		id := job.ID.Hex()
		paths := []string{"/api/jobs/" + id + "/output", "/api/jobs/" + id + "/output?format=json&offset=3990",
			"/api/jobs/" + id + "/failures?format=csv", "/api/jobs/" + id + "/failures"}
		destroyed := make(chan error, 1)
		go func() { destroyed <- b.client.Destroy(context.Background(), id) }()
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := paths[w]
				for {
					status, outcome := fetch(b, path, input)
					mu.Lock()
					seen[fmt.Sprintf("%d %s", status, outcome)]++
					mu.Unlock()
					if status == http.StatusNotFound {
						return
					}
					if status == http.StatusInternalServerError || outcome == "short" {
						t.Errorf("round %d: GET %s during a destroy: %d %s", round, path, status, outcome)
						return
					}
				}
			}()
		}
		wg.Wait()
		must(t, <-destroyed)
		t.Logf("round %d: %v", round, seen)
	}
}

// fetch GETs path and says how it went: "whole" (the body is want, or any
// body for JSON and failures), "broken" (the transfer failed), "short" (a
// clean 200 body of the output that is not want), or the error code.
func fetch(b *bundle, path string, want []byte) (int, string) {
	hr, err := http.NewRequest("GET", b.ts.URL+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	hr.Header.Set("Authorization", "Bearer "+testToken)
	hr.Header.Set("Accept-Encoding", "gzip")
	res, err := noRedirect.Do(hr)
	if err != nil {
		return 0, "broken"
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, "broken"
	}
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return res.StatusCode, "short"
		}
		if body, err = io.ReadAll(zr); err != nil {
			return res.StatusCode, "short"
		}
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return res.StatusCode, e.Error.Code
	}
	if strings.HasSuffix(path, "/output") && !bytes.Equal(body, want) {
		return res.StatusCode, "short"
	}
	if strings.Contains(path, "/output?format=json") {
		var page struct{ Records []string }
		if err := json.Unmarshal(body, &page); err != nil || len(page.Records) != 10 {
			return res.StatusCode, "short"
		}
	}
	return res.StatusCode, "whole"
}
