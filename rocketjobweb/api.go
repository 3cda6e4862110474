package rocketjobweb

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Paging limits.
const (
	defaultPerPage = 50
	maxPerPage     = 500
	defaultLimit   = 100
	maxLimit       = 1000
)

// apiError is an error with its HTTP status and stable code; it is what
// every failed API request answers: {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func apiErr(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

func badParam(format string, a ...any) *apiError {
	return apiErr(http.StatusBadRequest, "bad_parameter", fmt.Sprintf(format, a...))
}

// classify maps an error to the answer a client gets. Client mistakes are
// 4xx with their own code; anything else is a 500 whose message names only
// the request id (the log has the details).
func classify(err error, reqID string) *apiError {
	var ae *apiError
	var ite *rocketjob.InvalidTransitionError
	var ie *sliced.InputError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the upload is larger than the limit of %d bytes", mbe.Limit))
	case errors.Is(err, rocketjob.ErrJobNotFound):
		return apiErr(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, rocketjob.ErrServerNotFound):
		return apiErr(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, rocketjob.ErrBadPriority):
		return apiErr(http.StatusBadRequest, "bad_priority", err.Error())
	case errors.Is(err, rocketjob.ErrUnknownType):
		return apiErr(http.StatusBadRequest, "unknown_type", err.Error())
	case errors.Is(err, rocketjob.ErrBadArgs):
		return apiErr(http.StatusBadRequest, "bad_args", err.Error())
	case errors.As(err, &ite):
		return apiErr(http.StatusConflict, "invalid_transition", ite.Error())
	case errors.Is(err, rocketjob.ErrConflict):
		return apiErr(http.StatusConflict, "conflict", "the job is being changed by another process: try again")
	case errors.As(err, &ie), errors.Is(err, sliced.ErrRecordTooLong):
		return apiErr(http.StatusBadRequest, "bad_input", err.Error())
	case errors.Is(err, sliced.ErrBadOptions):
		return apiErr(http.StatusBadRequest, "bad_parameter", err.Error())
	case errors.Is(err, sliced.ErrNoCategory):
		return apiErr(http.StatusBadRequest, "bad_category", err.Error())
	case errors.Is(err, encryption.ErrNoKey), errors.Is(err, encryption.ErrNoKeyring):
		return apiErr(http.StatusConflict, "no_key", err.Error())
	}
	return apiErr(http.StatusInternalServerError, "internal", "internal error (request "+reqID+"; see the server log)")
}

