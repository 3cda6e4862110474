package sliced_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A record whose function fails is a failed record, stored with its number
// and error; the others go on, and the job ends failed. Download the failed
// records, fix the cause, and Retry runs only the slices that had failures.
func Example_failedRecordsAndRetry() {
	ctx := context.Background()
	var knowsWords atomic.Bool // the fix, deployed after the first run
	words := map[string]int{"three": 3}
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterLines(reg, "square", func(ctx context.Context, line string) (string, error) {
		n, err := strconv.Atoi(line)
		if w, ok := words[line]; ok && knowsWords.Load() {
			n, err = w, nil
		}
		if err != nil {
			return "", err
		}
		return strconv.Itoa(n * n), nil
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

	// A short ReCheck: a server looks again that soon at a job it found
	// without work, such as a job just retried.
	srv, err := server.New(client, &server.Config{Name: "example", Workers: 2, PollInterval: 20 * time.Millisecond, ReCheck: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
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

	job, err := sliced.Upload(ctx, client, "square", strings.NewReader("1\n2\nthree\n4\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	id := job.ID.Hex()
	if job, err = client.Wait(waitCtx, id, 20*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State+":", job.Failure.Message)
	if _, err := sliced.DownloadFailed(ctx, client, id, os.Stdout); err != nil {
		fmt.Println(err)
		return
	}

	knowsWords.Store(true)
	if _, err := client.Retry(ctx, id); err != nil {
		fmt.Println(err)
		return
	}
	if job, err = client.Wait(waitCtx, id, 20*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State, "with", job.FailedRecordCount, "failed records")
	if _, err := sliced.Download(ctx, client, id, os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// failed: 1 of 4 records failed
	// record,error,input
	// 3,"strconv.Atoi: parsing ""three"": invalid syntax",three
	// completed with 0 failed records
	// 1
	// 4
	// 9
	// 16
}
