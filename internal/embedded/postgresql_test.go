package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// freshPG returns the URL of a new PostgreSQL database, dropped after the
// test.
func freshPG(t *testing.T) string {
	t.Helper()
	base := dbtest.RequirePostgreSQL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := dbtest.NewPostgreSQLDatabase(ctx, base, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// withPassword sets the password of a postgres:// URL.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(dsn, "://") + 3
	at := strings.Index(dsn, "@")
	if at < 0 {
		return dsn[:i] + cfg.User + ":" + password + "@" + dsn[i:]
	}
	return dsn[:i] + cfg.User + ":" + password + dsn[at:]
}

func TestPostgreSQL(t *testing.T) {
	dsn := freshPG(t)
	ctx := context.Background()
	// FerretDB's pool settings may be in the URL.
	db := start(t, embedded.Options{PostgreSQL: dsn + "?pool_max_conns=8&connect_timeout=10"})
	if db.Dir() != "" || !strings.HasPrefix(db.Where(), "PostgreSQL database rjtest_") {
		t.Errorf("Dir() = %q, Where() = %q", db.Dir(), db.Where())
	}
	c := connect(t, db.URI())
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("second insert of _id a: %v, want a duplicate key error", err)
	}
	var info bson.M
	if err := c.Database(embedded.InfoDB).Collection(embedded.InfoCollection).FindOne(ctx, bson.D{{Key: "_id", Value: embedded.InfoID}}).Decode(&info); err != nil {
		t.Fatalf("info document: %v", err)
	}
	if info["backend"] != "postgresql" || info["data_folder"] != nil || info["postgresql"] != embedded.RedactDSN(dsn+"?pool_max_conns=8&connect_timeout=10") {
		t.Errorf("info document %v", info)
	}
	_ = c.Disconnect(ctx)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The data is in PostgreSQL: a new front end on another port has it.
	db2 := start(t, embedded.Options{PostgreSQL: dsn})
	c2 := connect(t, db2.URI())
	defer c2.Disconnect(ctx)
	n, err := c2.Database("app").Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Errorf("count after restart = %d, %v; want 1", n, err)
	}
}

// TestPostgreSQLOneFrontEnd: two FerretDB processes on one PostgreSQL
// database would not see each other's collections, so the second is
// refused, naming the first; once the first stops, another one serves the
// same data.
func TestPostgreSQLOneFrontEnd(t *testing.T) {
	dsn := freshPG(t)
	ctx := context.Background()
	a := start(t, embedded.Options{PostgreSQL: dsn})
	ca := connect(t, a.URI())
	if _, err := ca.Database("app").Collection("jobs").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_ = ca.Disconnect(ctx)

	began := time.Now()
	_, err := embedded.Start(ctx, embedded.Options{PostgreSQL: dsn})
	if !errors.Is(err, embedded.ErrDatabaseInUse) {
		t.Fatalf("second front end: %v, want ErrDatabaseInUse", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "rocketjob db ") || !strings.Contains(msg, " pid ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q does not name the holder on one line", msg)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("refusing took %s", took)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := start(t, embedded.Options{PostgreSQL: dsn})
	cb := connect(t, b.URI())
	defer cb.Disconnect(ctx)
	n, err := cb.Database("app").Collection("jobs").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Errorf("count via the next front end = %d, %v; want 1", n, err)
	}
}

