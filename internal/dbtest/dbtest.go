// Package dbtest lets the tests of a package share one embedded database.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// and give every test its own databases with DBNames.
//
// The database is FerretDB on SQLite in a temporary folder, or, when
// $ROCKETJOB_TEST_POSTGRESQL holds the URL of a PostgreSQL database, FerretDB
// on a fresh PostgreSQL database created next to it (see PostgreSQLEnv), or,
// when $ROCKETJOB_TEST_MONGODB_URI holds the URI of a MongoDB replica set,
// that server (see MongoDBEnv).
package dbtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// maxNameLen is the maximum length of the part of a database name derived
// from the test name.
const maxNameLen = 40

var (
	uri     string // set by Main
	dataDir string // set by Main (SQLite)
	pgDSN   string // set by Main (PostgreSQL): the package's database

	clientMu sync.Mutex
	client   *mongo.Client

	counter atomic.Int64
)

// Main starts one embedded database in a temp folder (or a fresh PostgreSQL
// database, see PostgreSQLEnv) for the package's tests, runs them, stops it
// and removes the folder (or drops the database). Use from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// If the database fails to start, Main prints the reason and exits with
// status 1 without running the tests.
func Main(m *testing.M) {
	os.Exit(run(m, nil))
}

// MainThen is Main with a check that runs once the tests passed and the
// database stopped (a goroutine-leak check, say); its error fails the run.
func MainThen(m *testing.M, check func() error) {
	os.Exit(run(m, check))
}

// run does Main's work and returns the exit code, so deferred clean-up runs.
func run(m *testing.M, check func() error) int {
	if MongoDB() != "" {
		return runExternal(m, check)
	}
	dir, err := os.MkdirTemp(os.TempDir(), "rocketjob-dbtest-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: create temp folder: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := embedded.Options{Dir: dir}
	if base := PostgreSQL(); base != "" {
		newDSN, drop, err := NewPostgreSQLDatabase(ctx, base, packageName())
		if err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			return 1
		}
		defer func() {
			if err := drop(); err != nil {
				fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			}
		}()
		opts = embedded.Options{PostgreSQL: newDSN}
		pgDSN = newDSN
	}
	db, err := embedded.Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: start embedded database: %v\n", err)
		return 1
	}
	uri = db.URI()
	if pgDSN == "" {
		dataDir = dir
	}

	code := m.Run()

	// Disconnect first: the server waits for connected clients when stopping.
	disconnect()

	if err := db.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: stop embedded database: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 && check != nil {
		if err := check(); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			code = 1
		}
	}
	return code
}

// disconnect closes the shared client, if any.
func disconnect() {
	clientMu.Lock()
	defer clientMu.Unlock()
	if client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = client.Disconnect(ctx)
		cancel()
		client = nil
	}
}

// URI returns the URI of the package's embedded database. It panics if the
// package's TestMain does not call Main.
func URI() string {
	if uri == "" {
		panic("dbtest: no embedded database: add `func TestMain(m *testing.M) { dbtest.Main(m) }` to the package's tests")
	}
	return uri
}

// Dir returns the data folder of the package's embedded database, for tests
// that inspect what is stored at rest. On PostgreSQL it is the folder of the
// package's database inside the server's data directory, after a
// CHECKPOINT; it panics when that folder cannot be read here (a server on
// another machine, or a user that may not checkpoint). On a server of
// $ROCKETJOB_TEST_MONGODB_URI it skips the test with one line.
func Dir(t testing.TB) string {
	t.Helper()
	URI()
	if external {
		t.Skip("reads the embedded database's files; the tests run on " + MongoDBEnv)
	}
	if pgDSN == "" {
		return dataDir
	}
	d, err := pgDataDir(pgDSN)
	if err != nil {
		panic("dbtest: Dir on PostgreSQL: " + err.Error())
	}
	return d
}

// Client returns a mongo-driver *mongo.Client connected to the package's
// embedded database. The client is created on first use and shared by all
// tests; do not disconnect it (Main does).
func Client(t testing.TB) *mongo.Client {
	t.Helper()
	u := URI()
	clientMu.Lock()
	defer clientMu.Unlock()
	if client == nil {
		c, err := mongo.Connect(options.Client().ApplyURI(u).SetServerSelectionTimeout(10 * time.Second))
		if err != nil {
			t.Fatalf("dbtest: connect to %s: %v", u, err)
		}
		client = c
	}
	return client
}

// DBNames returns two fresh, unique database names (jobs db, work db) for
// one test, derived from t.Name(), and drops both databases (and the jobs
// database's run-queue database) in t.Cleanup.
func DBNames(t testing.TB) (jobsDB, workDB string) {
	t.Helper()
	c := Client(t)
	base := sanitize(t.Name()) + "_" + strconv.FormatInt(counter.Add(1), 10)
	if runID != "" {
		// A shared server: other runs and packages may use the same names.
		base = runID + "_" + base
	}
	jobsDB, workDB = base+"_jobs", base+"_work"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// And the run-queue database that a Store on FerretDB keeps beside
		// the jobs database (store.RunQueueDB; store's tests check the name).
		for _, name := range []string{jobsDB, workDB, jobsDB + "_runq"} {
			if err := c.Database(name).Drop(ctx); err != nil {
				t.Errorf("dbtest: drop database %s: %v", name, err)
			}
		}
	})
	return jobsDB, workDB
}

// sanitize lower-cases name, replaces every character outside [a-z0-9_]
// with '_' and truncates the result to maxNameLen characters.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == maxNameLen {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "test"
	}
	return b.String()
}
