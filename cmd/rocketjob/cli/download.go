package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func downloadCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "download",
		Usage:     "download a sliced job's output (or, with --failed, its failed records as CSV)",
		ArgsUsage: "JOB_ID FILE|-",
		UsageText: usageText("rocketjob download [--failed] JOB_ID FILE|-",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.txt",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.txt.gz      # gzip (.zst: zstd)",
			"rocketjob download --failed 65a1b2c3d4e5f60718293a4b - | less  # record,error,input"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "failed", Usage: "download the failed records with their errors (CSV: record, error, input)"},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 2, 2, "JOB_ID FILE|-")
			if err != nil {
				return err
			}
			id, dest := a[0], a[1]
			if _, err := rocketjob.ParseID(id); err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			failed := c.Bool("failed")
			if !failed {
				job, err := client.Get(c.Context, id)
				if err != nil {
					return err
				}
				if err := downloadable(job); err != nil {
					return err
				}
			}
			n, err := downloadTo(c.Context, client, id, dest, failed, c.App.Writer)
			if err != nil {
				return err
			}
			what := "records"
			if failed {
				what = "failed records"
			}
			if dest != "-" {
				msg(c, "wrote %s %s to %s", commas(n), what, dest)
			}
			return nil
		},
	}
}

// downloadable refuses the output download of a job whose output is not
// (yet) complete.
func downloadable(job *rocketjob.Job) error {
	id := job.ID.Hex()
	switch {
	case job.Kind != rocketjob.KindSliced:
		return fmt.Errorf("job %s is a simple job: it has no records to download", id)
	case !job.CollectOutput:
		return fmt.Errorf("job %s does not keep its output (uploaded with --no-output)", id)
	case job.State == rocketjob.StateCompleted || job.State == rocketjob.StateFailed:
		return nil
	default:
		return fmt.Errorf("job %s is %s: its output is not complete (wait with: rocketjob job wait %s)", id, job.State, id)
	}
}

// downloadTo writes the output (or the failed records) of job id to dest:
// "-" is stdout; a file is written to a temporary file in the same folder
// and renamed into place on success, compressed by its extension (.gz,
// .zst). It returns the number of records written.
func downloadTo(ctx context.Context, client *rocketjob.Client, id, dest string, failed bool, stdout io.Writer) (int64, error) {
	download := sliced.Download
	if failed {
		download = sliced.DownloadFailed
	}
	if dest == "-" {
		return download(ctx, client, id, stdout)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return 0, fmt.Errorf("%s is a directory", dest)
	}
	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, fmt.Errorf("cannot write %s: %w", dest, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w, err := sliced.CreateOutput(tmp, dest)
	if err != nil {
		return 0, err
	}
	n, err := download(ctx, client, id, w)
	if err != nil {
		return n, err
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return n, err
	}
	ok = true
	return n, nil
}
