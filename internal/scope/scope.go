// Package scope carries what a job's code can reach through its context
// while it runs: the number of the record being processed and the named
// counters (statistics) its code increments. The server makes one Scope per
// slice, per hook call and per simple-job run, and stores its counters with
// what that run produced, so counters are kept exactly when the results are.
package scope

import (
	"context"
	"maps"
	"sync"
)

// Scope is one run's record number and counters. Its methods are safe for
// concurrent use (job code may increment from goroutines it starts).
type Scope struct {
	// Record is the 1-based number of the record being processed, 0 outside
	// a record. Only the goroutine running the records sets it.
	Record int64

	mu       sync.Mutex
	counters map[string]int64
}

type key struct{}

// New returns ctx carrying a new, empty Scope.
func New(ctx context.Context) (context.Context, *Scope) {
	s := &Scope{}
	return context.WithValue(ctx, key{}, s), s
}

// From returns the Scope ctx carries, or nil.
func From(ctx context.Context) *Scope {
	s, _ := ctx.Value(key{}).(*Scope)
	return s
}

// Inc adds n to the counter name.
func (s *Scope) Inc(name string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counters == nil {
		s.counters = map[string]int64{}
	}
	s.counters[name] += n
}

// Counters returns a copy of the counters, nil when none was incremented.
func (s *Scope) Counters() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.counters) == 0 {
		return nil
	}
	return maps.Clone(s.counters)
}

// Add returns the sum of counter sets as a new map (nil when all are empty).
func Add(sets ...map[string]int64) map[string]int64 {
	var sum map[string]int64
	for _, set := range sets {
		for k, v := range set {
			if sum == nil {
				sum = map[string]int64{}
			}
			sum[k] += v
		}
	}
	return sum
}
