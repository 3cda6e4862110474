package rocketjob

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Job is a job as stored: its type, state, priority, timings, options and,
// for sliced jobs, record counts. Read it with Client.Get or List; change it
// only through the Client (every change is a transition checked in the
// database). A Job is a snapshot: read it again to see later changes.
type Job struct {
	// ID identifies the job (job commands take its hex form).
	ID bson.ObjectID `bson:"_id" json:"id"`
	// Type is the registered job type's name.
	Type string `bson:"type" json:"type"`
	// Kind is KindSimple (one Perform call) or KindSliced (records in slices).
	Kind Kind `bson:"kind" json:"kind"`
	// State is where the job is in its life: queued, running, paused,
	// completed, failed or aborted.
	State State `bson:"state" json:"state"`
	// Step is the sub-state of a running sliced job: before, processing or
	// after ("" for simple jobs).
	Step Step `bson:"step,omitempty" json:"step,omitempty"`
	// Priority orders the work: 1 is the most urgent, 100 the least; servers
	// take the most urgent runnable work first. It may change while the job
	// runs (Client.SetPriority).
	Priority int `bson:"priority" json:"priority"`
	// Description is free text shown in listings.
	Description string `bson:"description,omitempty" json:"description,omitempty"`
	// Params holds a simple job's arguments as stored (BSON); the job's code
	// gets them decoded into its argument type.
	Params bson.Raw `bson:"params,omitempty" json:"-"`

	// RunAt is the earliest time the job may start.
	RunAt time.Time `bson:"run_at" json:"run_at"`
	// ExpiresAt, when set: a job not started by then is aborted as expired,
	// never run.
	ExpiresAt *time.Time `bson:"expires_at,omitempty" json:"expires_at,omitempty"`
	// WindowStart is the daily processing window's start ("HH:MM"; see
	// Window): outside the window nothing of the job runs.
	WindowStart string `bson:"window_start,omitempty" json:"window_start,omitempty"`
	// WindowDuration is the daily processing window's length.
	WindowDuration time.Duration `bson:"window_duration,omitempty" json:"window_duration,omitempty"`
	// WindowLocation is the time zone of WindowStart (IANA name; "" is UTC).
	WindowLocation string `bson:"window_location,omitempty" json:"window_location,omitempty"`
	// Cron is the schedule of a recurring simple job: when an instance
	// completes or fails, the next one is enqueued for the schedule's next
	// time: one instance live at a time, but for the moment between an
	// instance writing its successor and ending (written first, so that a
	// crash cannot break the chain), when it runs and the next is queued.
	Cron string `bson:"cron,omitempty" json:"cron,omitempty"`
	// DependsOn lists jobs that must complete before this one starts; if one
	// fails or is aborted or destroyed, this job fails.
	DependsOn []bson.ObjectID `bson:"depends_on,omitempty" json:"depends_on,omitempty"`
	// CreatedAt is when the job was enqueued or uploaded.
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	// StartedAt is when the job first started running (nil before).
	StartedAt *time.Time `bson:"started_at,omitempty" json:"started_at,omitempty"`
	// CompletedAt is when the job completed, failed or was aborted (nil
	// while it is live).
	CompletedAt *time.Time `bson:"completed_at,omitempty" json:"completed_at,omitempty"`

	// Version counts the job's changes; every change is conditioned on it,
	// so two processes never both apply a change to the same version.
	Version int64 `bson:"version" json:"version"`
	// Attempt counts the runs started (simple jobs) or the automatic retries
	// of failed slices (sliced jobs, see SliceRetryLimit).
	Attempt int `bson:"attempt" json:"attempt"`
	// RetryLimit is how many failed runs of a simple job are retried, the
	// first after RetryBase, each next one after twice as long (plus jitter).
	RetryLimit int `bson:"retry_limit,omitempty" json:"retry_limit,omitempty"`
	// RetryBase is the delay before the first retry of a failed simple job.
	RetryBase time.Duration `bson:"retry_base,omitempty" json:"retry_base,omitempty"`
	// Server names the server running the job (simple jobs) or its
	// before/after step (sliced jobs); "" when none is.
	Server string `bson:"server,omitempty" json:"server,omitempty"`
	// Failure says why the job failed or was aborted (nil otherwise).
	Failure *Failure `bson:"failure,omitempty" json:"failure,omitempty"`

	// SliceSize is the number of records per slice (sliced jobs).
	SliceSize int `bson:"slice_size,omitempty" json:"slice_size,omitempty"`
	// Format is the input format of a sliced job: lines, csv, psv, tsv,
	// fixed, xlsx or jsonl.
	Format string `bson:"format,omitempty" json:"format,omitempty"`
	// Header holds a CSV job's column names (empty when Encrypt: then the
	// header is stored sealed).
	Header []string `bson:"header,omitempty" json:"header,omitempty"`
	// LineEnding is the uploaded file's line ending ("\n" or "\r\n"),
	// which the download writes back.
	LineEnding string `bson:"line_ending,omitempty" json:"-"`
	// NoFinalNewline records that the uploaded file's last line had no
	// line ending, so the download leaves it off too.
	NoFinalNewline bool `bson:"no_final_newline,omitempty" json:"-"`
	// KeepCR records that the records of a lines job keep the "\r" of the
	// lines that ended in "\r\n" (so mixed line endings come back exactly):
	// the job's function sees each line without it and its output gets it
	// back.
	KeepCR bool `bson:"keep_cr,omitempty" json:"-"`
	// BOM records that the uploaded file started with a UTF-8 byte order
	// mark, which the download writes back.
	BOM bool `bson:"bom,omitempty" json:"-"`
	// OutputFormat is the format a sliced job's output is written in when
	// it differs from Format (a conversion job); empty means Format.
	OutputFormat string `bson:"output_format,omitempty" json:"output_format,omitempty"`
	// Widths are the column widths, in characters, of a fixed-width job
	// (the column names are Header).
	Widths []int `bson:"widths,omitempty" json:"widths,omitempty"`
	// OutputHeader names the output columns of a job whose type declares
	// them (typed rows, sliced.RegisterRows); empty means Header.
	OutputHeader []string `bson:"output_header,omitempty" json:"output_header,omitempty"`
	// CollectOutput keeps the output records for download.
	CollectOutput bool `bson:"collect_output,omitempty" json:"collect_output,omitempty"`
	// DestroyOnComplete removes the job and its slices once it completes.
	DestroyOnComplete bool `bson:"destroy_on_complete,omitempty" json:"destroy_on_complete,omitempty"`
	// StopOnError fails the job at its first failed record instead of
	// finishing the other slices first.
	StopOnError bool `bson:"stop_on_error,omitempty" json:"stop_on_error,omitempty"`
	// SliceRetryLimit is how many times the slices with failed records are
	// retried automatically before the job fails.
	SliceRetryLimit int `bson:"slice_retry_limit,omitempty" json:"slice_retry_limit,omitempty"`
	// MaxWorkers, when above zero, caps the workers processing the job's
	// slices at once, across all servers.
	MaxWorkers int `bson:"max_workers,omitempty" json:"max_workers,omitempty"`
	// Encrypt stores the job's slices AES-256-GCM encrypted.
	Encrypt bool `bson:"encrypt,omitempty" json:"encrypt,omitempty"`
	// Compress stores the job's slices zstd-compressed (before encryption).
	Compress bool `bson:"compress,omitempty" json:"compress,omitempty"`
	// KeyID names the key the job's slices were written with (never the
	// key itself).
	KeyID string `bson:"key_id,omitempty" json:"key_id,omitempty"`
	// SealedHeader is an encrypted CSV job's header, sealed like a slice.
	SealedHeader []byte `bson:"sealed_header,omitempty" json:"-"`
	// RawBytes is the uploaded input's size in record bytes.
	RawBytes int64 `bson:"raw_bytes,omitempty" json:"raw_bytes,omitempty"`
	// StoredBytes is what the input slices take once compressed and
	// encrypted.
	StoredBytes int64 `bson:"stored_bytes,omitempty" json:"stored_bytes,omitempty"`
	// RecordCount is the number of records uploaded.
	RecordCount int64 `bson:"record_count" json:"record_count"`
	// SliceCount is the number of input slices.
	SliceCount int64 `bson:"slice_count" json:"slice_count"`
	// ProcessedCount is the number of records processed so far (output or
	// failed), updated as slices complete.
	ProcessedCount int64 `bson:"processed_count" json:"processed_count"`
	// FailedRecordCount is the number of records that failed; download them
	// with their errors (sliced.DownloadFailed, `rocketjob download --failed`).
	FailedRecordCount int64 `bson:"failed_record_count" json:"failed_record_count"`

	// Statistics are the job's named counters (see Inc): a simple job's
	// (kept across its runs); a sliced job's totals (its slices' and its
	// hooks') once it ended. Client.Progress has a running job's.
	Statistics map[string]int64 `bson:"statistics,omitempty" json:"statistics,omitempty"`
	// HookStatistics are a sliced job's counters from its hooks, kept apart
	// from its slices' until the totals are made.
	HookStatistics map[string]int64 `bson:"hook_statistics,omitempty" json:"-"`
	// CategoryNames are a sliced job's output categories (its type's, at
	// upload); empty for a job with the one default output.
	CategoryNames []string `bson:"category_names,omitempty" json:"category_names,omitempty"`
	// Categories counts the output records of each category, once the job
	// ended (Client.Progress has a running job's).
	Categories map[string]int64 `bson:"categories,omitempty" json:"categories,omitempty"`
	// OutputCount is the number of records of the default output, once the
	// job ended.
	OutputCount int64 `bson:"output_count,omitempty" json:"output_count,omitempty"`
	// DroppedCount is the number of records the job's code gave no output
	// for (neither output nor failed), once the job ended.
	DroppedCount int64 `bson:"dropped_count,omitempty" json:"dropped_count,omitempty"`
	// Totals says Statistics, Categories, OutputCount and DroppedCount of a
	// sliced job are final: written when it ended.
	Totals bool `bson:"totals,omitempty" json:"-"`
	// NotifyURL receives one JSON POST when the job completes, fails or is
	// aborted (see server.Config.WebhookSecret).
	NotifyURL string `bson:"notify_url,omitempty" json:"notify_url,omitempty"`
	// EndHooks says the job has an end hook (its type's) or a webhook to run
	// when it ends.
	EndHooks bool `bson:"end_hooks,omitempty" json:"-"`
}

