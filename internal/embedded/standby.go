package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Several hosts, one PostgreSQL database: an active front end and standbys.
//
// One FerretDB at a time serves a PostgreSQL database (see postgresql.go),
// but any number of front ends may listen for clients. StartFrontEnd starts
// one that serves the database when it can take the database's lock: it is
// the active front end, and it records the address other hosts reach it at
// (FrontEndOptions.Advertise) in the table rocketjob_frontend.active of the
// PostgreSQL database, with an epoch that goes up by one at every takeover.
// A front end that finds the lock taken is a standby: it listens on its own
// address and forwards every client connection, byte for byte, to the
// address the active front end advertised (the MongoDB wire protocol, and
// TLS end to end, pass through unchanged), and it tries to take the lock
// every standbyPoll. Once it has the lock it closes the connections it
// forwarded, starts FerretDB on its own listen address and advertises
// itself; the other standbys read the new address for new connections and
// close the ones they forwarded to the old active. Clients whose connection
// ended reconnect (the MongoDB driver does; rocketjob retries transient
// errors).
//
// A standby forwards only to the front end that holds the lock now (the
// table row names the PostgreSQL session of the lock; a row left by a
// front end that has gone is ignored), and never to an active front end
// whose clients need not present the certificate that this front end's
// listen address requires. While it has nowhere to forward to, it closes
// new connections at once.

// The table in which the active front end advertises itself: one row.
const (
	frontEndSchema = "rocketjob_frontend"
	frontEndTable  = frontEndSchema + ".active"
)

// Timing of the front ends.
var (
	// standbyPoll is how often a standby tries to take the lock and reads
	// the active front end's address.
	standbyPoll = 500 * time.Millisecond
	// proxyDialTimeout bounds a standby's connection to the active front end.
	proxyDialTimeout = 5 * time.Second
	// proxyWarnEvery limits the standby's warnings about an active front end
	// it cannot reach to one per period.
	proxyWarnEvery = 5 * time.Second
)

// Role is what a front end does.
type Role string

// The roles of a front end.
const (
	// RoleServing: the front end holds the database's lock and runs FerretDB.
	RoleServing Role = "serving"
	// RoleStandby: another front end serves the database; this one
	// forwards its clients' connections there.
	RoleStandby Role = "standby"
)

// RoleChange tells what a front end does from now on.
type RoleChange struct {
	// Role is serving or standby.
	Role Role
	// Address is, when serving, the address this front end advertises to
	// standbys ("" when it advertises none: other front ends are then
	// refused, as with Start); for a standby, where it forwards
	// connections to ("" when it has nowhere to: see Reason).
	Address string
	// Epoch numbers the active front ends of the database: 1 for the first
	// one that advertised itself, one more at each takeover; 0 when unknown.
	Epoch int64
	// Active names the active front end of a standby: "HOST pid PID".
	Active string
	// Reason says why a standby does not forward (Address is "").
	Reason string
}

// FrontEndOptions are the settings of StartFrontEnd beyond Options.
type FrontEndOptions struct {
	// Advertise is the HOST:PORT at which other front ends (standbys) reach
	// this one when it serves the database. A HOST without a port, or port
	// 0, means the port it listens on. Default: the listen address, unless
	// its host is a wildcard (0.0.0.0, ::, empty) or loopback; then it
	// advertises no address, and other front ends on the database are
	// refused with ErrDatabaseInUse instead of becoming standbys.
	Advertise string
	// OnRole, when not nil, is called with the front end's first role
	// before StartFrontEnd returns, then at each change, one call at a
	// time, from the front end's own goroutine.
	OnRole func(RoleChange)
}

// FrontEnd is an embedded database front end on a PostgreSQL database that
// several front ends share: it serves the database, or it is a standby
// that forwards its clients to the one that does, and takes over when that
// one stops. Create it with StartFrontEnd and stop it with Close.
type FrontEnd struct {
	opts      Options
	advertise string // FrontEndOptions.Advertise
	onRole    func(RoleChange)
	log       *slog.Logger
	cfg       *pgx.ConnConfig
	listen    string // Options.Listen with the bound port
	port      string
	uri       string
	where     string

	lock  *pgLock // the lock's connection; nil while a standby reconnects
	proxy *proxy  // while a standby

	mu   sync.Mutex
	role RoleChange
	db   *DB // once serving

	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // why it stopped on its own, set before done is closed

	closeOnce sync.Once
	closeErr  error
}

