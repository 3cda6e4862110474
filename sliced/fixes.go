package sliced

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Fixing failed records: while a sliced job is failed, an operator can
// correct a failed record (FixFailedRecord) or delete it
// (DeleteFailedRecord); each change is written to the job's history
// (rocketjob.Client.History). `rocketjob job retry` (Client.Retry) then runs
// only the failed records of the job's slices, the corrected ones as
// corrected and the deleted ones not at all (they count as dropped: no
// output, no failure), and keeps the outputs of the records that did not
// fail: the job's output stays in input order and exactly once. (A type
// with output categories, or whose records may give no output, re-runs
// its retried slices whole, the fixes applied.)

// Errors of the failed-record fixes.
var (
	// ErrRecordNotFound: the job has no failed record with that number.
	ErrRecordNotFound = errors.New("no such failed record")
	// ErrNotFixable: the job is not failed (fixes are made on a failed job,
	// before retrying it), or the record cannot be fixed (it stands for a
	// slice that could not be read).
	ErrNotFixable = errors.New("failed record cannot be fixed")
)

// FailedRecord is one failed record of a job.
type FailedRecord struct {
	// Number is the record's 1-based position in the input.
	Number int64 `json:"record"`
	// Error is the record's error message.
	Error string `json:"error"`
	// Input is the record as uploaded (a tabular row as one CSV line).
	Input string `json:"input"`
	// Fix is the operator's fix waiting for the next retry, nil when none.
	Fix *RecordFix `json:"fix,omitempty"`
}

// RecordFix is an operator's fix of a failed record.
type RecordFix struct {
	// Delete drops the record at the next retry.
	Delete bool `json:"delete,omitempty"`
	// Input is the corrected record (a tabular row as one CSV line).
	Input string `json:"input,omitempty"`
	// User made the fix, at At.
	User string    `json:"user,omitempty"`
	At   time.Time `json:"at"`
}

// failedInSlice is a failed record with the slice that holds it.
type failedInSlice struct {
	FailedRecord
	slice      int64
	unreadable bool
}

