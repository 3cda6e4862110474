package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func jobCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "job",
		Usage: "enqueue, list, show, wait for and change jobs",
		UsageText: usageText("rocketjob job enqueue|list|show|wait|priority|pause|resume|abort|retry|destroy|run-now|edit ...",
			"rocketjob job enqueue nap --param ms=500",
			"rocketjob job list --state running",
			"rocketjob job show ID",
			"rocketjob job wait ID --timeout 10m",
			"rocketjob job priority ID 5"),
		Action: groupAction,
		Subcommands: []*cli.Command{
			jobEnqueueCommand(st),
			jobListCommand(st),
			jobShowCommand(st),
			jobWaitCommand(st),
			jobPriorityCommand(st),
			jobPauseResumeCommand(st, "pause", "stop a queued job from starting, or a running sliced job from taking more slices", (*rocketjob.Client).Pause, (*rocketjob.Client).PauseAll),
			jobPauseResumeCommand(st, "resume", "continue a paused job", (*rocketjob.Client).Resume, (*rocketjob.Client).ResumeAll),
			jobChangeCommand(st, "abort", "stop a job for good (work in flight finishes, its result is dropped)", (*rocketjob.Client).Abort),
			jobChangeCommand(st, "retry", "run a failed job again (a sliced job re-runs only its failed slices)", (*rocketjob.Client).Retry),
			jobDestroyCommand(st),
			jobRunNowCommand(st),
			jobEditCommand(st),
		},
	}
}

func priorityFlag() cli.Flag {
	return &cli.IntFlag{Name: "priority", Usage: "`N` from 1 (runs first) to 100", DefaultText: "the job type's, usually 50"}
}

func paramFlag() cli.Flag {
	// KeepSpace: a value keeps its spaces (--param 'text=> ').
	return &cli.StringSliceFlag{Name: "param", Usage: "job parameter `KEY=VALUE` (repeatable)", KeepSpace: true}
}

// paramPairs returns the --param values, refusing one that is not KEY=VALUE
// as a usage error.
func paramPairs(c *cli.Context) ([]string, error) {
	pairs := c.StringSlice("param")
	for _, p := range pairs {
		if k, _, ok := strings.Cut(p, "="); !ok || k == "" {
			return nil, usagef("--param %q: want KEY=VALUE", p)
		}
	}
	return pairs, nil
}

// priorityOption returns the --priority value (0: the type's default),
// refusing an explicit value outside 1..100.
func priorityOption(c *cli.Context) (int, error) {
	if !c.IsSet("priority") {
		return 0, nil
	}
	p := c.Int("priority")
	if err := rocketjob.CheckPriority(p); err != nil {
		return 0, usagef("--priority: %v", err)
	}
	return p, nil
}

// parseRunAt reads --run-at: an RFC 3339 time or a duration from now.
func parseRunAt(s string) (time.Time, error) { return parseWhen("--run-at", s) }

// parseWhen reads a time flag: an RFC 3339 time or a duration from now.
func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("%s %s: the delay must not be negative", flag, s)
		}
		return time.Now().Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("%s %q: not an RFC 3339 time (2025-01-02T15:04:05Z) nor a duration (10s, 5m)", flag, s)
	}
	return t, nil
}

// scheduleFlags are the flags of enqueue and upload that say when a job may run.
func scheduleFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "expires-at", Usage: "abort the job as expired if it has not started by `T` (RFC 3339 time or a delay such as 1h)"},
		&cli.StringSliceFlag{Name: "after", Usage: "start only after job `ID` completed (repeatable); fail if it fails"},
		&cli.StringFlag{Name: "window", Usage: "process only in a daily window `START,DURATION[,ZONE]`, e.g. 22:30,3h,Europe/London"},
	}
}

// parseWindow reads --window START,DURATION[,ZONE].
func parseWindow(s string) (*rocketjob.Window, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, usagef("--window %q: want START,DURATION[,ZONE], e.g. 22:30,3h,Europe/London", s)
	}
	d, err := time.ParseDuration(parts[1])
	if err != nil {
		return nil, usagef("--window %q: %v", s, err)
	}
	w := &rocketjob.Window{Start: parts[0], Duration: d}
	if len(parts) == 3 {
		w.Location = parts[2]
	}
	if err := w.Check(); err != nil {
		return nil, usagef("--window: %v", err)
	}
	return w, nil
}

func jobEnqueueCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "enqueue",
		Usage:     "enqueue a simple job, or one per line of --from-file; prints the ids",
		ArgsUsage: "TYPE",
		UsageText: usageText("rocketjob job enqueue TYPE [--priority N] [--run-at T] [--expires-at T] [--after ID ...] [--retry-limit N] [--cron SPEC] [--description TEXT] [--param K=V ... | --from-file ARGS.jsonl [--json]]",
			"rocketjob job enqueue nap --param ms=500",
			"rocketjob job enqueue nap --priority 10 --run-at 30s --description \"nightly nap\"",
			"rocketjob job enqueue nap --run-at 2030-01-02T03:04:05Z",
			"rocketjob job enqueue nap --after 6548f0c2a1b2c3d4e5f60718 --expires-at 1h --retry-limit 3",
			"rocketjob job enqueue nap --cron \"CRON_TZ=Europe/London 0 2 * * *\" --param ms=100",
			"rocketjob job enqueue nap --from-file naps.jsonl      # one job per line, e.g. {\"ms\": 100}",
			"producer | rocketjob job enqueue nap --from-file - --json"),
		Flags: append([]cli.Flag{
			priorityFlag(),
			&cli.StringFlag{Name: "run-at", Usage: "start no earlier than `T`: an RFC 3339 time or a delay such as 10s"},
			&cli.StringFlag{Name: "description", Usage: "free `TEXT` shown in listings"},
			&cli.IntFlag{Name: "retry-limit", Usage: "retry a failed run up to `N` times, with exponential backoff", DefaultText: "the job type's"},
			&cli.StringFlag{Name: "cron", Usage: "recurring job on schedule `SPEC` (\"0 2 * * *\", \"CRON_TZ=Europe/Berlin 0 2 * * *\", @hourly; optional leading seconds field)"},
			paramFlag(),
			&cli.StringFlag{Name: "from-file", Usage: "enqueue one job per line of `FILE` (\"-\": standard input), each line a JSON object of the job's arguments; all or none are enqueued"},
			&cli.BoolFlag{Name: "json", Usage: "with --from-file: print the ids as a JSON array"},
		}, scheduleFlags()...),
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "TYPE")
			if err != nil {
				return err
			}
			typ := a[0]
			spec, err := st.reg.Lookup(typ)
			if err != nil {
				return err
			}
			if spec.Kind != rocketjob.KindSimple {
				return fmt.Errorf("job type %q is a sliced job: upload a file instead (rocketjob upload --job %s FILE)", typ, typ)
			}
			runAt, err := parseRunAt(c.String("run-at"))
			if err != nil {
				return err
			}
			window, err := parseWindow(c.String("window"))
			if err != nil {
				return err
			}
			if spec := c.String("cron"); spec != "" {
				if _, err := rocketjob.NextCronRun(spec, time.Now()); err != nil {
					return usagef("--cron: %v", err)
				}
			}
			prio, err := priorityOption(c)
			if err != nil {
				return err
			}
			pairs, err := paramPairs(c)
			if err != nil {
				return err
			}
			var jobArgs any // an untyped nil when there are no parameters
			var bulk *argsFile
			if c.IsSet("from-file") {
				if len(pairs) > 0 || c.IsSet("cron") {
					return usagef("--from-file takes the arguments from the file: give no --param or --cron with it")
				}
				if bulk, err = readArgsFile(c.App.Reader, c.String("from-file")); err != nil {
					return err
				}
			} else {
				if c.Bool("json") {
					return usagef("--json goes with --from-file")
				}
				params, err := jobparams.Parse(st.reg, typ, pairs)
				if err != nil {
					return err
				}
				if params != nil {
					jobArgs = params
				}
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			opts := &rocketjob.EnqueueOptions{Priority: prio, RunAt: runAt, Description: c.String("description"), DependsOn: c.StringSlice("after"), Cron: c.String("cron"), Window: window}

			if opts.ExpiresAt, err = parseWhen("--expires-at", c.String("expires-at")); err != nil {
				return err
			}
			if c.IsSet("retry-limit") {
				n := c.Int("retry-limit")
				opts.RetryLimit = &n
			}
			if bulk != nil {
				return bulk.enqueue(c, client, typ, opts)
			}
			job, err := client.Enqueue(c.Context, typ, jobArgs, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), job.ID.Hex())
			return nil
		},
	}
}

