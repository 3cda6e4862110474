package rocketjobtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/embedded"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// EnvURI names the environment variable that points the helpers at a
// database server of your own (a MongoDB replica set in CI, say) instead of
// the embedded database: Options.URI defaults to its value.
const EnvURI = "ROCKETJOB_TEST_URI"

// Timeouts of the helpers.
const (
	// StartTimeout bounds starting the embedded database and connecting to
	// the databases in Start.
	StartTimeout = 2 * time.Minute
	// DropTimeout bounds dropping a test's databases when it ends.
	DropTimeout = 30 * time.Second
)

// dirPrefix starts the name of the embedded database's temporary data folder.
const dirPrefix = "rocketjobtest-"

// maxNameLen bounds the part of a database name taken from the test name.
const maxNameLen = 32

// Options say which database server a test uses and how its client is set
// up; nil means all defaults.
type Options struct {
	// URI of the database server holding the test's databases. Default:
	// $ROCKETJOB_TEST_URI, else the embedded database shared by the test
	// binary (FerretDB in a temporary folder, started on first use).
	URI string
	// Keyring holds the keys of encrypted job types. Default: a keyring with
	// one freshly generated key, so encrypted types work in tests without a
	// key file (the environment's ROCKETJOB_KEYS is not read).
	Keyring *encryption.Keyring
	// ClaimStrategy is passed to rocketjob.Config: "" or "auto" picks the
	// strategy that suits the server (unique inserts on FerretDB), "insert"
	// or "findandmodify" force one (findandmodify on MongoDB only: it is
	// refused on the embedded database, where it is not atomic).
	ClaimStrategy string
}

// DB is a fresh pair of databases (jobs and work) on a database server, with
// a client on them. Every DB gets database names no other DB uses, so tests
// holding one each may run in parallel. Close drops both databases.
type DB struct {
	// Client is connected to JobsDB and WorkDB with the registry and keyring
	// given to Open. Close closes it.
	Client *rocketjob.Client
	// URI is the database server's address, for more clients on the same
	// databases (a second keyring, a server with a client of its own).
	URI string
	// JobsDB and WorkDB name the test's databases.
	JobsDB, WorkDB string
	// Keyring is the client's keyring.
	Keyring *encryption.Keyring

	claim     string // the ClaimStrategy of Options
	closeOnce sync.Once
	closeErr  error
}

// Config returns the rocketjob.Config of d's client (its server, databases,
// keyring, claim strategy and registry), to open more clients on the same
// databases; change a copy's Keyring to try another keyring.
func (d *DB) Config() rocketjob.Config {
	return rocketjob.Config{URI: d.URI, DB: d.JobsDB, WorkDB: d.WorkDB, Registry: d.Client.Registry(), Keyring: d.Keyring, ClaimStrategy: d.claim}
}

// Open returns a client of reg (nil: an empty registry) on a fresh pair of
// databases of the server named by opts (nil: the shared embedded database).
// Call Close when done; Start does both for a test. Open is for code without
// a *testing.T, such as examples.
func Open(ctx context.Context, reg *rocketjob.Registry, opts *Options) (*DB, error) {
	return open(ctx, "db", reg, opts)
}

// Start returns a client of reg (nil: an empty registry) on a fresh pair of
// databases for tb, which are dropped when tb ends. The first Start of a test
// binary starts the embedded database (unless opts or $ROCKETJOB_TEST_URI name
// another server); the later ones reuse it, so calling Start from every test,
// in parallel too, is cheap. Any failure ends the test with t.Fatal.
//
//	func TestUpcase(t *testing.T) {
//		reg := rocketjob.NewRegistry()
//		mytypes.Register(reg)
//		client := rocketjobtest.Start(t, reg, nil)
//		res, err := rocketjobtest.RoundTrip(t.Context(), client, "upcase", strings.NewReader("a\nb\n"), nil)
//		...
//	}
func Start(tb testing.TB, reg *rocketjob.Registry, opts *Options) *rocketjob.Client {
	return StartDB(tb, reg, opts).Client
}

// StartDB is Start returning the DB, for tests that need the database names
// (to open a second client with another keyring, say).
func StartDB(tb testing.TB, reg *rocketjob.Registry, opts *Options) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	db, err := open(ctx, tb.Name(), reg, opts)
	if err != nil {
		tb.Fatalf("rocketjobtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			tb.Errorf("rocketjobtest: %v", err)
		}
	})
	return db
}

