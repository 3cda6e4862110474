package sliced

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRecordsRoundTrip(t *testing.T) {
	recs := [][]byte{[]byte("a"), {}, []byte("\x00\xff"), bytes.Repeat([]byte("x"), 300), []byte("last")}
	var blob []byte
	for _, r := range recs {
		blob = AppendRecord(blob, r)
	}
	var got [][]byte
	for rec, err := range Records(blob) {
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
	for rec := range Records(blob) {
		if string(rec) != "a" {
			t.Errorf("first record now %q", rec)
		}
		break
	}
}

func TestRecordsEmptyAndBreak(t *testing.T) {
	for range Records(nil) {
		t.Fatal("records in an empty blob")
	}
	blob := AppendRecord(AppendRecord(nil, []byte("1")), []byte("2"))
	n := 0
	for range Records(blob) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d times after break", n)
	}
}

func TestRecordsCorrupt(t *testing.T) {
	good := AppendRecord(nil, []byte("ok"))
	tests := map[string][]byte{
		"truncated record":    append(bytes.Clone(good), 5, 'a', 'b'),
		"truncated varint":    append(bytes.Clone(good), 0x80),
		"overlong varint":     append(bytes.Clone(good), bytes.Repeat([]byte{0xff}, 11)...),
		"huge length":         append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"length past the end": {0x03, 'a'},
	}
	for name, blob := range tests {
		t.Run(name, func(t *testing.T) {
			var recs []string
			var lastErr error
			n := 0
			for rec, err := range Records(blob) {
				n++
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
			if !errors.Is(lastErr, ErrCorruptSlice) {
				t.Errorf("err = %v, want ErrCorruptSlice", lastErr)
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

func TestFieldsRoundTrip(t *testing.T) {
	tests := [][]string{
		{},
		{""},
		{"", ""},
		{"a", "bc", "\x00\xff", strings.Repeat("é", 200)},
	}
	for _, fields := range tests {
		rec := EncodeFields([]byte("prefix"), fields)
		if !bytes.HasPrefix(rec, []byte("prefix")) {
			t.Fatal("EncodeFields lost dst")
		}
		got, err := DecodeFields(rec[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(fields) || (len(fields) > 0 && !reflect.DeepEqual(got, fields)) {
			t.Errorf("got %q, want %q", got, fields)
		}
	}
}

func TestDecodeFieldsCorrupt(t *testing.T) {
	tests := map[string][]byte{
		"empty":           {},
		"bad count":       {0x80},
		"count too big":   {0xff, 0xff, 0xff, 0xff, 0x0f},
		"missing field":   {2, 1, 'a'},
		"field too long":  {1, 5, 'a'},
		"trailing bytes":  {1, 1, 'a', 'b'},
		"bad field len":   {1, 0x80},
		"huge field len":  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"zero then extra": {0, 0},
	}
	for name, rec := range tests {
		if _, err := DecodeFields(rec); !errors.Is(err, ErrCorruptSlice) {
			t.Errorf("%s: err = %v, want ErrCorruptSlice", name, err)
		}
	}
}
