package server

import (
	"context"
	"fmt"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// A retried slice (sliced.FixFailedRecord, Client.Retry) runs with its
// retry plan (store.RetryPlan): only the records that failed at its last
// attempt run again, fixed or skipped as the operator said, and the other
// records keep the outputs that attempt made, in their places. So the
// slice's output stays in input order, and the records that succeeded do
// not run twice.

// planned is a slice's retry plan, opened, as applied to its task.
type planned struct {
	deleted int64 // records skipped as deleted: dropped
	router  bool  // the type's Outputs counts its own dropped records
}

// applyRetryPlan looks up the retry plan of claimed slice c (only a slice
// at a later attempt can have one) and, when there is one, wraps task's
// function with it. It returns nil when the slice has no plan.
func (s *Server) applyRetryPlan(ctx context.Context, job *model.Job, codec *encryption.Codec, c *store.Claimed, task *slice.Task) (*planned, error) {
	if c.Attempt <= 1 {
		return nil, nil
	}
	plan, err := s.store.GetRetryPlan(ctx, job.ID, c.Num)
	if err != nil || plan == nil {
		return nil, err
	}
	type fix struct {
		del bool
		rec []byte
	}
	fixes := map[int64]fix{}
	for _, f := range plan.Fixes {
		if f.Delete {
			fixes[f.Number] = fix{del: true}
			continue
		}
		rec, err := slice.Open(codec, slice.Fix, f.Number, f.Record)
		if err != nil {
			return nil, fmt.Errorf("fix of record %d: %w", f.Number, err)
		}
		fixes[f.Number] = fix{rec: rec}
	}
	failed := map[int64]bool{}
	keep := task.Outputs == nil && len(job.Statistics) == 0
	plain, err := slice.Open(codec, slice.Failed, c.Num, plan.Failed)
	if err != nil {
		return nil, fmt.Errorf("retry plan of slice %d: %w", c.Num, err)
	}
	for f, err := range slice.Failures(plain) {
		if err != nil {
			return nil, fmt.Errorf("retry plan of slice %d: %w", c.Num, err)
		}
		failed[f.Number] = true
		if len(f.Record) == 0 {
			keep = false // the slice could not be read: run it whole
		}
	}
	// The outputs of the records that did not fail, in order: one each.
	var kept [][]byte
	if keep && plan.Output != nil {
		body, err := slice.Open(codec, slice.Output, c.Num, plan.Output)
		if err != nil {
			return nil, fmt.Errorf("retry plan of slice %d: %w", c.Num, err)
		}
		for rec, err := range slice.Records(body) {
			if err != nil {
				return nil, fmt.Errorf("retry plan of slice %d: %w", c.Num, err)
			}
			kept = append(kept, rec)
		}
	}
	if keep && (task.Collect != (plan.Output != nil) || len(kept) != c.Count-len(failed)) {
		keep = false // not one output per record: run it whole
	}
	p := &planned{router: task.Outputs != nil}
	recordOf := func(ctx context.Context) int64 {
		if sc := scope.From(ctx); sc != nil {
			return sc.Record
		}
		return 0
	}
	if p.router {
		outputs := task.Outputs
		task.Outputs = func(ctx context.Context, rec []byte, emit func(string, []byte)) error {
			if f, ok := fixes[recordOf(ctx)]; ok {
				if f.del {
					return nil // no output: dropped
				}
				rec = f.rec
			}
			return outputs(ctx, rec, emit)
		}
		return p, nil
	}
	fn, next := task.Fn, 0
	task.Fn = func(ctx context.Context, rec []byte) ([]byte, error) {
		n := recordOf(ctx)
		if keep && !failed[n] {
			var out []byte
			if kept != nil {
				out = kept[next]
			}
			next++
			return out, nil
		}
		if f, ok := fixes[n]; ok {
			if f.del {
				p.deleted++
				return nil, nil
			}
			rec = f.rec
		}
		return fn(ctx, rec)
	}
	return p, nil
}

// finish counts the deleted records of a slice run with p as dropped.
func (p *planned) finish(r *store.Result) {
	if p == nil || p.router || p.deleted == 0 {
		return
	}
	if r.Batch == nil {
		r.Batch = &store.BatchResult{}
	}
	r.Batch.Dropped += p.deleted
}
