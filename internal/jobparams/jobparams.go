// Package jobparams is how the module's front ends (the command line, the
// web UI, package sliced's uploads and directory monitor) turn a job's
// parameters as they receive them, "key=value" pairs or loosely typed
// values, into the params of a job of a registered type, checked as
// rocketjob.Client.Enqueue checks a simple job's arguments. Users pass
// their typed argument structs to Enqueue or sliced.Upload instead. Package
// rocketjob installs the functions in its init (Set); nothing else sets
// them.
package jobparams

import "go.mongodb.org/mongo-driver/v2/bson"

// Installed by package rocketjob (Set).
var (
	parse  func(reg any, typ string, pairs []string) (bson.Raw, error)
	encode func(reg any, typ string, args any) (bson.Raw, error)
)

// Set installs the functions; package rocketjob calls it once, in its init.
func Set(parseFunc func(reg any, typ string, pairs []string) (bson.Raw, error), encodeFunc func(reg any, typ string, args any) (bson.Raw, error)) {
	parse, encode = parseFunc, encodeFunc
}

// Parse turns command-line "key=value" pairs into the params of a job of
// the type named typ in reg (a *rocketjob.Registry), converting each value
// to its field's type (ints, floats, bools, durations, RFC 3339 times,
// strings) and checking them as Encode does. Keys are the fields' BSON
// names. No pairs give nil params. Errors wrap rocketjob.ErrUnknownType or
// rocketjob.ErrBadArgs. It panics when reg is not a *rocketjob.Registry.
func Parse(reg any, typ string, pairs []string) (bson.Raw, error) { return parse(reg, typ, pairs) }

// Encode turns args (the type's argument struct A, a *A, bson.Raw, a map or
// nil) into the params of a job of the type named typ in reg (a
// *rocketjob.Registry), checked as Enqueue checks a simple job's arguments:
// they must decode into the type's argument struct, and its Validate method
// (see rocketjob.Validator) must accept them. nil args are the zero value,
// so a Validate that requires a field refuses them. Errors wrap
// rocketjob.ErrUnknownType or rocketjob.ErrBadArgs. It panics when reg is
// not a *rocketjob.Registry.
func Encode(reg any, typ string, args any) (bson.Raw, error) { return encode(reg, typ, args) }
