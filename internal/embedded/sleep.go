package embedded

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite's sleeps.
//
// SQLite lets one connection at a time write to a database file. A
// connection that finds the write lock taken sleeps and tries again (its
// busy handler, as busy_timeout sets it: 1, 2, 5, 10 ... 100 ms between
// tries, for up to 10 s), as does one that finds the write-ahead log
// changing under it. It sleeps through its VFS, the layer between SQLite
// and the operating system. In the SQLite that FerretDB uses
// (modernc.org/sqlite, SQLite's C translated to Go), the unix VFS sleeps
// with a nanosleep system call: that blocks the OS thread, and the
// processor (P) the Go scheduler gave the goroutine stays with the thread
// until the runtime's monitor takes it back. On a 2-CPU machine that is
// half of the process, and the writer that holds the lock shares the other
// half with everyone else, so it holds the lock longer, and more writers
// find it taken.
//
// So the embedded database makes SQLite's VFSes sleep with time.Sleep,
// which parks the goroutine alone; the schedule and the timeout stay
// SQLite's. Measured with rocketjob bench --simple on a 2-CPU machine
// (100,000 jobs, builds alternating, 2026-12-06): one server processed
// 8,482-9,645 jobs a second instead of 6,159-7,880, two servers 9,873-10,745
// instead of 6,297-6,840.

// sleeps counts SQLite's sleeps through sleepInGo (for tests: that SQLite
// calls it).
var sleeps atomic.Int64

// sleepInGo is the xSleep method of SQLite's VFSes: it sleeps microseconds
// and returns how long it slept. It has the signature of a C callback in
// modernc.org/sqlite.
func sleepInGo(_ *libc.TLS, _ uintptr, microseconds int32) int32 {
	sleeps.Add(1)
	time.Sleep(time.Duration(microseconds) * time.Microsecond)
	return microseconds
}

var sleepOnce sync.Once

// installSleep makes SQLite in this process sleep with sleepInGo: every VFS
// that sleeps as the default one does (the unix VFSes) gets it as its
// xSleep. It runs before the embedded database opens its first connection;
// later connections read the VFS when they sleep.
func installSleep() {
	sleepOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		first := sqlite3.Xsqlite3_vfs_find(tls, 0) // the default, at the head of the list
		if first == 0 {
			return
		}
		nanosleep := vfsAt(first).FxSleep
		// A C function pointer to sleepInGo, as modernc.org/sqlite makes its
		// own callbacks: the address of a declared function's value.
		fn := *(*uintptr)(unsafe.Pointer(&struct {
			f func(*libc.TLS, uintptr, int32) int32
		}{sleepInGo}))
		for p := first; p != 0; p = vfsAt(p).FpNext {
			if v := vfsAt(p); v.FxSleep == nanosleep {
				v.FxSleep = fn
			}
		}
	})
}

// vfsAt is the VFS at p, an address in SQLite's C memory (outside the Go
// heap), where modernc.org/sqlite's pointers are.
func vfsAt(p uintptr) *sqlite3.Tsqlite3_vfs {
	return (*sqlite3.Tsqlite3_vfs)(unsafe.Add(nil, p))
}
