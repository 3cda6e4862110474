package rocketjobweb

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

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
