package sliced_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Upload a file into a sliced job, let a server process its slices and
// download the output: one output line per input line, in input order.
func Example_uploadAndDownload() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterLines(reg, "upcase", func(ctx context.Context, line string) (string, error) {
		return strings.ToUpper(line), nil
	}, &sliced.Options{SliceSize: 2})
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

	// Upload streams any io.Reader (a file, gzip or zstd compressed or not).
	file := strings.NewReader("one\ntwo\nthree\nfour\nfive\n")
	job, err := sliced.Upload(ctx, client, "upcase", file, &sliced.UploadOptions{Name: "numbers.txt"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.RecordCount, "records in", job.SliceCount, "slices")

	// A server processes the slices (usually `rocketjob server`, elsewhere).
	srv, err := server.New(client, &server.Config{Name: "example", Workers: 2, PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
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
	if job, err = client.Wait(waitCtx, job.ID.Hex(), 20*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State)
	if _, err := sliced.Download(ctx, client, job.ID.Hex(), os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 5 records in 3 slices
	// completed
	// ONE
	// TWO
	// THREE
	// FOUR
	// FIVE
}
