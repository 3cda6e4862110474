package slice

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzRecords checks that iterating over any body never panics, that an
// error comes last, and that a valid body re-encodes to the same records.
func FuzzRecords(f *testing.F) {
	f.Add([]byte{})
	f.Add(Append(Append(nil, []byte("a")), nil))
	f.Add(Append(nil, bytes.Repeat([]byte("x"), 200)))
	f.Add([]byte{0x80})
	f.Add([]byte{5, 'a'})
	f.Fuzz(func(t *testing.T, body []byte) {
		var rebuilt []byte
		failed := false
		for rec, err := range Records(body) {
			if failed {
				t.Fatal("element after an error")
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				failed = true
				continue
			}
			rebuilt = Append(rebuilt, rec)
		}
		if !failed && !bytes.Equal(rebuilt, body) {
			// Uvarints may be non-minimal (e.g. 0x80 0x00), so only a
			// minimal encoding re-encodes exactly; check the records instead.
			var a, b [][]byte
			for rec := range Records(body) {
				a = append(a, rec)
			}
			for rec := range Records(rebuilt) {
				b = append(b, rec)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("records of %q changed on re-encoding", body)
			}
		}
	})
}

// FuzzFailures checks that iterating over any failures body never panics,
// that an error comes last and wraps ErrCorrupt, and that the failed records
// read re-encode to the same failed records.
func FuzzFailures(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendFailure(nil, 1, []byte("a"), "bad"))
	f.Add(AppendFailure(AppendFailure(nil, 2, nil, ""), 3, []byte("\x00"), "panic: x\n"))
	f.Add([]byte{1, '-', 0, 0})
	f.Add([]byte{1, '7', 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []Failure
		var rebuilt []byte
		failed := false
		for fr, err := range Failures(body) {
			if failed {
				t.Fatal("element after an error")
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				failed = true
				continue
			}
			got = append(got, fr)
			rebuilt = AppendFailure(rebuilt, fr.Number, fr.Record, fr.Message)
		}
		var again []Failure
		for fr, err := range Failures(rebuilt) {
			if err != nil {
				t.Fatalf("re-encoded failures do not read: %v", err)
			}
			again = append(again, fr)
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("failures %+v changed on re-encoding: %+v", got, again)
		}
	})
}
