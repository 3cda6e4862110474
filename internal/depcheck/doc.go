// Package depcheck holds no code, only a test that keeps the library's
// dependency graph to what users run: River (the benchmark's peer, in the
// bench module) in no library package nor the command line, and the
// embedded database (FerretDB, SQLite, internal/embedded) out of the core
// packages, so that a program talking to a real MongoDB does not link it.
package depcheck
