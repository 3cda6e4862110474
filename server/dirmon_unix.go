//go:build unix

package server

import (
	"io/fs"
	"syscall"
)

// inode is the file's inode number: part of a Dirmon file's identity, so
// that a file replaced by another of the same size and time is new.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
