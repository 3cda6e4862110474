package encryption

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func keyring(t testing.TB, n int) (*Keyring, []string) {
	t.Helper()
	var keys []string
	for range n {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	kr, err := ParseKeyring(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

func TestSealOpenEveryMode(t *testing.T) {
	kr, _ := keyring(t, 1)
	plain := bytes.Repeat([]byte("4111 1111 1111 1111,John Smith\n"), 200)
	for _, mode := range []struct{ compress, encrypt bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		c, err := NewCodec("job1", kr, mode.compress, mode.encrypt)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := c.Seal(plain, "input", "000000001")
		if err != nil {
			t.Fatal(err)
		}
		if mode.encrypt && bytes.Contains(sealed, []byte("4111")) {
			t.Fatalf("%+v: plaintext visible in sealed slice", mode)
		}
		if mode.compress && len(sealed) >= len(plain)/4 {
			t.Fatalf("%+v: %d bytes sealed from %d: not compressed", mode, len(sealed), len(plain))
		}
		got, err := c.Open(sealed, "input", "000000001")
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%+v: open: %v, equal %v", mode, err, bytes.Equal(got, plain))
		}
	}
}

func TestNoncesAreFresh(t *testing.T) {
	kr, _ := keyring(t, 1)
	c, _ := NewCodec("job1", kr, false, true)
	a, _ := c.Seal([]byte("same"), "input", "1")
	b, _ := c.Seal([]byte("same"), "input", "1")
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same bytes are identical: nonce reused")
	}
}

func TestTamperingIsDetected(t *testing.T) {
	kr, _ := keyring(t, 1)
	c, _ := NewCodec("job1", kr, true, true)
	other, _ := NewCodec("job2", kr, true, true)
	s1, _ := c.Seal([]byte("slice one"), "input", "000000001")
	s2, _ := c.Seal([]byte("slice two"), "input", "000000002")
	cases := map[string]func() error{
		"flipped byte": func() error {
			for i := range s1 {
				b := bytes.Clone(s1)
				b[i] ^= 0x40
				if _, err := c.Open(b, "input", "000000001"); err == nil {
					return fmt.Errorf("flip at byte %d not detected", i)
				}
			}
			return nil
		},
		"swapped slices":   func() error { _, err := c.Open(s2, "input", "000000001"); return want(err) },
		"other collection": func() error { _, err := c.Open(s1, "output", "000000001"); return want(err) },
		"other job":        func() error { _, err := other.Open(s1, "input", "000000001"); return want(err) },
		"truncated": func() error {
			for n := range len(s1) {
				if _, err := c.Open(s1[:n], "input", "000000001"); err == nil {
					return fmt.Errorf("truncation to %d bytes not detected", n)
				}
			}
			return nil
		},
	}
	for name, check := range cases {
		if err := check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func want(err error) error {
	if !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("err = %v, want ErrCorrupt", err)
	}
	return nil
}

func TestRotation(t *testing.T) {
	_, keys := keyring(t, 2)
	old, _ := ParseKeyring(keys[0])
	rotated, _ := ParseKeyring(keys[1] + "," + keys[0]) // new key writes, old still reads
	newOnly, _ := ParseKeyring(keys[1])
	c1, _ := NewCodec("job", old, false, true)
	sealed, _ := c1.Seal([]byte("secret"), "input", "1")

	c2, _ := NewCodec("job", rotated, false, true)
	if got, err := c2.Open(sealed, "input", "1"); err != nil || string(got) != "secret" {
		t.Fatalf("old slice under rotated keyring: %q %v", got, err)
	}
	rewrapped, err := c2.Rewrap(sealed, "input", "1")
	if err != nil || KeyID(rewrapped) != rotated.Current() {
		t.Fatalf("rewrap: key %q, %v", KeyID(rewrapped), err)
	}
	c3, _ := NewCodec("job", newOnly, false, true)
	if _, err := c3.Open(sealed, "input", "1"); !errors.Is(err, ErrNoKey) || strings.Contains(err.Error(), keys[0][strings.Index(keys[0], ":")+1:]) {
		t.Fatalf("old slice without the old key: %v", err)
	}
	if got, err := c3.Open(rewrapped, "input", "1"); err != nil || string(got) != "secret" {
		t.Fatalf("rewrapped slice without the old key: %q %v", got, err)
	}
}

func TestDecompressionBombIsRefused(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, MaxDecodedSize+1<<20), nil)
	c, _ := NewCodec("job", nil, true, false)
	if _, err := c.Open(append([]byte{version, flagCompressed}, bomb...), "input", "1"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bomb: %v", err)
	}
}

func TestKeyringNeverShowsKeys(t *testing.T) {
	kr, keys := keyring(t, 2)
	secret := keys[0][strings.Index(keys[0], ":")+1:]
	for _, s := range []string{kr.String(), fmt.Sprintf("%v %+v %#v", kr, kr, kr)} {
		if strings.Contains(s, secret) {
			t.Fatalf("key material in %q", s)
		}
	}
	if _, err := ParseKeyring("k1:" + secret[:10]); err == nil || strings.Contains(err.Error(), secret[:10]) {
		t.Fatalf("bad key error shows material or is nil: %v", err)
	}
}

func TestKeyFileMode(t *testing.T) {
	_, keys := keyring(t, 1)
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# rocketjob keys\n"+keys[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := LoadKeyring(path)
	if err != nil || !kr.Has(strings.SplitN(keys[0], ":", 2)[0]) {
		t.Fatalf("key file: %v %v", kr, err)
	}
}

func TestEncryptWithoutKeyring(t *testing.T) {
	if _, err := NewCodec("job", nil, false, true); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	kr, _ := keyring(f, 1)
	c, _ := NewCodec("job", kr, true, true)
	good, _ := c.Seal([]byte("hello hello hello"), "input", "1")
	f.Add(good)
	f.Add([]byte{1, 1, 0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte{1, 2, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cc := range []*Codec{c, {jobID: "job", compress: true, aeads: c.aeads, keyring: kr}} {
			out, err := cc.Open(b, "input", "1")
			if err == nil && len(out) > MaxDecodedSize {
				t.Fatalf("opened %d bytes", len(out))
			}
		}
	})
}
