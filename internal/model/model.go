// Package model holds the documents rocketjob stores: jobs, servers and the
// job state machine, shared by the store, the client and the server without
// an import cycle. The public package rocketjob defines Job and Server with
// the same fields and documents them; the two convert into each other
// without a copy ((*rocketjob.Job)(j)), and a field added to one but not the
// other makes every such conversion fail to compile.
package model

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// State is the state of a job.
type State string

// Job states, as in Ruby's RocketJob.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StatePaused    State = "paused"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateAborted   State = "aborted"
)

// States lists every state, in lifecycle order.
var States = []State{StateQueued, StateRunning, StatePaused, StateCompleted, StateFailed, StateAborted}

// ParseState returns the State named s.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown state %q (valid: queued, running, paused, completed, failed, aborted)", s)
}

// Live reports whether a job in this state may still run.
func (s State) Live() bool {
	return s == StateQueued || s == StateRunning || s == StatePaused || s == StateFailed
}

// Step is the sub-state of a running sliced job.
type Step string

// Steps of a running sliced job.
const (
	StepBefore     Step = "before"     // the before hook runs on one server
	StepProcessing Step = "processing" // workers process slices
	StepAfter      Step = "after"      // the after hook runs on one server
)

// Kind tells simple jobs (one Perform call) from sliced jobs (records in slices).
type Kind string

// Job kinds.
const (
	KindSimple Kind = "simple"
	KindSliced Kind = "sliced"
)

// CanTransition reports whether a job may move from one state to another.
func CanTransition(from, to State) bool {
	switch to {
	case StateRunning:
		// queued -> running (start), paused -> running (resume), failed -> running (sliced retry),
		// running -> running (a step change of a sliced job).
		return from == StateQueued || from == StatePaused || from == StateFailed || from == StateRunning
	case StateQueued:
		// running -> queued (requeue after a crash or for a retry), paused -> queued (resume
		// before start), failed -> queued (retry).
		return from == StateRunning || from == StatePaused || from == StateFailed
	case StatePaused:
		return from == StateQueued || from == StateRunning
	case StateCompleted, StateFailed:
		return from == StateRunning
	case StateAborted:
		return from.Live()
	}
	return false
}

// Failure records why a job failed.
type Failure struct {
	Message string    `bson:"message" json:"message"`
	At      time.Time `bson:"at" json:"at"`
	Server  string    `bson:"server,omitempty" json:"server,omitempty"`
}