// jobView is a job as `job show --json` and `job list --json` print it.
type jobView struct {
	ID                string             `json:"id"`
	Type              string             `json:"type"`
	Kind              string             `json:"kind"`
	State             string             `json:"state"`
	Step              string             `json:"step,omitempty"`
	Priority          int                `json:"priority"`
	Description       string             `json:"description"`
	RunAt             time.Time          `json:"run_at"`
	CreatedAt         time.Time          `json:"created_at"`
	StartedAt         *time.Time         `json:"started_at"`
	CompletedAt       *time.Time         `json:"completed_at"`
	Attempt           int                `json:"attempt"`
	RetryLimit        int                `json:"retry_limit,omitempty"`
	Cron              string             `json:"cron,omitempty"`
	ExpiresAt         *time.Time         `json:"expires_at,omitempty"`
	DependsOn         []string           `json:"depends_on,omitempty"`
	Server            string             `json:"server,omitempty"`
	Failure           *rocketjob.Failure `json:"failure"`
	RecordCount       int64              `json:"record_count"`
	ProcessedCount    int64              `json:"processed_count"`
	FailedRecordCount int64              `json:"failed_record_count"`
	SliceCount        int64              `json:"slice_count"`
	Slices            *sliceCounts       `json:"slices,omitempty"`
	CollectOutput     bool               `json:"collect_output"`
	Encrypt           bool               `json:"encrypt"`
	Compress          bool               `json:"compress"`
	KeyID             string             `json:"key_id,omitempty"`
	RawBytes          int64              `json:"raw_bytes,omitempty"`
	StoredBytes       int64              `json:"stored_bytes,omitempty"`
	Waiting           string             `json:"waiting,omitempty"`
	Percent           float64            `json:"percent"`
	RecordsPerHour    float64            `json:"records_per_hour"`
	ETASeconds        *float64           `json:"eta_seconds"`
	// Batch jobs: parameters, counters, output categories, webhook.
	Params       map[string]any   `json:"params,omitempty"`
	Statistics   map[string]int64 `json:"statistics,omitempty"`
	Categories   map[string]int64 `json:"categories,omitempty"`
	DroppedCount int64            `json:"dropped_count,omitempty"`
	NotifyURL    string           `json:"notify_url,omitempty"`
	// Every other option a job has (issue 18): its processing window
	// (START,DURATION[,ZONE]) and, for a sliced job, how it processes.
	Window            string `json:"window,omitempty"`
	MaxWorkers        int    `json:"max_workers,omitempty"`
	SliceSize         int    `json:"slice_size,omitempty"`
	Format            string `json:"format,omitempty"`
	StopOnError       bool   `json:"stop_on_error,omitempty"`
	DestroyOnComplete bool   `json:"destroy_on_complete,omitempty"`
	SliceRetryLimit   int    `json:"slice_retry_limit,omitempty"`
}

type sliceCounts struct {
	Queued  int64 `json:"queued"`
	Claimed int64 `json:"claimed"`
	Running int64 `json:"running"`
	Failed  int64 `json:"failed"`
	Done    int64 `json:"done"`
}

