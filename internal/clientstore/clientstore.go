// Package clientstore is how the library's own public packages (sliced,
// server, rocketjobweb) reach what a *rocketjob.Client holds but does not
// show its users: its store. Package rocketjob installs the accessor in its
// init, so it is set before any code that holds a Client runs; nothing else
// sets it.
package clientstore

import "github.com/rocketjob-go/rocketjob/internal/store"

// of is installed by package rocketjob (Set).
var of func(client any) *store.Store

// Set installs the accessor; package rocketjob calls it once, in its init.
func Set(f func(client any) *store.Store) { of = f }

// Of returns the store of client, a *rocketjob.Client. It panics for
// anything else: that is a bug in this module, not a runtime condition.
func Of(client any) *store.Store { return of(client) }
