package rocketjobweb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// The options of a new job that the command line takes (upload, job
// enqueue) and REST and the web forms take too: what belongs to which
// kind of job, and how their errors answer.

// slicedOnly and simpleOnly are the options that make sense for one kind
// of job only: giving one for the other kind is a 400, not silently
// ignored.
var (
	slicedOnly = []string{"slice_size", "format", "encrypt", "compress", "require_columns", "allow_columns",
		"stop_on_error", "collect_output", "max_workers"}
	simpleOnly = []string{"retry_limit", "cron"}
)

// only refuses the options given that a job of kind does not take.
func (u *uploadParams) only(kind rocketjob.Kind) error {
	other := simpleOnly
	if kind == rocketjob.KindSimple {
		other = slicedOnly
	}
	for _, name := range other {
		if u.given[name] {
			return badParam("%s is not an option of %s jobs (job type %q)", name, kind, truncate(u.Type, 60))
		}
	}
	return nil
}

// checkAfter answers 400 when a job to wait for does not exist.
func (h *Handler) checkAfter(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if _, err := h.client.Get(ctx, id); errors.Is(err, rocketjob.ErrJobNotFound) {
			return badParam("after: job %s does not exist", id)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// enqueueOptions are u's options for a simple job.
func (h *Handler) enqueueOptions(ctx context.Context, u *uploadParams) (*rocketjob.EnqueueOptions, error) {
	if err := u.only(rocketjob.KindSimple); err != nil {
		return nil, err
	}
	if err := h.checkAfter(ctx, u.After); err != nil {
		return nil, err
	}
	return &rocketjob.EnqueueOptions{
		Priority: u.Priority, RunAt: u.RunAt, Description: u.Description, RetryLimit: u.RetryLimit,
		ExpiresAt: u.ExpiresAt, DependsOn: slices.Clone(u.After), Window: u.Window, Cron: u.Cron,
	}, nil
}

// scheduleErr maps the errors of scheduling options to their answers.
func scheduleErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rocketjob.ErrBadCron), errors.Is(err, rocketjob.ErrBadWindow):
		return badParam("%s", err.Error())
	case errors.Is(err, rocketjob.ErrCronRunning):
		return apiErr(http.StatusConflict, "conflict", err.Error())
	}
	return err
}

// ExpiresAtText is the expiry as typed (to show the form again).
func (u *uploadParams) ExpiresAtText() string { return u.expiresAtText }

// WindowText is the processing window as typed (to show the form again).
func (u *uploadParams) WindowText() string { return u.windowText }

// AfterText is the jobs to wait for, comma-separated (to show the form again).
func (u *uploadParams) AfterText() string { return strings.Join(u.After, ",") }

// StopsOnError reports whether stop_on_error was asked for.
func (u *uploadParams) StopsOnError() bool { return u.StopOnError != nil && *u.StopOnError }

// DiscardsOutput reports whether the output is not to be kept.
func (u *uploadParams) DiscardsOutput() bool { return u.CollectOutput != nil && !*u.CollectOutput }

// enqueuePage: GET /enqueue, the form that enqueues a simple job.
func (h *Handler) enqueuePage(w http.ResponseWriter, r *http.Request) {
	h.renderEnqueue(w, r, http.StatusOK, &uploadParams{Type: r.URL.Query().Get("type")}, "")
}

func (h *Handler) renderEnqueue(w http.ResponseWriter, r *http.Request, status int, u *uploadParams, msg string) {
	var types []typeJSON
	for _, t := range h.types() {
		if t.Kind == string(rocketjob.KindSimple) {
			types = append(types, t)
		}
	}
	h.render(w, r, status, "enqueue", pageData{Title: "Enqueue", Nav: "enqueue", Data: map[string]any{
		"Types": types, "Form": u, "Error": msg,
	}})
}

// enqueueForm: POST /enqueue, the enqueue page's form. Empty fields are
// left to the type's defaults; a parameter field of another type than the
// one chosen is ignored.
func (h *Handler) enqueueForm(w http.ResponseWriter, r *http.Request) {
	u := &uploadParams{}
	job, err := func() (*rocketjob.Job, error) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFixBody)
		if err := r.ParseForm(); err != nil {
			return nil, badParam("the form does not parse")
		}
		u.Type = r.PostForm.Get("type")
		spec, err := h.spec(u.Type)
		if err != nil {
			return nil, err
		}
		if spec.Kind != rocketjob.KindSimple {
			return nil, badParam("job type %q is a sliced job: upload a file instead", truncate(u.Type, 60))
		}
		for name, values := range r.PostForm {
			if name == csrfField || name == "type" {
				continue
			}
			for _, v := range values {
				if strings.TrimSpace(v) == "" {
					continue // the type's default
				}
				if err := u.set(name, v); err != nil {
					return nil, err
				}
			}
		}
		params, err := h.jobParams(u)
		if err != nil {
			return nil, err
		}
		opts, err := h.enqueueOptions(r.Context(), u)
		if err != nil {
			return nil, err
		}
		var args any
		if params != nil {
			args = params
		}
		job, err := h.client.Enqueue(r.Context(), u.Type, args, opts)
		return job, scheduleErr(err)
	}()
	if err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		h.renderEnqueue(w, r, e.Status, u, e.Message)
		return
	}
	h.stats.invalidate()
	h.log.Info("job enqueued", "job", job.ID.Hex(), "type", job.Type, "user", principalFrom(r).Name)
	flash(r, fmt.Sprintf("Enqueued job %s.", job.ID.Hex()), false)
	http.Redirect(w, r, h.path("/jobs/"+job.ID.Hex()), http.StatusSeeOther)
}