// newJobView builds the view of job; p (from Client.Progress) may be nil,
// then the counts come from the job document alone.
func newJobView(job *rocketjob.Job, p *rocketjob.Progress) jobView {
	v := jobView{
		ID:                job.ID.Hex(),
		Type:              job.Type,
		Kind:              string(job.Kind),
		State:             string(job.State),
		Priority:          job.Priority,
		Description:       job.Description,
		RunAt:             job.RunAt,
		CreatedAt:         job.CreatedAt,
		StartedAt:         job.StartedAt,
		CompletedAt:       job.CompletedAt,
		Attempt:           job.Attempt,
		RetryLimit:        job.RetryLimit,
		Cron:              job.Cron,
		ExpiresAt:         job.ExpiresAt,
		Server:            job.Server,
		Failure:           job.Failure,
		RecordCount:       job.RecordCount,
		ProcessedCount:    job.ProcessedCount,
		FailedRecordCount: job.FailedRecordCount,
		SliceCount:        job.SliceCount,
		CollectOutput:     job.CollectOutput,
		Encrypt:           job.Encrypt,
		Compress:          job.Compress,
		KeyID:             job.KeyID,
		RawBytes:          job.RawBytes,
		StoredBytes:       job.StoredBytes,
	}
	for _, d := range job.DependsOn {
		v.DependsOn = append(v.DependsOn, d.Hex())
	}
	v.Params = jobParams(job)
	v.Statistics, v.Categories, v.DroppedCount, v.NotifyURL = job.Statistics, job.Categories, job.DroppedCount, job.NotifyURL
	if job.WindowStart != "" {
		v.Window = rocketjob.Window{Start: job.WindowStart, Duration: job.WindowDuration, Location: job.WindowLocation}.String()
	}
	if job.Kind == rocketjob.KindSliced {
		v.MaxWorkers, v.SliceSize, v.Format = job.MaxWorkers, job.SliceSize, job.Format
		v.StopOnError, v.DestroyOnComplete, v.SliceRetryLimit = job.StopOnError, job.DestroyOnComplete, job.SliceRetryLimit
	}
	if len(job.CategoryNames) > 0 && v.Categories == nil {
		v.Categories = map[string]int64{}
		for _, c := range job.CategoryNames {
			v.Categories[c] = 0
		}
	}
	if job.State == rocketjob.StateRunning {
		v.Step = string(job.Step)
	}
	if job.State == rocketjob.StateCompleted {
		v.Percent = 100
	}
	if p != nil {
		v.Statistics, v.DroppedCount = p.Statistics, p.Dropped
		if p.Categories != nil {
			v.Categories = p.Categories
		}
		v.ProcessedCount, v.FailedRecordCount = p.Processed, p.Failed
		if p.Records > 0 || job.Kind == rocketjob.KindSliced {
			v.RecordCount = p.Records
		}
		v.Slices = &sliceCounts{Queued: p.Slices.Queued, Claimed: p.Slices.Claimed, Running: p.Slices.Running, Failed: p.Slices.Failed, Done: p.Slices.Done}
		if job.Kind == rocketjob.KindSliced {
			v.Percent = p.Percent
			v.RecordsPerHour = p.RecordsPerHour
			if job.State == rocketjob.StateRunning && p.RecordsPerHour > 0 {
				eta := p.Remaining.Seconds()
				v.ETASeconds = &eta
			}
		}
	} else if job.Kind == rocketjob.KindSliced && job.RecordCount > 0 && job.State == rocketjob.StateCompleted {
		v.Percent = 100
	}
	return v
}

// jobParams decodes a job's parameters for display (nil when it has none).
func jobParams(job *rocketjob.Job) map[string]any {
	if len(job.Params) == 0 {
		return nil
	}
	var m map[string]any
	if err := bson.Unmarshal(job.Params, &m); err != nil || len(m) == 0 {
		return nil
	}
	return m
}

// counters prints a map of counters as "a=1, b=2" in name order.
func counters(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + commas(m[k])
	}
	return strings.Join(parts, ", ")
}

// showJob reads a job with its progress.
func showJob(ctx context.Context, client *rocketjob.Client, id string) (jobView, error) {
	job, err := client.Get(ctx, id)
	if err != nil {
		return jobView{}, err
	}
	p, err := client.Progress(ctx, job)
	if err != nil {
		return jobView{}, err
	}
	v := newJobView(job, p)
	if v.Waiting, err = waiting(ctx, client, job); err != nil {
		return jobView{}, err
	}
	return v, nil
}

