//go:build !unix

package server

import "io/fs"

// inode is 0 where the platform has none: a Dirmon file's identity is
// then its path, size and modification time.
func inode(fs.FileInfo) uint64 { return 0 }
