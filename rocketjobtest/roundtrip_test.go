package rocketjobtest_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// failedText turns failed records into comparable strings.
func failedText(f []rocketjobtest.FailedRecord) []string {
	var s []string
	for _, r := range f {
		s = append(s, strings.Join([]string{strconv.FormatInt(r.Number, 10), r.Record, r.Err.Error()}, "|"))
	}
	return s
}

// TestRoundTripAgreesWithRecords runs the same input through a server and
// inline: output, failed records and the job's end must be the same.
func TestRoundTripAgreesWithRecords(t *testing.T) {
	reg := testTypes(t, &sliced.Options{SliceSize: 2})
	client := rocketjobtest.Start(t, reg, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		typ string
		in  []string
	}{
		{"square", []string{"3", "x", "4", "5", "", "6"}},
		{"price", []string{"item,qty", `"bolts, steel",2`, "nuts,many", `" washers",1`, `"quote ""q""",4`}},
		{"total", []string{`{"item":"a","qty":2}`, `{"item":"b","qty":-1}`, `{"item":"c","qty":5}`}},
		{"square", []string{"1", "2", "3"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			want, err := rocketjobtest.Records(ctx, reg, tc.typ, tc.in)
			must(t, err)
			got, err := rocketjobtest.RoundTrip(ctx, client, tc.typ, strings.NewReader(strings.Join(tc.in, "\n")+"\n"), nil)
			must(t, err)
			if !reflect.DeepEqual(got.Output, want.Output) {
				t.Errorf("output\n server %q\n inline %q", got.Output, want.Output)
			}
			if g, w := failedText(got.Failed), failedText(want.Failed); !reflect.DeepEqual(g, w) {
				t.Errorf("failed records\n server %q\n inline %q", g, w)
			}
			gj, wj := got.Job, want.Job
			if gj.State != wj.State || gj.RecordCount != wj.RecordCount || gj.ProcessedCount != wj.ProcessedCount || gj.FailedRecordCount != wj.FailedRecordCount {
				t.Errorf("job: server %s %d/%d/%d, inline %s %d/%d/%d", gj.State, gj.RecordCount, gj.ProcessedCount, gj.FailedRecordCount,
					wj.State, wj.RecordCount, wj.ProcessedCount, wj.FailedRecordCount)
			}
			if (gj.Failure == nil) != (wj.Failure == nil) || gj.Failure != nil && gj.Failure.Message != wj.Failure.Message {
				t.Errorf("failure: server %+v, inline %+v", gj.Failure, wj.Failure)
			}
		})
	}
	// The servers are gone.
	servers, err := client.Servers(ctx)
	must(t, err)
	if len(servers) != 0 {
		t.Fatalf("%d servers still registered after RoundTrip returned", len(servers))
	}
}

func TestRoundTripEncrypted(t *testing.T) {
	reg := testTypes(t, &sliced.Options{Encrypt: true, Compress: true})
	db := rocketjobtest.StartDB(t, reg, nil)
	ctx := context.Background()
	res, err := rocketjobtest.RoundTrip(ctx, db.Client, "square", strings.NewReader("2\n3\nx\n"), nil)
	must(t, err)
	if res.Job.State != rocketjob.StateFailed || !res.Job.Encrypt || res.Job.KeyID != db.Keyring.Current() ||
		!reflect.DeepEqual(res.Output, []string{"4", "9"}) || len(res.Failed) != 1 || res.Failed[0].Record != "x" {
		t.Fatalf("job %s (encrypted %v, key %q), output %q, failed %q", res.Job.State, res.Job.Encrypt, res.Job.KeyID, res.Output, failedText(res.Failed))
	}

	// A client without the key cannot read the job's output.
	kr, err := encryption.GenerateKey()
	must(t, err)
	cfg := db.Config()
	if cfg.Keyring, err = encryption.ParseKeyring(kr); err != nil {
		t.Fatal(err)
	}
	other, err := rocketjob.NewClient(ctx, cfg)
	must(t, err)
	defer other.Close(ctx)
	var out bytes.Buffer
	if _, err := sliced.Download(ctx, other, res.Job.ID.Hex(), &out); !errors.Is(err, encryption.ErrNoKey) || out.Len() != 0 {
		t.Fatalf("download without the key: %v, %d bytes", err, out.Len())
	}
}

func TestRoundTripOptions(t *testing.T) {
	reg := testTypes(t, &sliced.Options{DestroyOnComplete: true})
	client := rocketjobtest.Start(t, reg, nil)
	ctx := context.Background()
	res, err := rocketjobtest.RoundTrip(ctx, client, "square", strings.NewReader("1\n2\n3\n"), &rocketjobtest.RoundTripOptions{
		Upload: &sliced.UploadOptions{SliceSize: 1, Priority: 3, Description: "three"},
		Server: &server.Config{Name: "tester", Workers: 1, PollInterval: 10 * time.Millisecond},
	})
	must(t, err)
	job, err := client.Get(ctx, res.Job.ID.Hex())
	if err != nil {
		t.Fatalf("the job was destroyed on completion: %v", err)
	}
	if job.State != rocketjob.StateCompleted || job.SliceCount != 3 || job.Priority != 3 || job.Description != "three" || !reflect.DeepEqual(res.Output, []string{"1", "4", "9"}) {
		t.Fatalf("job %s, %d slices, priority %d, %q, output %q", job.State, job.SliceCount, job.Priority, job.Description, res.Output)
	}

	if _, err := rocketjobtest.RoundTrip(ctx, client, "nope", strings.NewReader("1\n"), nil); !errors.Is(err, rocketjob.ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestRoundTripTimeout(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterLines(reg, "stuck", func(ctx context.Context, l string) (string, error) {
		<-ctx.Done() // until the server gives up the slice
		return "", ctx.Err()
	}, nil))
	client := rocketjobtest.Start(t, reg, nil)
	ctx := context.Background()
	res, err := rocketjobtest.RoundTrip(ctx, client, "stuck", strings.NewReader("1\n"), &rocketjobtest.RoundTripOptions{
		Timeout: time.Second,
		Server:  &server.Config{Workers: 1, PollInterval: 10 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond},
	})
	if !errors.Is(err, context.DeadlineExceeded) || res != nil {
		t.Fatalf("got %v, %v; want a deadline error", res, err)
	}
	servers, err := client.Servers(ctx)
	must(t, err)
	if len(servers) != 0 {
		t.Fatalf("%d servers still registered after RoundTrip returned", len(servers))
	}
}
