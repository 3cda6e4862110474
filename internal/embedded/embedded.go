// Package embedded runs a FerretDB server inside the current process, so
// that rocketjob can be used and tested without an external MongoDB server.
// FerretDB keeps its data in SQLite files in a data folder (Options.Dir), or
// in a PostgreSQL database (Options.PostgreSQL, see postgresql.go).
//
// A data folder is owned by at most one running database at a time: Start
// takes an exclusive flock on DIR/rocketjob.lock, which Close releases (and
// the kernel releases if the process dies). A PostgreSQL database likewise,
// with an advisory lock.
package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
)

// DefaultListen is the listen address used when Options.Listen is empty:
// the loopback interface on a random free port.
const DefaultListen = "127.0.0.1:0"

// LockFileName is the name of the lock file created inside the data folder.
const LockFileName = "rocketjob.lock"

// startTimeout bounds how long Start waits for the server to accept
// connections when ctx has no earlier deadline.
const startTimeout = 15 * time.Second

// ErrDirInUse is wrapped by the error Start returns when the data folder is
// already used by another running database (in this or another process).
var ErrDirInUse = errors.New("data folder is in use by another process")

// ErrAddrInUse is wrapped by the error Start returns when the listen address
// is already in use.
var ErrAddrInUse = errors.New("address already in use")

// Options configure an embedded database.
type Options struct {
	// Dir is the data folder of the SQLite backend; it is created (mode
	// 0700) if missing. Exactly one of Dir and PostgreSQL is required.
	Dir string
	// PostgreSQL is the URL of a PostgreSQL database
	// (postgres://USER:PASSWORD@HOST:PORT/DATABASE; the password may also
	// come from PGPASSWORD or ~/.pgpass) in which FerretDB keeps its data
	// instead of a data folder. The database must exist, with encoding UTF8
	// and collation C, POSIX, C.UTF8 or en_US.UTF8; it is served by one
	// embedded database at a time. Errors and logs never show the password.
	PostgreSQL string
	// Listen is the TCP host:port to listen on; default DefaultListen
	// ("127.0.0.1:0", a random free port).
	Listen string
	// Logger receives FerretDB's log records of level Warn and above;
	// nil discards all of them.
	Logger *slog.Logger
	// TLS, when not nil, serves TLS on Listen instead of plain TCP; with a
	// CA file clients must present a certificate it signed.
	TLS *TLS
	// InsecureListen allows a Listen address off the loopback interface
	// without client certificates: anyone who can reach it can read and
	// change every database. Without it, Start refuses such an address
	// with an error wrapping ErrInsecureListen.
	InsecureListen bool
	// Reserve is the size of the disk reserve kept in the data folder and
	// freed when the disk is full (see ReserveFileName); 0 means
	// DefaultReserve, a negative value none. Unused with PostgreSQL.
	Reserve int64
}

// DB is a running embedded FerretDB server. Create it with Start and stop it
// with Close.
type DB struct {
	dir    string // SQLite's data folder, or ""
	where  string // "data folder DIR" or "PostgreSQL database D on HOST:PORT"
	uri    string
	lock   *os.File // SQLite
	pgLock *pgLock  // PostgreSQL

	cancel  context.CancelFunc
	stopped chan struct{} // closed when Run has returned (runErr is set)
	runErr  error
	helpers chan struct{} // closed when the _id indexer, the reserve keeper and the lock watcher have stopped

	errMu   sync.Mutex
	lostErr error // why the server stopped on its own

	closeOnce sync.Once
	closeErr  error
}

// sqlitePragmas are the SQLite settings of the embedded database: FerretDB's
// own defaults (a 10 s busy timeout, write-ahead log) plus synchronous=NORMAL.
// With a write-ahead log, NORMAL syncs at checkpoints instead of at every
// commit: a commit survives the process being killed (kill -9), and the
// database is never corrupted, but the last commits before an operating-system
// crash or power loss may be lost. Every write on FerretDB is its own SQLite
// transaction, so a sync per commit made each job write wait for the disk
// (3x fewer simple jobs a second, measured with rocketjob bench --simple).
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_pragma=auto_vacuum(none)"

