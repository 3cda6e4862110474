//go:build unix

package fileout

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// write creates path with mode, writes s and commits.
func write(t *testing.T, path string, mode fs.FileMode, s string) {
	t.Helper()
	f, err := Create(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := io.WriteString(f, s); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
}

// withUmask runs fn with the process umask set to mask. The tests of this
// package do not run in parallel, so no other file is created meanwhile.
func withUmask(mask int, fn func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	fn()
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// onlyFiles fails unless dir holds exactly names (no temporary files left).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewFileModeHonoursUmask(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		umask int
		mode  fs.FileMode
		want  fs.FileMode
	}{
		{"default", 0o022, 0, 0o600},
		{"default-umask077", 0o077, 0, 0o600},
		{"asked-0644", 0o022, 0o644, 0o644},
		{"asked-0666-umask077", 0o077, 0o666, 0o600},
		{"asked-0666-umask027", 0o027, 0o666, 0o640},
	} {
		path := filepath.Join(dir, c.name)
		withUmask(c.umask, func() { write(t, path, c.mode, "x\n") })
		if got := mode(t, path); got != c.want {
			t.Errorf("%s: new file has mode %v, want %v", c.name, got, c.want)
		}
	}
}

func TestExistingFileKeepsItsMode(t *testing.T) {
	dir := t.TempDir()
	for _, m := range []fs.FileMode{0o600, 0o640, 0o604} {
		path := filepath.Join(dir, "out.txt")
		if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
		// Neither the umask nor the mode asked for a new file changes it.
		withUmask(0o077, func() { write(t, path, 0o644, "new\n") })
		if got := mode(t, path); got != m {
			t.Errorf("existing %v file became %v", m, got)
		}
		if got := content(t, path); got != "new\n" {
			t.Errorf("content %q", got)
		}
		onlyFiles(t, dir, "out.txt")
	}
}

func TestAbortLeavesTheDestinationAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "half of the new"); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	f.Abort() // twice is harmless
	if got := content(t, path); got != "old\n" {
		t.Errorf("aborted write changed the file to %q", got)
	}
	onlyFiles(t, dir, "out.txt")
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	// A new file that is aborted never appears.
	f, err = Create(filepath.Join(dir, "new.txt"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "partial"); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	onlyFiles(t, dir, "out.txt")
}

func TestDevNullStaysADevice(t *testing.T) {
	fi, err := os.Stat(os.DevNull)
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Skipf("%s is not a character device here (%v)", os.DevNull, err)
	}
	f, err := Create(os.DevNull, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Direct() {
		t.Error("a device is not written directly")
	}
	if _, err := io.WriteString(f, "discarded\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(os.DevNull)
	if err != nil || after.Mode() != fi.Mode() || !os.SameFile(fi, after) {
		t.Fatalf("%s changed: %v -> %v (%v)", os.DevNull, fi.Mode(), after.Mode(), err)
	}
}

func TestFIFOIsWrittenNotReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		b, err := os.ReadFile(path) // opens the reading end, reads to EOF
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b)
	}()
	write(t, path, 0, "through the pipe\n")
	if s := <-got; s != "through the pipe\n" {
		t.Errorf("reader got %q", s)
	}
	if m := mode(t, path); m&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO became %v", m)
	}
	onlyFiles(t, dir, "pipe")
}

func TestSymlinkIsFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.txt")
	link := filepath.Join(dir, "link.txt")
	if err := os.WriteFile(target, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.txt", link); err != nil {
		t.Fatal(err)
	}
	write(t, link, 0, "new\n")
	if m := mode(t, link); m&fs.ModeSymlink == 0 {
		t.Errorf("the link became %v", m)
	}
	if got := content(t, target); got != "new\n" {
		t.Errorf("target holds %q", got)
	}
	if m := mode(t, target); m != 0o640 {
		t.Errorf("target mode %v", m)
	}
	onlyFiles(t, dir, "link.txt", "real.txt")

	if err := os.Symlink("missing.txt", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(dir, "dangling"), 0); err == nil || !strings.Contains(err.Error(), "missing file") {
		t.Errorf("dangling link: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, 0); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Create(filepath.Join(dir, "no", "such", "dir", "f"), 0); err == nil ||
		err.Error() != "cannot write "+filepath.Join(dir, "no", "such", "dir", "f")+": no such file or directory" {
		t.Errorf("missing folder: %v", err)
	}
	if os.Geteuid() == 0 {
		return // root may write anything
	}
	ro := filepath.Join(dir, "readonly.txt")
	if err := os.WriteFile(ro, []byte("keep\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ro, 0); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("read-only file: %v", err)
	}
	if got := content(t, ro); got != "keep\n" {
		t.Errorf("read-only file now holds %q", got)
	}
	onlyFiles(t, dir, "readonly.txt")
}
