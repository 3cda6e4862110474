package slice

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The stored format, pinned: bodies written by earlier versions must keep
// reading, and new ones must read in earlier versions.
const (
	goldenBody     = "05616c706861000300ff7a" // "alpha", "", "\x00\xffz"
	goldenFailures = "0137017811737472636f6e762e41746f693a206261640231320010736c69636520323a20636f7272757074"
)

var goldenRecords = [][]byte{[]byte("alpha"), {}, []byte("\x00\xffz")}

func TestBodyFormatIsPinned(t *testing.T) {
	var body []byte
	for _, r := range goldenRecords {
		body = Append(body, r)
	}
	if got := hex.EncodeToString(body); got != goldenBody {
		t.Fatalf("body = %s, want %s", got, goldenBody)
	}
	failures := AppendFailure(AppendFailure(nil, 7, []byte("x"), "strconv.Atoi: bad"), 12, nil, "slice 2: corrupt")
	if got := hex.EncodeToString(failures); got != goldenFailures {
		t.Fatalf("failures = %s, want %s", got, goldenFailures)
	}
	fs := collectFailures(t, failures)
	want := []Failure{{7, []byte("x"), "strconv.Atoi: bad"}, {12, []byte{}, "slice 2: corrupt"}}
	if !reflect.DeepEqual(fs, want) {
		t.Fatalf("failures = %+v, want %+v", fs, want)
	}
}

func collectFailures(t *testing.T, body []byte) []Failure {
	t.Helper()
	var out []Failure
	for f, err := range Failures(body) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestRecordsRoundTrip(t *testing.T) {
	recs := [][]byte{[]byte("a"), {}, []byte("\x00\xff"), bytes.Repeat([]byte("x"), 300), []byte("last")}
	var body []byte
	for _, r := range recs {
		body = Append(body, r)
	}
	var got [][]byte
	for rec, err := range Records(body) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Errorf("record %d = %q, want %q", i, got[i], recs[i])
		}
	}
	// Appending to a yielded record must not overwrite the next one.
	_ = append(got[0], "ZZZZ"...)
	for rec := range Records(body) {
		if string(rec) != "a" {
			t.Errorf("first record now %q", rec)
		}
		break
	}
}

func TestRecordsEmptyAndBreak(t *testing.T) {
	for range Records(nil) {
		t.Fatal("records in an empty body")
	}
	body := Append(Append(nil, []byte("1")), []byte("2"))
	n := 0
	for range Records(body) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d times after break", n)
	}
}

func TestRecordsCorrupt(t *testing.T) {
	good := Append(nil, []byte("ok"))
	tests := map[string][]byte{
		"truncated record":    append(bytes.Clone(good), 5, 'a', 'b'),
		"truncated varint":    append(bytes.Clone(good), 0x80),
		"overlong varint":     append(bytes.Clone(good), bytes.Repeat([]byte{0xff}, 11)...),
		"huge length":         append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"length past the end": {0x03, 'a'},
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			var recs []string
			var lastErr error
			for rec, err := range Records(body) {
				if err != nil {
					lastErr = err
					if rec != nil {
						t.Errorf("record with error: %q", rec)
					}
					continue
				}
				if lastErr != nil {
					t.Error("record after error")
				}
				recs = append(recs, string(rec))
			}
			if !errors.Is(lastErr, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", lastErr)
			}
			if name != "length past the end" && !reflect.DeepEqual(recs, []string{"ok"}) {
				t.Errorf("records before the error = %q", recs)
			}
			if !strings.Contains(lastErr.Error(), "byte") {
				t.Errorf("error does not say where: %v", lastErr)
			}
		})
	}
}

func TestFailuresRoundTripAndBreak(t *testing.T) {
	body := AppendFailure(nil, 1, []byte("a,b"), "bad")
	body = AppendFailure(body, 9_000_000_000, nil, "")
	body = AppendFailure(body, 3, []byte("\x00"), "panic: x\nstack")
	fs := collectFailures(t, body)
	want := []Failure{{1, []byte("a,b"), "bad"}, {9_000_000_000, []byte{}, ""}, {3, []byte("\x00"), "panic: x\nstack"}}
	if !reflect.DeepEqual(fs, want) {
		t.Fatalf("got %+v, want %+v", fs, want)
	}
	n := 0
	for range Failures(body) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d times after break", n)
	}
}

func TestFailuresCorrupt(t *testing.T) {
	one := AppendFailure(nil, 4, []byte("r"), "m")
	tests := map[string][]byte{
		"truncated failure": Append(Append(bytes.Clone(one), []byte("5")), []byte("r")),
		"bad number":        Append(Append(Append(bytes.Clone(one), []byte("-")), nil), nil),
		"not a number":      Append(Append(Append(bytes.Clone(one), []byte("x")), nil), nil),
		"corrupt record":    append(bytes.Clone(one), 0x80),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			var got []Failure
			var lastErr error
			for f, err := range Failures(body) {
				if err != nil {
					lastErr = err
					continue
				}
				if lastErr != nil {
					t.Error("failure after error")
				}
				got = append(got, f)
			}
			if !errors.Is(lastErr, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", lastErr)
			}
			if len(got) != 1 || got[0].Number != 4 {
				t.Errorf("failures before the error = %+v", got)
			}
		})
	}
}