// Start starts an embedded FerretDB server on opts.Dir (or opts.PostgreSQL)
// and returns once it accepts connections. ctx only bounds the start-up; the
// server runs until Close is called, or until it loses the PostgreSQL
// connection that holds its lock (see Done).
//
// Start fails with an error wrapping ErrDirInUse when the data folder is
// locked by another running database, ErrDatabaseInUse when the PostgreSQL
// database is, and ErrAddrInUse when the listen address is taken.
func Start(ctx context.Context, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded database: %w", err)
	}
	switch {
	case opts.Dir != "" && opts.PostgreSQL != "":
		return nil, errors.New("start embedded database: a data folder (Options.Dir) and a PostgreSQL database (Options.PostgreSQL) exclude each other")
	case opts.Dir == "" && opts.PostgreSQL == "":
		return nil, errors.New("start embedded database: data folder (Options.Dir) or PostgreSQL database (Options.PostgreSQL) is required")
	}
	var dir string
	var pgCfg *pgx.ConnConfig
	if opts.PostgreSQL != "" {
		cfg, err := parseDSN(opts.PostgreSQL)
		if err != nil {
			return nil, err
		}
		pgCfg = cfg
	} else {
		var err error
		dir, err = filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("data folder %q: %w", opts.Dir, err)
		}
		if strings.ContainsAny(dir, `?#%*[\`) {
			return nil, fmt.Errorf(`data folder %s: path must not contain any of the characters ?#%%*[\`, dir)
		}
	}

	listen, port, err := checkListenOptions(opts)
	if err != nil {
		return nil, err
	}

	if pgCfg != nil {
		// The port is checked before PostgreSQL is: a second front end on a
		// busy port says so at once.
		if port != "0" {
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return nil, listenError(listen, err)
			}
			_ = l.Close()
		}
		pl, err := lockPostgreSQL(ctx, opts.PostgreSQL, pgCfg, loggerOf(opts))
		if err != nil {
			return nil, err
		}
		db, err := start(ctx, backend{where: pl.where, pgDSN: opts.PostgreSQL, pgLock: pl}, listen, port, opts)
		if err != nil {
			pl.close()
			return nil, err
		}
		return db, nil
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %s", dir, clean(err))
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("data folder %s: %s", dir, clean(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("data folder %s is not a directory", dir)
	}

	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}

	db, err := start(ctx, backend{dir: dir, where: "data folder " + dir, lock: lock}, listen, port, opts)
	if err != nil {
		releaseLock(lock)
		return nil, err
	}
	return db, nil
}

// checkListenOptions checks the listen address and TLS files of opts and
// returns the address (DefaultListen when empty) and its port.
func checkListenOptions(opts Options) (listen, port string, err error) {
	listen = cmp.Or(opts.Listen, DefaultListen)
	if _, port, err = net.SplitHostPort(listen); err != nil {
		return "", "", fmt.Errorf("invalid listen address %q: %s", listen, clean(err))
	}
	if !opts.InsecureListen {
		if err := CheckListen(listen, opts.TLS); err != nil {
			return "", "", err
		}
	}
	if opts.TLS != nil {
		if err := opts.TLS.check(); err != nil {
			return "", "", err
		}
	}
	return listen, port, nil
}

// backend is where a database keeps its data, and the lock that owns it.
type backend struct {
	where string // for messages

	dir  string   // SQLite: the data folder
	lock *os.File // and its lock file

	pgDSN  string  // PostgreSQL: the URL
	pgLock *pgLock // and its lock
}

// loggerOf is the logger of opts, passing only Warn and above.
func loggerOf(opts Options) *slog.Logger {
	if opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(warnOnly{opts.Logger.Handler()})
}

