package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestFixFailedRecordsThenRetry: on both claim strategies, failed records
// are fixed (one corrected, one deleted) while the job is failed, each fix
// in the job's history; the retry runs only the failed records (the
// others never run twice), the corrected one as corrected and the deleted
// one not at all; the output is in input order, once, with the deleted
// record dropped, and the job completes.
func TestFixFailedRecordsThenRetry(t *testing.T) {
	for _, strategy := range []string{"insert", "findandmodify"} {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			var mu sync.Mutex
			calls := map[string]int{}
			must(t, sliced.RegisterLines(b.reg, "square_counted", func(_ context.Context, line string) (string, error) {
				mu.Lock()
				calls[line]++
				mu.Unlock()
				n, err := strconv.Atoi(line)
				if err != nil {
					return "", fmt.Errorf("not a number: %q", line)
				}
				return strconv.Itoa(n * n), nil
			}, &sliced.Options{SliceSize: 4}))
			b.client = b.newClient(t)
			job, err := sliced.Upload(ctx, b.client, "square_counted", strings.NewReader("1\n2\nx\n4\n5\ny\n7\n8\n9\nz\n"), nil)
			must(t, err)
			id := job.ID.Hex()
			if _, err := sliced.FixFailedRecord(ctx, b.client, id, 3, "3", "ann"); !errors.Is(err, sliced.ErrNotFixable) {
				t.Errorf("fix of a queued job: %v, want ErrNotFixable", err)
			}
			b.startServer(t, "s1", 2)
			if got := b.wait(t, id); got.State != rocketjob.StateFailed || got.FailedRecordCount != 3 {
				t.Fatalf("job %s with %d failed records", got.State, got.FailedRecordCount)
			}
			list, more, err := sliced.FailedRecords(ctx, b.client, id, 0, 10)
			must(t, err)
			if more || len(list) != 3 || list[0].Number != 3 || list[0].Input != "x" || list[1].Number != 6 || list[2].Number != 10 {
				t.Fatalf("failed records: %+v more %v", list, more)
			}
			if _, err := sliced.FixFailedRecord(ctx, b.client, id, 2, "2", "ann"); !errors.Is(err, sliced.ErrRecordNotFound) {
				t.Errorf("fix of a record that did not fail: %v", err)
			}
			if _, err := sliced.FixFailedRecord(ctx, b.client, id, 3, "oops", "ann"); err != nil {
				t.Fatal(err)
			}
			f, err := sliced.FixFailedRecord(ctx, b.client, id, 3, "3", "ann") // the last fix wins
			must(t, err)
			if f.Input != "x" || f.Fix == nil || f.Fix.Input != "3" || f.Fix.User != "ann" {
				t.Errorf("fixed record: %+v", f)
			}
			_, err = sliced.DeleteFailedRecord(ctx, b.client, id, 6, "bob")
			must(t, err)
			got, err := sliced.GetFailedRecord(ctx, b.client, id, 6)
			must(t, err)
			if got.Input != "y" || got.Fix == nil || !got.Fix.Delete {
				t.Errorf("deleted record: %+v", got)
			}
			mu.Lock()
			before := map[string]int{}
			for k, v := range calls {
				before[k] = v
			}
			mu.Unlock()

			_, err = b.client.Retry(rocketjob.ContextWithUser(ctx, "carol"), id)
			must(t, err)
			done := b.wait(t, id)
			if done.State != rocketjob.StateFailed || done.FailedRecordCount != 1 {
				t.Fatalf("after the retry: %s with %d failed records (z was not fixed)", done.State, done.FailedRecordCount)
			}
			mu.Lock()
			for _, rec := range []string{"1", "2", "4", "5", "7", "8", "9"} {
				if calls[rec] != before[rec] {
					t.Errorf("record %s ran again on retry (%d runs)", rec, calls[rec])
				}
			}
			// Deltas: a slow machine may re-run a slice of the first run
			// (a server judged dead), never a record of the retry that
			// did not fail or was deleted.
			if calls["3"]-before["3"] < 1 || calls["y"] != before["y"] || calls["z"] <= before["z"] || calls["x"] != before["x"] {
				t.Errorf("runs before the retry %v, after %v", before, calls)
			}
			mu.Unlock()

			// The last failed record fixed too: the job completes.
			_, err = sliced.FixFailedRecord(ctx, b.client, id, 10, "10", "ann")
			must(t, err)
			_, err = b.client.Retry(ctx, id)
			must(t, err)
			done = b.wait(t, id)
			if done.State != rocketjob.StateCompleted || done.DroppedCount != 1 || done.FailedRecordCount != 0 {
				t.Fatalf("after the second retry: %s dropped %d failed %d", done.State, done.DroppedCount, done.FailedRecordCount)
			}
			var out bytes.Buffer
			_, err = sliced.Download(ctx, b.client, id, &out)
			must(t, err)
			if want := "1\n4\n9\n16\n25\n49\n64\n81\n100\n"; out.String() != want {
				t.Fatalf("output %q, want %q", out.String(), want)
			}
			mu.Lock()
			if calls["10"] < 1 || calls["1"] != before["1"] || calls["9"] != before["9"] || calls["y"] != before["y"] {
				t.Errorf("runs after the second retry: %v (before the first %v)", calls, before)
			}
			mu.Unlock()

			hist, err := b.client.History(ctx, id)
			must(t, err)
			var actions []string
			for _, h := range hist {
				actions = append(actions, fmt.Sprintf("%s %s %d", h.User, h.Action, h.Record))
			}
			want := []string{"ann edit failed record 3", "ann edit failed record 3", "bob delete failed record 6", "carol retry 0",
				"ann edit failed record 10", " retry 0"}
			if strings.Join(actions, "|") != strings.Join(want, "|") {
				t.Errorf("history:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
			}
			must(t, b.client.Destroy(ctx, id))
			if _, err := b.client.History(ctx, id); !errors.Is(err, rocketjob.ErrJobNotFound) {
				t.Errorf("history of a destroyed job: %v", err)
			}
		})
	}
}
