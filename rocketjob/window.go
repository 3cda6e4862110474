package rocketjob

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadWindow: a processing window that does not parse.
var ErrBadWindow = errors.New("invalid processing window")

// Window is a daily processing window: a job with one processes only from
// Start (local time of day, "HH:MM") for Duration in Location (an IANA zone
// such as "Europe/London"; empty means UTC). Outside it the job's slices
// wait, and it resumes at the next window. A window may cross midnight.
type Window struct {
	Start    string        `bson:"start" json:"start"`
	Duration time.Duration `bson:"duration" json:"duration"`
	Location string        `bson:"location,omitempty" json:"location,omitempty"`
}

// Check reports whether the window is valid.
func (w Window) Check() error {
	_, _, _, err := w.parse()
	return err
}

func (w Window) parse() (hour, minute int, loc *time.Location, err error) {
	if _, err := fmt.Sscanf(w.Start, "%d:%d", &hour, &minute); err != nil || hour < 0 || hour > 23 || minute < 0 || minute > 59 || len(w.Start) != 5 {
		return 0, 0, nil, fmt.Errorf("%w: start %q is not HH:MM", ErrBadWindow, w.Start)
	}
	if w.Duration <= 0 || w.Duration > 24*time.Hour {
		return 0, 0, nil, fmt.Errorf("%w: duration %s is not between 0 and 24h", ErrBadWindow, w.Duration)
	}
	loc = time.UTC
	if w.Location != "" {
		if loc, err = time.LoadLocation(w.Location); err != nil {
			return 0, 0, nil, fmt.Errorf("%w: %v", ErrBadWindow, err)
		}
	}
	return hour, minute, loc, nil
}

// opening returns the start of the window that opens on t's local day.
func (w Window) opening(t time.Time, dayOffset int) (time.Time, bool) {
	hour, minute, loc, err := w.parse()
	if err != nil {
		return time.Time{}, false
	}
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+dayOffset, hour, minute, 0, 0, loc), true
}

// Contains reports whether t falls in a window (yesterday's may still be
// open after midnight). An invalid window contains nothing.
func (w Window) Contains(t time.Time) bool {
	for _, d := range []int{-1, 0} {
		if open, ok := w.opening(t, d); ok && !t.Before(open) && t.Before(open.Add(w.Duration)) {
			return true
		}
	}
	return false
}

// Next returns when the next window opens after t (t itself if it is open).
func (w Window) Next(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	for _, d := range []int{0, 1} {
		if open, ok := w.opening(t, d); ok && open.After(t) {
			return open
		}
	}
	return time.Time{}
}

// ParseWindow reads a window written START,DURATION[,ZONE] (the form of
// `--window`, e.g. "22:30,3h,Europe/London"); an empty string is no window
// (nil). A malformed one wraps ErrBadWindow.
func ParseWindow(s string) (*Window, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%w: %q: want START,DURATION[,ZONE], e.g. 22:30,3h,Europe/London", ErrBadWindow, s)
	}
	d, err := time.ParseDuration(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadWindow, s, err)
	}
	w := &Window{Start: parts[0], Duration: d}
	if len(parts) == 3 {
		w.Location = parts[2]
	}
	if err := w.Check(); err != nil {
		return nil, err
	}
	return w, nil
}

// String writes w the way ParseWindow reads it.
func (w Window) String() string {
	s := w.Start + "," + w.Duration.String()
	if w.Location != "" {
		s += "," + w.Location
	}
	return s
}
