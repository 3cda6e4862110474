//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// On a full disk SQLite cannot even delete: dropping a collection appends to
// the write-ahead log, and the checkpoint that would make room in the log
// writes to the database file. So a failed upload could not remove its own
// slices, and the database stayed stuck until space was freed by hand. The
// embedded database therefore keeps a reserve file in its data folder, and
// frees it the moment FerretDB reports "database or disk is full": the
// clean-up of the failed work then fits, and the space it frees inside the
// database files serves later work that fits. The reserve is taken again
// once the disk has room for it and as much again.

// ReserveFileName is the reserve file in the data folder.
const ReserveFileName = "rocketjob.reserve"

// DefaultReserve is the size of the reserve when Options.Reserve is 0:
// enough for SQLite to checkpoint a full write-ahead log (about 4 MB) and
// drop collections.
const DefaultReserve = 16 << 20

// reserveCheckEvery is how often a missing or short reserve is retaken.
const reserveCheckEvery = 2 * time.Second

// reserveGrace is how long after the reserve is freed a full disk reported
// is taken for a write that failed with the one that freed it: writes fail
// together, and their reports come moments apart. Only a report after it
// says the reserve is used up (a CI run logged both at the same millisecond,
// with the freed space still unused).
const reserveGrace = time.Second

// reserve is the reserve file of one data folder.
type reserve struct {
	path string
	want int64
	log  *slog.Logger

	mu        sync.Mutex
	size      int64     // bytes written in the file
	freedAt   time.Time // when the reserve was last freed
	lastEmpty time.Time // when "already used" was last logged
}

func newReserve(dir string, want int64, log *slog.Logger) *reserve {
	r := &reserve{path: filepath.Join(dir, ReserveFileName), want: want, log: log}
	if fi, err := os.Stat(r.path); err == nil {
		r.size = fi.Size()
	}
	return r
}

// fill grows the reserve to its size when the disk has room for the missing
// part and keeps as much again free.
func (r *reserve) fill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing := r.want - r.size
	if missing <= 0 {
		return
	}
	if free, err := freeBytes(filepath.Dir(r.path)); err != nil || free < missing+r.want {
		return
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		r.log.Warn("taking the disk reserve", "file", r.path, "err", clean(err))
		return
	}
	defer f.Close()
	// Real zeros, not a hole: a sparse file would hold nothing back.
	chunk := make([]byte, 1<<20)
	for r.size < r.want {
		n, err := f.WriteAt(chunk[:min(int64(len(chunk)), r.want-r.size)], r.size)
		r.size += int64(n)
		if err != nil {
			r.log.Warn("taking the disk reserve", "file", r.path, "err", clean(err))
			return
		}
	}
}

// release frees the reserve (a write failed on a full disk).
func (r *reserve) release(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size == 0 {
		// Every failed write reports it: say it once a minute, and not
		// for the writes that failed with the one that freed it.
		if time.Since(r.freedAt) >= reserveGrace && time.Since(r.lastEmpty) >= time.Minute {
			r.lastEmpty = time.Now()
			r.log.Error(fmt.Sprintf("the disk of the data folder %s is full, and its reserve is already used: free space there", dir))
		}
		return
	}
	if err := os.Truncate(r.path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Error("freeing the disk reserve", "file", r.path, "err", clean(err))
		return
	}
	r.log.Error(fmt.Sprintf("the disk of the data folder %s is full: freed its %d MiB reserve so that failed work can be removed; free space there (the reserve is taken again once %d MiB are free)",
		dir, r.size>>20, 2*r.want>>20))
	r.size, r.freedAt = 0, time.Now()
}

// run retakes the reserve every reserveCheckEvery until ctx ends.
func (r *reserve) run(ctx context.Context) {
	t := time.NewTicker(reserveCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.fill()
		}
	}
}

// freeBytes is the space left for unprivileged writers on the file system
// holding dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), nil
}

// diskFullText is how SQLite words SQLITE_FULL, which FerretDB passes on in
// the error answers it logs.
const diskFullText = "database or disk is full"

// fullWatch is the outermost log handler of the embedded FerretDB: it sees
// every record of level Warn and above (FerretDB logs each error answer at
// Warn), calls onFull for those that report a full disk, and passes the
// records on to h when h wants them.
type fullWatch struct {
	h      slog.Handler
	onFull func()
}

func (w fullWatch) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || w.h.Enabled(ctx, l)
}

func (w fullWatch) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		full := strings.Contains(r.Message, diskFullText)
		r.Attrs(func(a slog.Attr) bool {
			full = full || strings.Contains(a.Value.String(), diskFullText)
			return !full
		})
		if full {
			w.onFull()
		}
	}
	if !w.h.Enabled(ctx, r.Level) {
		return nil
	}
	return w.h.Handle(ctx, r)
}

func (w fullWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return fullWatch{w.h.WithAttrs(attrs), w.onFull}
}

func (w fullWatch) WithGroup(name string) slog.Handler {
	return fullWatch{w.h.WithGroup(name), w.onFull}
}
