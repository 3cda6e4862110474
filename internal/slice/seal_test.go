package slice

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/encryption"
)

const goldenJob = "65a1b2c3d4e5f60718293a4b"

// goldenKeyring holds the key "gold" (bytes 0..31) that sealed the golden
// slices below.
func goldenKeyring(t *testing.T) *encryption.Keyring {
	t.Helper()
	key := make([]byte, encryption.KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	ring, err := encryption.ParseKeyring("gold:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func newKeyring(t *testing.T) *encryption.Keyring {
	t.Helper()
	k, err := encryption.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := encryption.ParseKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func codec(t *testing.T, job string, ring *encryption.Keyring, compress, encrypt bool) *encryption.Codec {
	t.Helper()
	c, err := encryption.NewCodec(job, ring, compress, encrypt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoldenSealedSlicesOpen opens output slice 3 of job goldenJob as an
// earlier version sealed it: the envelope and its additional data (job |
// kind | slice) are unchanged.
func TestGoldenSealedSlicesOpen(t *testing.T) {
	golden := []struct {
		compress, encrypt bool
		sealed            string
	}{
		{true, false, "010128b52ffd040059000005616c706861000300ff7a55c73ba8"},
		{false, true, "010204676f6c64161f0fa148d30c15fe6e19fd4983cb8fc6aa3d11d10fc3081438614d9e02170a03770bf95b2fc0"},
		{true, true, "010304676f6c64321485b46dd517e8beca862b7c927356ef2a90e73d72deb9a3ac5d87a65ff6207d49408662a5a7f2ae15489fcf15f1b23b0199a9"},
	}
	ring := goldenKeyring(t)
	for _, g := range golden {
		sealed, _ := hex.DecodeString(g.sealed)
		c := codec(t, goldenJob, ring, g.compress, g.encrypt)
		plain, err := Open(c, Output, 3, sealed)
		if err != nil {
			t.Fatalf("compress=%v encrypt=%v: %v", g.compress, g.encrypt, err)
		}
		if got := hex.EncodeToString(plain); got != goldenBody {
			t.Errorf("compress=%v encrypt=%v: opened %s, want %s", g.compress, g.encrypt, got, goldenBody)
		}
		if !g.encrypt {
			continue
		}
		// Bound to its slot: another kind, slice or job does not open it.
		if _, err := Open(c, Failed, 3, sealed); !errors.Is(err, encryption.ErrCorrupt) {
			t.Errorf("opened as failed records: %v", err)
		}
		if _, err := Open(c, Output, 4, sealed); !errors.Is(err, encryption.ErrCorrupt) {
			t.Errorf("opened as slice 4: %v", err)
		}
		other := codec(t, "65a1b2c3d4e5f60718293a4c", ring, g.compress, g.encrypt)
		if _, err := Open(other, Output, 3, sealed); !errors.Is(err, encryption.ErrCorrupt) {
			t.Errorf("opened for another job: %v", err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	var body []byte
	for range 50 {
		body = Append(body, []byte("secret-record-0123456789"))
	}
	ring := newKeyring(t)
	for _, tc := range []struct {
		name              string
		compress, encrypt bool
	}{
		{"plain", false, false},
		{"compressed", true, false},
		{"encrypted", false, true},
		{"compressed and encrypted", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := codec(t, goldenJob, ring, tc.compress, tc.encrypt)
			for _, kind := range []Kind{Input, Output, Failed, Header} {
				sealed, err := Seal(c, kind, 7, body)
				if err != nil {
					t.Fatal(err)
				}
				if tc.encrypt && bytes.Contains(sealed, []byte("secret-record")) {
					t.Fatalf("%s: plaintext in the sealed slice", kind)
				}
				if tc.compress && len(sealed) >= len(body) {
					t.Errorf("%s: %d bytes sealed from %d: not compressed", kind, len(sealed), len(body))
				}
				if !tc.compress && !tc.encrypt && !bytes.Equal(sealed, body) {
					t.Errorf("%s: a plain codec changed the body", kind)
				}
				plain, err := Open(c, kind, 7, sealed)
				if err != nil || !bytes.Equal(plain, body) {
					t.Fatalf("%s: open = %d bytes, %v", kind, len(plain), err)
				}
			}
		})
	}
}

// ring parses a keyring of "id:fill" keys, each 32 bytes of fill.
func ring(t *testing.T, keys ...string) *encryption.Keyring {
	t.Helper()
	var spec []string
	for _, k := range keys {
		id, fill := k[:len(k)-2], k[len(k)-1]
		spec = append(spec, id+":"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, encryption.KeySize)))
	}
	r, err := encryption.ParseKeyring(strings.Join(spec, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenWithWrongKeyOrTampered(t *testing.T) {
	body := Append(nil, []byte("record"))
	c := codec(t, goldenJob, ring(t, "a:1"), true, true)
	sealed, err := Seal(c, Input, 1, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(codec(t, goldenJob, ring(t, "b:2"), true, true), Input, 1, sealed); !errors.Is(err, encryption.ErrNoKey) {
		t.Errorf("open without the key: %v, want ErrNoKey", err)
	}
	if _, err := Open(codec(t, goldenJob, ring(t, "a:3"), true, true), Input, 1, sealed); !errors.Is(err, encryption.ErrCorrupt) {
		t.Errorf("open with another key of the same id: %v, want ErrCorrupt", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := Open(c, Input, 1, tampered); !errors.Is(err, encryption.ErrCorrupt) {
		t.Errorf("open tampered: %v, want ErrCorrupt", err)
	}
	// Rewrap moves the slice to the current key, in the same slot.
	rewrapped, err := Rewrap(codec(t, goldenJob, ring(t, "b:2", "a:1"), true, true), Input, 1, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if id := encryption.KeyID(rewrapped); id != "b" {
		t.Errorf("rewrapped under key %q, want b", id)
	}
	plain, err := Open(codec(t, goldenJob, ring(t, "b:2"), true, true), Input, 1, rewrapped)
	if err != nil || !bytes.Equal(plain, body) {
		t.Errorf("open rewrapped: %q, %v", plain, err)
	}
}
