package embedded

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The wait for SQLite's write lock.
//
// SQLite lets one connection at a time write to a database file. A
// connection that finds the lock taken calls its busy handler, and tries
// again when the handler returns. The handler that busy_timeout installs
// sleeps 1, 2, 5, 10 ... 100 ms between tries, and in the SQLite that
// FerretDB uses (modernc.org/sqlite, SQLite's C translated to Go) each of
// those sleeps is a nanosleep system call: it blocks its OS thread, and
// the processor (P) that the Go scheduler gave the goroutine stays with
// that thread until the runtime's monitor takes it back. On a 2-CPU
// machine that is half the process, and the writer that holds the lock is
// among the goroutines left to share the other half, so it holds the lock
// longer, and more writers find it taken.
//
// So the embedded database gives every SQLite connection of the process
// its own handler: the same schedule and the same timeout, slept with
// time.Sleep, which parks only the goroutine. Measured with rocketjob bench
// --simple on a 2-CPU machine (100,000 jobs, builds alternating): 8,762-
// 9,538 jobs/s processing against 6,342-7,565 with the default handler.

// busyTimeout is how long a connection waits for the write lock in all
// before its statement fails with SQLITE_BUSY (a transient error to
// FerretDB's clients): FerretDB's own default, as sqlitePragmas sets it (a
// variable for tests).
var busyTimeout = 10 * time.Second

// busyDelaysMS are the waits between a connection's tries for the lock in
// milliseconds, SQLite's own; the last repeats.
var busyDelaysMS = [...]int{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100}

// busyWaits counts the waits of the handler (for tests: that it is the one
// SQLite calls).
var busyWaits atomic.Int64

// busyDelay returns the wait before the try after the count-th call of the
// handler for one statement, and the time waited before it.
func busyDelay(count int) (delay, waited time.Duration) {
	ms := func(i int) time.Duration {
		return time.Duration(busyDelaysMS[min(i, len(busyDelaysMS)-1)]) * time.Millisecond
	}
	for i := range count {
		waited += ms(i)
	}
	return ms(count), waited
}

// waitBusy is the busy handler: SQLite calls it with the number of times
// it called it before for the same statement, and tries again when it
// returns non-zero. It has the signature of a C callback in
// modernc.org/sqlite (its first two arguments are unused).
func waitBusy(_ *libc.TLS, _ uintptr, count int32) int32 {
	delay, waited := busyDelay(int(count))
	if waited >= busyTimeout {
		return 0
	}
	busyWaits.Add(1)
	time.Sleep(min(delay, busyTimeout-waited))
	return 1
}

// busyHook is set once: RegisterConnectionHook adds a hook per call.
var busyHook sync.Once

// installBusyWait makes every SQLite connection this process opens from now
// on wait for the write lock with waitBusy.
func installBusyWait() {
	busyHook.Do(func() { sqlite.RegisterConnectionHook(setBusyHandler) })
}

// errUnknownConn says that a connection is not of the type this package
// knows (another version of modernc.org/sqlite, whose version go.mod pins).
var errUnknownConn = errors.New("embedded: unknown SQLite connection type")

// setBusyHandler sets waitBusy as the busy handler of conn, a new connection
// of modernc.org/sqlite. The driver does not export the connection's
// handle, so it is read from the connection's fields (db, the sqlite3
// pointer, and tls, the state its C calls take); a connection without them
// keeps SQLite's handler (TestBusyHandlerInstalled fails on such a
// version).
func setBusyHandler(conn sqlite.ExecQuerierContext, _ string) error {
	db, tls, err := connHandle(conn)
	if err != nil {
		return nil // SQLite's handler, rather than no connection
	}
	// A C function pointer to waitBusy, as modernc.org/sqlite makes its own
	// callbacks: the address of the function value of a declared function.
	fn := *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, int32) int32
	}{waitBusy}))
	sqlite3.Xsqlite3_busy_handler(tls, db, fn, 0)
	return nil
}

// connHandle returns the sqlite3 pointer of conn and the C state of its
// calls.
func connHandle(conn sqlite.ExecQuerierContext) (db uintptr, tls *libc.TLS, err error) {
	v := reflect.ValueOf(conn)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return 0, nil, errUnknownConn
	}
	dbf, tlsf := v.Elem().FieldByName("db"), v.Elem().FieldByName("tls")
	if dbf.Kind() != reflect.Uintptr || tlsf.Kind() != reflect.Pointer || tlsf.Type() != reflect.TypeFor[*libc.TLS]() {
		return 0, nil, errUnknownConn
	}
	db, tls = uintptr(dbf.Uint()), (*libc.TLS)(tlsf.UnsafePointer())
	if db == 0 || tls == nil {
		return 0, nil, errUnknownConn
	}
	return db, tls, nil
}