// scheduleJSON are a job's scheduling options, as the API shows them.
type scheduleJSON struct {
	// ExpiresAt: a job not started by then is aborted as expired.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// After are the jobs it waits for.
	After []string `json:"after,omitempty"`
	// Window is the daily processing window, START,DURATION[,ZONE].
	Window string `json:"window,omitempty"`
	// Cron is a recurring simple job's schedule.
	Cron string `json:"cron,omitempty"`
	// RetryLimit is how many failed runs of a simple job are retried.
	RetryLimit int `json:"retry_limit,omitempty"`
}

// newScheduleJSON returns job's scheduling options, nil when it has none.
func newScheduleJSON(job *rocketjob.Job) *scheduleJSON {
	s := &scheduleJSON{ExpiresAt: job.ExpiresAt, Cron: job.Cron, RetryLimit: job.RetryLimit}
	for _, id := range job.DependsOn {
		s.After = append(s.After, id.Hex())
	}
	if job.WindowStart != "" {
		s.Window = rocketjob.Window{Start: job.WindowStart, Duration: job.WindowDuration, Location: job.WindowLocation}.String()
	}
	if s.ExpiresAt == nil && s.After == nil && s.Window == "" && s.Cron == "" && s.RetryLimit == 0 {
		return nil
	}
	return s
}

// editFromRequest reads POST /api/jobs/{id}/edit: a JSON body
// {"description": TEXT, "max_workers": N} or form fields of those names
// (an empty form field leaves that setting as it is).
func editFromRequest(r *http.Request) (rocketjob.JobEdit, error) {
	var e rocketjob.JobEdit
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body struct {
			Description *string `json:"description"`
			MaxWorkers  *int    `json:"max_workers"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, maxFieldBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return e, badParam("the body must be {\"description\": \"...\", \"max_workers\": N}: %v", truncate(err.Error(), 200))
		}
		e.Description, e.MaxWorkers = body.Description, body.MaxWorkers
	} else {
		if err := r.ParseForm(); err != nil {
			return e, badParam("the form does not parse")
		}
		if r.Form.Has("description") {
			d := r.Form.Get("description")
			e.Description = &d
		}
		if s := strings.TrimSpace(r.Form.Get("max_workers")); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return e, badParam("max_workers must be a number from 0 (got %q)", truncate(s, 20))
			}
			e.MaxWorkers = &n
		}
	}
	if e.Description != nil && len(*e.Description) > 1000 {
		return e, badParam("description is longer than 1000 bytes")
	}
	if e.Description == nil && e.MaxWorkers == nil {
		return e, badParam("nothing to change: give description or max_workers")
	}
	return e, nil
}

// changeAllForm: POST /jobs/pause-all and /jobs/resume-all from the jobs
// page, for the jobs of the form's type (every type when empty).
func (h *Handler) changeAllForm(verb string, change func(*rocketjob.Client, context.Context, string) (int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, badParam("the form does not parse"))
			return
		}
		typ := r.PostForm.Get("type")
		if typ != "" {
			if _, err := h.client.Registry().Lookup(typ); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		n, err := change(h.client, r.Context(), typ)
		if err != nil {
			e := classify(err, requestIDFrom(r))
			if e.Status >= 500 {
				h.fail(w, r, err)
				return
			}
			flash(r, e.Message, true)
		} else {
			h.stats.invalidate()
			h.log.Info("jobs changed", "action", verb+"-all", "type", typ, "jobs", n, "user", principalFrom(r).Name)
			flash(r, fmt.Sprintf("%d jobs %sd.", n, verb), false)
		}
		back := "/jobs"
		if typ != "" {
			back += "?type=" + url.QueryEscape(typ)
		}
		http.Redirect(w, r, h.path(back), http.StatusSeeOther)
	}
}

// RequireColumnsText and AllowColumnsText are the column checks as typed
// (to show the form again).
func (u *uploadParams) RequireColumnsText() string { return strings.Join(u.RequireColumns, ",") }

// AllowColumnsText: see RequireColumnsText.
func (u *uploadParams) AllowColumnsText() string { return strings.Join(u.AllowColumns, ",") }
