package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// downloadCategory returns the lines of one output category of a job.
func downloadCategory(t *testing.T, b *bundle, id, cat string) []string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := sliced.DownloadCategory(context.Background(), b.client, id, cat, &buf); err != nil {
		t.Fatalf("download %s: %v", cat, err)
	}
	return strings.Fields(buf.String())
}

// TestTriageCategoriesAndStatistics: the shipped triage example routes
// integers to even and odd, counts them, drops empty lines and fails the
// rest; each category downloads on its own in input order, and the counts
// add up (output + failed + dropped = records), on both claim strategies.
func TestTriageCategoriesAndStatistics(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			var in strings.Builder
			var even, odd []string
			for i := 1; i <= 40; i++ {
				switch {
				case i%10 == 0:
					in.WriteString("\n")
				case i%13 == 0:
					in.WriteString("x" + fmt.Sprint(i) + "\n")
				default:
					fmt.Fprintln(&in, i)
					if i%2 == 0 {
						even = append(even, fmt.Sprint(i))
					} else {
						odd = append(odd, fmt.Sprint(i))
					}
				}
			}
			job, err := sliced.Upload(ctx, b.client, "triage", strings.NewReader(in.String()), &sliced.UploadOptions{SliceSize: 7})
			must(t, err)
			b.startServer(t, "s1", 2)
			done := b.wait(t, job.ID.Hex())
			if done.State != rocketjob.StateFailed || done.FailedRecordCount != 3 {
				t.Fatalf("job ended %s with %d failed records, want failed with 3", done.State, done.FailedRecordCount)
			}
			if got := downloadCategory(t, b, job.ID.Hex(), "even"); !reflect.DeepEqual(got, even) {
				t.Errorf("even = %v, want %v", got, even)
			}
			if got := downloadCategory(t, b, job.ID.Hex(), "odd"); !reflect.DeepEqual(got, odd) {
				t.Errorf("odd = %v, want %v", got, odd)
			}
			wantCats := map[string]int64{"even": int64(len(even)), "odd": int64(len(odd))}
			if !reflect.DeepEqual(done.Categories, wantCats) || !reflect.DeepEqual(done.Statistics, wantCats) {
				t.Errorf("categories %v, statistics %v, want %v", done.Categories, done.Statistics, wantCats)
			}
			if done.DroppedCount != 4 || int64(len(even)+len(odd))+done.FailedRecordCount+done.DroppedCount != done.RecordCount {
				t.Errorf("dropped %d; %d + %d failed + dropped != %d records", done.DroppedCount, len(even)+len(odd), done.FailedRecordCount, done.RecordCount)
			}
			p, err := b.client.Progress(ctx, done)
			must(t, err)
			if !reflect.DeepEqual(p.Statistics, wantCats) || !reflect.DeepEqual(p.Categories, wantCats) || p.Dropped != 4 {
				t.Errorf("progress %+v", p)
			}
			// A job with categories has no default output; an unknown category is refused.
			if _, err := sliced.Download(ctx, b.client, job.ID.Hex(), &bytes.Buffer{}); !errors.Is(err, sliced.ErrNoCategory) {
				t.Errorf("default download: %v", err)
			}
			if _, err := sliced.DownloadCategory(ctx, b.client, job.ID.Hex(), "prime", &bytes.Buffer{}); !errors.Is(err, sliced.ErrNoCategory) {
				t.Errorf("unknown category: %v", err)
			}
		})
	}
}