// fail answers err: JSON for the API, an error page for a browser.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err, requestIDFrom(r))
	if e.Status >= 500 {
		if r.Context().Err() != nil {
			return // the client went away
		}
		h.log.Error("request failed", "req_id", requestIDFrom(r), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if isAPI(r) {
		writeError(w, r, e)
		return
	}
	h.errorPage(w, r, e)
}

func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// jobJSON is a job as the API shows it.
type jobJSON struct {
	ID          string             `json:"id"`
	Type        string             `json:"type"`
	Kind        string             `json:"kind"`
	State       string             `json:"state"`
	Step        string             `json:"step,omitempty"`
	Priority    int                `json:"priority"`
	Description string             `json:"description"`
	Attempt     int                `json:"attempt"`
	Server      string             `json:"server,omitempty"`
	Progress    progressJSON       `json:"progress"`
	Timings     timingsJSON        `json:"timings"`
	Options     *optionsJSON       `json:"options,omitempty"`
	Params      json.RawMessage    `json:"params,omitempty"`
	Failure     *rocketjob.Failure `json:"failure"`
	Links       linksJSON          `json:"links"`
	// Statistics are the job's counters (rocketjob.Inc); Categories counts
	// the output records of each output category (a type with categories).
	Statistics map[string]int64 `json:"statistics,omitempty"`
	Categories map[string]int64 `json:"categories,omitempty"`
	// NotifyURL receives the job's end as a JSON POST.
	NotifyURL string `json:"notify_url,omitempty"`
	// Schedule holds the job's scheduling options, those it has.
	Schedule *scheduleJSON `json:"schedule,omitempty"`
}

// progressJSON counts records and slices. Succeeded is processed minus
// failed. Sampled says the counts of a running job come from the UI
// process's last sample (job lists) rather than a fresh count.
type progressJSON struct {
	Total          int64       `json:"total"`
	Processed      int64       `json:"processed"`
	Succeeded      int64       `json:"succeeded"`
	Failed         int64       `json:"failed"`
	Percent        float64     `json:"percent"`
	RecordsPerHour float64     `json:"records_per_hour,omitempty"`
	ETASeconds     *float64    `json:"eta_seconds,omitempty"`
	Slices         *slicesJSON `json:"slices,omitempty"`
	Sampled        bool        `json:"sampled,omitempty"`
	// Dropped counts the records the job's code gave no output for.
	Dropped int64 `json:"dropped,omitempty"`
}

type slicesJSON struct {
	Total   int64 `json:"total"`
	Queued  int64 `json:"queued"`
	Claimed int64 `json:"claimed"`
	Running int64 `json:"running"`
	Failed  int64 `json:"failed"`
	Done    int64 `json:"done"`
}

type timingsJSON struct {
	CreatedAt       time.Time  `json:"created_at"`
	RunAt           time.Time  `json:"run_at"`
	StartedAt       *time.Time `json:"started_at"`
	CompletedAt     *time.Time `json:"completed_at"`
	QueuedSeconds   float64    `json:"queued_seconds"`
	DurationSeconds *float64   `json:"duration_seconds"`
}

// optionsJSON are a sliced job's options. KeyID names the encryption key;
// keys themselves are never shown.
type optionsJSON struct {
	SliceSize         int    `json:"slice_size"`
	Format            string `json:"format"`
	CollectOutput     bool   `json:"collect_output"`
	DestroyOnComplete bool   `json:"destroy_on_complete"`
	StopOnError       bool   `json:"stop_on_error"`
	Encrypt           bool   `json:"encrypt"`
	Compress          bool   `json:"compress"`
	KeyID             string `json:"key_id,omitempty"`
	RawBytes          int64  `json:"raw_bytes,omitempty"`
	StoredBytes       int64  `json:"stored_bytes,omitempty"`
	// MaxWorkers caps the workers on the job at once (0: no cap);
	// SliceRetryLimit is how often slices with failed records re-run.
	MaxWorkers      int `json:"max_workers"`
	SliceRetryLimit int `json:"slice_retry_limit,omitempty"`
}

type linksJSON struct {
	Self     string `json:"self"`
	Output   string `json:"output,omitempty"`
	Failures string `json:"failures,omitempty"`
	Page     string `json:"page"`
	// Categories are the downloads of the job's output categories, by name.
	Categories map[string]string `json:"categories,omitempty"`
}

// newJobJSON builds the API view of a job, its links under prefix. p is a
// fresh Progress (job page) or nil; sampled holds the UI process's last
// sample of a running job's counts (lists), if any.
func newJobJSON(prefix string, job *rocketjob.Job, p *rocketjob.Progress, sampled *counts) jobJSON {
	id := job.ID.Hex()
	v := jobJSON{
		ID: id, Type: job.Type, Kind: string(job.Kind), State: string(job.State), Priority: job.Priority,
		Description: job.Description, Attempt: job.Attempt, Server: job.Server, Failure: job.Failure,
		Links: linksJSON{Self: prefix + "/api/jobs/" + id, Page: prefix + "/jobs/" + id},
	}
	if job.State == rocketjob.StateRunning {
		v.Step = string(job.Step)
	}
	v.Timings = timingsJSON{CreatedAt: job.CreatedAt, RunAt: job.RunAt, StartedAt: job.StartedAt, CompletedAt: job.CompletedAt}
	if job.StartedAt != nil {
		v.Timings.QueuedSeconds = max(0, job.StartedAt.Sub(job.RunAt).Seconds())
		end := time.Now()
		if job.CompletedAt != nil {
			end = *job.CompletedAt
		}
		d := end.Sub(*job.StartedAt).Seconds()
		v.Timings.DurationSeconds = &d
	} else if job.State == rocketjob.StateQueued && time.Now().After(job.RunAt) {
		v.Timings.QueuedSeconds = time.Since(job.RunAt).Seconds()
	}
	if len(job.Params) > 0 {
		if b, err := bson.MarshalExtJSON(job.Params, false, false); err == nil {
			v.Params = b
		}
	}
	v.Statistics, v.Categories = job.Statistics, job.Categories
	v.Schedule = newScheduleJSON(job) // parity.go
	if p != nil {
		v.Statistics = p.Statistics
		if p.Categories != nil {
			v.Categories = p.Categories
		}
	}
	pr := progressJSON{Total: job.RecordCount, Processed: job.ProcessedCount, Failed: job.FailedRecordCount}
	if job.Kind == rocketjob.KindSliced {
		v.Options = &optionsJSON{
			SliceSize: job.SliceSize, Format: job.Format, CollectOutput: job.CollectOutput,
			DestroyOnComplete: job.DestroyOnComplete, StopOnError: job.StopOnError,
			Encrypt: job.Encrypt, Compress: job.Compress, KeyID: job.KeyID,
			RawBytes: job.RawBytes, StoredBytes: job.StoredBytes,
			MaxWorkers: job.MaxWorkers, SliceRetryLimit: job.SliceRetryLimit,
		}
		if job.CollectOutput && len(job.CategoryNames) == 0 {
			v.Links.Output = v.Links.Self + "/output"
		}
		v.Links.Failures = v.Links.Self + "/failures"
		v.NotifyURL = job.NotifyURL
		for _, c := range job.CategoryNames {
			if v.Links.Categories == nil {
				v.Links.Categories = map[string]string{}
			}
			v.Links.Categories[c] = v.Links.Self + "/output?category=" + url.QueryEscape(c)
		}
		if p != nil {
			pr.Processed, pr.Failed, pr.Dropped = p.Processed, p.Failed, p.Dropped
			pr.RecordsPerHour = p.RecordsPerHour
			pr.Slices = &slicesJSON{Total: p.Slices.Total, Queued: p.Slices.Queued, Claimed: p.Slices.Claimed, Running: p.Slices.Running, Failed: p.Slices.Failed, Done: p.Slices.Done}
			if job.State == rocketjob.StateRunning && p.RecordsPerHour > 0 && p.Remaining > 0 {
				eta := p.Remaining.Seconds()
				pr.ETASeconds = &eta
			}
		} else if sampled != nil && (job.State == rocketjob.StateRunning || job.State == rocketjob.StatePaused) {
			pr.Processed, pr.Failed, pr.Sampled = sampled.processed, sampled.failed, true
		}
	} else if job.State == rocketjob.StateCompleted {
		pr.Total, pr.Processed = 1, 1
	} else {
		pr.Total = 1
		if job.State == rocketjob.StateFailed {
			pr.Processed, pr.Failed = 1, 1
		}
	}
	pr.Succeeded = max(0, pr.Processed-pr.Failed)
	switch {
	case pr.Total > 0:
		pr.Percent = min(100, 100*float64(pr.Processed)/float64(pr.Total))
	case job.State == rocketjob.StateCompleted:
		pr.Percent = 100
	}
	v.Progress = pr
	return v
}

// jobID reads the {id} path value: a malformed id is a 404, like an unknown one.
func jobID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := rocketjob.ParseID(id); err != nil {
		return "", apiErr(http.StatusNotFound, "not_found", fmt.Sprintf("no job %q (a job id is 24 hex digits)", truncate(id, 40)))
	}
	return id, nil
}

