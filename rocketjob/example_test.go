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

func ExampleParseParams() {
	reg := rocketjob.NewRegistry()
	_ = rocketjob.Register(reg, "send_email", func(context.Context, *rocketjob.Job, EmailArgs) error { return nil }, nil)

	// What `rocketjob job enqueue send_email --param to=... --param retries=3` does:
	params, err := rocketjob.ParseParams(reg, "send_email", []string{"to=ops@example.com", "retries=3"})
	fmt.Println(params, err)

	_, err = rocketjob.ParseParams(reg, "send_email", []string{"retries=many"})
	fmt.Println(errors.Is(err, rocketjob.ErrBadArgs), err)
	// Output:
	// {"to": "ops@example.com","retries": {"$numberLong":"3"}} <nil>
	// true invalid job arguments: parameter retries: "many" is not an integer
}

func ExampleCheckPriority() {
	fmt.Println(rocketjob.CheckPriority(1), rocketjob.CheckPriority(100))
	err := rocketjob.CheckPriority(0)
	fmt.Println(errors.Is(err, rocketjob.ErrBadPriority), err)
	// Output:
	// <nil> <nil>
	// true priority must be between 1 and 100 (got 0)
}
