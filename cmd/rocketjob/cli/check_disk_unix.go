//go:build unix

package cli

import "syscall"

// diskFree returns the bytes free (to unprivileged users) and in all on the
// file system holding dir.
func diskFree(dir string) (free, total uint64, err error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, 0, err
	}
	return fs.Bavail * uint64(fs.Bsize), fs.Blocks * uint64(fs.Bsize), nil
}
