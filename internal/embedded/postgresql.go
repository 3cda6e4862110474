package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// With Options.PostgreSQL the embedded FerretDB keeps its data in a
// PostgreSQL database instead of a data folder: each MongoDB database is a
// PostgreSQL schema there, each collection a table. PostgreSQL brings its
// own replication and backups, and any host can run the front end.
//
// One front end at a time, though. FerretDB v1.24.2 caches the list of
// databases, collections and indexes in each process: it reads it from
// PostgreSQL once, at the first request, and never again. A second FerretDB
// on the same PostgreSQL database neither sees the collections the first one
// creates after that (its reads find nothing) nor can it create a database
// the first one created (its inserts fail with `relation
// "_ferretdb_database_metadata" already exists`). So Start takes a
// session-level advisory lock in the PostgreSQL database, held on a
// connection of its own until Close, much as a data folder has its lock
// file: a second front end on the same database fails to start with an
// error wrapping ErrDatabaseInUse. When the process dies, PostgreSQL ends its
// sessions and the lock is free: another `rocketjob db`, on this host or
// another, takes over the same data.
//
// When that connection is lost (PostgreSQL restarted, the network failed),
// another front end may take the lock, so the database stops serving (DB.Done
// is closed, DB.Err says why) rather than risk two front ends writing with
// two different views of the collections. It checks the connection every
// pgPingEvery, waiting pgPingTimeout at most: a front end cut off from
// PostgreSQL stops within about 12 s, before PostgreSQL's keepalives (set to
// about 25 s on that connection) free its lock for another one.

// ErrDatabaseInUse is wrapped by the error Start returns when the PostgreSQL
// database is used by another running embedded database.
var ErrDatabaseInUse = errors.New("PostgreSQL database is in use by another embedded database")

// The advisory lock (a pair of int4 keys) that marks a PostgreSQL database
// as served by an embedded FerretDB. The first key spells "rjdb".
const (
	pgLockKey1 = 0x726a6462
	pgLockKey2 = 1
)

// Timing of the PostgreSQL lock.
var (
	// pgLockWait is how long Start retries a lock held by another session:
	// the session of a front end that was just killed ends a moment after
	// the process.
	pgLockWait = 5 * time.Second
	// pgConnectTimeout bounds the first connection when the DSN sets no
	// connect_timeout.
	pgConnectTimeout = 10 * time.Second
	// pgPingEvery and pgPingTimeout: how often and how patiently the lock's
	// connection is checked while the database runs.
	pgPingEvery   = 2 * time.Second
	pgPingTimeout = 10 * time.Second
	// pgLeftoverWait bounds the wait for the PostgreSQL sessions of a
	// previous front end (killed in the middle of a statement) to end.
	pgLeftoverWait = 5 * time.Second
)

// RedactDSN returns the PostgreSQL URL dsn with its password, if any,
// replaced by "xxxxx" (in the user information and in a password=
// parameter), for messages and logs. A string that is not a URL with a
// scheme (a "host=... password=..." DSN, say) is replaced as a whole.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(unparseable PostgreSQL URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dsnPassword is the password written in dsn (user information or
// password= parameter), or "".
func dsnPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok && p != "" {
		return p
	}
	return u.Query().Get("password")
}

// scrub removes the password of dsn from msg, in case a library quoted it.
func scrub(msg, dsn string) string {
	p := dsnPassword(dsn)
	if len(p) < 4 { // a shorter one would mangle the message more than it could leak
		return msg
	}
	msg = strings.ReplaceAll(msg, p, "xxxxx")
	if e := url.QueryEscape(p); e != p {
		msg = strings.ReplaceAll(msg, e, "xxxxx")
	}
	if e := url.PathEscape(p); e != p {
		msg = strings.ReplaceAll(msg, e, "xxxxx")
	}
	return msg
}

// pgParsePrefix is the "cannot parse `DSN`: " that starts pgx's parse errors.
var pgParsePrefix = regexp.MustCompile("cannot parse `[^`]*`: ")

// CheckPostgreSQLURL reports whether dsn is a PostgreSQL URL that Start can
// use, without connecting: FerretDB takes only the URL form
// (postgres://USER:PASSWORD@HOST:PORT/DATABASE), not "host=... dbname=...".
// The error never shows the password.
func CheckPostgreSQLURL(dsn string) error {
	_, err := parseDSN(dsn)
	return err
}