// waiting explains why an encrypted job makes no progress: the servers that
// lack its key (they say so in their heartbeat).
func waiting(ctx context.Context, client *rocketjob.Client, job *rocketjob.Job) (string, error) {
	if !job.Encrypt || (job.State != rocketjob.StateQueued && job.State != rocketjob.StateRunning) {
		return "", nil
	}
	servers, err := client.Servers(ctx)
	if err != nil {
		return "", err
	}
	var lacking []string
	for _, s := range servers {
		if slices.Contains(s.WaitingForKey, job.ID.Hex()) {
			lacking = append(lacking, s.Name)
		}
	}
	if len(lacking) == 0 {
		return "", nil
	}
	msg := fmt.Sprintf("server(s) %s lack key %q for this job", strings.Join(lacking, ", "), job.KeyID)
	if len(lacking) == len(servers) {
		msg = "waiting: every server lacks key " + strconv.Quote(job.KeyID) + " for this job (" + strings.Join(lacking, ", ") + ")"
	}
	return msg, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func jobListCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list jobs, most urgent first (or newest first)",
		UsageText: usageText("rocketjob job list [--state S[,S...]] [--type T] [--limit N] [--newest] [--json]",
			"rocketjob job list",
			"rocketjob job list --state queued,running --type reverse",
			"rocketjob job list --state failed --newest --limit 20",
			"rocketjob job list --json"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state", Usage: "only jobs in state `S` (queued, running, paused, completed, failed, aborted; comma-separated for several)"},
			&cli.StringFlag{Name: "type", Usage: "only jobs of type `T`"},
			&cli.IntFlag{Name: "limit", Usage: "at most `N` jobs (0: all)"},
			&cli.BoolFlag{Name: "newest", Usage: "the most recently created jobs first, whatever their priority"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			var states []rocketjob.State
			if s := c.String("state"); s != "" {
				for _, name := range strings.Split(s, ",") {
					state, err := rocketjob.ParseState(strings.TrimSpace(name))
					if err != nil {
						return usagef("--state: %v", err)
					}
					states = append(states, state)
				}
			}
			if c.Int("limit") < 0 {
				return usagef("--limit must not be negative")
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			jobs, err := client.List(c.Context, &rocketjob.ListOptions{States: states, Type: c.String("type"), Limit: int64(c.Int("limit")), Newest: c.Bool("newest")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				views := make([]jobView, 0, len(jobs))
				for i := range jobs {
					views = append(views, newJobView(&jobs[i], nil))
				}
				return writeJSON(out(c), views)
			}
			tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSTATE\tPRIORITY\tCREATED\tDESCRIPTION")
			for _, j := range jobs {
				state := string(j.State)
				if j.State == rocketjob.StateRunning && j.Step != "" && j.Step != rocketjob.StepProcessing {
					state += "/" + string(j.Step)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", j.ID.Hex(), j.Type, state, j.Priority, timeString(&j.CreatedAt), truncate(j.Description, 50))
			}
			return tw.Flush()
		},
	}
}

func jobShowCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a job: state, timings, record counts, progress",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob job show ID [--json]",
			"rocketjob job show 65a1b2c3d4e5f60718293a4b",
			"rocketjob job show 65a1b2c3d4e5f60718293a4b --json"),
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				v, err := showJob(c.Context, client, id)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(out(c), v)
				}
				return printJob(out(c), v)
			})
		},
	}
}

