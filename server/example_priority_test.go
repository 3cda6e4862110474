package server_test

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

// ExportArgs are the arguments of the export job type.
type ExportArgs struct {
	Customer string `bson:"customer"`
}

// Change a job's priority after it was enqueued: a server takes the job with
// the lowest priority number first, then the oldest. SetPriority reaches
// running sliced jobs too: workers look again after every slice and every
// Config.ReCheck, so a job raised above the one they are on gets them within
// one slice plus ReCheck.
func Example_priority() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, "export", func(ctx context.Context, job *rocketjob.Job, args ExportArgs) error {
		fmt.Println("exporting", args.Customer, "at priority", job.Priority)
		return nil
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A client on fresh databases of the test database server, dropped by Close.
	db, err := rocketjobtest.Open(ctx, reg, &rocketjobtest.Options{URI: dbtest.URI()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	client := db.Client

	// Three jobs at the default priority, 50: they would run in this order.
	var ids []string
	for _, customer := range []string{"acme", "globex", "initech"} {
		job, err := client.Enqueue(ctx, "export", ExportArgs{Customer: customer}, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		ids = append(ids, job.ID.Hex())
	}
	// initech is urgent after all (`rocketjob job priority ID 5`).
	if _, err := client.SetPriority(ctx, ids[2], 5); err != nil {
		fmt.Println(err)
		return
	}

	// One worker, so the jobs run one after the other.
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
	for _, id := range ids {
		if _, err := client.Wait(waitCtx, id, 20*time.Millisecond); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Output:
	// exporting initech at priority 5
	// exporting acme at priority 50
	// exporting globex at priority 50
}
