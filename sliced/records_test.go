package sliced

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

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