// printJob prints a job as aligned "key: value" lines.
func printJob(w io.Writer, v jobView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	line := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, a...)...) }
	line("id", "%s", v.ID)
	line("type", "%s (%s)", v.Type, v.Kind)
	if v.Step != "" {
		line("state", "%s (%s)", v.State, v.Step)
	} else {
		line("state", "%s", v.State)
	}
	line("priority", "%d", v.Priority)
	line("description", "%s", v.Description)
	line("created_at", "%s", timeString(&v.CreatedAt))
	if v.State == string(rocketjob.StateQueued) && v.RunAt.After(time.Now()) {
		line("run_at", "%s", timeString(&v.RunAt))
	}
	if v.ExpiresAt != nil {
		line("expires_at", "%s", timeString(v.ExpiresAt))
	}
	if v.Cron != "" {
		line("cron", "%s", v.Cron)
	}
	if len(v.DependsOn) > 0 {
		line("after", "%s", strings.Join(v.DependsOn, ", "))
	}
	if v.RetryLimit > 0 {
		line("attempt", "%d (retry limit %d)", v.Attempt, v.RetryLimit)
	}
	if v.Window != "" {
		line("window", "%s", v.Window)
	}
	line("started_at", "%s", timeString(v.StartedAt))
	line("completed_at", "%s", timeString(v.CompletedAt))
	if v.Server != "" {
		line("server", "%s", v.Server)
	}
	if len(v.Params) > 0 {
		keys := make([]string, 0, len(v.Params))
		for k := range v.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, v.Params[k])
		}
		line("params", "%s", strings.Join(parts, ", "))
	}
	if len(v.Statistics) > 0 {
		line("statistics", "%s", counters(v.Statistics))
	}
	if v.Kind == string(rocketjob.KindSliced) {
		line("record_count", "%s", commas(v.RecordCount))
		line("processed_count", "%s", commas(v.ProcessedCount))
		line("failed_record_count", "%s", commas(v.FailedRecordCount))
		if v.DroppedCount > 0 {
			line("dropped_count", "%s", commas(v.DroppedCount))
		}
		if len(v.Categories) > 0 {
			line("categories", "%s", counters(v.Categories))
		}
		if v.Slices != nil {
			line("slices", "%s queued, %s claimed, %s running, %s with failed records, %s done (of %s)",
				commas(v.Slices.Queued), commas(v.Slices.Claimed), commas(v.Slices.Running), commas(v.Slices.Failed), commas(v.Slices.Done), commas(v.SliceCount))
		}
		line("percent", "%.1f%%", v.Percent)
		if v.RecordsPerHour > 0 {
			line("records_per_hour", "%s", commas(int64(v.RecordsPerHour)))
		} else {
			line("records_per_hour", "-")
		}
		if v.ETASeconds != nil {
			line("eta", "%s", humanDuration(time.Duration(*v.ETASeconds*float64(time.Second))))
		} else {
			line("eta", "-")
		}
		line("collect_output", "%t", v.CollectOutput)
		line("options", "format=%s slice_size=%d max_workers=%s stop_on_error=%t destroy_on_complete=%t slice_retry_limit=%d",
			orDash(v.Format), v.SliceSize, maxWorkersText(v.MaxWorkers), v.StopOnError, v.DestroyOnComplete, v.SliceRetryLimit)
		if v.NotifyURL != "" {
			line("notify_url", "%s", v.NotifyURL)
		}
		if v.Encrypt || v.Compress {
			line("storage", "encrypt=%t compress=%t key=%s", v.Encrypt, v.Compress, orDash(v.KeyID))
			line("input_bytes", "%s stored of %s raw", commas(v.StoredBytes), commas(v.RawBytes))
		}
		if v.Waiting != "" {
			line("waiting", "%s", v.Waiting)
		}
	}
	if v.Failure != nil {
		where := ""
		if v.Failure.Server != "" {
			where = " on " + v.Failure.Server
		}
		line("failure", "%s (at %s%s)", oneLine(v.Failure.Message), timeString(&v.Failure.At), where)
	}
	return tw.Flush()
}

// maxWorkersText is a job's cap on workers, "-" for none.
func maxWorkersText(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func jobWaitCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until a job completes (exit 0), fails or is aborted (exit 1)",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob job wait ID [--timeout D]",
			"rocketjob job wait 65a1b2c3d4e5f60718293a4b",
			"rocketjob job wait 65a1b2c3d4e5f60718293a4b --timeout 10m && echo done"),
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Usage: "give up (exit 1) after `D` (0: wait forever)"},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "ID")
			if err != nil {
				return err
			}
			if _, err := rocketjob.ParseID(a[0]); err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			if timeout < 0 {
				return usagef("--timeout must not be negative")
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			ctx := c.Context
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			job, err := waitJob(ctx, client, a[0], newProgress(c.App.ErrWriter))
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && c.Context.Err() == nil {
					if job != nil {
						return fmt.Errorf("timed out after %s: job %s is still %s", timeout, job.ID.Hex(), job.State)
					}
					return fmt.Errorf("timed out after %s waiting for job %s", timeout, a[0])
				}
				return err
			}
			return jobResult(job)
		},
	}
}

