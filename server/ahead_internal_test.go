package server

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// A list is read again ahead, in the background, once the workers took
// half of the queued jobs it listed for this server (its stripe's): not
// before, not twice at once, not for a short list (read again once it
// runs out, as before).
func TestReadAheadAtHalfTheList(t *testing.T) {
	list := func(n int) []model.Job {
		jobs := make([]model.Job, n)
		for i := range jobs {
			jobs[i] = model.Job{ID: bson.NewObjectID(), Type: "a", Kind: model.KindSimple, State: model.StateQueued, Priority: 50}
		}
		return jobs
	}
	const long = 16
	sel := newSelector(nil, time.Hour, time.Hour)
	sel.setList(list(40))
	sel.listed = sel.mine(time.Now())
	for i := range 19 {
		if sel.next() == nil {
			t.Fatalf("take %d: none", i)
		}
		if sel.aheadDue(long) {
			t.Fatalf("read ahead due after %d of 40 taken, want at 21", i+1)
		}
	}
	if sel.next() == nil || sel.aheadDue(long) {
		t.Fatal("read ahead due with 20 of 40 left, want at fewer")
	}
	if sel.next() == nil || !sel.aheadDue(long) {
		t.Fatal("read ahead not due with 19 of 40 left")
	}
	if sel.next() == nil || sel.aheadDue(long) {
		t.Fatal("a second read ahead due while one is under way")
	}
	done := make(chan bool)
	go func() { done <- sel.awaitAhead() }()
	sel.mu.Lock()
	close(sel.ahead) // as readAhead does once its read is in
	sel.mu.Unlock()
	if !<-done {
		t.Fatal("awaitAhead did not see the read under way")
	}
	sel.mu.Lock()
	sel.ahead = nil
	sel.mu.Unlock()
	if sel.awaitAhead() {
		t.Fatal("awaitAhead with no read under way")
	}

	// Two stripes: only this server's jobs count.
	sel = newSelector(nil, time.Hour, time.Hour)
	sel.rank, sel.of = 0, 2
	sel.setList(list(80))
	sel.listed = sel.mine(time.Now())
	own := 0
	for i := range sel.jobs {
		if stripe(sel.jobs[i].ID, 2) == 0 {
			own++
		}
	}
	if sel.listed != own {
		t.Fatalf("listed %d of this server's jobs, want %d", sel.listed, own)
	}

	// A short list: never ahead.
	sel = newSelector(nil, time.Hour, time.Hour)
	sel.setList(list(long - 1))
	sel.listed = sel.mine(time.Now())
	for sel.next() != nil {
		if sel.aheadDue(long) {
			t.Fatal("read ahead due for a list shorter than long")
		}
	}
}