// Job is one job document in the jobs collection.
type Job struct {
	ID          bson.ObjectID `bson:"_id" json:"id"`
	Type        string        `bson:"type" json:"type"`
	Kind        Kind          `bson:"kind" json:"kind"`
	State       State         `bson:"state" json:"state"`
	Step        Step          `bson:"step,omitempty" json:"step,omitempty"`
	Priority    int           `bson:"priority" json:"priority"`
	Description string        `bson:"description,omitempty" json:"description,omitempty"`
	Params      bson.Raw      `bson:"params,omitempty" json:"-"`

	RunAt time.Time `bson:"run_at" json:"run_at"`
	// ExpiresAt: a job not started by then is aborted as expired, never run.
	ExpiresAt *time.Time `bson:"expires_at,omitempty" json:"expires_at,omitempty"`
	// WindowStart ("HH:MM"), WindowDuration and WindowLocation make a daily
	// processing window (see rocketjob.Window): outside it nothing of the job runs.
	WindowStart    string        `bson:"window_start,omitempty" json:"window_start,omitempty"`
	WindowDuration time.Duration `bson:"window_duration,omitempty" json:"window_duration,omitempty"`
	WindowLocation string        `bson:"window_location,omitempty" json:"window_location,omitempty"`
	// Cron is the schedule of a recurring simple job: when an instance
	// completes or fails, the next one is enqueued for the schedule's next
	// time (one instance live, and for a moment two: the successor is
	// written before the instance ends).
	Cron string `bson:"cron,omitempty" json:"cron,omitempty"`
	// DependsOn lists jobs that must complete before this one starts; if one
	// fails or is aborted or destroyed, this job fails.
	DependsOn   []bson.ObjectID `bson:"depends_on,omitempty" json:"depends_on,omitempty"`
	CreatedAt   time.Time       `bson:"created_at" json:"created_at"`
	StartedAt   *time.Time      `bson:"started_at,omitempty" json:"started_at,omitempty"`
	CompletedAt *time.Time      `bson:"completed_at,omitempty" json:"completed_at,omitempty"`

	// Version counts the job's transitions; every transition is conditioned on it.
	Version int64 `bson:"version" json:"version"`
	// Attempt counts the runs started (simple jobs) or the automatic retries
	// of failed slices (sliced jobs, see SliceRetryLimit).
	Attempt int `bson:"attempt" json:"attempt"`
	// RetryLimit is how many failed runs of a simple job are retried, the
	// first after RetryBase, each next one after twice as long (plus jitter).
	RetryLimit int           `bson:"retry_limit,omitempty" json:"retry_limit,omitempty"`
	RetryBase  time.Duration `bson:"retry_base,omitempty" json:"retry_base,omitempty"`
	// Server is the server running the job (simple jobs) or its before/after step.
	Server  string   `bson:"server,omitempty" json:"server,omitempty"`
	Failure *Failure `bson:"failure,omitempty" json:"failure,omitempty"`

	// Sliced jobs.
	SliceSize         int      `bson:"slice_size,omitempty" json:"slice_size,omitempty"`
	Format            string   `bson:"format,omitempty" json:"format,omitempty"`
	Header            []string `bson:"header,omitempty" json:"header,omitempty"`
	LineEnding        string   `bson:"line_ending,omitempty" json:"-"`
	NoFinalNewline    bool     `bson:"no_final_newline,omitempty" json:"-"`
	KeepCR            bool     `bson:"keep_cr,omitempty" json:"-"`
	BOM               bool     `bson:"bom,omitempty" json:"-"`
	OutputFormat      string   `bson:"output_format,omitempty" json:"output_format,omitempty"`
	Widths            []int    `bson:"widths,omitempty" json:"widths,omitempty"`
	OutputHeader      []string `bson:"output_header,omitempty" json:"output_header,omitempty"`
	CollectOutput     bool     `bson:"collect_output,omitempty" json:"collect_output,omitempty"`
	DestroyOnComplete bool     `bson:"destroy_on_complete,omitempty" json:"destroy_on_complete,omitempty"`
	StopOnError       bool     `bson:"stop_on_error,omitempty" json:"stop_on_error,omitempty"`
	// SliceRetryLimit is how many times the slices with failed records are
	// retried automatically before the job fails.
	SliceRetryLimit int `bson:"slice_retry_limit,omitempty" json:"slice_retry_limit,omitempty"`
	// MaxWorkers, when above zero, caps the workers processing the job's
	// slices at once, across all servers.
	MaxWorkers int `bson:"max_workers,omitempty" json:"max_workers,omitempty"`
	// Encrypt and Compress say how the job's slices are stored; KeyID names
	// the key its slices were written with (never the key itself). With
	// Encrypt, the CSV header is kept only in SealedHeader.
	Encrypt      bool   `bson:"encrypt,omitempty" json:"encrypt,omitempty"`
	Compress     bool   `bson:"compress,omitempty" json:"compress,omitempty"`
	KeyID        string `bson:"key_id,omitempty" json:"key_id,omitempty"`
	SealedHeader []byte `bson:"sealed_header,omitempty" json:"-"`
	// RawBytes and StoredBytes measure the uploaded input: record bytes, and
	// what the input slices take once compressed and encrypted.
	RawBytes    int64 `bson:"raw_bytes,omitempty" json:"raw_bytes,omitempty"`
	StoredBytes int64 `bson:"stored_bytes,omitempty" json:"stored_bytes,omitempty"`
	// The counts of sliced jobs, left out of the document while zero (a
	// simple job's always are: FerretDB encodes and decodes every value of
	// every copy of a job it writes and reads).
	RecordCount       int64 `bson:"record_count,omitempty" json:"record_count"`
	SliceCount        int64 `bson:"slice_count,omitempty" json:"slice_count"`
	ProcessedCount    int64 `bson:"processed_count,omitempty" json:"processed_count"`
	FailedRecordCount int64 `bson:"failed_record_count,omitempty" json:"failed_record_count"`

	// Batch jobs (issue 16).
	// Statistics are the job's named counters (rocketjob.Inc): a simple
	// job's; a sliced job's totals once it ended (its slices' and hooks').
	Statistics map[string]int64 `bson:"statistics,omitempty" json:"statistics,omitempty"`
	// HookStatistics are a sliced job's counters from its hooks, kept apart
	// from its slices' (which live with the slices) until the totals are made.
	HookStatistics map[string]int64 `bson:"hook_statistics,omitempty" json:"-"`
	// CategoryNames are a sliced job's output categories (its type's, at upload).
	CategoryNames []string `bson:"category_names,omitempty" json:"category_names,omitempty"`
	// Categories counts the output records of each category once the job ended.
	Categories map[string]int64 `bson:"categories,omitempty" json:"categories,omitempty"`
	// OutputCount is the number of output records once the job ended (of the
	// default output; the categories count theirs in Categories).
	OutputCount int64 `bson:"output_count,omitempty" json:"output_count,omitempty"`
	// DroppedCount is the number of records the job's code gave no output
	// for (neither output nor failed), once the job ended.
	DroppedCount int64 `bson:"dropped_count,omitempty" json:"dropped_count,omitempty"`
	// Totals says Statistics, Categories, OutputCount and DroppedCount of a
	// sliced job are final (written when it ended).
	Totals bool `bson:"totals,omitempty" json:"-"`
	// NotifyURL receives one signed JSON POST when the job ends.
	NotifyURL string `bson:"notify_url,omitempty" json:"notify_url,omitempty"`
	// EndHooks says the job has an end hook or a webhook to run when it ends.
	EndHooks bool `bson:"end_hooks,omitempty" json:"-"`
}

