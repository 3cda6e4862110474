package store

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Change is what a job write (Transition, Update) changes besides the
// job's state and version. A nil field, or a false Clear field, leaves the
// stored field as it is. The store alone knows the stored field names:
// callers say what changes, never how it is stored.
type Change struct {
	// Server is the server that runs the job (or its current step) from
	// now on; ClearServer frees the job of any (a requeue, the end of a
	// step).
	Server      *string
	ClearServer bool
	// Step moves a running sliced job to another step.
	Step *model.Step
	// Attempt is the run (simple job) or slice retry (sliced job) about to
	// start.
	Attempt *int
	// Priority, Description and MaxWorkers are the editable settings.
	Priority    *int
	Description *string
	MaxWorkers  *int
	// RunAt is when the job is due.
	RunAt *time.Time
	// StartedAt and CompletedAt are when the job started and ended;
	// ClearCompletedAt removes the end (a retry).
	StartedAt        *time.Time
	CompletedAt      *time.Time
	ClearCompletedAt bool
	// Failure is why the job failed or was aborted (or why its last run
	// failed, before a retry); ClearFailure removes it.
	Failure      *model.Failure
	ClearFailure bool
	// Statistics and HookStatistics replace the stored counters (the job's
	// totals, and what its hooks counted) when not nil.
	Statistics     map[string]int64
	HookStatistics map[string]int64
	// Totals are a sliced job's final counts, once its slices are done.
	Totals *JobTotals
	// KeyID and SealedHeader are the key that seals the job's data and
	// the header sealed with it (a rekey).
	KeyID        *string
	SealedHeader []byte
}

// JobTotals are the counts of a sliced job whose slices are done, kept until
// a retry.
type JobTotals struct {
	Processed     int64            // records processed, failed ones included
	FailedRecords int64            // records that failed
	Dropped       int64            // records that gave no output
	Outputs       int64            // output records (jobs without categories)
	Categories    map[string]int64 // output records per category (nil: none declared)
}

// set returns the fields the change sets, as stored.
func (c Change) set() bson.D {
	var d bson.D
	add := func(key string, v any) { d = append(d, bson.E{Key: key, Value: v}) }
	if c.Server != nil {
		add("server", *c.Server)
	}
	if c.Step != nil {
		add("step", *c.Step)
	}
	if c.Attempt != nil {
		add("attempt", *c.Attempt)
	}
	if c.Priority != nil {
		add("priority", *c.Priority)
	}
	if c.Description != nil {
		add("description", *c.Description)
	}
	if c.MaxWorkers != nil {
		add("max_workers", *c.MaxWorkers)
	}
	if c.RunAt != nil {
		add("run_at", c.RunAt.UTC())
	}
	if c.StartedAt != nil {
		add("started_at", c.StartedAt.UTC())
	}
	if c.CompletedAt != nil {
		add("completed_at", c.CompletedAt.UTC())
	}
	if c.Failure != nil {
		add("failure", *c.Failure)
	}
	if c.Statistics != nil {
		add("statistics", c.Statistics)
	}
	if c.HookStatistics != nil {
		add("hook_statistics", c.HookStatistics)
	}
	if t := c.Totals; t != nil {
		add("processed_count", t.Processed)
		add("failed_record_count", t.FailedRecords)
		add("totals", true)
		add("dropped_count", t.Dropped)
		add("output_count", t.Outputs)
		if t.Categories != nil {
			add("categories", t.Categories)
		}
	}
	if c.KeyID != nil {
		add("key_id", *c.KeyID)
	}
	if c.SealedHeader != nil {
		add("sealed_header", c.SealedHeader)
	}
	return d
}

// unset returns the fields the change removes, as stored.
func (c Change) unset() []string {
	var fields []string
	if c.ClearServer {
		fields = append(fields, "server")
	}
	if c.ClearCompletedAt {
		fields = append(fields, "completed_at")
	}
	if c.ClearFailure {
		fields = append(fields, "failure")
	}
	return fields
}
