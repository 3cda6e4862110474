package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type person struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

type greeting struct {
	Text string `json:"text"`
}

type bundle struct {
	client  *rocketjob.Client
	befores atomic.Int32
}

// setup registers CSV, JSONL and lines types and runs one server until the test ends.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{}
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterCSV(reg, "csv_total", func(ctx context.Context, header, row []string) ([]string, error) {
		if len(header) != 3 || header[2] != "qty" {
			return nil, fmt.Errorf("unexpected header %q", header)
		}
		n, err := strconv.Atoi(row[2])
		if err != nil {
			return nil, fmt.Errorf("qty %q is not a number", row[2])
		}
		return []string{row[0], row[1], strconv.Itoa(n * 2)}, nil
	}, &sliced.Options{SliceSize: 2, Before: func(context.Context, *rocketjob.Job) error { b.befores.Add(1); return nil }}))
	must(t, sliced.RegisterJSONL(reg, "greet", func(ctx context.Context, p person) (greeting, error) {
		if p.Age < 0 {
			return greeting{}, errors.New("negative age")
		}
		return greeting{Text: fmt.Sprintf("hello %s (%d)", p.Name, p.Age)}, nil
	}, nil))
	must(t, sliced.RegisterLines(reg, "range_sum", func(ctx context.Context, r string) (string, error) {
		a, z, _ := strings.Cut(r, ",")
		from, _ := strconv.Atoi(a)
		to, _ := strconv.Atoi(z)
		sum := 0
		for i := from; i <= to; i++ {
			sum += i
		}
		return strconv.Itoa(sum), nil
	}, nil))
	must(t, sliced.RegisterLines(reg, "strict", func(ctx context.Context, line string) (string, error) {
		if line == "bad" {
			return "", errors.New("bad line")
		}
		return line, nil
	}, &sliced.Options{SliceSize: 1, StopOnError: true}))
	must(t, sliced.RegisterLines(reg, "ephemeral", func(ctx context.Context, line string) (string, error) { return line, nil },
		&sliced.Options{DestroyOnComplete: true}))
	jobs, work := dbtest.DBNames(t)
	cfg := rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg}
	var err error
	b.client, err = rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	srvClient, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	srv, err := server.New(srvClient, &server.Config{Workers: 2, PollInterval: 20 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		must(t, <-done)
		_ = srvClient.Close(context.Background())
		_ = b.client.Close(context.Background())
	})
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) run(t *testing.T, job *rocketjob.Job) *rocketjob.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := b.client.Wait(ctx, job.ID.Hex(), 20*time.Millisecond)
	must(t, err)
	return got
}

func (b *bundle) download(t *testing.T, job *rocketjob.Job) string {
	t.Helper()
	var out bytes.Buffer
	_, err := sliced.Download(context.Background(), b.client, job.ID.Hex(), &out)
	must(t, err)
	return out.String()
}

func TestCSVJobKeepsHeaderAndRunsBeforeOnce(t *testing.T) {
	b := setup(t)
	in := "id,name,qty\r\n1,\"Smith, J\",3\r\n2,Ünïcode,5\r\n3,x,7\r\n"
	job, err := sliced.Upload(context.Background(), b.client, "csv_total", strings.NewReader(in), &sliced.UploadOptions{Name: "orders.csv"})
	must(t, err)
	if got := b.run(t, job); got.State != rocketjob.StateCompleted || got.RecordCount != 3 {
		t.Fatalf("job %s with %d records: %+v", got.State, got.RecordCount, got.Failure)
	}
	if want := "id,name,qty\r\n1,\"Smith, J\",6\r\n2,Ünïcode,10\r\n3,x,14\r\n"; b.download(t, job) != want {
		t.Fatalf("output %q, want %q", b.download(t, job), want)
	}
	if n := b.befores.Load(); n != 1 {
		t.Fatalf("before hook ran %d times", n)
	}
}

