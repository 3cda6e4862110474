package rocketjob

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrBadCron: a cron schedule that does not parse.
var ErrBadCron = errors.New("invalid cron schedule")

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