// walkFailed calls fn for each stored failed record of job, in record order,
// until fn returns false.
func walkFailed(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job, fn func(failedInSlice) bool) error {
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return err
	}
	stop := errors.New("stop")
	err = clientstore.Of(c).Slices().StreamFailed(ctx, job.ID, func(o store.OutputSlice) error {
		plain, err := slice.Open(codec, slice.Failed, o.Num, o.Records)
		if err != nil {
			return fmt.Errorf("failed records of slice %d: %w", o.Num, err)
		}
		for f, err := range slice.Failures(plain) {
			if err != nil {
				return fmt.Errorf("failed records of slice %d: %w", o.Num, err)
			}
			input, err := failedInput(job, f.Record)
			if err != nil {
				return err
			}
			if !fn(failedInSlice{FailedRecord{Number: f.Number, Error: f.Message, Input: input}, o.Num, len(f.Record) == 0}) {
				return stop
			}
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

// fixesOf returns the fixes of job's records, their inputs opened.
func fixesOf(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job) (map[int64]*RecordFix, error) {
	list, err := clientstore.Of(c).RecordFixes(ctx, job.ID)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return nil, err
	}
	out := map[int64]*RecordFix{}
	for _, f := range list {
		fix := &RecordFix{Delete: f.Delete, User: f.User, At: f.At}
		if !f.Delete {
			rec, err := slice.Open(codec, slice.Fix, f.Number, f.Record)
			if err != nil {
				return nil, fmt.Errorf("fix of record %d: %w", f.Number, err)
			}
			if fix.Input, err = failedInput(job, rec); err != nil {
				return nil, err
			}
		}
		out[f.Number] = fix
	}
	return out, nil
}

// FailedRecords returns failed records offset..offset+limit-1 of job id
// (in record order) with their pending fixes, and whether more follow.
func FailedRecords(ctx context.Context, c *rocketjob.Client, id string, offset, limit int64) ([]FailedRecord, bool, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return nil, false, err
	}
	fixes, err := fixesOf(ctx, c, job)
	if err != nil {
		return nil, false, err
	}
	out := []FailedRecord{}
	more := false
	var i int64
	err = walkFailed(ctx, c, job, func(f failedInSlice) bool {
		if i++; i <= offset {
			return true
		}
		if int64(len(out)) >= limit {
			more = true
			return false
		}
		f.Fix = fixes[f.Number]
		out = append(out, f.FailedRecord)
		return true
	})
	return out, more, err
}

// GetFailedRecord returns failed record number of job id with its pending
// fix; ErrRecordNotFound when the job has no such failed record.
func GetFailedRecord(ctx context.Context, c *rocketjob.Client, id string, number int64) (*FailedRecord, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	f, err := findFailed(ctx, c, job, number)
	if err != nil {
		return nil, err
	}
	fixes, err := fixesOf(ctx, c, job)
	if err != nil {
		return nil, err
	}
	f.Fix = fixes[number]
	return &f.FailedRecord, nil
}

func findFailed(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job, number int64) (*failedInSlice, error) {
	var found *failedInSlice
	err := walkFailed(ctx, c, job, func(f failedInSlice) bool {
		if f.Number == number {
			found = &f
		}
		return found == nil && f.Number < number
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%w: job %s has no failed record %d", ErrRecordNotFound, job.ID.Hex(), number)
	}
	return found, nil
}

// FixFailedRecord replaces failed record number of job id by input (a
// tabular row written as one CSV line) for the job's next retry, replacing
// an earlier fix of it, and writes the change to the job's history under
// user. The job must be failed (ErrNotFixable otherwise).
func FixFailedRecord(ctx context.Context, c *rocketjob.Client, id string, number int64, input, user string) (*FailedRecord, error) {
	return fixFailed(ctx, c, id, number, &input, user)
}

// DeleteFailedRecord drops failed record number of job id at the job's
// next retry (no output, no failure: it counts as dropped) and writes the
// change to the job's history under user. The job must be failed.
func DeleteFailedRecord(ctx context.Context, c *rocketjob.Client, id string, number int64, user string) (*FailedRecord, error) {
	return fixFailed(ctx, c, id, number, nil, user)
}

func fixFailed(ctx context.Context, c *rocketjob.Client, id string, number int64, input *string, user string) (*FailedRecord, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if job.State != rocketjob.StateFailed {
		return nil, fmt.Errorf("%w: job %s is %s: fix its failed records once it has failed, then retry it", ErrNotFixable, id, job.State)
	}
	f, err := findFailed(ctx, c, job, number)
	if err != nil {
		return nil, err
	}
	if f.unreadable {
		return nil, fmt.Errorf("%w: record %d stands for slice %d, which could not be read (%s): retry the job instead", ErrNotFixable, number, f.slice, f.Error)
	}
	fix := &store.RecordFix{Number: number, Slice: f.slice, User: user, At: time.Now().UTC().Truncate(time.Millisecond)}
	action := "delete failed record"
	if input == nil {
		fix.Delete = true
		f.Fix = &RecordFix{Delete: true, User: user, At: fix.At}
	} else {
		rec, err := fixedRecord(job, *input)
		if err != nil {
			return nil, err
		}
		codec, err := clientjob.Codec(c, job)
		if err != nil {
			return nil, err
		}
		if fix.Record, err = slice.Seal(codec, slice.Fix, number, rec); err != nil {
			return nil, err
		}
		action = "edit failed record"
		f.Fix = &RecordFix{Input: *input, User: user, At: fix.At}
	}
	st := clientstore.Of(c)
	if err := st.SetRecordFix(ctx, job.ID, fix); err != nil {
		return nil, err
	}
	if err := st.AddHistory(ctx, &store.HistoryEntry{Job: job.ID, At: fix.At, User: user, Action: action, Record: number}); err != nil {
		return nil, fmt.Errorf("job %s: the fix is stored, its history entry is not: %w", id, err)
	}
	return &f.FailedRecord, nil
}

// fixedRecord is the stored form of a corrected record: a tabular job's
// row from one CSV line, others as given.
func fixedRecord(job *rocketjob.Job, input string) ([]byte, error) {
	if !Format(job.Format).Tabular() {
		if strings.ContainsAny(input, "\n") {
			return nil, fmt.Errorf("%w: a record is one line", ErrBadOptions)
		}
		return []byte(input), nil
	}
	r := csv.NewReader(strings.NewReader(input))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: the corrected row is not one CSV line: %v", ErrBadOptions, err)
	}
	if _, err := r.Read(); err == nil {
		return nil, fmt.Errorf("%w: the corrected row is more than one CSV line", ErrBadOptions)
	}
	return EncodeFields(nil, fields), nil
}