func TestJSONLJobWithAFailedRecord(t *testing.T) {
	b := setup(t)
	in := `{"name":"ann","age":31}` + "\n\n" + `{"name":"bob","age":-1}` + "\n" + `{"name":"cy","age":7}` + "\n"
	job, err := sliced.Upload(context.Background(), b.client, "greet", strings.NewReader(in), nil)
	must(t, err)
	got := b.run(t, job)
	if got.State != rocketjob.StateFailed || got.FailedRecordCount != 1 {
		t.Fatalf("job %s failed=%d", got.State, got.FailedRecordCount)
	}
	if want := `{"text":"hello ann (31)"}` + "\n" + `{"text":"hello cy (7)"}` + "\n"; b.download(t, job) != want {
		t.Fatalf("output %q", b.download(t, job))
	}
	var failed bytes.Buffer
	_, err = sliced.DownloadFailed(context.Background(), b.client, job.ID.Hex(), &failed)
	must(t, err)
	if !strings.Contains(failed.String(), "2,negative age,") {
		t.Fatalf("failed records: %q", failed.String())
	}
}

func TestUploadRecordsAndRange(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	job, err := sliced.UploadRange(ctx, b.client, "range_sum", 1, 25, 10, nil)
	must(t, err)
	if job.SliceCount != 3 {
		t.Fatalf("range job has %d slices, want 3", job.SliceCount)
	}
	b.run(t, job)
	if out := b.download(t, job); out != "55\n155\n115\n" {
		t.Fatalf("range output %q", out)
	}
	seq := func(yield func([]byte) bool) {
		for i := range 250 {
			if !yield([]byte(fmt.Sprint(i))) {
				return
			}
		}
	}
	job, err = sliced.UploadRecords(ctx, b.client, "ephemeral", seq, &sliced.UploadOptions{DestroyOnComplete: new(bool)})
	must(t, err)
	b.run(t, job)
	out := b.download(t, job)
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 250 || lines[249] != "249" {
		t.Fatalf("records output has %d lines", len(lines))
	}
}

func TestDestroyOnComplete(t *testing.T) {
	b := setup(t)
	job, err := sliced.Upload(context.Background(), b.client, "ephemeral", strings.NewReader("a\nb\n"), nil)
	must(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := b.client.Get(context.Background(), job.ID.Hex())
		if errors.Is(err, rocketjob.ErrJobNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still there: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStopOnErrorFailsAtFirstFailedRecord(t *testing.T) {
	b := setup(t)
	var in strings.Builder
	for i := range 200 {
		if i == 3 {
			in.WriteString("bad\n")
		} else {
			fmt.Fprintf(&in, "%d\n", i)
		}
	}
	job, err := sliced.Upload(context.Background(), b.client, "strict", strings.NewReader(in.String()), nil)
	must(t, err)
	got := b.run(t, job)
	if got.State != rocketjob.StateFailed || got.Failure == nil || !strings.Contains(got.Failure.Message, "record 4: bad line") {
		t.Fatalf("job %s: %+v", got.State, got.Failure)
	}
	p, err := b.client.Progress(context.Background(), got)
	must(t, err)
	if p.Processed >= 200 {
		t.Fatalf("stop_on_error processed all %d records", p.Processed)
	}
}

func TestUploadRefusesBeforeWriting(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := sliced.Upload(ctx, b.client, "nope", strings.NewReader("x\n"), nil); !errors.Is(err, rocketjob.ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := sliced.Upload(ctx, b.client, "greet", strings.NewReader(`{"name":1`+"\n"), nil); err == nil {
		t.Fatal("invalid JSONL accepted")
	} else {
		var ie *sliced.InputError
		if !errors.As(err, &ie) || ie.Line != 1 {
			t.Fatalf("invalid JSONL: %v", err)
		}
	}
	if _, err := sliced.Upload(ctx, b.client, "csv_total", strings.NewReader("a,b,qty\n1,\"2,3\n"), nil); err == nil {
		t.Fatal("unbalanced quote accepted")
	}
	if _, err := sliced.Upload(ctx, b.client, "copy_of_nothing", strings.NewReader(""), &sliced.UploadOptions{Priority: 500}); err == nil {
		t.Fatal("accepted")
	}
	if _, err := sliced.Upload(ctx, b.client, "greet", strings.NewReader(""), &sliced.UploadOptions{Priority: 500}); !errors.Is(err, rocketjob.ErrBadPriority) {
		t.Fatalf("bad priority: %v", err)
	}
	jobs, err := b.client.List(ctx, nil)
	must(t, err)
	if len(jobs) != 0 {
		t.Fatalf("%d jobs left behind by refused uploads", len(jobs))
	}
	names, err := clientstore.Of(b.client).WorkCollections(ctx)
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("slice collections left behind: %v", names)
	}
}
