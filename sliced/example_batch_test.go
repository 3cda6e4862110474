package sliced_test

import (
	"context"
	"errors"
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

// ImportParams are the parameters of an import job: which tenant the file
// is for. Validate runs at upload, before anything is stored.
type ImportParams struct {
	Tenant string `bson:"tenant"`
}

func (p ImportParams) Validate() error {
	if p.Tenant == "" {
		return errors.New("tenant is required")
	}
	return nil
}

// A batch import job as RocketJob users write one: per-job parameters, two
// output categories (imported and rejected rows), statistics, and a hook
// that runs once when the job ends, with the final counts.
func Example_importJob() {
	ctx := context.Background()
	ended := make(chan string, 1)
	reg := rocketjob.NewRegistry()
	err := sliced.Register(reg, "import_users", sliced.Type[ImportParams]{
		Format:     sliced.CSV,
		Categories: []string{"imported", "rejected"},
		Perform: func(ctx context.Context, p ImportParams, rec []byte) ([]rocketjob.Output, error) {
			row, err := sliced.DecodeFields(rec) // name,email
			if err != nil {
				return nil, err
			}
			if len(row) < 2 || row[1] == "" {
				rocketjob.Inc(ctx, "missing_email", 1)
				note := fmt.Sprintf("record %d: no email", sliced.RecordNumber(ctx))
				return sliced.To("rejected", sliced.EncodeFields(nil, []string{row[0], note})), nil
			}
			rocketjob.Inc(ctx, "imported", 1)
			return sliced.To("imported", sliced.EncodeFields(nil, []string{p.Tenant + "/" + row[0], strings.ToLower(row[1])})), nil
		},
		OnComplete: func(ctx context.Context, job *rocketjob.Job, p ImportParams) error {
			ended <- fmt.Sprintf("%s: %d rows, imported %d, rejected %d, statistics %v",
				p.Tenant, job.RecordCount, job.Categories["imported"], job.Categories["rejected"], job.Statistics)
			return nil
		},
		Options: &sliced.Options{SliceSize: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := rocketjobtest.Open(ctx, reg, &rocketjobtest.Options{URI: dbtest.URI()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	client := db.Client
	srv, err := server.New(client, &server.Config{Name: "example", Workers: 2, PollInterval: 20 * time.Millisecond, ReCheck: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(srvCtx) }()
	defer func() { stop(); <-done }()

	file := "name,email\nAnn,ANN@example.com\nBob,\nCy,cy@example.com\n"
	// No tenant: refused before anything is stored.
	_, err = sliced.Upload(ctx, client, "import_users", strings.NewReader(file), nil)
	fmt.Println(err)

	job, err := sliced.Upload(ctx, client, "import_users", strings.NewReader(file), &sliced.UploadOptions{Params: ImportParams{Tenant: "acme"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case msg := <-ended:
		fmt.Println(msg)
	case <-time.After(time.Minute):
		fmt.Println("timed out")
		return
	}
	for _, category := range []string{"imported", "rejected"} {
		fmt.Println("--", category)
		if _, err := sliced.DownloadCategory(ctx, client, job.ID.Hex(), category, os.Stdout); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// invalid job arguments: job type "import_users": tenant is required
	// acme: 3 rows, imported 2, rejected 1, statistics map[imported:2 missing_email:1]
	// -- imported
	// name,email
	// acme/Ann,ann@example.com
	// acme/Cy,cy@example.com
	// -- rejected
	// name,email
	// Bob,record 2: no email
}