// apiTypes lists the registered job types.
func (h *Handler) apiTypes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"types": h.types()})
}

type typeJSON struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Format   string `json:"format,omitempty"`
	Priority int    `json:"priority"`
	// Params are the type's parameters (an upload's param.NAME fields, or
	// the keys of its params object); Categories its output categories.
	Params     []paramJSON `json:"params,omitempty"`
	Categories []string    `json:"categories,omitempty"`
}

// paramJSON is one parameter of a job type: its name and its kind
// (string, integer, number, boolean, duration, time, list).
type paramJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// typeParams lists the parameters of a type with an argument struct.
func typeParams(spec *rocketjob.TypeSpec) []paramJSON {
	if spec.Args == nil {
		return nil
	}
	var out []paramJSON
	for i := 0; i < spec.Args.NumField(); i++ {
		f := spec.Args.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.ToLower(f.Name)
		if tag, _, _ := strings.Cut(f.Tag.Get("bson"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		}
		kind := "string"
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			kind = "duration"
		case f.Type == reflect.TypeFor[time.Time]():
			kind = "time"
		default:
			switch f.Type.Kind() {
			case reflect.Bool:
				kind = "boolean"
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				kind = "integer"
			case reflect.Float32, reflect.Float64:
				kind = "number"
			case reflect.Slice:
				kind = "list"
			}
		}
		out = append(out, paramJSON{Name: name, Type: kind})
	}
	return out
}

func (h *Handler) types() []typeJSON {
	reg := h.client.Registry()
	var out []typeJSON
	for _, name := range reg.Names() {
		spec, err := reg.Lookup(name)
		if err != nil {
			continue
		}
		p := spec.Priority
		if p == 0 {
			p = rocketjob.DefaultPriority
		}
		out = append(out, typeJSON{Name: name, Kind: string(spec.Kind), Format: spec.Format, Priority: p, Params: typeParams(spec), Categories: spec.Categories})
	}
	return out
}

// listQuery is a parsed job list request.
type listQuery struct {
	States  []rocketjob.State
	Type    string
	Q       string
	Page    int
	PerPage int
	Newest  bool // order=newest: the most recently created first
}

