//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package rocketjobtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// sweepAge is how old a left-over folder must be before sweep removes it, so
// that a folder another test binary just created, and has not locked yet, is
// left alone.
const sweepAge = time.Minute

// sweep removes the embedded-database folders that test binaries without
// Main left in tmp: those whose lock no running database holds.
func sweep(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < sweepAge {
			continue
		}
		if unowned(dir) {
			_ = os.RemoveAll(dir)
		}
	}
}

// unowned reports whether dir's lock file exists and no process holds its
// lock (the kernel drops a lock when its process dies).
func unowned(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, embedded.LockFileName), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	return err == nil // closing f releases the lock
}
