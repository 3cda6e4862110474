package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openLocked opens a new SQLite database in a temporary folder, with the
// settings of the embedded one, and returns it with a connection that
// holds its write lock (an open write transaction).
func openLocked(t *testing.T) (*sql.DB, *sql.Conn) {
	t.Helper()
	installBusyWait()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "busy.db")+"?"+sqlitePragmas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Close() })
	if _, err := holder.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	return db, holder
}

// A write that finds the lock taken waits in waitBusy, and goes through once
// the lock is free.
func TestBusyHandlerInstalled(t *testing.T) {
	ctx := context.Background()
	db, holder := openLocked(t)
	before := busyWaits.Load()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (2)")
		done <- err
	}()
	for busyWaits.Load() == before {
		select {
		case err := <-done:
			t.Fatalf("the write did not wait for the lock in waitBusy (err %v): SQLite's own handler is installed (has modernc.org/sqlite's connection type changed?)", err)
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := holder.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the write that waited for the lock: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows = %d (%v), want 2", n, err)
	}
}

// A write that waits longer than busyTimeout fails with SQLITE_BUSY, as with
// SQLite's handler.
func TestBusyHandlerTimesOut(t *testing.T) {
	old := busyTimeout
	busyTimeout = 30 * time.Millisecond
	t.Cleanup(func() { busyTimeout = old })
	db, _ := openLocked(t)
	start := time.Now()
	_, err := db.ExecContext(context.Background(), "INSERT INTO t VALUES (2)")
	if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") {
		t.Fatalf("write under a held lock: err = %v, want SQLITE_BUSY", err)
	}
	if waited := time.Since(start); waited < busyTimeout {
		t.Fatalf("gave up after %s, before the timeout of %s", waited, busyTimeout)
	}
}

// The waits are SQLite's: 1, 2, 5 ... 100 ms, the last repeated.
func TestBusyDelay(t *testing.T) {
	for _, c := range []struct {
		count         int
		delay, waited time.Duration
	}{
		{0, 1, 0}, {1, 2, 1}, {2, 5, 3}, {3, 10, 8}, {11, 100, 228}, {12, 100, 328}, {13, 100, 428},
	} {
		delay, waited := busyDelay(c.count)
		if delay != c.delay*time.Millisecond || waited != c.waited*time.Millisecond {
			t.Errorf("busyDelay(%d) = %s, %s; want %s, %s", c.count, delay, waited, c.delay*time.Millisecond, c.waited*time.Millisecond)
		}
	}
}
