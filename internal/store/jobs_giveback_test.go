package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpGiveBack: a simple job's run given back is queued again, no
// server's, offered again; a sliced job's step given back stays running at
// that step, held by no server.
func TestJobOpGiveBack(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		simple, sliced := newJob(50), newSliced(50)
		simple.State, simple.Server = model.StateRunning, "s1"
		sliced.State, sliced.Step, sliced.Server = model.StateRunning, model.StepBefore, "s1"
		insertJobs(t, s, simple, sliced)
		if got := doOp(t, s, simple, store.GiveBack(model.KindSimple)); got.State != model.StateQueued || got.Server != "" {
			t.Errorf("simple job given back: %s on %q, want queued, no server", got.State, got.Server)
		}
		if !isRunnable(t, s, simple.ID) {
			t.Error("the simple job given back is not offered")
		}
		if got := doOp(t, s, sliced, store.GiveBack(model.KindSliced)); got.State != model.StateRunning || got.Step != model.StepBefore || got.Server != "" {
			t.Errorf("sliced job given back: %s at %q on %q, want running at the before step, no server", got.State, got.Step, got.Server)
		}
		if mine, err := s.JobsOfServer(t.Context(), "s1"); err != nil || len(mine) != 0 {
			t.Errorf("jobs of s1 after giving both back: %v (%v), want none", mine, err)
		}
	})
}
