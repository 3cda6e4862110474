package sliced

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Download writes a sliced job's output records to w in input order (output
// line N belongs to input record N, minus failed records), in the job's
// format: CSV gets its header back, line endings and a missing final newline
// are kept. It streams; memory stays bounded. It returns the number of
// records written.
func Download(ctx context.Context, c *rocketjob.Client, id string, w io.Writer) (int64, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if !job.CollectOutput {
		return 0, fmt.Errorf("job %s does not collect its output", id)
	}
	codec, err := c.Codec(job)
	if err != nil {
		return 0, err
	}
	header, err := Header(c, job)
	if err != nil {
		return 0, err
	}
	wr := NewWriter(w, WriterOptions{
		Format:       Format(job.Format),
		Header:       header,
		LineEnding:   job.LineEnding,
		FinalNewline: !job.NoFinalNewline,
	})
	var n int64
	err = c.Store().Slices().StreamOutput(ctx, job.ID, func(s store.OutputSlice) error {
		plain, err := codec.Open(s.Records, OutputKind, Slot(s.Num))
		if err != nil {
			return fmt.Errorf("output of slice %d: %w", s.Num, err)
		}
		for rec, err := range Records(plain) {
			if err != nil {
				return fmt.Errorf("job %s: output of slice %d: %w", id, s.Num, err)
			}
			if err := wr.Write(rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("download of job %s: %w", id, err)
	}
	return n, wr.Close()
}

// DownloadFailed writes a sliced job's failed records to w as CSV with the
// columns record (1-based record number), error and input (the record as
// uploaded; a CSV row as one CSV line), in record order. It returns the
// number of failed records written.
func DownloadFailed(ctx context.Context, c *rocketjob.Client, id string, w io.Writer) (int64, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	codec, err := c.Codec(job)
	if err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"record", "error", "input"}); err != nil {
		return 0, err
	}
	var n int64
	err = c.Store().Slices().StreamFailed(ctx, job.ID, func(s store.OutputSlice) error {
		plain, err := codec.Open(s.Records, FailedKind, Slot(s.Num))
		if err != nil {
			return fmt.Errorf("failed records of slice %d: %w", s.Num, err)
		}
		for f, err := range Failures(plain) {
			if err != nil {
				return fmt.Errorf("job %s: failed records of slice %d: %w", id, s.Num, err)
			}
			input := string(f.Record)
			if job.Format == string(CSV) && len(f.Record) > 0 {
				if input, err = CSVLine(f.Record); err != nil {
					return err
				}
			}
			if err := cw.Write([]string{strconv.FormatInt(f.Number, 10), f.Error, input}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("failed records of job %s: %w", id, err)
	}
	cw.Flush()
	return n, cw.Error()
}

// CSVLine turns a CSV record (packed fields, see EncodeFields) back into one
// CSV line without its line ending.
func CSVLine(rec []byte) (string, error) {
	fields, err := DecodeFields(rec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	cw := csv.NewWriter(&b)
	if err := cw.Write(fields); err != nil {
		return "", err
	}
	cw.Flush()
	return strings.TrimSuffix(b.String(), "\n"), cw.Error()
}

func slicedJob(ctx context.Context, c *rocketjob.Client, id string) (*rocketjob.Job, error) {
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if job.Kind != rocketjob.KindSliced {
		return nil, fmt.Errorf("job %s is a simple job: it has no records to download", id)
	}
	return job, nil
}
