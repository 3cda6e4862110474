package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// A write that finds SQLite's write lock taken sleeps in sleepInGo between
// its tries, and goes through once the lock is free.
func TestSQLiteSleepsInGo(t *testing.T) {
	installSleep()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "sleep.db")+"?"+sqlitePragmas)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for _, stmt := range []string{"BEGIN IMMEDIATE", "INSERT INTO t VALUES (1)"} {
		if _, err := holder.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}

	before := sleeps.Load()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (2)")
		done <- err
	}()
	for sleeps.Load() == before {
		select {
		case err := <-done:
			t.Fatalf("a write under a held lock returned (%v) without sleeping in sleepInGo", err)
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