// parseDSN checks that dsn is a PostgreSQL URL and parses it.
func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	const form = "postgres://USER:PASSWORD@HOST:PORT/DATABASE"
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("the PostgreSQL URL is empty: want " + form)
	}
	u, err := url.Parse(dsn)
	var ue *url.Error
	if errors.As(err, &ue) {
		return nil, fmt.Errorf("the PostgreSQL URL does not parse: %s: want %s", scrub(ue.Err.Error(), dsn), form)
	}
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, errors.New("the PostgreSQL URL is not a URL: want " + form + " (a \"host=... dbname=...\" string does not work with FerretDB)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, errors.New("PostgreSQL URL " + RedactDSN(dsn) + ": want " + form)
	}
	// As FerretDB parses it: pool_* parameters are its pool's settings, not
	// PostgreSQL's.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL %s: %s", RedactDSN(dsn), scrub(pgParsePrefix.ReplaceAllString(clean(err), ""), dsn))
	}
	return cfg.ConnConfig, nil
}

// connectError shortens pgx's connection errors, which list every attempt
// (with sslmode=prefer: one with TLS, one without), to the one that says
// what went wrong: the server's answer, else the last attempt.
func connectError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		for e := ce.Unwrap(); e != nil; e = errors.Unwrap(e) {
			if j, ok := e.(interface{ Unwrap() []error }); ok {
				if errs := j.Unwrap(); len(errs) > 0 {
					return errs[len(errs)-1]
				}
			}
		}
		return ce.Unwrap()
	}
	return err
}

// pgWhere names the database of cfg for messages: "PostgreSQL database D on
// HOST:PORT" (no user, no password).
func pgWhere(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host += " (socket)"
	} else {
		host += ":" + strconv.Itoa(int(cfg.Port))
	}
	return "PostgreSQL database " + cfg.Database + " on " + host
}

// pgLock is the advisory lock of a PostgreSQL database, held by one
// connection.
type pgLock struct {
	conn  *pgx.Conn
	where string // pgWhere
	dsn   string // for scrubbing errors
}

// lockPostgreSQL connects to the database of dsn, checks that FerretDB can
// use it and takes its advisory lock, retrying for pgLockWait while another
// session holds it.
func lockPostgreSQL(ctx context.Context, dsn string, cfg *pgx.ConnConfig, log *slog.Logger) (*pgLock, error) {
	l, err := connectPostgreSQL(ctx, dsn, cfg)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	deadline := time.Now().Add(pgLockWait)
	for {
		got, err := l.tryLock(ctx)
		if err != nil {
			return nil, err
		}
		if got {
			break
		}
		if !time.Now().Before(deadline) {
			return nil, l.inUse(ctx, "")
		}
		select {
		case <-ctx.Done():
			return nil, l.fail("take the lock of the database", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	l.acquired(ctx, log)
	ok = true
	return l, nil
}

// connectPostgreSQL opens the connection that takes (or waits for) the lock
// of the database of dsn, and checks that FerretDB can use the database.
func connectPostgreSQL(ctx context.Context, dsn string, cfg *pgx.ConnConfig) (*pgLock, error) {
	where := pgWhere(cfg)
	cfg = cfg.Copy()
	host, _ := os.Hostname()
	cfg.RuntimeParams["application_name"] = fmt.Sprintf("rocketjob db %s pid %d", host, os.Getpid())
	cctx := ctx
	if cfg.ConnectTimeout == 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, pgConnectTimeout)
		defer cancel()
	}
	conn, err := pgx.ConnectConfig(cctx, cfg)
	l := &pgLock{conn: conn, where: where, dsn: dsn}
	if err != nil {
		return nil, l.fail("connect", connectError(err))
	}
	if err := checkFerretSettings(ctx, conn); err != nil {
		l.close()
		return nil, fmt.Errorf("%s: %s", where, scrub(clean(err), dsn))
	}
	// Let PostgreSQL notice within about 25 s that this host is gone (it
	// crashed, or the network failed), so that the lock does not outlive it
	// by the system's default of two hours. Ignored on a Unix socket.
	for _, q := range []string{"SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5", "SET tcp_keepalives_count = 3"} {
		_, _ = conn.Exec(ctx, q)
	}
	return l, nil
}

// fail is the one-line error of a failed step on the lock's database.
func (l *pgLock) fail(what string, err error) error {
	return fmt.Errorf("%s: %s: %s", l.where, what, scrub(clean(err), l.dsn))
}

// tryLock takes the lock of the database if it is free.
func (l *pgLock) tryLock(ctx context.Context) (bool, error) {
	var got bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", int32(pgLockKey1), int32(pgLockKey2)).Scan(&got); err != nil {
		return false, l.fail("take the lock of the database", err)
	}
	return got, nil
}

// inUse is the error of a front end that found the lock held; more, when
// not empty, says more about the holder.
func (l *pgLock) inUse(ctx context.Context, more string) error {
	return &sentinelError{
		msg: fmt.Sprintf("%s is in use by another embedded database (%s); FerretDB keeps the list of collections in each process, so one `rocketjob db` at a time serves a PostgreSQL database%s",
			l.where, l.holder(ctx), more),
		sentinel: ErrDatabaseInUse,
	}
}