func parseListQuery(v url.Values, perPage int) (listQuery, error) {
	q := listQuery{Type: strings.TrimSpace(v.Get("type")), Q: strings.TrimSpace(v.Get("q")), Page: 1, PerPage: perPage}
	if s := v.Get("state"); s != "" {
		for _, name := range strings.Split(s, ",") {
			st, err := rocketjob.ParseState(strings.TrimSpace(name))
			if err != nil {
				return q, badParam("state: %v", err)
			}
			if !slices.Contains(q.States, st) {
				q.States = append(q.States, st)
			}
		}
	}
	if s := v.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			return q, badParam("page must be a number from 1 (got %q)", truncate(s, 20))
		}
		q.Page = n
	}
	if s := v.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPerPage {
			return q, badParam("per_page must be a number from 1 to %d (got %q)", maxPerPage, truncate(s, 20))
		}
		q.PerPage = n
	}
	switch o := v.Get("order"); o {
	case "", "urgent":
	case "newest":
		q.Newest = true
	default:
		return q, badParam("order must be urgent or newest (got %q)", truncate(o, 20))
	}
	if len(q.Q) > 200 {
		return q, badParam("q is longer than 200 characters")
	}
	return q, nil
}

// listJobs returns one page of the jobs that q selects, most urgent first
// (or newest first), and whether there is a next page. A search q is a job id or a piece of
// the description (case-insensitive).
func (h *Handler) listJobs(ctx context.Context, q listQuery) ([]rocketjob.Job, bool, error) {
	if q.Q != "" {
		if _, err := rocketjob.ParseID(q.Q); err == nil {
			job, err := h.client.Get(ctx, q.Q)
			if errors.Is(err, rocketjob.ErrJobNotFound) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			if (len(q.States) > 0 && !slices.Contains(q.States, job.State)) || (q.Type != "" && job.Type != q.Type) || q.Page > 1 {
				return nil, false, nil
			}
			return []rocketjob.Job{*job}, false, nil
		}
		// Description search: the jobs collection is small (the jobs
		// database holds no records), so filter here.
		all, err := h.client.List(ctx, &rocketjob.ListOptions{States: q.States, Type: q.Type, Newest: q.Newest})
		if err != nil {
			return nil, false, err
		}
		needle := strings.ToLower(q.Q)
		var hits []rocketjob.Job
		for _, j := range all {
			if strings.Contains(strings.ToLower(j.Description), needle) {
				hits = append(hits, j)
			}
		}
		from := min(len(hits), (q.Page-1)*q.PerPage)
		to := min(len(hits), from+q.PerPage)
		return hits[from:to], to < len(hits), nil
	}
	jobs, err := h.client.List(ctx, &rocketjob.ListOptions{
		States: q.States, Type: q.Type, Skip: int64((q.Page - 1) * q.PerPage), Limit: int64(q.PerPage + 1), Newest: q.Newest,
	})
	if err != nil {
		return nil, false, err
	}
	more := len(jobs) > q.PerPage
	if more {
		jobs = jobs[:q.PerPage]
	}
	return jobs, more, nil
}

// apiListJobs: GET /api/jobs?state=S[,S]&type=T&q=TEXT&order=newest&page=N&per_page=N.
// Counts come from the job documents (and, for running jobs, the UI
// process's last sample): no slice collection is read.
func (h *Handler) apiListJobs(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), defaultPerPage)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jobs, more, err := h.listJobs(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sampled := h.stats.sampledCounts()
	views := make([]jobJSON, 0, len(jobs))
	for i := range jobs {
		c, ok := sampled[jobs[i].ID]
		var cp *counts
		if ok {
			cp = &c
		}
		views = append(views, newJobJSON(h.prefix, &jobs[i], nil, cp))
	}
	resp := map[string]any{"jobs": views, "page": q.Page, "per_page": q.PerPage, "next_page": nil}
	if more {
		resp["next_page"] = q.Page + 1
	}
	writeJSON(w, http.StatusOK, resp)
}

// jobWithProgress reads a job and its fresh progress.
func (h *Handler) jobWithProgress(ctx context.Context, id string) (*rocketjob.Job, *rocketjob.Progress, error) {
	job, err := h.client.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := h.client.Progress(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	return job, p, nil
}

// apiGetJob: GET /api/jobs/{id}, with fresh progress and timings.
func (h *Handler) apiGetJob(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	job, p, err := h.jobWithProgress(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newJobJSON(h.prefix, job, p, nil))
}

// parsePriority reads a priority from its text.
func parsePriority(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, apiErr(http.StatusBadRequest, "bad_priority", fmt.Sprintf("priority %q is not a number from 1 to 100", truncate(s, 20)))
	}
	if err := rocketjob.CheckPriority(p); err != nil {
		return 0, err
	}
	return p, nil
}

