package server

import (
	"github.com/rocketjob-go/rocketjob/internal/scope"
)

// withCounters returns base plus a run's counters when the run counted
// anything, and nil (nothing to store) otherwise: the counters are stored
// with the transition that ends the run, so a run cut short stores none.
func withCounters(base, run map[string]int64) map[string]int64 {
	if len(run) == 0 {
		return nil
	}
	return scope.Add(base, run)
}
