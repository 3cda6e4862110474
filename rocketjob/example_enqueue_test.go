package rocketjob_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/server"
)

// ReportArgs are the arguments of the report job type.
type ReportArgs struct {
	Month string `bson:"month"`
}

// Enqueue a simple job, let a server run it and wait for its end.
func Example_enqueueAndWait() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, "report", func(ctx context.Context, job *rocketjob.Job, args ReportArgs) error {
		fmt.Println("building the report for", args.Month)
		return nil
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	// A client on fresh databases of the test database server, dropped by
	// Close. In production: rocketjob.NewClient(ctx, rocketjob.Config{URI:
	// "mongodb://...", Registry: reg}).
	db, err := rocketjobtest.Open(ctx, reg, &rocketjobtest.Options{URI: dbtest.URI()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	client := db.Client

	job, err := client.Enqueue(ctx, "report", ReportArgs{Month: "2024-05"}, &rocketjob.EnqueueOptions{Priority: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.Type, job.State, job.Priority)

	// A server runs the job: usually `rocketjob server` or a program of
	// your own calling server.New(client, cfg).Run(ctx), in another process.
	srv, err := server.New(client, &server.Config{Name: "example", Workers: 1, PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(srvCtx) }()
	defer func() { stop(); <-done }()

	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	job, err = client.Wait(waitCtx, job.ID.Hex(), 20*time.Millisecond)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State, job.Failure == nil)
	// Output:
	// report queued 10
	// building the report for 2024-05
	// completed true
}