// StartFrontEnd starts a front end of the PostgreSQL database opts.PostgreSQL
// on opts.Listen and returns once it serves the database or is a standby.
// ctx bounds the start-up only.
//
// When no other front end holds the database's lock it serves at once.
// When another one does and advertises an address this one may forward to,
// it becomes a standby. Otherwise (the other one advertises no address, as
// with Start or a loopback listen address, or it is not yet known after
// a few seconds) StartFrontEnd fails with an error wrapping
// ErrDatabaseInUse, like Start.
func StartFrontEnd(ctx context.Context, opts Options, fo FrontEndOptions) (*FrontEnd, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded database: %w", err)
	}
	if opts.PostgreSQL == "" || opts.Dir != "" {
		return nil, errors.New("start embedded database front end: a PostgreSQL database (Options.PostgreSQL), and no data folder, is required")
	}
	cfg, err := parseDSN(opts.PostgreSQL)
	if err != nil {
		return nil, err
	}
	listen, _, err := checkListenOptions(opts)
	if err != nil {
		return nil, err
	}
	if _, err := advertiseAddr(fo.Advertise, listen, "1"); err != nil {
		return nil, err
	}
	// The port is taken before PostgreSQL is checked: a front end on a
	// busy port says so at once, and one on port 0 knows its port.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, listenError(listen, err)
	}
	host, _, _ := net.SplitHostPort(listen)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	fe := &FrontEnd{
		opts: opts, advertise: fo.Advertise, onRole: fo.OnRole, log: loggerOf(opts), cfg: cfg,
		listen: net.JoinHostPort(host, port), port: port, where: pgWhere(cfg), done: make(chan struct{}),
	}
	fe.uri = "mongodb://" + ln.Addr().String() + "/"
	if opts.TLS != nil {
		fe.uri += "?tls=true"
	}
	if fe.uri, err = clientURI(fe.uri); err != nil {
		_ = ln.Close()
		return nil, err
	}

	l, err := connectPostgreSQL(ctx, opts.PostgreSQL, cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	fe.lock = l
	fail := func(err error) (*FrontEnd, error) {
		_ = ln.Close()
		l.close()
		return nil, err
	}
	deadline := time.Now().Add(pgLockWait)
	for {
		got, err := l.tryLock(ctx)
		if err != nil {
			return fail(err)
		}
		if got {
			_ = ln.Close()
			if err := fe.serve(ctx); err != nil {
				l.close()
				return nil, err
			}
			break
		}
		a, err := readActive(ctx, l.conn)
		if err != nil {
			return fail(l.fail("read the active front end's address", err))
		}
		if target, reason := fe.targetOf(a); target != "" {
			fe.proxy = newProxy(ln, fe.log)
			fe.follow(a)
			break
		} else if !time.Now().Before(deadline) {
			return fail(l.inUse(ctx, "; "+reason))
		}
		select {
		case <-ctx.Done():
			return fail(l.fail("take the lock of the database", ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	fe.cancel = cancel
	go fe.run(runCtx)
	return fe, nil
}

// URI returns the MongoDB connection string of the front end's listen
// address, whatever its role ("...?tls=true" with Options.TLS).
func (fe *FrontEnd) URI() string { return fe.uri }

// Where says where the data is, for messages: "PostgreSQL database NAME on
// HOST:PORT" (never a password).
func (fe *FrontEnd) Where() string { return fe.where }

// Role returns what the front end does now.
func (fe *FrontEnd) Role() RoleChange {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.role
}

// Done is closed when the front end has stopped: after Close, or on its
// own when it lost the PostgreSQL connection that holds the lock while it
// served, or could not start FerretDB when it took over (Err says why;
// call Close all the same).
func (fe *FrontEnd) Done() <-chan struct{} { return fe.done }

// Err is why the front end stopped on its own, or nil.
func (fe *FrontEnd) Err() error {
	select {
	case <-fe.done:
		return fe.err
	default:
		return nil
	}
}

// Close stops the front end: a standby closes its listener and the
// connections it forwards; a serving front end stops FerretDB (as DB.Close)
// and releases the lock, so a standby takes over. Close is idempotent and
// safe for concurrent use.
func (fe *FrontEnd) Close() error {
	fe.closeOnce.Do(func() {
		fe.cancel()
		<-fe.done
		fe.mu.Lock()
		db := fe.db
		fe.mu.Unlock()
		if fe.proxy != nil {
			fe.proxy.close()
		}
		switch {
		case db != nil:
			fe.closeErr = db.Close() // releases the lock
		case fe.lock != nil:
			fe.lock.close()
		}
	})
	return fe.closeErr
}

// run is the front end's life after StartFrontEnd: a standby until it takes
// the lock, then serving until it stops.
func (fe *FrontEnd) run(ctx context.Context) {
	defer close(fe.done)
	if fe.Role().Role == RoleStandby {
		if err := fe.standby(ctx); err != nil {
			fe.err = err
			fe.log.Error(err.Error())
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	fe.mu.Lock()
	db := fe.db
	fe.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-db.Done():
		fe.err = db.Err()
		if fe.err == nil {
			fe.err = fmt.Errorf("%s: the embedded database stopped", fe.where)
		}
	}
}

// standby forwards connections until it takes the lock and serves, or ctx
// ends; the error is a failure to serve after taking the lock.
func (fe *FrontEnd) standby(ctx context.Context) error {
	t := time.NewTicker(standbyPoll)
	defer t.Stop()
	var lostAt time.Time // when the lock's connection failed; zero while it works
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if fe.lock == nil {
			l, err := connectPostgreSQL(ctx, fe.opts.PostgreSQL, fe.cfg)
			if err != nil {
				if ctx.Err() == nil && time.Since(lostAt) > proxyWarnEvery {
					fe.log.Warn(fmt.Sprintf("standby: still no connection to %s: %s", fe.where, err))
					lostAt = time.Now()
				}
				continue
			}
			fe.lock, lostAt = l, time.Time{}
		}
		got, err := fe.lock.tryLock(ctx)
		var a activeRow
		if err == nil && !got {
			if a, err = readActive(ctx, fe.lock.conn); err != nil {
				err = fe.lock.fail("read the active front end's address", err)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Keep forwarding to the last known active front end meanwhile.
			fe.log.Warn("standby: " + err.Error() + "; reconnecting")
			fe.lock.close()
			fe.lock, lostAt = nil, time.Now()
			continue
		}
		if !got {
			fe.follow(a)
			continue
		}
		fe.proxy.close()
		if err := fe.serve(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("took over %s but could not serve it: %w", fe.where, err)
		}
		return nil
	}
}

// serve runs FerretDB once the front end holds the lock: it advertises its
// address, waits for the sessions of the previous front end to end and
// starts FerretDB on the listen address.
func (fe *FrontEnd) serve(ctx context.Context) error {
	adv, _ := advertiseAddr(fe.advertise, fe.listen, fe.port)
	epoch, err := publishActive(ctx, fe.lock.conn, adv, fe.opts.TLS)
	if err != nil {
		// Serving matters more: standbys will not find this front end.
		fe.log.Warn(fmt.Sprintf("%s: could not advertise this front end to standbys in the table %s: %s", fe.where, frontEndTable, scrub(clean(err), fe.opts.PostgreSQL)))
	}
	fe.lock.acquired(ctx, fe.log)
	db, err := start(ctx, backend{where: fe.where, pgDSN: fe.opts.PostgreSQL, pgLock: fe.lock}, fe.listen, fe.port, fe.opts)
	if err != nil {
		return err
	}
	fe.mu.Lock()
	fe.db = db
	fe.mu.Unlock()
	fe.setRole(RoleChange{Role: RoleServing, Address: adv, Epoch: epoch})
	return nil
}

// follow points the standby at the active front end a.
func (fe *FrontEnd) follow(a activeRow) {
	target, reason := fe.targetOf(a)
	epoch := a.epoch
	if !a.current {
		epoch = 0
	}
	fe.proxy.setTarget(target, epoch)
	rc := RoleChange{Role: RoleStandby, Address: target, Epoch: epoch, Reason: reason}
	if a.current {
		rc.Active = a.host + " pid " + strconv.Itoa(a.pid)
	}
	fe.setRole(rc)
}

// setRole records rc and tells OnRole when it changed.
func (fe *FrontEnd) setRole(rc RoleChange) {
	fe.mu.Lock()
	changed := fe.role != rc
	fe.role = rc
	fe.mu.Unlock()
	if changed && fe.onRole != nil {
		fe.onRole(rc)
	}
}

// targetOf is where a standby forwards connections while a is the table's
// row, or "" and why not.
func (fe *FrontEnd) targetOf(a activeRow) (target, reason string) {
	switch {
	case !a.current:
		return "", "the front end that holds the lock has not advertised an address (yet)"
	case a.address == "":
		return "", fmt.Sprintf("the active front end (%s pid %d) advertises no address (start it with --advertise HOST:PORT, or on a listen address that is neither loopback nor a wildcard)", a.host, a.pid)
	case a.tls != (fe.opts.TLS != nil):
		if a.tls {
			return "", fmt.Sprintf("the active front end at %s serves TLS and this one does not", a.address)
		}
		return "", fmt.Sprintf("the active front end at %s does not serve TLS and this one does", a.address)
	case !fe.opts.InsecureListen && !IsLoopback(fe.listen) && !a.clientAuth:
		// This front end listens off loopback because its clients must
		// present a certificate: the active front end must check it.
		return "", fmt.Sprintf("the active front end at %s does not require client certificates, which this front end's listen address %s needs", a.address, fe.listen)
	case fe.isSelf(a.address):
		return "", fmt.Sprintf("the active front end advertises %s, which is this front end's own address", a.address)
	}
	return a.address, ""
}

// isSelf reports whether addr is this front end's own listen address.
func (fe *FrontEnd) isSelf(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != fe.port {
		return false
	}
	lh, _, _ := net.SplitHostPort(fe.listen)
	return strings.EqualFold(host, lh) || IsLoopback(addr) || isLocalIP(host)
}

// isLocalIP reports whether host is an IP address of this host.
func isLocalIP(host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// advertiseAddr is the address a front end listening on listen (bound to
// port) advertises: advertise, with port when it has none or port 0; by
// default listen, unless its host is a wildcard or loopback ("": none).
func advertiseAddr(advertise, listen, port string) (string, error) {
	if advertise == "" {
		host, _, err := net.SplitHostPort(listen)
		ip := net.ParseIP(host)
		if err != nil || host == "" || (ip != nil && ip.IsUnspecified()) || IsLoopback(listen) {
			return "", nil
		}
		return net.JoinHostPort(host, port), nil
	}
	host, p, err := net.SplitHostPort(advertise)
	if err != nil {
		// A host (or [IPv6]) without a port.
		host, p = strings.TrimSuffix(strings.TrimPrefix(advertise, "["), "]"), "0"
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("advertised address %q: the port must be a number from 1 to 65535", advertise)
	}
	if ip := net.ParseIP(host); host == "" || strings.ContainsAny(host, "/ ") || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("advertised address %q: want HOST[:PORT] with the host or IP address other hosts reach this one at, not a wildcard", advertise)
	}
	if p == "0" {
		p = port
	}
	return net.JoinHostPort(host, p), nil
}

// activeRow is the table's row: the active front end as it advertised
// itself.
type activeRow struct {
	epoch      int64
	address    string // "" when it advertises none
	tls        bool   // it serves TLS
	clientAuth bool   // its clients must present a certificate
	host       string
	pid        int
	current    bool // its PostgreSQL session holds the lock now
}

// readActive reads the table's row (the zero row when there is none).
func readActive(ctx context.Context, conn *pgx.Conn) (activeRow, error) {
	var a activeRow
	err := conn.QueryRow(ctx, `
		SELECT a.epoch, coalesce(a.address, ''), a.tls, a.client_auth, a.host, a.pid,
		  EXISTS (SELECT 1 FROM pg_locks l
		    WHERE l.locktype = 'advisory' AND l.granted AND l.pid = a.backend_pid
		      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		      AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2)
		FROM `+frontEndTable+` a`, uint32(pgLockKey1), uint32(pgLockKey2)).
		Scan(&a.epoch, &a.address, &a.tls, &a.clientAuth, &a.host, &a.pid, &a.current)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return activeRow{}, nil
	case errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000"): // no such table, schema
		return activeRow{}, nil
	}
	return a, err
}

// publishActive makes the session of conn, which holds the lock, the
// active front end in the table, advertising address ("" for none), and
// returns its epoch.
func publishActive(ctx context.Context, conn *pgx.Conn, address string, t *TLS) (int64, error) {
	// Only the lock's holder writes here, so the DDL does not race.
	if _, err := conn.Exec(ctx, `
		CREATE SCHEMA IF NOT EXISTS `+frontEndSchema+`;
		CREATE TABLE IF NOT EXISTS `+frontEndTable+` (
			id          boolean PRIMARY KEY DEFAULT true CHECK (id),
			epoch       bigint NOT NULL,
			address     text,
			tls         boolean NOT NULL,
			client_auth boolean NOT NULL,
			backend_pid integer NOT NULL,
			host        text NOT NULL,
			pid         integer NOT NULL,
			since       timestamptz NOT NULL
		)`); err != nil {
		return 0, err
	}
	host, _ := os.Hostname()
	var epoch int64
	err := conn.QueryRow(ctx, `
		INSERT INTO `+frontEndTable+` AS a (id, epoch, address, tls, client_auth, backend_pid, host, pid, since)
		VALUES (true, 1, NULLIF($1::text, ''), $2, $3, pg_backend_pid(), $4, $5, now())
		ON CONFLICT (id) DO UPDATE SET epoch = a.epoch + 1, address = EXCLUDED.address, tls = EXCLUDED.tls,
			client_auth = EXCLUDED.client_auth, backend_pid = EXCLUDED.backend_pid, host = EXCLUDED.host,
			pid = EXCLUDED.pid, since = EXCLUDED.since
		RETURNING epoch`, address, t != nil, t.ClientAuth(), host, os.Getpid()).Scan(&epoch)
	return epoch, err
}

// proxy forwards the connections its listener accepts to a target address,
// byte for byte.
type proxy struct {
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context // ends at close: aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	target   string // "" closes new connections at once
	epoch    int64
	pipes    map[*pipe]struct{}
	closed   bool
	warnedAt time.Time
}

// pipe is a forwarded connection.
type pipe struct {
	client, server net.Conn
	epoch          int64
}

func (p *pipe) close() {
	_ = p.client.Close()
	_ = p.server.Close()
}

func newProxy(ln net.Listener, log *slog.Logger) *proxy {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{ln: ln, log: log, ctx: ctx, cancel: cancel, pipes: map[*pipe]struct{}{}}
	p.wg.Go(p.accept)
	return p
}

// setTarget forwards new connections to target (none when "") and closes
// the forwarded connections of another epoch or target.
func (p *proxy) setTarget(target string, epoch int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target == p.target && epoch == p.epoch {
		return
	}
	p.target, p.epoch = target, epoch
	for pp := range p.pipes {
		pp.close()
		delete(p.pipes, pp)
	}
}

// close closes the listener and every forwarded connection, and waits for
// them.
func (p *proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	p.cancel()
	for pp := range p.pipes {
		pp.close()
		delete(p.pipes, pp)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. too many open files
			continue
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward copies c to and from a new connection to the target until either
// side closes. It never looks at the bytes (they hold passwords, if any).
func (p *proxy) forward(c net.Conn) {
	p.mu.Lock()
	target, epoch := p.target, p.epoch
	p.mu.Unlock()
	if target == "" {
		_ = c.Close()
		return
	}
	d := net.Dialer{Timeout: proxyDialTimeout}
	s, err := d.DialContext(p.ctx, "tcp", target)
	if err != nil {
		_ = c.Close()
		p.warnDial(target, err)
		return
	}
	pp := &pipe{client: c, server: s, epoch: epoch}
	p.mu.Lock()
	if p.closed || p.target != target || p.epoch != epoch {
		p.mu.Unlock()
		pp.close()
		return
	}
	p.pipes[pp] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(s, c)
		pp.close()
	}()
	_, _ = io.Copy(c, s)
	pp.close()
	<-done
	p.mu.Lock()
	delete(p.pipes, pp)
	p.mu.Unlock()
}

// warnDial logs, at most every proxyWarnEvery, that the target is out of
// reach.
func (p *proxy) warnDial(target string, err error) {
	p.mu.Lock()
	warn := p.ctx.Err() == nil && time.Since(p.warnedAt) >= proxyWarnEvery
	if warn {
		p.warnedAt = time.Now()
	}
	p.mu.Unlock()
	if warn {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Err != nil {
			err = opErr.Err
		}
		p.log.Warn(fmt.Sprintf("standby: cannot reach the active front end at %s (%s); clients retry", target, clean(err)))
	}
}
