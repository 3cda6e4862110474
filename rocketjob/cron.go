package rocketjob

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrBadCron: a cron schedule that does not parse.
var ErrBadCron = errors.New("invalid cron schedule")

// ErrCronRunning: a live cron chain of the same type and schedule exists
// already (a second one would run every tick twice).
var ErrCronRunning = errors.New("a cron chain of this type and schedule is live")

// cronParser reads standard five-field schedules, an optional leading
// seconds field, descriptors such as @hourly, and a "CRON_TZ=Zone " prefix.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NextCronRun returns the first run of the schedule spec after t.
func NextCronRun(spec string, t time.Time) (time.Time, error) {
	s, err := cronParser.Parse(spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: %v", ErrBadCron, spec, err)
	}
	next := s.Next(t)
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("%w %q: it never runs", ErrBadCron, spec)
	}
	return next.UTC(), nil
}
