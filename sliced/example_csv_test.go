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

// A CSV job type gets the file's header and one row at a time; the download
// writes the header back on top, with fields quoted where they need it.
func Example_csv() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterCSV(reg, "clean_contacts", func(ctx context.Context, header, row []string) ([]string, error) {
		out := make([]string, len(row))
		for i, field := range row {
			field = strings.TrimSpace(field)
			if header[i] == "email" {
				field = strings.ToLower(field)
			}
			out[i] = field
		}
		return out, nil
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

	file := strings.NewReader("name,email\r\n\"Lovelace, Ada \", ADA@Example.com\r\nGrace Hopper,grace@EXAMPLE.com\r\n")
	job, err := sliced.Upload(ctx, client, "clean_contacts", file, &sliced.UploadOptions{Name: "contacts.csv"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.Format, job.Header, job.RecordCount, "records")

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
	if job, err = client.Wait(waitCtx, job.ID.Hex(), 20*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	// The output keeps the input's CRLF line endings; strip them to print.
	var out strings.Builder
	if _, err := sliced.Download(ctx, client, job.ID.Hex(), &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprint(os.Stdout, strings.ReplaceAll(out.String(), "\r\n", "\n"))
	// Output:
	// csv [name email] 2 records
	// name,email
	// "Lovelace, Ada",ada@example.com
	// Grace Hopper,grace@example.com
}
