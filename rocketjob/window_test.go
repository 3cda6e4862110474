package rocketjob_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func TestWindow(t *testing.T) {
	t.Parallel()
	night := rocketjob.Window{Start: "22:30", Duration: 3 * time.Hour, Location: "Europe/London"} // 22:30-01:30 London
	london, _ := time.LoadLocation("Europe/London")
	at := func(day, h, m int) time.Time { return time.Date(2026, 1, day, h, m, 0, 0, london) }
	for _, tc := range []struct {
		t    time.Time
		in   bool
		next time.Time
	}{
		{at(10, 22, 29), false, at(10, 22, 30)},
		{at(10, 22, 30), true, at(10, 22, 30)},
		{at(11, 1, 29), true, at(11, 1, 29)}, // yesterday's window, after midnight
		{at(11, 1, 30), false, at(11, 22, 30)},
		{at(11, 12, 0), false, at(11, 22, 30)},
	} {
		if got := night.Contains(tc.t); got != tc.in {
			t.Errorf("Contains(%s) = %v", tc.t, got)
		}
		if got := night.Next(tc.t); !got.Equal(tc.next) {
			t.Errorf("Next(%s) = %s, want %s", tc.t, got, tc.next)
		}
	}
	for _, bad := range []rocketjob.Window{{Start: "25:00", Duration: time.Hour}, {Start: "2:00", Duration: time.Hour},
		{Start: "02:00"}, {Start: "02:00", Duration: time.Hour, Location: "Mars/Base"}} {
		if err := bad.Check(); !errors.Is(err, rocketjob.ErrBadWindow) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