// start does the part of Start that runs while the backend's lock is held.
func start(ctx context.Context, b backend, listen, port string, opts Options) (db *DB, err error) {
	// ferretdb.New leaks its SQLite backend when its own listen fails, so
	// detect a busy fixed port before creating it. The port may still be
	// taken in between; that case is handled below.
	if port != "0" {
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, listenError(listen, err)
		}
		_ = l.Close()
	}

	logger := loggerOf(opts)
	ferretLogger := logger
	var res *reserve
	if b.dir != "" {
		installSleep() // before FerretDB opens its first connection (sleep.go)
		// The reserve is taken before the database grows; FerretDB's logs
		// tell when the disk is full. (PostgreSQL's disk is PostgreSQL's.)
		if want := cmp.Or(opts.Reserve, DefaultReserve); want > 0 {
			res = newReserve(b.dir, want, logger)
			res.fill()
			ferretLogger = slog.New(fullWatch{logger.Handler(), func() { res.release(b.dir) }})
		}
	}

	// Never let a panic inside FerretDB's constructor escape to the caller.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("start embedded database in %s: FerretDB panicked: %s", b.where, scrub(fmt.Sprint(r), b.pgDSN))
		}
	}()

	lc := ferretdb.ListenerConfig{TCP: listen}
	if t := opts.TLS; t != nil {
		lc = ferretdb.ListenerConfig{TLS: listen, TLSCertFile: t.CertFile, TLSKeyFile: t.KeyFile, TLSCAFile: t.CAFile}
	}
	cfg := &ferretdb.Config{Listener: lc, Logger: ferretLogger}
	if b.pgDSN != "" {
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", b.pgDSN
	} else {
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+strings.TrimSuffix(b.dir, "/")+"/?"+sqlitePragmas
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		if isAddrInUse(err) {
			return nil, listenError(listen, syscall.EADDRINUSE)
		}
		return nil, fmt.Errorf("start embedded database in %s: %s", b.where, scrub(clean(err), b.pgDSN))
	}

	// In FerretDB v1.24.2 ferretdb.New binds the listener itself, so the
	// address is known before Run; MongoDBURI blocks only when the listener
	// was not created, which cannot happen once New succeeded.
	uri, err := clientURI(f.MongoDBURI())
	if err != nil {
		return nil, fmt.Errorf("start embedded database in %s: %s", b.where, clean(err))
	}

	runCtx, cancel := context.WithCancel(context.Background())
	db = &DB{dir: b.dir, where: b.where, uri: uri, lock: b.lock, pgLock: b.pgLock, cancel: cancel,
		stopped: make(chan struct{}), helpers: make(chan struct{})}
	go func() {
		defer close(db.stopped)
		db.runErr = f.Run(runCtx)
	}()

	if err = waitAccepting(ctx, uri, db.stopped, &db.runErr); err != nil {
		cancel()
		<-db.stopped
		return nil, fmt.Errorf("start embedded database in %s: %s", b.where, scrub(clean(err), b.pgDSN))
	}
	if opts.TLS == nil {
		// On PostgreSQL this is also FerretDB's first request, which opens
		// its connections and reads the list of collections.
		if err := writeInfo(ctx, uri, b); err != nil {
			logger.Warn("describing the database in "+InfoDB+"."+InfoCollection, "err", scrub(clean(err), b.pgDSN))
		}
	}
	go func() {
		defer close(db.helpers)
		var wg sync.WaitGroup
		if res != nil {
			wg.Go(func() { res.run(runCtx) })
		}
		if b.pgLock != nil {
			wg.Go(func() {
				b.pgLock.watch(runCtx, func(err error) {
					logger.Error(err.Error())
					db.errMu.Lock()
					db.lostErr = err
					db.errMu.Unlock()
					cancel()
				})
			})
		}
		if b.dir != "" {
			x := &idIndexer{dir: b.dir, log: ferretLogger, seen: map[string]time.Time{}}
			x.run(runCtx)
		}
		wg.Wait()
	}()
	return db, nil
}

// URI returns the MongoDB connection string of the server, for example
// "mongodb://127.0.0.1:40123/" ("...?tls=true" with Options.TLS: clients
// add their tlsCAFile and tlsCertificateKeyFile). It contains the real
// bound port even when Options.Listen used port 0.
func (db *DB) URI() string { return db.uri }

// Dir returns the absolute path of the data folder, or "" on PostgreSQL.
func (db *DB) Dir() string { return db.dir }

// Where says where the data is, for messages: "data folder DIR" or
// "PostgreSQL database NAME on HOST:PORT" (never a password).
func (db *DB) Where() string { return db.where }

// Done is closed when the server has stopped: after Close, or on its own
// when it lost the PostgreSQL connection that holds its lock (Err says
// why; call Close all the same).
func (db *DB) Done() <-chan struct{} { return db.stopped }

// Err is why the server stopped on its own, or nil.
func (db *DB) Err() error {
	db.errMu.Lock()
	defer db.errMu.Unlock()
	return db.lostErr
}

// Close stops the listener, waits for the server to stop and releases the
// data folder's (or the PostgreSQL database's) lock. Connected clients get
// up to a few seconds to disconnect before their connections are closed, so
// disconnect them first for a fast Close. Close is idempotent and safe for
// concurrent use.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.cancel()
		<-db.helpers
		<-db.stopped
		runErr := db.runErr
		if runErr != nil {
			runErr = fmt.Errorf("stop embedded database in %s: %s", db.where, clean(runErr))
		}
		// The lock goes last: another front end may start once it is free.
		if db.pgLock != nil {
			db.pgLock.close()
			db.closeErr = runErr
			return
		}
		db.closeErr = errors.Join(runErr, releaseLock(db.lock))
	})
	return db.closeErr
}

