package slice

import (
	"fmt"
	"iter"
	"strconv"
)

// Failure is one stored failed record.
type Failure struct {
	// Number is the record's 1-based position in the input.
	Number int64
	// Record is the record as uploaded (for CSV, packed fields); empty when
	// the slice could not be read from this record on.
	Record []byte
	// Message is the record's error message.
	Message string
}

// AppendFailure appends one failed record to a failures body: the record
// number, the record and the message, each as one packed record.
func AppendFailure(body []byte, number int64, rec []byte, msg string) []byte {
	body = Append(body, strconv.AppendInt(nil, number, 10))
	body = Append(body, rec)
	return Append(body, []byte(msg))
}

// Failures iterates over the failed records of a failures body, in order.
// Record aliases body. A malformed body ends with an error wrapping
// ErrCorrupt.
func Failures(body []byte) iter.Seq2[Failure, error] {
	return func(yield func(Failure, error) bool) {
		var parts [3][]byte
		n := 0
		for part, err := range Records(body) {
			if err != nil {
				yield(Failure{}, err)
				return
			}
			parts[n] = part
			if n++; n < len(parts) {
				continue
			}
			n = 0
			num, err := strconv.ParseInt(string(parts[0]), 10, 64)
			if err != nil {
				yield(Failure{}, fmt.Errorf("%w: bad record number %q", ErrCorrupt, parts[0]))
				return
			}
			if !yield(Failure{Number: num, Record: parts[1], Message: string(parts[2])}, nil) {
				return
			}
		}
		if n != 0 {
			yield(Failure{}, fmt.Errorf("%w: truncated failed record", ErrCorrupt))
		}
	}
}
