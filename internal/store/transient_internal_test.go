package store

import (
	"errors"
	"testing"
)

// TestTransientErrors: the errors FerretDB on SQLite answers when another
// connection holds the lock or changed the schema are retried; others are
// not. (The schema error was met by a listing just after a thousand
// run-queue segments were created: "listing jobs: reading job …:
// (InternalError) database schema has changed (17)".)
func TestTransientErrors(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"(InternalError) database schema has changed (17)", true},
		{"(InternalError) database is locked (5) (SQLITE_BUSY)", true},
		{"database is locked", true},
		{"(DuplicateKey) E11000 duplicate key error", false},
		{"(BadValue) unknown operator: $foo", false},
	} {
		if got := transient(errors.New(c.msg)); got != c.want {
			t.Errorf("transient(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
	if transient(nil) {
		t.Error("transient(nil) = true")
	}
}