func open(ctx context.Context, name string, reg *rocketjob.Registry, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	if reg == nil {
		reg = rocketjob.NewRegistry()
	}
	uri := opts.URI
	if uri == "" {
		uri = os.Getenv(EnvURI)
	}
	if uri == "" {
		var err error
		if uri, err = sharedURI(ctx); err != nil {
			return nil, err
		}
	}
	kr := opts.Keyring
	if kr == nil {
		var err error
		if kr, err = newKeyring(); err != nil {
			return nil, err
		}
	}
	base, err := dbName(name)
	if err != nil {
		return nil, err
	}
	d := &DB{URI: uri, JobsDB: base + "_jobs", WorkDB: base + "_work", Keyring: kr, claim: opts.ClaimStrategy}
	d.Client, err = rocketjob.NewClient(ctx, rocketjob.Config{URI: uri, DB: d.JobsDB, WorkDB: d.WorkDB, Registry: reg, Keyring: kr, ClaimStrategy: opts.ClaimStrategy})
	if err != nil {
		return nil, fmt.Errorf("connecting to the test databases: %w", err)
	}
	return d, nil
}

// Close closes the client and drops both databases, within DropTimeout.
// Clients opened with Config must be closed first. Close is idempotent.
func (d *DB) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DropTimeout)
		defer cancel()
		err := d.Client.Close(ctx)
		if derr := drop(ctx, d.URI, d.JobsDB, d.WorkDB, store.RunQueueDB(d.JobsDB)); derr != nil {
			err = errors.Join(err, derr)
		}
		d.closeErr = err
	})
	return d.closeErr
}

// drop drops the named databases on the server at uri, on a connection of
// its own that it closes again (so no connection outlives the test).
func drop(ctx context.Context, uri string, names ...string) error {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return fmt.Errorf("dropping the test databases: %w", err)
	}
	defer func() { _ = c.Disconnect(context.WithoutCancel(ctx)) }()
	for _, n := range names {
		if err := c.Database(n).Drop(ctx); err != nil {
			return fmt.Errorf("dropping database %s: %w", n, err)
		}
	}
	return nil
}

// newKeyring returns a keyring with one new key.
func newKeyring() (*encryption.Keyring, error) {
	key, err := encryption.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generating a test key: %w", err)
	}
	return encryption.ParseKeyring(key)
}

var dbCounter atomic.Int64

// dbName returns a database name prefix unique to this call: the test name
// (lower case, other characters than [a-z0-9_] replaced by '_', cut at
// maxNameLen), a counter and a random part (other test binaries may use the
// same server).
func dbName(test string) (string, error) {
	var b strings.Builder
	b.WriteString("rjt_")
	n := 0
	for _, r := range strings.ToLower(test) {
		if n == maxNameLen {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		n++
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "_%d_%s", dbCounter.Add(1), hex.EncodeToString(rnd[:]))
	return b.String(), nil
}

// shared is the embedded database of the test binary, started by the first
// helper that needs it and stopped by Main (or with the process).
var shared struct {
	mu  sync.Mutex
	db  *embedded.DB
	dir string
}

// sharedURI returns the URI of the shared embedded database, starting it
// first if needed. A failed start is not remembered: the next call tries
// again.
func sharedURI(ctx context.Context) (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.db != nil {
		return shared.db.URI(), nil
	}
	sweep(os.TempDir())
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return "", fmt.Errorf("creating the embedded database's folder: %w", err)
	}
	db, err := embedded.Start(ctx, embedded.Options{Dir: dir, Reserve: -1})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("starting the embedded database: %w", err)
	}
	shared.db, shared.dir = db, dir
	return db.URI(), nil
}

// Main runs a package's tests and then stops the shared embedded database and
// removes its folder. Use it from TestMain:
//
//	func TestMain(m *testing.M) { rocketjobtest.Main(m) }
//
// Without it the database stops with the test binary and its temporary folder
// is removed by the next test binary that starts one.
func Main(m *testing.M) {
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "rocketjobtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// stopShared stops the shared embedded database, if it runs, and removes its
// folder. Clients still connected hold up the stop for a few seconds.
func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.db == nil {
		return nil
	}
	err := shared.db.Close()
	if rerr := os.RemoveAll(shared.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	shared.db, shared.dir = nil, ""
	if err != nil {
		return fmt.Errorf("stopping the embedded database: %w", err)
	}
	return nil
}
