package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Failures that leave retry carry no FerretDB source locations, a full disk
// is recognisable, and the driver's error stays reachable.
func TestStoreErrors(t *testing.T) {
	framed := mongo.CommandError{Code: 1, Name: "InternalError",
		Message: "[msg_drop.go:94 handler.(*Handler).MsgDrop] [database.go:112 sqlite.(*database).DropCollection] no such table"}
	err := retry(context.Background(), func() error { return framed })
	if strings.Contains(err.Error(), ".go:") || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("framed error: %q, want its message without source locations", err)
	}
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Name != "InternalError" {
		t.Errorf("the driver's error is not reachable: %#v", err)
	}

	full := mongo.CommandError{Code: 1, Name: "InternalError",
		Message: "[msg_insert.go:168 handler.(*Handler).MsgInsert] [db.go:167 fsql.(*DB).InTransaction] database or disk is full (13)"}
	err = retry(context.Background(), func() error { return full })
	var df *DiskFullError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &df) || err.Error() != "the database's disk is full" {
		t.Errorf("disk full: %q (%T), want a *DiskFullError", err, err)
	}
	df.Where = "data folder /srv/rj on host db1"
	if want := "the database's disk is full (data folder /srv/rj on host db1)"; err.Error() != want {
		t.Errorf("disk full with a place: %q, want %q", err, want)
	}

	if err := retry(context.Background(), func() error { return mongo.ErrNoDocuments }); err != mongo.ErrNoDocuments {
		t.Errorf("ErrNoDocuments came back as %#v: callers compare it", err)
	}
	if got := StripFrames("a [x.go:1 p.F] [y.go:22 q.(*T).G] b"); got != "a b" {
		t.Errorf("StripFrames: %q", got)
	}
}