// lockDir opens DIR/rocketjob.lock, takes an exclusive flock on it and
// writes the current pid into it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFileName)
	// No O_TRUNC: the file may hold the pid of the current owner.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %s", clean(err))
	}
	held, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %s", path, clean(err))
	}
	if held {
		pid := "pid unknown"
		if b, err := os.ReadFile(path); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
				pid = "pid " + strconv.Itoa(n)
			}
		}
		_ = f.Close()
		return nil, &sentinelError{
			msg:      fmt.Sprintf("data folder %s is in use by another process (%s)", dir, pid),
			sentinel: ErrDirInUse,
		}
	}
	if err = f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		releaseLock(f)
		return nil, fmt.Errorf("write lock file %s: %s", path, clean(err))
	}
	return f, nil
}

// releaseLock clears the pid, releases the flock and closes the lock file.
func releaseLock(f *os.File) error {
	_ = f.Truncate(0)
	err := unlock(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release lock file %s: %s", f.Name(), clean(err))
	}
	return nil
}

// listenError turns a failure to listen on addr into a one-line error,
// wrapping ErrAddrInUse when the address is taken.
func listenError(addr string, err error) error {
	if isAddrInUse(err) {
		return &sentinelError{
			msg:      fmt.Sprintf("listen %s: %s", addr, syscall.EADDRINUSE.Error()),
			sentinel: ErrAddrInUse,
			cause:    syscall.EADDRINUSE,
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		err = opErr.Err
	}
	return fmt.Errorf("listen %s: %s", addr, clean(err))
}

// isAddrInUse reports whether err is (or, after FerretDB flattened it into a
// string, reads like) EADDRINUSE.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) ||
		strings.Contains(err.Error(), syscall.EADDRINUSE.Error())
}

// clientURI rewrites the URI reported by FerretDB so that clients can use
// it: a wildcard listen address ("0.0.0.0", "::") is replaced by 127.0.0.1;
// the query (tls=true) is kept.
func clientURI(ferretURI string) (string, error) {
	u, err := url.Parse(ferretURI)
	if err != nil {
		return "", fmt.Errorf("parse FerretDB URI %q: %w", ferretURI, err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", fmt.Errorf("parse FerretDB URI %q: %w", ferretURI, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	uri := "mongodb://" + net.JoinHostPort(host, port) + "/"
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	return uri, nil
}

// waitAccepting dials the server until a TCP connection succeeds, the
// server stops (stopped is closed, *runErr set), ctx ends or startTimeout
// passes.
func waitAccepting(ctx context.Context, uri string, stopped <-chan struct{}, runErr *error) error {
	u, err := url.Parse(uri)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	var d net.Dialer
	delay := 5 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-stopped:
			err := *runErr
			if err == nil {
				err = errors.New("server stopped")
			}
			return fmt.Errorf("server stopped before accepting connections: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("server at %s did not accept connections: %s (%w)", u.Host, clean(err), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// lazyPrefix matches the "[file.go:123 pkg.Func] " prefixes that FerretDB's
// lazyerrors package adds to error messages.
var lazyPrefix = regexp.MustCompile(`\[[^\]\s]+\.go:\d+[^\]]*\] `)

// clean renders err as one readable line.
func clean(err error) string {
	s := lazyPrefix.ReplaceAllString(err.Error(), "")
	return strings.Join(strings.Fields(s), " ")
}

// sentinelError is an error with its own message that matches a sentinel
// (and optionally an underlying cause) with errors.Is.
type sentinelError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *sentinelError) Error() string { return e.msg }

func (e *sentinelError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

// warnOnly passes only records of level Warn and above to the wrapped
// handler, less PostgreSQL's reports of unique violations: rocketjob's
// claims are inserts that are meant to collide (one wins, the others get a
// duplicate-key answer), and FerretDB's query tracing logs each collision
// as an error.
type warnOnly struct{ h slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.h.Enabled(ctx, l)
}

func (w warnOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || uniqueViolation(r) {
		return nil
	}
	return w.h.Handle(ctx, r)
}

// uniqueViolation reports whether a log record is about a PostgreSQL
// unique violation (SQLSTATE 23505), as pgx's tracing writes it.
func uniqueViolation(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = strings.Contains(a.Value.String(), "SQLSTATE 23505")
		return !found
	})
	return found
}

func (w warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{w.h.WithAttrs(attrs)}
}

func (w warnOnly) WithGroup(name string) slog.Handler {
	return warnOnly{w.h.WithGroup(name)}
}
