// Package fileout writes an output file the way careful Unix tools do:
//
//   - a regular file is written to a temporary file in the same folder and
//     renamed over the destination only when the whole output was written
//     (Commit); on failure (Abort) the temporary file is removed and the
//     destination is left as it was;
//   - a new file is created with the requested mode less the process's
//     umask, exactly as open(2) would create it;
//   - an existing regular file keeps its mode (and, where the process may
//     set them, its owner and group);
//   - a symbolic link is followed: the file it points to is replaced, the
//     link stays;
//   - a target that is not a regular file (a character device such as
//     /dev/null, a FIFO) is opened and written directly, never replaced.
package fileout

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultMode is the mode, before the umask, of a new file when the caller
// names none: outputs often hold decrypted personal data, so only the
// owner may read them.
const DefaultMode fs.FileMode = 0o600

// File is an output file being written. Write to it, then call Commit; call
// Abort (safe to defer, and a no-op after Commit) to give up.
type File struct {
	f      *os.File
	path   string // the destination (a symbolic link resolved)
	tmp    string // the temporary file; "" when writing directly
	keep   fs.FileInfo
	closed bool
}

// Create opens path for writing. A new file gets mode (DefaultMode when 0)
// less the umask; see the package comment for the other cases. A
// directory is an error.
func Create(path string, mode fs.FileMode) (*File, error) {
	if mode == 0 {
		mode = DefaultMode
	}
	mode &= fs.ModePerm
	target := path
	fi, err := os.Stat(path) // follows symbolic links
	switch {
	case err == nil:
		if real, err := filepath.EvalSymlinks(path); err == nil {
			target = real
		}
	case errors.Is(err, fs.ErrNotExist):
		if li, lerr := os.Lstat(path); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link to a missing file", path)
		}
		fi = nil
	default:
		return nil, pathErr(path, err)
	}
	if fi != nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	if fi != nil && fi.Mode().IsRegular() {
		// Replace only a file this process may write, as ">" would.
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return nil, pathErr(path, err)
		}
		f.Close()
	}
	if fi != nil && !fi.Mode().IsRegular() {
		// A device or FIFO: write to it as it is (no O_TRUNC, no O_CREATE).
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return nil, pathErr(path, err)
		}
		return &File{f: f, path: path}, nil
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	create := mode // a new file: open(2) applies the umask
	if fi != nil {
		create = 0o600 // an existing file: its mode is set on Commit
	}
	for range 100 {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+"."+hex.EncodeToString(rnd[:])+".tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, create)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, pathErr(path, err)
		}
		return &File{f: f, path: target, tmp: tmp, keep: fi}, nil
	}
	return nil, fmt.Errorf("cannot write %s: no free temporary file name in %s", path, dir)
}

// Write writes to the output.
func (o *File) Write(p []byte) (int, error) { return o.f.Write(p) }

// Direct reports whether the output is written in place (a device or
// FIFO), not through a temporary file.
func (o *File) Direct() bool { return o.tmp == "" }

// Commit finishes the output: a regular file is flushed to disk, given the
// mode (and owner) of the file it replaces, and renamed into place. On
// error the temporary file is removed.
func (o *File) Commit() error {
	if o.closed {
		return errors.New("fileout: Commit after Commit or Abort")
	}
	if o.tmp == "" {
		o.closed = true
		return pathErr(o.path, o.f.Close())
	}
	err := o.finish()
	o.closed = true
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.tmp, o.path)
	}
	if err != nil {
		os.Remove(o.tmp)
		return pathErr(o.path, err)
	}
	return nil
}

// finish gives the temporary file the replaced file's mode and owner, then
// syncs it.
func (o *File) finish() error {
	if o.keep != nil {
		if uid, gid, ok := owner(o.keep); ok && (uid != os.Geteuid() || gid != os.Getegid()) {
			// Best effort: only root (or a member of the group) may.
			_ = o.f.Chown(uid, gid)
		}
		// After Chown, which may clear the set-id bits.
		if err := o.f.Chmod(o.keep.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
			return err
		}
	}
	return o.f.Sync()
}

// Abort gives up the output: the temporary file is closed and removed (the
// destination is untouched); a device is only closed. It does nothing after
// Commit.
func (o *File) Abort() {
	if o.closed {
		return
	}
	o.closed = true
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// pathErr is err about path as one line: "cannot write PATH: permission
// denied", not the temporary file's name.
func pathErr(path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return fmt.Errorf("cannot write %s: %w", path, err)
}