// priorityFromRequest reads the priority of POST .../priority: a JSON body
// {"priority": N}, a form field or the query parameter priority.
func priorityFromRequest(r *http.Request) (int, error) {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		var body struct {
			Priority *json.Number `json:"priority"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return 0, apiErr(http.StatusBadRequest, "bad_request", "the body must be JSON like {\"priority\": 10}")
		}
		if body.Priority == nil {
			return 0, apiErr(http.StatusBadRequest, "bad_priority", "missing priority")
		}
		return parsePriority(body.Priority.String())
	}
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		_ = r.ParseForm()
	}
	s := r.FormValue("priority")
	if s == "" {
		return 0, apiErr(http.StatusBadRequest, "bad_priority", "missing priority")
	}
	return parsePriority(s)
}

// doJobAction applies action (priority, pause, resume, abort, retry,
// destroy) to job id.
func (h *Handler) doJobAction(r *http.Request, id, action string) (*rocketjob.Job, error) {
	ctx := r.Context()
	switch action {
	case "priority":
		p, err := priorityFromRequest(r)
		if err != nil {
			return nil, err
		}
		return h.client.SetPriority(ctx, id, p)
	case "pause":
		return h.client.Pause(ctx, id)
	case "resume":
		return h.client.Resume(ctx, id)
	case "abort":
		return h.client.Abort(ctx, id)
	case "retry":
		return h.client.Retry(ctx, id)
	case "run-now":
		return h.client.RunNow(ctx, id)
	case "edit":
		e, err := editFromRequest(r) // parity.go
		if err != nil {
			return nil, err
		}
		return h.client.Edit(ctx, id, e)
	case "destroy":
		return nil, h.client.Destroy(ctx, id)
	}
	return nil, apiErr(http.StatusNotFound, "not_found", fmt.Sprintf("unknown job action %q (priority, pause, resume, abort, retry, run-now, edit)", truncate(action, 20)))
}

// apiChangeAll: POST /api/jobs/pause-all and /api/jobs/resume-all, with an
// optional type query parameter: {"changed": N}.
func (h *Handler) apiChangeAll(change func(*rocketjob.Client, context.Context, string) (int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		typ := r.URL.Query().Get("type")
		if typ != "" {
			if _, err := h.client.Registry().Lookup(typ); err != nil {
				h.fail(w, r, apiErr(http.StatusBadRequest, "bad_request", err.Error()))
				return
			}
		}
		n, err := change(h.client, r.Context(), typ)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.log.Info("jobs changed", "path", r.URL.Path, "type", typ, "count", n, "user", principalFrom(r).Name)
		h.stats.invalidate()
		writeJSON(w, http.StatusOK, map[string]int{"changed": n})
	}
}

// apiJobAction: POST /api/jobs/{id}/priority|pause|resume|abort|retry|run-now.
func (h *Handler) apiJobAction(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if action == "destroy" {
		h.fail(w, r, apiErr(http.StatusNotFound, "not_found", "to destroy a job: DELETE /api/jobs/{id}"))
		return
	}
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	job, err := h.doJobAction(r, id, action)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("job changed", "job", id, "action", action, "user", principalFrom(r).Name, "state", job.State)
	h.stats.invalidate()
	writeJSON(w, http.StatusOK, newJobJSON(h.prefix, job, nil, nil))
}

// apiDestroyJob: DELETE /api/jobs/{id}.
func (h *Handler) apiDestroyJob(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.client.Destroy(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("job destroyed", "job", id, "user", principalFrom(r).Name)
	h.stats.invalidate()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "destroyed": true})
}

// serverJSON is a server process as the API shows it.
type serverJSON struct {
	rocketjob.Server
	HeartbeatAgeSeconds float64 `json:"heartbeat_age_seconds"`
}

func serversJSON(list []rocketjob.Server) []serverJSON {
	out := make([]serverJSON, 0, len(list))
	now := time.Now()
	for _, s := range list {
		out = append(out, serverJSON{Server: s, HeartbeatAgeSeconds: max(0, now.Sub(s.HeartbeatAt).Seconds())})
	}
	return out
}

// apiServers: GET /api/servers.
func (h *Handler) apiServers(w http.ResponseWriter, r *http.Request) {
	list, err := h.client.Servers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": serversJSON(list)})
}

// sendServerCommand sends pause, resume or stop to the server name ("*":
// every server).
func (h *Handler) sendServerCommand(r *http.Request, name, command string) error {
	switch command {
	case rocketjob.CommandPause, rocketjob.CommandResume, rocketjob.CommandStop:
	default:
		return apiErr(http.StatusNotFound, "not_found", fmt.Sprintf("unknown server command %q (pause, resume, stop)", truncate(command, 20)))
	}
	target := name
	if name == "*" {
		target = ""
	}
	if err := h.client.CommandServer(r.Context(), target, command); err != nil {
		return err
	}
	h.log.Info("server command sent", "server", name, "command", command, "user", principalFrom(r).Name)
	return nil
}

// apiServerCommand: POST /api/servers/{name}/pause|resume|stop; the name *
// addresses every server. Servers act at their next heartbeat: 202.
func (h *Handler) apiServerCommand(w http.ResponseWriter, r *http.Request) {
	name, command := r.PathValue("name"), r.PathValue("command")
	if err := h.sendServerCommand(r, name, command); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"server": name, "command": command, "status": "sent (acted on at the next heartbeat)"})
}

// apiStats: GET /api/stats, computed at most every sample interval.
func (h *Handler) apiStats(w http.ResponseWriter, r *http.Request) {
	snap, err := h.stats.get(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.stats.statsJSON(snap))
}

// downloadable refuses the output of a job that has none (yet).
func downloadable(job *rocketjob.Job) error {
	id := job.ID.Hex()
	switch {
	case job.Kind != rocketjob.KindSliced:
		return apiErr(http.StatusConflict, "no_output", "job "+id+" is a simple job: it has no records")
	case !job.CollectOutput:
		return apiErr(http.StatusConflict, "no_output", "job "+id+" does not keep its output")
	case job.State == rocketjob.StateCompleted || job.State == rocketjob.StateFailed:
		return nil
	default:
		return apiErr(http.StatusConflict, "not_ready", "job "+id+" is "+string(job.State)+": its output is not complete")
	}
}

// pageParams reads offset and limit.
func pageParams(v url.Values) (offset, limit int64, err error) {
	limit = defaultLimit
	if s := v.Get("offset"); s != "" {
		if offset, err = strconv.ParseInt(s, 10, 64); err != nil || offset < 0 {
			return 0, 0, badParam("offset must be a number from 0 (got %q)", truncate(s, 20))
		}
	}
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.ParseInt(s, 10, 64); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, badParam("limit must be a number from 1 to %d (got %q)", maxLimit, truncate(s, 20))
		}
	}
	return offset, limit, nil
}

// wantsJSON reports whether a download asks for paged JSON.
func wantsJSON(r *http.Request, dflt bool) (bool, error) {
	v := r.URL.Query()
	switch f := v.Get("format"); f {
	case "json":
		return true, nil
	case "raw", "csv":
		return false, nil
	case "":
	default:
		return false, badParam("format must be json, raw or csv (got %q)", truncate(f, 20))
	}
	if v.Has("offset") || v.Has("limit") || strings.HasPrefix(r.Header.Get("Accept"), "application/json") {
		return true, nil
	}
	return dflt, nil
}

// apiOutput: GET /api/jobs/{id}/output. By default the output file is
// streamed in input order (CSV with its header), gzip-encoded when the
// client accepts it; ?gzip=1 downloads a .gz file; ?pgp=1 encrypts the
// file to Options.PGPRecipients (a .gpg file, compressed first with
// ?gzip=1). With ?format=json (or offset/limit, or Accept:
// application/json) it answers a page of records.
func (h *Handler) apiOutput(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	asJSON, err := wantsJSON(r, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	recipients, err := h.pgpRecipients(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if recipients != nil && asJSON {
		h.fail(w, r, badParam("pgp encrypts the file download: leave out format=json, offset and limit"))
		return
	}
	job, err := h.client.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := downloadable(job); err != nil {
		h.fail(w, r, err)
		return
	}
	category := r.URL.Query().Get("category")
	if category != "" || len(job.CategoryNames) > 0 {
		if err := outputCategory(job, category); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	codec, err := clientjob.Codec(h.client, job)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if asJSON {
		offset, limit, err := pageParams(r.URL.Query())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.outputPage(w, r, job, codec, category, offset, limit)
		return
	}
	ext, ctype := ".txt", "text/plain; charset=utf-8"
	format := sliced.Format(job.OutputFormat)
	if format == "" {
		format = sliced.Format(job.Format)
	}
	switch format {
	case sliced.CSV:
		ext, ctype = ".csv", "text/csv; charset=utf-8"
	case sliced.PSV:
		ext = ".psv"
	case sliced.TSV:
		ext, ctype = ".tsv", "text/tab-separated-values; charset=utf-8"
	case sliced.XLSX:
		ext, ctype = ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case sliced.JSONL:
		ext, ctype = ".jsonl", "application/jsonl"
	}
	name := "job-" + id + "-output"
	if category != "" {
		name += "-" + category
	}
	produce := func(ctx context.Context, out io.Writer) error {
		var err error
		if category != "" {
			_, err = sliced.DownloadCategory(ctx, h.client, id, category, out)
		} else {
			_, err = sliced.Download(ctx, h.client, id, out)
		}
		return h.downloadErr(ctx, id, err)
	}
	if recipients != nil {
		h.streamPGP(w, r, name+ext, recipients, produce)
		return
	}
	h.stream(w, r, name+ext, ctype, produce)
}

// outputCategory checks the category of an output request: one the job
// has, and one is required when the job's output is in categories.
func outputCategory(job *rocketjob.Job, category string) error {
	if slices.Contains(job.CategoryNames, category) {
		return nil
	}
	if len(job.CategoryNames) == 0 {
		return apiErr(http.StatusBadRequest, "bad_category", fmt.Sprintf("job %s has no output categories", job.ID.Hex()))
	}
	return apiErr(http.StatusBadRequest, "bad_category", fmt.Sprintf("job %s has its output in categories: ask for one with ?category=NAME (%s)",
		job.ID.Hex(), strings.Join(job.CategoryNames, ", ")))
}

// downloadErr is the answer to a download that failed: a job destroyed
// meanwhile is 404 (never 500), a download that found fewer records than
// the job recorded, or finished slices without their records
// (sliced.IncompleteError: the work database lacks them), is a 500
// 'incomplete' that says so. nil stays nil.
func (h *Handler) downloadErr(ctx context.Context, id string, err error) error {
	if err == nil || errors.Is(err, rocketjob.ErrJobNotFound) {
		return err
	}
	if ctx.Err() == nil {
		job, gerr := h.client.Get(ctx, id)
		if errors.Is(gerr, rocketjob.ErrJobNotFound) {
			return apiErr(http.StatusNotFound, "not_found", "job "+id+" was destroyed during the download")
		}
		if gerr == nil {
			err = sliced.AsIncomplete(job, err) // pages read the slice store directly
		}
	}
	var ie *sliced.IncompleteError
	if errors.As(err, &ie) {
		return apiErr(http.StatusInternalServerError, "incomplete", ie.Error())
	}
	return err
}

// stream writes a download produced by produce: headers go out with the
// first byte, so an error before it is still a proper JSON error; an error
// after it aborts the connection (the client sees a broken transfer, never
// a silently short file). A download checks its record count before its
// last buffer is written (see sliced.Download), so a short one fails this
// way too.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, filename, ctype string, produce func(context.Context, io.Writer) error) {
	h.streamFile(w, r, filename, ctype, fileGzip(r), produce)
}

// fileGzip reports whether a download asks for a .gz file (?gzip=1).
func fileGzip(r *http.Request) bool {
	return r.URL.Query().Get("gzip") == "1" || r.URL.Query().Get("gzip") == "true"
}

// streamFile is stream; zipFile says whether the file is gzip-compressed
// (named .gz) rather than only its transfer.
func (h *Handler) streamFile(w http.ResponseWriter, r *http.Request, filename, ctype string, zipFile bool, produce func(context.Context, io.Writer) error) {
	hd := w.Header()
	hd.Set("Vary", "Accept-Encoding")
	if zipFile {
		filename += ".gz"
		ctype = "application/gzip"
	}
	lw := &lazyWriter{w: w, start: func() {
		hd.Set("Content-Type", ctype)
		hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filename))
		if !zipFile && acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
		}
		w.WriteHeader(http.StatusOK)
	}}
	var out io.Writer = lw
	var gz *gzip.Writer
	if zipFile || acceptsGzip(r) {
		gz = gzip.NewWriter(lw)
		out = gz
	}
	err := produce(r.Context(), out)
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil && !lw.started {
		lw.start()
		lw.started = true
	}
	if err != nil {
		if !lw.started {
			h.fail(w, r, err)
			return
		}
		if r.Context().Err() == nil {
			h.log.Error("download failed midway", "req_id", requestIDFrom(r), "path", r.URL.Path, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// lazyWriter sends the headers with the first byte written.
type lazyWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
		l.started = true
	}
	return l.w.Write(p)
}

// outputPage answers records offset..offset+limit-1 of a job's output as
// JSON: strings for lines, JSON values for JSONL, arrays of fields for CSV
// (with the header).
func (h *Handler) outputPage(w http.ResponseWriter, r *http.Request, job *rocketjob.Job, codec *encryption.Codec, category string, offset, limit int64) {
	records := make([]any, 0, min(limit, 100))
	more := false
	format := sliced.Format(job.Format)
	want, _, final := sliced.ExpectedCounts(job)
	if category != "" {
		want = job.Categories[category]
	}
	rd := &slice.Reader{Store: clientstore.Of(h.client), Codec: codec, Job: job.ID, Skip: offset, Category: category}
	if final {
		rd.Want = want // a page read to the end must find every record
	}
	for rec, err := range rd.Output(r.Context()) {
		if err == nil && int64(len(records)) >= limit {
			more = true
			break
		}
		var v any
		if err == nil {
			v, err = recordValue(format, rec)
		}
		if err != nil {
			h.fail(w, r, h.downloadErr(r.Context(), job.ID.Hex(), err))
			return
		}
		records = append(records, v)
	}
	resp := map[string]any{"id": job.ID.Hex(), "format": job.Format, "offset": offset, "limit": limit, "records": records, "next_offset": nil}
	if format == sliced.CSV {
		header, err := sliced.Header(h.client, job)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		resp["header"] = header
	}
	if more {
		resp["next_offset"] = offset + int64(len(records))
	}
	writeJSON(w, http.StatusOK, resp)
}

// recordValue is a record as JSON shows it.
func recordValue(format sliced.Format, rec []byte) (any, error) {
	switch format {
	case sliced.CSV:
		return sliced.DecodeFields(rec)
	case sliced.JSONL:
		if json.Valid(rec) {
			return json.RawMessage(rec), nil
		}
	}
	return string(rec), nil
}

// failureJSON is one failed record.
type failureJSON struct {
	Record int64  `json:"record"`
	Error  string `json:"error"`
	Input  string `json:"input"`
}

// failedRecords reads up to limit failed records from offset, in record
// order, and whether there are more.
func (h *Handler) failedRecords(ctx context.Context, job *rocketjob.Job, offset, limit int64) ([]failureJSON, bool, error) {
	codec, err := clientjob.Codec(h.client, job)
	if err != nil {
		return nil, false, err
	}
	out := make([]failureJSON, 0, min(limit, 100))
	_, want, final := sliced.ExpectedCounts(job)
	rd := &slice.Reader{Store: clientstore.Of(h.client), Codec: codec, Job: job.ID, Skip: offset}
	if final {
		rd.Want = want // read to the end, they must be those the job recorded
	}
	for f, err := range rd.Failures(ctx) {
		if err == nil && int64(len(out)) >= limit {
			return out, true, nil
		}
		input := string(f.Record)
		if err == nil && job.Format == string(sliced.CSV) && len(f.Record) > 0 {
			input, err = sliced.CSVLine(f.Record)
		}
		if err != nil {
			return nil, false, h.downloadErr(ctx, job.ID.Hex(), err)
		}
		out = append(out, failureJSON{Record: f.Number, Error: f.Message, Input: input})
	}
	return out, false, nil
}

// apiFailures: GET /api/jobs/{id}/failures. A page of failed records as
// JSON (offset, limit) by default; ?format=csv streams them all as CSV
// (record, error, input) like `rocketjob download --failed`.
func (h *Handler) apiFailures(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	asJSON, err := wantsJSON(r, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "raw" {
		asJSON = false
	}
	job, err := h.client.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if job.Kind != rocketjob.KindSliced {
		h.fail(w, r, apiErr(http.StatusConflict, "no_output", "job "+id+" is a simple job: it has no records"))
		return
	}
	if _, err := clientjob.Codec(h.client, job); err != nil {
		h.fail(w, r, err)
		return
	}
	if !asJSON {
		h.stream(w, r, "job-"+id+"-failed.csv", "text/csv; charset=utf-8", func(ctx context.Context, out io.Writer) error {
			_, err := sliced.DownloadFailed(ctx, h.client, id, out)
			return h.downloadErr(ctx, id, err)
		})
		return
	}
	offset, limit, err := pageParams(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, more, err := h.failedRecords(r.Context(), job, offset, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := map[string]any{"id": id, "offset": offset, "limit": limit, "failures": list, "next_offset": nil, "failed_record_count": job.FailedRecordCount}
	if more {
		resp["next_offset"] = offset + int64(len(list))
	}
	writeJSON(w, http.StatusOK, resp)
}

// truncate shortens s to n bytes for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