// publicJob views a stored job as a Job (the two types have the same
// fields; a conversion fails to compile when they drift apart).
func publicJob(m *model.Job) *Job { return (*Job)(m) }

// storedJob is the inverse of publicJob.
func storedJob(j *Job) *model.Job { return (*model.Job)(j) }

// storedJobs views Jobs as stored jobs.
func storedJobs(js []*Job) []*model.Job {
	out := make([]*model.Job, len(js))
	for i, j := range js {
		out[i] = storedJob(j)
	}
	return out
}

// publicJobs views stored jobs as Jobs.
func publicJobs(ms []model.Job) []Job {
	out := make([]Job, len(ms))
	for i := range ms {
		out[i] = Job(ms[i])
	}
	return out
}

// State is a job's state.
type State = model.State

// Job states. A job moves queued -> running -> completed; running -> paused ->
// running; any live state -> aborted; running -> failed -> (retry) queued or
// running.
const (
	StateQueued    = model.StateQueued
	StateRunning   = model.StateRunning
	StatePaused    = model.StatePaused
	StateCompleted = model.StateCompleted
	StateFailed    = model.StateFailed
	StateAborted   = model.StateAborted
)

// Step is the sub-state of a running sliced job: before, processing or after.
type Step = model.Step

// Steps of a running sliced job.
const (
	StepBefore     = model.StepBefore
	StepProcessing = model.StepProcessing
	StepAfter      = model.StepAfter
)