// Server is one server process's document in the servers collection.
type Server struct {
	Name        string    `bson:"_id" json:"name"`
	State       string    `bson:"state" json:"state"`
	PID         int       `bson:"pid" json:"pid"`
	Host        string    `bson:"host" json:"host"`
	Workers     int       `bson:"workers" json:"workers"`
	Busy        int       `bson:"busy" json:"busy"`
	StartedAt   time.Time `bson:"started_at" json:"started_at"`
	HeartbeatAt time.Time `bson:"heartbeat_at" json:"heartbeat_at"`
	Version     string    `bson:"version" json:"version"`
	// HeartbeatInterval and DeadAfter are the server's own liveness
	// settings: other servers judge its heartbeat by them (with a floor), so
	// servers started with different settings never declare each other dead
	// while alive.
	HeartbeatInterval time.Duration `bson:"heartbeat_interval,omitempty" json:"heartbeat_interval_ns,omitempty"`
	DeadAfter         time.Duration `bson:"dead_after,omitempty" json:"dead_after_ns,omitempty"`
	// Processing counts, by job id (hex), the slices this server's workers
	// were processing at its last heartbeat (not those claimed ahead or
	// waiting to be written).
	Processing map[string]int `bson:"processing,omitempty" json:"processing,omitempty"`
	// WaitingForKey lists the encrypted jobs this server skips because its
	// keyring lacks their key.
	WaitingForKey []string `bson:"waiting_for_key,omitempty" json:"waiting_for_key,omitempty"`
}

// MinDeadAfter is the floor under any server's published DeadAfter.
const MinDeadAfter = time.Second

// DeadAfterOr returns how old srv's heartbeat may be before it is dead: its
// own published DeadAfter (fallback when it published none, as servers of
// older versions), never less than two of its heartbeat intervals or
// MinDeadAfter.
func (srv *Server) DeadAfterOr(fallback time.Duration) time.Duration {
	d := srv.DeadAfter
	if d <= 0 {
		d = fallback
	}
	return max(d, 2*srv.HeartbeatInterval, MinDeadAfter)
}

// Server states.
const (
	ServerRunning  = "running"
	ServerPaused   = "paused"
	ServerStopping = "stopping"
)

// CronJobID is the id of the instance of a cron job (type and schedule)
// that runs at at: the same on every server, so that scheduling the next
// instance twice (two servers, or a retry after a crash) inserts it once.
func CronJobID(typ, spec string, at time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(at.Unix()))
	h := sha256.Sum256([]byte(typ + "\x00" + spec))
	copy(id[4:], h[:8])
	return id
}