// TestPostgreSQLLostLock: when the session that holds the lock ends (here
// terminated by an administrator), the database stops serving on its own.
func TestPostgreSQLLostLock(t *testing.T) {
	dsn := freshPG(t)
	db := start(t, embedded.Options{PostgreSQL: dsn})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the lock's session: %d, %v", n, err)
	}
	select {
	case <-db.Done():
	case <-ctx.Done():
		t.Fatal("the database still runs after losing its lock")
	}
	if err := db.Err(); err == nil || !strings.Contains(err.Error(), "lost the connection that holds the database's lock") {
		t.Errorf("Err() = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The lock is free again.
	db2 := start(t, embedded.Options{PostgreSQL: dsn})
	_ = db2
}

// TestPostgreSQLWrongPassword: a clear, one-line error without the password.
func TestPostgreSQLWrongPassword(t *testing.T) {
	dsn := withPassword(t, freshPG(t), "Wrong-Pa55word")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := embedded.Start(ctx, embedded.Options{PostgreSQL: dsn})
	if err == nil {
		t.Fatal("started with a wrong password")
	}
	if msg := err.Error(); strings.Contains(msg, "Wrong-Pa55word") || strings.Contains(msg, "\n") || !strings.Contains(msg, "PostgreSQL database rjtest_") {
		t.Errorf("error %q", msg)
	}
}

// TestPostgreSQLBadURLs needs no PostgreSQL.
func TestPostgreSQLBadURLs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct{ dsn, want string }{
		{"host=localhost user=rj password=Secret-PW1 dbname=x", "the PostgreSQL URL is not a URL: want postgres://"},
		{"mongodb://rj:Secret-PW1@localhost/x", "PostgreSQL URL mongodb://rj:xxxxx@localhost/x: want postgres://"},
		{"", "the PostgreSQL URL is empty"},
		{"postgres://rj:Secret-PW1@localhost:notaport/x", "PostgreSQL URL"},
		{"postgres://rj:Secret-PW1@127.0.0.1:1/x", "PostgreSQL database x on 127.0.0.1:1: connect:"},
		{"postgres://rj@127.0.0.1:1/x?password=Secret-PW1&connect_timeout=5", "PostgreSQL database x on 127.0.0.1:1: connect:"},
		{"postgres://rj:Secret-PW1@127.0.0.1:5432/x?sslmode=bogus", "PostgreSQL URL"},
	} {
		var err error
		if tc.dsn == "" {
			err = embedded.CheckPostgreSQLURL(tc.dsn)
		} else {
			_, err = embedded.Start(ctx, embedded.Options{PostgreSQL: tc.dsn})
		}
		if err == nil {
			t.Errorf("%s: started", embedded.RedactDSN(tc.dsn))
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || strings.Contains(msg, "Secret-PW1") || strings.Contains(msg, "\n") {
			t.Errorf("error %q, want one line with %q and no password", msg, tc.want)
		}
	}
	if _, err := embedded.Start(ctx, embedded.Options{PostgreSQL: "postgres://x@127.0.0.1:1/x", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("Dir and PostgreSQL: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://rj:pw@h:5432/db":                   "postgres://rj:xxxxx@h:5432/db",
		"postgres://rj@h/db?password=pw&sslmode=allow": "postgres://rj@h/db?password=xxxxx&sslmode=allow",
		"postgres://h/db":                              "postgres://h/db",
		"postgres://rj:p%40w@h/db":                     "postgres://rj:xxxxx@h/db",
		"post gres://rj:pw@h/db":                       "(unparseable PostgreSQL URL)",
		"host=h user=rj password=pw dbname=db":         "(unparseable PostgreSQL URL)",
	} {
		if got := embedded.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// lockedBuffer is a bytes.Buffer for a logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPostgreSQLHiddenDatabase: FerretDB v1.24.2 lists its databases on
// PostgreSQL with `schema_name NOT LIKE 'pg_%'`, so one named "pgjobs" is
// gone after a restart; the next start says so.
func TestPostgreSQLHiddenDatabase(t *testing.T) {
	dsn := freshPG(t)
	ctx := context.Background()
	db := start(t, embedded.Options{PostgreSQL: dsn})
	c := connect(t, db.URI())
	for _, name := range []string{"pgjobs", "jobs"} {
		if _, err := c.Database(name).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Disconnect(ctx)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	db = start(t, embedded.Options{PostgreSQL: dsn, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if s := logs.String(); !strings.Contains(s, "level=ERROR") || !strings.Contains(s, `does not see the database \"pgjobs\"`) || strings.Contains(s, `\"jobs\"`) {
		t.Errorf("logs at start: %s", s)
	}
	c = connect(t, db.URI())
	defer c.Disconnect(ctx)
	if n, err := c.Database("pgjobs").Collection("c").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("FerretDB sees pgjobs after all (%d, %v): drop the warning", n, err)
	}
}