// Kind tells simple jobs from sliced jobs.
type Kind = model.Kind

// Job kinds.
const (
	KindSimple = model.KindSimple
	KindSliced = model.KindSliced
)

// Failure says why a job failed: message, time and server.
type Failure = model.Failure

// Server is a server process as it last reported itself (Client.Servers).
type Server struct {
	// Name identifies the server (default host:pid); server commands take it.
	Name string `bson:"_id" json:"name"`
	// State is running, paused (takes no new work) or stopping.
	State string `bson:"state" json:"state"`
	// PID is the server's process id on Host.
	PID int `bson:"pid" json:"pid"`
	// Host is the machine the server runs on.
	Host string `bson:"host" json:"host"`
	// Workers is the number of workers the server runs.
	Workers int `bson:"workers" json:"workers"`
	// Busy is how many of them were working at the last heartbeat.
	Busy int `bson:"busy" json:"busy"`
	// StartedAt is when the server started.
	StartedAt time.Time `bson:"started_at" json:"started_at"`
	// HeartbeatAt is the server's last heartbeat; a server whose heartbeat
	// is older than its DeadAfter is dead and its work is requeued.
	HeartbeatAt time.Time `bson:"heartbeat_at" json:"heartbeat_at"`
	// Version is the rocketjob version the server runs.
	Version string `bson:"version" json:"version"`
	// HeartbeatInterval is how often the server writes its heartbeat.
	HeartbeatInterval time.Duration `bson:"heartbeat_interval,omitempty" json:"heartbeat_interval_ns,omitempty"`
	// DeadAfter is how old the server's heartbeat may get before other
	// servers declare it dead (never less than two heartbeats or a second).
	DeadAfter time.Duration `bson:"dead_after,omitempty" json:"dead_after_ns,omitempty"`
	// Processing counts, by job id (hex), the slices the server's workers
	// were processing at its last heartbeat (not those claimed ahead or
	// waiting to be written).
	Processing map[string]int `bson:"processing,omitempty" json:"processing,omitempty"`
	// WaitingForKey lists the encrypted jobs the server skips because its
	// keyring lacks their key.
	WaitingForKey []string `bson:"waiting_for_key,omitempty" json:"waiting_for_key,omitempty"`
}

// ParseState returns the State named s.
func ParseState(s string) (State, error) { return model.ParseState(s) }

type jobKey struct{}

// contextWithJob returns a context carrying job; servers call it (through
// internal/jobrun) before they run a job's code so that JobFromContext works
// there.
func contextWithJob(ctx context.Context, job *Job) context.Context {
	return context.WithValue(ctx, jobKey{}, job)
}

// JobFromContext returns the job being run, or nil outside a job.
func JobFromContext(ctx context.Context) *Job {
	j, _ := ctx.Value(jobKey{}).(*Job)
	return j
}
