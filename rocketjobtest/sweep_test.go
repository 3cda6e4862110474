//go:build linux

package rocketjobtest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

func TestSweepRemovesOnlyUnlockedOldFolders(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-2 * sweepAge)
	mk := func(name string, lockFile bool, mtime time.Time) string {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if lockFile {
			if err := os.WriteFile(filepath.Join(dir, embedded.LockFileName), []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk(dirPrefix+"stale", true, old)
	young := mk(dirPrefix+"young", true, time.Now())
	noLock := mk(dirPrefix+"nolock", false, old)
	other := mk("someone-else", true, old)
	locked := mk(dirPrefix+"locked", true, old)
	f, err := os.Open(filepath.Join(locked, embedded.LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(locked, old, old); err != nil {
		t.Fatal(err)
	}

	sweep(tmp)
	for dir, keep := range map[string]bool{stale: false, young: true, noLock: true, other: true, locked: true} {
		_, err := os.Stat(dir)
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept %v, want %v", filepath.Base(dir), kept, keep)
		}
	}
}
