package sliced

import (
	"encoding/binary"
	"fmt"

	"github.com/rocketjob-go/rocketjob/internal/slice"
)

// ErrCorruptSlice is wrapped by every error about a malformed slice blob or
// a malformed encoded CSV record.
var ErrCorruptSlice = slice.ErrCorrupt

// EncodeFields appends the fields of one CSV row to dst as a record: the
// uvarint of the number of fields, then for each field the uvarint of its
// length followed by its bytes. It returns the extended slice.
func EncodeFields(dst []byte, fields []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(fields)))
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// DecodeFields returns the fields of a record built with EncodeFields. A
// malformed record is an error wrapping ErrCorruptSlice.
func DecodeFields(rec []byte) ([]string, error) {
	n, err := fieldCount(rec)
	if err != nil {
		return nil, err
	}
	// One string holds the bytes of all fields; the fields are substrings.
	all := string(rec)
	fields := make([]string, 0, n)
	err = eachField(rec, func(start, end int) {
		fields = append(fields, all[start:end])
	})
	if err != nil {
		return nil, err
	}
	return fields, nil
}

// fieldCount reads the field count of an encoded record and checks that it
// is plausible (every field takes at least one byte).
func fieldCount(rec []byte) (int, error) {
	n, k := binary.Uvarint(rec)
	if k <= 0 {
		return 0, fmt.Errorf("%w: bad field count in CSV record", ErrCorruptSlice)
	}
	if n > uint64(len(rec)-k) {
		return 0, fmt.Errorf("%w: CSV record claims %d fields in %d bytes", ErrCorruptSlice, n, len(rec))
	}
	return int(n), nil
}

// eachField calls fn with the bounds in rec of each field of an encoded
// record, in order, and checks that the record has no trailing bytes.
func eachField(rec []byte, fn func(start, end int)) error {
	n, err := fieldCount(rec)
	if err != nil {
		return err
	}
	_, off := binary.Uvarint(rec)
	for i := range n {
		l, k := binary.Uvarint(rec[off:])
		if k <= 0 {
			return fmt.Errorf("%w: bad length of field %d in CSV record", ErrCorruptSlice, i+1)
		}
		start := off + k
		if l > uint64(len(rec)-start) {
			return fmt.Errorf("%w: field %d of CSV record has length %d but only %d bytes remain",
				ErrCorruptSlice, i+1, l, len(rec)-start)
		}
		off = start + int(l)
		fn(start, off)
	}
	if off != len(rec) {
		return fmt.Errorf("%w: %d trailing bytes after the fields of a CSV record", ErrCorruptSlice, len(rec)-off)
	}
	return nil
}
