package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// FerretDB v1.24.2 stores each collection in a SQLite table with one JSON
// column and looks documents up by _id with the expression
// `_ferretdb_sjson->'$._id'`, while its own unique _id index is built on
// `_ferretdb_sjson->"_id"`. SQLite uses an expression index only for the same
// expression, so every lookup, update and delete by _id scans the table
// (35 ms at 10k jobs, growing with the table). The embedded database adds an
// index on FerretDB's lookup expression to the tables of every jobs database
// (the collections that are read and updated by _id: jobs, job claims,
// servers, slots, the run queue), which makes those operations take well
// under a millisecond at any size. FerretDB does not know about the index:
// it only speeds up queries, and goes away with its table.
//
// Work databases are left alone: their slices are streamed, never looked up
// by _id, and an index would only slow their inserts. So are the run-queue
// databases (<jobs db>_runq, no jobs collection): their segments are read
// whole and dropped whole, and an index per segment would be one more
// schema change for every connection to re-read.

// idIndexEvery is how often the embedded database looks for new tables.
const idIndexEvery = time.Second

// idIndexPrefix starts the names of the indexes: FerretDB names its own
// "<table>_<index>", so these cannot collide with them.
const idIndexPrefix = "rocketjob_id_"

// jobsMarker is the collection whose presence marks a jobs database.
const jobsMarker = "jobs"

// idIndexer adds the _id expression index to the tables of the jobs
// databases in a data folder.
type idIndexer struct {
	dir  string
	log  *slog.Logger
	seen map[string]time.Time // database file -> change time at its last pass
}

// run indexes new tables every idIndexEvery until ctx ends.
func (x *idIndexer) run(ctx context.Context) {
	t := time.NewTicker(idIndexEvery)
	defer t.Stop()
	for {
		x.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass indexes the tables of every database file that changed since the
// previous pass.
func (x *idIndexer) pass(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, f := range files {
		live[f] = true
		changed := changeTime(f)
		if changed.IsZero() || changed.Equal(x.seen[f]) {
			continue
		}
		if err := indexFile(ctx, f); err != nil {
			if ctx.Err() == nil {
				x.log.Warn("adding _id indexes", "file", filepath.Base(f), "err", err)
			}
			continue
		}
		x.seen[f] = changed
	}
	for f := range x.seen {
		if !live[f] {
			delete(x.seen, f) // dropped database
		}
	}
}

// changeTime is the latest modification time of a database file and its
// write-ahead log, or zero when the file is gone.
func changeTime(file string) time.Time {
	fi, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	t := fi.ModTime()
	if wal, err := os.Stat(file + "-wal"); err == nil && wal.ModTime().After(t) {
		t = wal.ModTime()
	}
	return t
}

// indexFile adds the missing _id expression indexes to the tables of one
// database file, if it is a jobs database.
func indexFile(ctx context.Context, file string) error {
	// mode=rw: never create the file of a database dropped in the meantime.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	tables, err := collectionTables(ctx, db)
	if err != nil || tables[jobsMarker] == "" {
		return err
	}
	have := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?`, idIndexPrefix+"%")
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, table := range tables {
		name := idIndexPrefix + table
		if have[name] {
			continue
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, name, table)
		if _, err := db.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
			return fmt.Errorf("table %s: %w", table, err)
		}
	}
	return nil
}

// collectionTables maps the collections of a FerretDB database file to their
// tables (none for a file that is not one).
func collectionTables(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, table_name FROM _ferretdb_collections`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil // a database being created
		}
		return nil, err
	}
	defer rows.Close()
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			return nil, err
		}
		tables[name] = table
	}
	return tables, rows.Err()
}
