package rocketjob_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// EmailArgs are the typed arguments of a send_email job.
type EmailArgs struct {
	To      string `bson:"to"`
	Retries int    `bson:"retries"`
}

func ExampleRegister() {
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, "send_email", func(ctx context.Context, job *rocketjob.Job, args EmailArgs) error {
		fmt.Println("sending to", args.To) // args is an EmailArgs: no casts
		return nil
	}, nil)
	fmt.Println(err, reg.Names())

	_, err = reg.Lookup("send_sms")
	fmt.Println(errors.Is(err, rocketjob.ErrUnknownType), err)
	// Output:
	// <nil> [send_email]
	// true unknown job type "send_sms" (registered: send_email)
}

func ExampleCheckPriority() {
	fmt.Println(rocketjob.CheckPriority(1), rocketjob.CheckPriority(100))
	err := rocketjob.CheckPriority(0)
	fmt.Println(errors.Is(err, rocketjob.ErrBadPriority), err)
	// Output:
	// <nil> <nil>
	// true priority must be between 1 and 100 (got 0)
}
