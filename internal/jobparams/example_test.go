package jobparams_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// EmailArgs are the typed arguments of a send_email job.
type EmailArgs struct {
	To      string `bson:"to"`
	Retries int    `bson:"retries"`
}

func ExampleParse() {
	reg := rocketjob.NewRegistry()
	_ = rocketjob.Register(reg, "send_email", func(context.Context, *rocketjob.Job, EmailArgs) error { return nil }, nil)

	// What `rocketjob job enqueue send_email --param to=... --param retries=3` does:
	params, err := jobparams.Parse(reg, "send_email", []string{"to=ops@example.com", "retries=3"})
	fmt.Println(params, err)

	_, err = jobparams.Parse(reg, "send_email", []string{"retries=many"})
	fmt.Println(errors.Is(err, rocketjob.ErrBadArgs), err)
	// Output:
	// {"to": "ops@example.com","retries": {"$numberLong":"3"}} <nil>
	// true invalid job arguments: parameter retries: "many" is not an integer
}
