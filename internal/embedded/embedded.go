// Package embedded runs a FerretDB server (SQLite handler) inside the current
// process, so that rocketjob can be used and tested without an external
// MongoDB server.
//
// A data folder is owned by at most one running database at a time: Start
// takes an exclusive flock on DIR/rocketjob.lock, which Close releases (and
// the kernel releases if the process dies).
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
	// Dir is the data folder; it is created (mode 0700) if missing. Required.
	Dir string
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
	// DefaultReserve, a negative value none.
	Reserve int64
}

// DB is a running embedded FerretDB server. Create it with Start and stop it
// with Close.
type DB struct {
	dir  string
	uri  string
	lock *os.File

	cancel  context.CancelFunc
	done    chan error    // receives Run's result, then is closed
	indexed chan struct{} // closed when the _id indexer and the reserve keeper have stopped

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

// Start starts an embedded FerretDB server on opts.Dir and returns once it
// accepts connections. ctx only bounds the start-up; the server runs until
// Close is called.
//
// Start fails with an error wrapping ErrDirInUse when the data folder is
// locked by another running database, and with an error wrapping
// ErrAddrInUse when the listen address is taken.
func Start(ctx context.Context, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded database: %w", err)
	}
	if opts.Dir == "" {
		return nil, errors.New("start embedded database: data folder (Options.Dir) is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("data folder %q: %w", opts.Dir, err)
	}
	if strings.ContainsAny(dir, `?#%*[\`) {
		return nil, fmt.Errorf(`data folder %s: path must not contain any of the characters ?#%%*[\`, dir)
	}

	listen := opts.Listen
	if listen == "" {
		listen = DefaultListen
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("invalid listen address %q: %s", listen, clean(err))
	}
	if !opts.InsecureListen {
		if err := CheckListen(listen, opts.TLS); err != nil {
			return nil, err
		}
	}
	if opts.TLS != nil {
		if err := opts.TLS.check(); err != nil {
			return nil, err
		}
	}

	if err = os.MkdirAll(dir, 0o700); err != nil {
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

	db, err := start(ctx, dir, listen, port, opts, lock)
	if err != nil {
		releaseLock(lock)
		return nil, err
	}
	return db, nil
}

// start does the part of Start that runs while the folder lock is held.
func start(ctx context.Context, dir, listen, port string, opts Options, lock *os.File) (db *DB, err error) {
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

	logger := slog.New(slog.DiscardHandler)
	if opts.Logger != nil {
		logger = slog.New(warnOnly{opts.Logger.Handler()})
	}
	// The reserve is taken before the database grows; FerretDB's logs tell
	// when the disk is full.
	ferretLogger := logger
	var res *reserve
	if want := cmp.Or(opts.Reserve, DefaultReserve); want > 0 {
		res = newReserve(dir, want, logger)
		res.fill()
		ferretLogger = slog.New(fullWatch{logger.Handler(), func() { res.release(dir) }})
	}

	// Never let a panic inside FerretDB's constructor escape to the caller.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("start embedded database in %s: FerretDB panicked: %v", dir, r)
		}
	}()

	lc := ferretdb.ListenerConfig{TCP: listen}
	if t := opts.TLS; t != nil {
		lc = ferretdb.ListenerConfig{TLS: listen, TLSCertFile: t.CertFile, TLSKeyFile: t.KeyFile, TLSCAFile: t.CAFile}
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  lc,
		Logger:    ferretLogger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + strings.TrimSuffix(dir, "/") + "/?" + sqlitePragmas,
	})
	if err != nil {
		if isAddrInUse(err) {
			return nil, listenError(listen, syscall.EADDRINUSE)
		}
		return nil, fmt.Errorf("start embedded database in %s: %s", dir, clean(err))
	}

	// In FerretDB v1.24.2 ferretdb.New binds the listener itself, so the
	// address is known before Run; MongoDBURI blocks only when the listener
	// was not created, which cannot happen once New succeeded.
	uri, err := clientURI(f.MongoDBURI())
	if err != nil {
		return nil, fmt.Errorf("start embedded database in %s: %s", dir, clean(err))
	}

	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		defer close(done)
		done <- f.Run(runCtx)
	}()

	db = &DB{dir: dir, uri: uri, lock: lock, cancel: cancel, done: done, indexed: make(chan struct{})}
	if err = waitAccepting(ctx, uri, done); err != nil {
		cancel()
		<-done
		return nil, fmt.Errorf("start embedded database in %s: %s", dir, clean(err))
	}
	if opts.TLS == nil {
		if err := writeInfo(ctx, uri, dir); err != nil {
			logger.Warn("describing the database in "+InfoDB+"."+InfoCollection, "err", clean(err))
		}
	}
	go func() {
		defer close(db.indexed)
		var wg sync.WaitGroup
		if res != nil {
			wg.Go(func() { res.run(runCtx) })
		}
		x := &idIndexer{dir: dir, log: ferretLogger, seen: map[string]time.Time{}}
		x.run(runCtx)
		wg.Wait()
	}()
	return db, nil
}

// URI returns the MongoDB connection string of the server, for example
// "mongodb://127.0.0.1:40123/" ("...?tls=true" with Options.TLS: clients
// add their tlsCAFile and tlsCertificateKeyFile). It contains the real
// bound port even when Options.Listen used port 0.
func (db *DB) URI() string { return db.uri }

// Dir returns the absolute path of the data folder.
func (db *DB) Dir() string { return db.dir }

// Close stops the listener, waits for the server to stop and releases the
// data folder lock. Connected clients get up to a few seconds to disconnect
// before their connections are closed, so disconnect them first for a fast
// Close. Close is idempotent and safe for concurrent use.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.cancel()
		<-db.indexed
		runErr := <-db.done
		if runErr != nil {
			runErr = fmt.Errorf("stop embedded database in %s: %s", db.dir, clean(runErr))
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
// server stops, ctx ends or startTimeout passes.
func waitAccepting(ctx context.Context, uri string, done <-chan error) error {
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
		case runErr := <-done:
			if runErr == nil {
				runErr = errors.New("server stopped")
			}
			return fmt.Errorf("server stopped before accepting connections: %w", runErr)
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
// handler.
type warnOnly struct{ h slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.h.Enabled(ctx, l)
}

func (w warnOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	return w.h.Handle(ctx, r)
}

func (w warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{w.h.WithAttrs(attrs)}
}

func (w warnOnly) WithGroup(name string) slog.Handler {
	return warnOnly{w.h.WithGroup(name)}
}
