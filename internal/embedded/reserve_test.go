package embedded

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// The reserve is taken, freed when a log record reports a full disk (and
// only then), and taken again.
func TestReserveFreedOnDiskFull(t *testing.T) {
	dir := t.TempDir()
	r := newReserve(dir, 2<<20, slog.New(slog.DiscardHandler))
	r.fill()
	path := filepath.Join(dir, ReserveFileName)
	if got := fileSize(t, path); got != 2<<20 {
		t.Fatalf("reserve file: %d bytes, want %d", got, 2<<20)
	}
	log := slog.New(fullWatch{slog.DiscardHandler, func() { r.release(dir) }})
	log.Warn("Response message:\n{ok: 0, errmsg: \"duplicate key\"}")
	log.Info("database or disk is full (13)") // below Warn: not an error answer
	if got := fileSize(t, path); got != 2<<20 {
		t.Fatalf("reserve freed by records that do not report a full disk: %d bytes left", got)
	}
	log.Warn("Response message:\n{ok: 0, errmsg: \"[msg_insert.go:168 handler.(*Handler).MsgInsert] database or disk is full (13)\"}")
	if got := fileSize(t, path); got != 0 {
		t.Fatalf("reserve not freed on a full disk: %d bytes left", got)
	}
	r.fill()
	if got := fileSize(t, path); got != 2<<20 {
		t.Fatalf("reserve not taken again: %d bytes", got)
	}
	log.Warn("adding _id indexes", "err", "database or disk is full (13)")
	if got := fileSize(t, path); got != 0 {
		t.Fatalf("reserve not freed on a full disk reported in an attribute: %d bytes left", got)
	}

	// The writes that failed with the one that freed it report a full disk
	// moments later: the reserve is not used up for that.
	var n counter
	r.log = slog.New(&n)
	log.Warn("database or disk is full (13)")
	if n.records != 0 {
		t.Errorf("%d log records for a write that failed as the reserve was freed, want none", n.records)
	}
	// With the reserve used, every failed write reports a full disk: the
	// database says so once a minute, not once a write.
	r.mu.Lock()
	r.freedAt = time.Now().Add(-reserveGrace)
	r.mu.Unlock()
	for range 100 {
		log.Warn("database or disk is full (13)")
	}
	if n.records != 1 {
		t.Errorf("%d log records for 100 failed writes with the reserve used, want 1", n.records)
	}
}

// counter is a slog handler that counts records.
type counter struct{ records int }

func (c *counter) Enabled(context.Context, slog.Level) bool  { return true }
func (c *counter) Handle(context.Context, slog.Record) error { c.records++; return nil }
func (c *counter) WithAttrs([]slog.Attr) slog.Handler        { return c }
func (c *counter) WithGroup(string) slog.Handler             { return c }

// Start takes the default reserve; a negative Reserve takes none.
func TestStartTakesTheReserve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		reserve int64
		want    int64
	}{{0, DefaultReserve}, {-1, -1}} {
		dir := t.TempDir()
		db, err := Start(ctx, Options{Dir: dir, Reserve: tc.reserve})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, ReserveFileName))
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("Reserve %d: a reserve file of %d bytes", tc.reserve, fi.Size())
		case tc.want >= 0 && (err != nil || fi.Size() != tc.want):
			t.Errorf("Reserve %d: reserve file %v, %v; want %d bytes", tc.reserve, fi, err, tc.want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
