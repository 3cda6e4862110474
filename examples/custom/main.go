// Command custom is a complete rocketjob program with its own job types:
// its own binary, its own job types, the same command line as rocketjob.
//
//	go build -o mailer ./examples/custom
//	./mailer server --embedded ./data &                  # prints the database URI on stderr
//	./mailer --uri URI job enqueue send_email --param to=ann@example.com --param subject=Hi
//	./mailer --uri URI upload --job greet people.csv     # CSV with a "name" column
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/rocketjob-go/rocketjob/cmd/rocketjob/cli"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// EmailArgs are the arguments of a send_email job.
type EmailArgs struct {
	To      string `bson:"to"`
	Subject string `bson:"subject"`
	Body    string `bson:"body"`
}

// Validate refuses a job without a recipient: `job enqueue` fails at once.
func (a EmailArgs) Validate() error {
	if !strings.Contains(a.To, "@") {
		return errors.New("to must be an email address")
	}
	return nil
}

// sendEmail pretends to send an email.
func sendEmail(ctx context.Context, job *rocketjob.Job, args EmailArgs) error {
	slog.InfoContext(ctx, "sending email", "job", job.ID.Hex(), "to", args.To, "subject", args.Subject)
	return nil
}

// greet turns the "name" column of every row of a CSV file into a greeting.
func greet(_ context.Context, header, row []string) ([]string, error) {
	i := slices.Index(header, "name")
	if i < 0 || i >= len(row) {
		return nil, errors.New(`no "name" column`)
	}
	row[i] = fmt.Sprintf("Hello, %s!", row[i])
	return row, nil
}

func main() {
	reg := rocketjob.NewRegistry()
	if err := errors.Join(
		rocketjob.Register(reg, "send_email", sendEmail, &rocketjob.TypeOptions{RetryLimit: 3}),
		sliced.RegisterCSV(reg, "greet", greet, &sliced.Options{SliceSize: 500}),
	); err != nil {
		panic(err)
	}
	cli.Main(reg)
}
