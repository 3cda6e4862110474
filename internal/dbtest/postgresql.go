package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// PostgreSQLEnv names the environment variable that switches the tests to
// FerretDB over PostgreSQL: the URL of a PostgreSQL database whose user may
// create databases, e.g.
//
//	ROCKETJOB_TEST_POSTGRESQL=postgres://rocketjob:PASSWORD@127.0.0.1:5432/postgres
//
// With it, Main creates a fresh PostgreSQL database for the package's tests
// (dropped at the end) and runs the embedded FerretDB over it instead of
// SQLite; integration tests run `rocketjob db --postgresql` the same way.
const PostgreSQLEnv = "ROCKETJOB_TEST_POSTGRESQL"

// PostgreSQLLaterEnv, set by .ci/run, says that this run of the tests is
// without PostgreSQL on purpose because another step of CI runs the
// PostgreSQL tests: RequirePostgreSQL skips instead of failing under CI=true.
const PostgreSQLLaterEnv = "ROCKETJOB_TEST_POSTGRESQL_LATER"

// PostgreSQL returns the URL in $ROCKETJOB_TEST_POSTGRESQL, or "".
func PostgreSQL() string { return os.Getenv(PostgreSQLEnv) }

// RequirePostgreSQL returns the URL in $ROCKETJOB_TEST_POSTGRESQL. Without
// it the test is skipped, with one line saying so; but under CI=true it
// fails (a CI that was meant to run it must not skip it silently), unless
// $ROCKETJOB_TEST_POSTGRESQL_LATER says another CI step runs it.
func RequirePostgreSQL(t testing.TB) string {
	t.Helper()
	if dsn := PostgreSQL(); dsn != "" {
		return dsn
	}
	const how = "needs PostgreSQL: set " + PostgreSQLEnv + "=postgres://USER:PASSWORD@HOST:PORT/DATABASE (a user that may create databases)"
	if os.Getenv("CI") == "true" && os.Getenv(PostgreSQLLaterEnv) == "" {
		t.Fatal(how + " (CI=true: not skipped)")
	}
	t.Skip(how)
	return ""
}

// NewPostgreSQLDatabase creates a fresh PostgreSQL database next to the one
// of dsn, named after prefix with a random suffix, with the encoding and
// collation FerretDB needs, and returns its URL (dsn with the database
// replaced) and a function that drops it (closing its sessions first).
func NewPostgreSQLDatabase(ctx context.Context, dsn, prefix string) (newDSN string, drop func() error, err error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%s is not a postgres:// URL: %s", PostgreSQLEnv, embedded.RedactDSN(dsn))
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// PostgreSQL truncates names to 63 bytes; keep them well within.
	name := "rjtest_" + sanitize(prefix) + "_" + hex.EncodeToString(rnd[:])
	conn, err := pgConnect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %v", embedded.RedactDSN(dsn), err)
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		return "", nil, fmt.Errorf("create PostgreSQL database %s on %s: %v", name, embedded.RedactDSN(dsn), err)
	}
	nu := *u
	nu.Path = "/" + name
	nu.RawPath = ""
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgConnect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("drop PostgreSQL database %s: %v", name, err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop PostgreSQL database %s: %v", name, err)
		}
		return nil
	}
	return nu.String(), drop, nil
}

// pgConnect connects to the database of dsn, which may hold FerretDB's
// pool_* settings.
func pgConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// packageName is the name of the test binary without ".test": the
// package's name, for naming its PostgreSQL database.
func packageName() string {
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
}

// pgDataDir returns the folder that holds the PostgreSQL database of dsn on
// this machine, after a CHECKPOINT (so that every committed page is in its
// files), for tests that inspect what is stored at rest. It needs a local
// server and a user allowed to checkpoint and to read data_directory (a
// superuser), and a test process allowed to read the files.
func pgDataDir(dsn string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgConnect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return "", fmt.Errorf("CHECKPOINT: %v", err)
	}
	var dataDir string
	var oid uint32
	err = conn.QueryRow(ctx, `SELECT current_setting('data_directory'), oid FROM pg_database WHERE datname = current_database()`).Scan(&dataDir, &oid)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(dataDir, "base", fmt.Sprint(oid))
	if _, err := os.ReadDir(dir); err != nil {
		return "", fmt.Errorf("the database's files (PostgreSQL on another machine, or not readable here): %v", err)
	}
	return dir, nil
}