// waitJob waits for a job to end, showing the progress of a sliced job when
// p is on a terminal.
func waitJob(ctx context.Context, client *rocketjob.Client, id string, p *progressLine) (*rocketjob.Job, error) {
	if !p.on {
		return client.Wait(ctx, id, 250*time.Millisecond)
	}
	defer p.done()
	for {
		job, err := client.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		switch job.State {
		case rocketjob.StateCompleted, rocketjob.StateFailed, rocketjob.StateAborted:
			return job, nil
		}
		if job.Kind == rocketjob.KindSliced && job.State == rocketjob.StateRunning {
			if pr, err := client.Progress(ctx, job); err == nil {
				extra := fmt.Sprintf("%s/%s records", commas(pr.Processed), commas(pr.Records))
				if pr.Remaining > 0 {
					extra += ", " + humanDuration(pr.Remaining) + " left"
				}
				p.bar(true, "processing", pr.Processed, pr.Records, extra)
			}
		} else {
			p.set(true, fmt.Sprintf("job %s is %s", job.ID.Hex(), job.State))
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// jobResult is nil for a completed job and an error with the failure
// message otherwise.
func jobResult(job *rocketjob.Job) error {
	switch job.State {
	case rocketjob.StateCompleted:
		return nil
	case rocketjob.StateAborted:
		return fmt.Errorf("job %s was aborted", job.ID.Hex())
	default:
		m := "no failure message"
		if job.Failure != nil && job.Failure.Message != "" {
			m = job.Failure.Message
		}
		return fmt.Errorf("job %s %s: %s", job.ID.Hex(), job.State, m)
	}
}

func jobPriorityCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "priority",
		Usage:     "change a job's priority (1 runs first); running jobs follow within a slice",
		ArgsUsage: "ID N",
		UsageText: usageText("rocketjob job priority ID N",
			"rocketjob job priority 65a1b2c3d4e5f60718293a4b 5"),
		Action: func(c *cli.Context) error {
			a, err := args(c, 2, 2, "ID N")
			if err != nil {
				return err
			}
			if _, err := rocketjob.ParseID(a[0]); err != nil {
				return err
			}
			p, err := strconv.Atoi(a[1])
			if err != nil {
				return usagef("%s: priority %q is not a number (1..100)", cmdName(c), a[1])
			}
			if err := rocketjob.CheckPriority(p); err != nil {
				return usagef("%s: %v", cmdName(c), err)
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			job, err := client.SetPriority(c.Context, a[0], p)
			if err != nil {
				return err
			}
			msg(c, "job %s: priority %d", job.ID.Hex(), job.Priority)
			return nil
		},
	}
}

func jobChangeCommand(st *appState, name, usage string, change func(*rocketjob.Client, context.Context, string) (*rocketjob.Job, error)) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob job "+name+" ID", "rocketjob job "+name+" 65a1b2c3d4e5f60718293a4b"),
		Action: func(c *cli.Context) error {
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				job, err := change(client, c.Context, id)
				if err != nil {
					return err
				}
				msg(c, "job %s is %s", job.ID.Hex(), job.State)
				return nil
			})
		},
	}
}

func jobDestroyCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "destroy",
		Usage:     "remove a job and all its slices, whatever its state",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob job destroy ID", "rocketjob job destroy 65a1b2c3d4e5f60718293a4b"),
		Action: func(c *cli.Context) error {
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				if err := client.Destroy(c.Context, id); err != nil {
					return err
				}
				msg(c, "job %s destroyed", id)
				return nil
			})
		},
	}
}

// withJobID runs fn for a command whose one argument is a job id: the id is
// checked before connecting (a malformed id needs no database), and the
// client is closed afterwards.
func (st *appState) withJobID(c *cli.Context, fn func(client *rocketjob.Client, id string) error) error {
	a, err := args(c, 1, 1, "ID")
	if err != nil {
		return err
	}
	if _, err := rocketjob.ParseID(a[0]); err != nil {
		return err
	}
	client, err := st.connect(c)
	if err != nil {
		return err
	}
	defer closeClient(client)
	return fn(client, a[0])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