// acquired does what a front end does once it holds the lock, before
// FerretDB starts.
func (l *pgLock) acquired(ctx context.Context, log *slog.Logger) {
	l.waitLeftovers(ctx, log)
	l.warnHidden(ctx, log)
}

// warnHidden logs, at error level, the FerretDB databases of this
// PostgreSQL database that FerretDB v1.24.2 will not see: it lists its
// databases with `schema_name NOT LIKE 'pg_%'`, which also skips every name
// that starts with "pg" and has a third character. Such a database works
// until the front end restarts; then its data is unreachable, and writing
// to it fails ("relation _ferretdb_database_metadata already exists").
func (l *pgLock) warnHidden(ctx context.Context, log *slog.Logger) {
	rows, err := l.conn.Query(ctx, `
		SELECT table_schema FROM information_schema.tables
		WHERE table_name = '_ferretdb_database_metadata' AND table_schema LIKE 'pg_%'`)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		log.Error(fmt.Sprintf("%s: FerretDB does not see the database %q, which has data: on PostgreSQL it skips every database whose name starts with \"pg\"; rename its schema (ALTER SCHEMA ... RENAME TO ...) and use that name", l.where, name))
	}
}

// checkFerretSettings makes the checks FerretDB v1.24.2 makes on each new
// connection (internal/backends/postgresql/metadata/pool.checkConnection),
// so that a database it cannot use fails at start, with advice, instead of
// at every request.
func checkFerretSettings(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, "SHOW ALL")
	if err != nil {
		return err
	}
	settings := map[string]string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return err
		}
		if len(vals) >= 2 {
			name, _ := vals[0].(string)
			val, _ := vals[1].(string)
			settings[name] = val
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	simplify := func(v string) string { return strings.ToLower(strings.ReplaceAll(v, "-", "")) }
	if v, ok := settings["server_encoding"]; ok && simplify(v) != "utf8" {
		return fmt.Errorf("its encoding is %s; FerretDB needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0)", v)
	}
	for _, n := range []string{"lc_collate", "lc_ctype"} {
		v, ok := settings[n]
		if ok && !slices.Contains([]string{"posix", "c", "c.utf8", "en_us.utf8"}, simplify(v)) {
			return fmt.Errorf("its %s is %s; FerretDB needs C, POSIX, C.UTF8 or en_US.UTF8 (CREATE DATABASE ... ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0)", n, v)
		}
	}
	if v, ok := settings["standard_conforming_strings"]; ok && v != "on" {
		return fmt.Errorf("standard_conforming_strings is %s; FerretDB needs on", v)
	}
	return nil
}

// holder describes the session that holds the lock, as far as PostgreSQL
// lets this user see it.
func (l *pgLock) holder(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var app, addr *string
	var since *time.Time
	err := l.conn.QueryRow(ctx, `
		SELECT a.application_name, host(a.client_addr), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
		LIMIT 1`, uint32(pgLockKey1), uint32(pgLockKey2)).Scan(&app, &addr, &since)
	if err != nil || app == nil || *app == "" {
		return "held by a session this user cannot see"
	}
	s := *app
	if addr != nil && *addr != "" {
		s += ", connected from " + *addr
	}
	if since != nil {
		s += " since " + since.UTC().Format(time.RFC3339)
	}
	return s
}

// waitLeftovers waits, for pgLeftoverWait at most, until no FerretDB session
// of an earlier front end is left in the database: one killed in the middle
// of a statement leaves its session until the statement ends, and that
// statement must not change the collections after the new front end has
// read them.
func (l *pgLock) waitLeftovers(ctx context.Context, log *slog.Logger) {
	deadline := time.Now().Add(pgLeftoverWait)
	for {
		var n int
		err := l.conn.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'FerretDB' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil || n == 0 {
			return
		}
		if !time.Now().Before(deadline) {
			log.Warn(fmt.Sprintf("%s: %d FerretDB sessions of another front end are still connected; a FerretDB that does not take rocketjob's lock must not use this database", l.where, n))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watch checks the lock's connection every pgPingEvery until ctx ends, and
// calls lost (once) when it fails.
func (l *pgLock) watch(ctx context.Context, lost func(error)) {
	t := time.NewTicker(pgPingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pgPingTimeout)
		err := l.conn.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			lost(fmt.Errorf("%s: lost the connection that holds the database's lock (%s): stopped serving, as another front end may take over", l.where, scrub(clean(err), l.dsn)))
			return
		}
	}
}

// close ends the lock's session, which releases the lock.
func (l *pgLock) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}