// TestPrefixParams: typed parameters reach the record function; an upload
// without the required one, or with one the type lacks, stores nothing.
func TestPrefixParams(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			_, err := sliced.Upload(ctx, b.client, "prefix", strings.NewReader("a\n"), nil)
			if !errors.Is(err, rocketjob.ErrBadArgs) || !strings.Contains(err.Error(), "text is required") {
				t.Fatalf("upload without text: %v", err)
			}
			params, err := jobparams.Parse(b.reg, "prefix", []string{"colour=red"})
			if !errors.Is(err, rocketjob.ErrBadArgs) {
				t.Fatalf("unknown parameter: %v, %v", params, err)
			}
			if jobs, err := b.client.List(ctx, nil); err != nil || len(jobs) != 0 {
				t.Fatalf("refused uploads left jobs: %v, %v", jobs, err)
			}
			params, err = jobparams.Parse(b.reg, "prefix", []string{"text=> "})
			must(t, err)
			job, err := sliced.Upload(ctx, b.client, "prefix", strings.NewReader("a\nb\nc\n"), &sliced.UploadOptions{Params: params, SliceSize: 2})
			must(t, err)
			b.startServer(t, "s1", 2)
			if done := b.wait(t, job.ID.Hex()); done.State != rocketjob.StateCompleted {
				t.Fatalf("job ended %s: %+v", done.State, done.Failure)
			}
			var buf bytes.Buffer
			_, err = sliced.Download(ctx, b.client, job.ID.Hex(), &buf)
			must(t, err)
			if buf.String() != "> a\n> b\n> c\n" {
				t.Errorf("output %q", buf.String())
			}
			// Typed parameters also come as the type's struct.
			job, err = sliced.Upload(ctx, b.client, "prefix", strings.NewReader("z\n"), &sliced.UploadOptions{Params: examples.PrefixParams{Text: "#"}})
			must(t, err)
			b.wait(t, job.ID.Hex())
			buf.Reset()
			_, err = sliced.Download(ctx, b.client, job.ID.Hex(), &buf)
			must(t, err)
			if buf.String() != "#z\n" {
				t.Errorf("output %q", buf.String())
			}
		})
	}
}

// TestRecordNumberAndHookStatistics: the record function sees each record's
// 1-based number; statistics from Before, the records and After add up in
// the job's totals; a simple job's statistics are kept with its run.
func TestRecordNumberAndHookStatistics(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			type params struct {
				Sep string `bson:"sep"`
			}
			must(t, sliced.Register(b.reg, "numbered", sliced.Type[params]{
				Perform: func(ctx context.Context, p params, rec []byte) ([]rocketjob.Output, error) {
					rocketjob.Inc(ctx, "records", 1)
					return sliced.To("", fmt.Appendf(nil, "%d%s%s", sliced.RecordNumber(ctx), p.Sep, rec)), nil
				},
				Before: func(ctx context.Context, _ *rocketjob.Job, p params) error {
					rocketjob.Inc(ctx, "before", 1)
					return nil
				},
				After: func(ctx context.Context, _ *rocketjob.Job, p params) error {
					rocketjob.Inc(ctx, "after", 2)
					return nil
				},
				Options: &sliced.Options{SliceSize: 3},
			}))
			must(t, rocketjob.Register(b.reg, "counting", func(ctx context.Context, _ *rocketjob.Job, _ struct{}) error {
				rocketjob.Inc(ctx, "sent", 5)
				return nil
			}, nil))
			job, err := sliced.Upload(ctx, b.client, "numbered", strings.NewReader("a\nb\nc\nd\ne\n"), &sliced.UploadOptions{Params: params{Sep: ":"}})
			must(t, err)
			simple, err := b.client.Enqueue(ctx, "counting", nil, nil)
			must(t, err)
			b.startServer(t, "s1", 2)
			done := b.wait(t, job.ID.Hex())
			if done.State != rocketjob.StateCompleted {
				t.Fatalf("job ended %s: %+v", done.State, done.Failure)
			}
			var buf bytes.Buffer
			_, err = sliced.Download(ctx, b.client, job.ID.Hex(), &buf)
			must(t, err)
			if buf.String() != "1:a\n2:b\n3:c\n4:d\n5:e\n" {
				t.Errorf("output %q", buf.String())
			}
			if want := map[string]int64{"records": 5, "before": 1, "after": 2}; !reflect.DeepEqual(done.Statistics, want) {
				t.Errorf("statistics %v, want %v", done.Statistics, want)
			}
			if s := b.wait(t, simple.ID.Hex()); !reflect.DeepEqual(s.Statistics, map[string]int64{"sent": 5}) {
				t.Errorf("simple job's statistics %v", s.Statistics)
			}
		})
	}
}
