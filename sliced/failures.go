package sliced

import (
	"fmt"
	"iter"
	"strconv"
)

// FailedRecord is a record whose function returned an error (or panicked).
type FailedRecord struct {
	// Number is the record's 1-based position in the input.
	Number int64
	// Record is the record as uploaded (for CSV, EncodeFields bytes).
	Record []byte
	// Error is the error message.
	Error string
}

// AppendFailure appends one failed record to a failures blob: the record
// number, the record and the message, each as one packed record.
func AppendFailure(blob []byte, number int64, rec []byte, msg string) []byte {
	blob = AppendRecord(blob, strconv.AppendInt(nil, number, 10))
	blob = AppendRecord(blob, rec)
	return AppendRecord(blob, []byte(msg))
}

// Failures iterates over the failed records of a failures blob. A malformed
// blob ends with an error wrapping ErrCorruptSlice.
func Failures(blob []byte) iter.Seq2[FailedRecord, error] {
	return func(yield func(FailedRecord, error) bool) {
		var parts [][]byte
		for part, err := range Records(blob) {
			if err != nil {
				yield(FailedRecord{}, err)
				return
			}
			parts = append(parts, part)
			if len(parts) < 3 {
				continue
			}
			n, err := strconv.ParseInt(string(parts[0]), 10, 64)
			if err != nil {
				yield(FailedRecord{}, fmt.Errorf("%w: bad record number %q", ErrCorruptSlice, parts[0]))
				return
			}
			if !yield(FailedRecord{Number: n, Record: parts[1], Error: string(parts[2])}, nil) {
				return
			}
			parts = parts[:0]
		}
		if len(parts) != 0 {
			yield(FailedRecord{}, fmt.Errorf("%w: truncated failed record", ErrCorruptSlice))
		}
	}
}
