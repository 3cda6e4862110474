package rocketjobtest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// ReminderArgs are the arguments of a simple job type under test.
type ReminderArgs struct {
	To string `bson:"to"`
}

// Perform runs one simple job inline: no database, no server.
func ExamplePerform() {
	reg := rocketjob.NewRegistry()
	_ = rocketjob.Register(reg, "remind", func(ctx context.Context, job *rocketjob.Job, args ReminderArgs) error {
		if args.To == "" {
			return errors.New("nobody to remind")
		}
		fmt.Println("reminding", args.To)
		return nil
	}, nil)

	ctx := context.Background()
	job, err := rocketjobtest.Perform(ctx, reg, "remind", ReminderArgs{To: "ops@example.com"})
	fmt.Println(job.State, err)

	job, err = rocketjobtest.Perform(ctx, reg, "remind", ReminderArgs{})
	fmt.Println(job.State, err, "/", job.Failure.Message)
	// Output:
	// reminding ops@example.com
	// completed <nil>
	// failed nobody to remind / nobody to remind
}

// Records runs records through a sliced type inline and returns what a
// download would hold: the output in input order and the failed records with
// their errors.
func ExampleRecords() {
	reg := rocketjob.NewRegistry()
	_ = sliced.RegisterLines(reg, "square", func(_ context.Context, line string) (string, error) {
		n, err := strconv.Atoi(line)
		return strconv.Itoa(n * n), err
	}, nil)

	res, err := rocketjobtest.Records(context.Background(), reg, "square", []string{"3", "x", "4"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("output:", strings.Join(res.Output, " "))
	for _, f := range res.Failed {
		fmt.Printf("record %d %q: %v\n", f.Number, f.Record, f.Err)
	}
	fmt.Println(res.Job.State, "-", res.Job.Failure.Message)
	// Output:
	// output: 9 16
	// record 2 "x": strconv.Atoi: parsing "x": invalid syntax
	// failed - 1 of 3 records failed
}

// RoundTrip uploads a file, runs a server in this process until the job ends
// and downloads the result. In a test, rocketjobtest.Start(t, reg, nil) gives
// the client; Open is its form without a *testing.T.
func ExampleRoundTrip() {
	reg := rocketjob.NewRegistry()
	_ = sliced.RegisterCSV(reg, "initials", func(_ context.Context, header, row []string) ([]string, error) {
		var b strings.Builder
		for _, name := range strings.Fields(row[1]) {
			b.WriteString(name[:1])
		}
		return []string{row[0], b.String()}, nil
	}, nil)

	ctx := context.Background()
	db, err := rocketjobtest.Open(ctx, reg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)

	input := "id,name\n1,Ada King Lovelace\n2,\"Hopper, Grace\"\n"
	res, err := rocketjobtest.RoundTrip(ctx, db.Client, "initials", strings.NewReader(input), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Job.State, res.Job.RecordCount, "records")
	fmt.Println(strings.Join(res.Output, "\n"))
	// Output:
	// completed 2 records
	// id,name
	// 1,AKL
	// 2,HG
}
