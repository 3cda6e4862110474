package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpRekey: a rekey records the new key and the header sealed under
// it; without a header it leaves the stored one.
func TestJobOpRekey(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.State, job.Step, job.KeyID, job.SealedHeader = model.StateRunning, model.StepProcessing, "k1", []byte("sealed by k1")
		insertJobs(t, s, job)
		got := doOp(t, s, job, store.Rekey("k2", []byte("sealed by k2")))
		if got.KeyID != "k2" || string(got.SealedHeader) != "sealed by k2" || got.Step != model.StepProcessing {
			t.Errorf("rekeyed: key %q header %q step %q, want k2, sealed by k2, processing", got.KeyID, got.SealedHeader, got.Step)
		}
		got = doOp(t, s, got, store.Rekey("k3", nil))
		if got.KeyID != "k3" || string(got.SealedHeader) != "sealed by k2" {
			t.Errorf("rekeyed without a header: key %q header %q, want k3, sealed by k2", got.KeyID, got.SealedHeader)
		}
	})
}
