// Command rocketjob is the rocketjob command line with the example job types
// (nap, copy, reverse, upcase, square, sleep, triage, prefix). Run `rocketjob demo` to see it
// work with no set-up, or `rocketjob --help` for the commands.
//
// To use the same command line with your own job types, build your own
// binary with the cli package (see examples/custom).
package main

import (
	"fmt"
	"os"

	"github.com/rocketjob-go/rocketjob/cmd/rocketjob/cli"
	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func main() {
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		fmt.Fprintln(os.Stderr, "rocketjob: registering the example job types:", err)
		os.Exit(cli.ExitFailure)
	}
	cli.Main(reg)
}
