package slice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
)

// ErrCorrupt is wrapped by every error about a malformed body (records or
// failed records). sliced.ErrCorruptSlice is this same value.
var ErrCorrupt = errors.New("corrupt slice data")

// Append appends one record to a body, as the uvarint of its length followed
// by its bytes, and returns the extended body.
func Append(body, rec []byte) []byte {
	body = binary.AppendUvarint(body, uint64(len(rec)))
	return append(body, rec...)
}

// Records iterates over the records of a body built with Append, in order.
// Each record is yielded with a nil error; the yielded bytes alias body (with
// their capacity clipped, so appending to one cannot overwrite the next). A
// malformed body yields one final (nil, error) pair, the error wrapping
// ErrCorrupt, instead of panicking.
func Records(body []byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		off := 0
		for off < len(body) {
			n, k := binary.Uvarint(body[off:])
			if k <= 0 {
				yield(nil, fmt.Errorf("%w: bad record length at byte %d", ErrCorrupt, off))
				return
			}
			start := off + k
			if n > uint64(len(body)-start) {
				yield(nil, fmt.Errorf("%w: record at byte %d has length %d but only %d bytes remain",
					ErrCorrupt, off, n, len(body)-start))
				return
			}
			end := start + int(n)
			if !yield(body[start:end:end], nil) {
				return
			}
			off = end
		}
	}
}
