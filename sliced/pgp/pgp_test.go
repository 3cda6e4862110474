package pgp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/rocketjob-go/rocketjob/sliced"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// keyFiles writes a new key pair as armored files: the private key
// (protected by passphrase when not empty) and the public key.
func keyFiles(t testing.TB, dir, name string, passphrase []byte) (private, public string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	must(t, err)
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, e.Serialize(w))
	must(t, w.Close())
	if len(passphrase) > 0 {
		must(t, e.EncryptPrivateKeys(passphrase, nil))
	}
	var priv bytes.Buffer
	w, err = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	must(t, err)
	must(t, e.SerializePrivateWithoutSigning(w, nil))
	must(t, w.Close())
	private, public = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	must(t, os.WriteFile(private, priv.Bytes(), 0o600))
	must(t, os.WriteFile(public, pub.Bytes(), 0o600))
	return private, public
}

// encrypt encrypts plain to the keys of the public key file.
func encrypt(t testing.TB, pubFile string, plain []byte, armored bool) []byte {
	t.Helper()
	keys, err := ReadKeys(nil, pubFile)
	must(t, err)
	var out bytes.Buffer
	w, err := keys.Encrypt(&out, armored)
	must(t, err)
	_, err = w.Write(plain)
	must(t, err)
	must(t, w.Close())
	return out.Bytes()
}

func TestRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keyFiles(t, dir, "partner", nil)
	otherPriv, _ := keyFiles(t, dir, "other", nil)
	lockedPriv, lockedPub := keyFiles(t, dir, "locked", []byte("s3cret"))
	plain := []byte("id,name\r\n1,Zoë\r\n2,\"x\r\ny\"\r\n")
	keys, err := ReadKeys(nil, priv)
	must(t, err)

	for _, armored := range []bool{false, true} {
		msg := encrypt(t, pub, plain, armored)
		if bytes.Contains(msg, []byte("Zoë")) {
			t.Fatal("plaintext in the message")
		}
		// Recognised by its bytes, whatever the name.
		r, name, err := OpenInput(bytes.NewReader(msg), "feed.csv", keys)
		must(t, err)
		got, err := io.ReadAll(r)
		must(t, err)
		if !bytes.Equal(got, plain) || name != "feed.csv" {
			t.Fatalf("armored %v: %q as %q", armored, got, name)
		}
		// The name says the format inside.
		if _, name, err := OpenInput(bytes.NewReader(msg), "feed.psv.gz.gpg", keys); err != nil || name != "feed.psv.gz" {
			t.Fatalf("name %q, %v", name, err)
		}
	}
	msg := encrypt(t, pub, plain, false)

	// No key, a wrong key, a key for plain input: one clear error each.
	if _, _, err := OpenInput(bytes.NewReader(msg), "feed.csv.gpg", nil); !errors.Is(err, ErrNoKey) || err.Error() != "feed.csv.gpg: it is PGP-encrypted and no private key was given" {
		t.Errorf("no key: %v", err)
	}
	other, err := ReadKeys(nil, otherPriv)
	must(t, err)
	if _, _, err := OpenInput(bytes.NewReader(msg), "feed.csv.gpg", other); !errors.Is(err, ErrWrongKey) || strings.Contains(err.Error(), "\n") {
		t.Errorf("wrong key: %v", err)
	}
	if _, _, err := OpenInput(strings.NewReader("id\n1\n"), "feed.csv", keys); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("plain input with a key: %v", err)
	}
	if r, name, err := OpenInput(strings.NewReader("id\n1\n"), "feed.csv", nil); err != nil || name != "feed.csv" {
		t.Errorf("plain input: %v", err)
	} else if b, _ := io.ReadAll(r); string(b) != "id\n1\n" {
		t.Errorf("plain input read as %q", b)
	}

	// A passphrase-protected key needs its passphrase.
	if _, err := ReadKeys(nil, lockedPriv); !errors.Is(err, ErrPassphrase) {
		t.Errorf("locked key without passphrase: %v", err)
	}
	if _, err := ReadKeys([]byte("wrong"), lockedPriv); !errors.Is(err, ErrPassphrase) {
		t.Errorf("locked key with a wrong passphrase: %v", err)
	}
	locked, err := ReadKeys([]byte("s3cret"), lockedPriv)
	must(t, err)
	r, _, err := OpenInput(bytes.NewReader(encrypt(t, lockedPub, plain, true)), "x.asc", locked)
	must(t, err)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, plain) {
		t.Errorf("locked key: %q", got)
	}

	// A tampered or truncated message fails the read with an *InputError.
	for name, bad := range map[string][]byte{
		"tampered":  append(bytes.Clone(msg[:len(msg)-10]), append([]byte{msg[len(msg)-10] ^ 1}, msg[len(msg)-9:]...)...),
		"truncated": msg[:len(msg)-20],
	} {
		r, _, err := OpenInput(bytes.NewReader(bad), "x.gpg", keys)
		if err == nil {
			_, err = io.ReadAll(r)
		}
		var ie *sliced.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v (%T)", name, err, err)
		}
	}
	if _, err := ReadKeys(nil, filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing key file read")
	}
	must(t, os.WriteFile(filepath.Join(dir, "junk"), []byte("not a key"), 0o600))
	if _, err := ReadKeys(nil, filepath.Join(dir, "junk")); err == nil || !strings.Contains(err.Error(), "not an OpenPGP key") {
		t.Errorf("junk key: %v", err)
	}
}

// FuzzOpenInput checks that decrypting any bytes never panics and fails
// only with the package's errors or an *InputError.
func FuzzOpenInput(f *testing.F) {
	dir := f.TempDir()
	priv, pub := keyFiles(f, dir, "fuzz", nil)
	keys, err := ReadKeys(nil, priv)
	must(f, err)
	f.Add(encrypt(f, pub, []byte("a,b\n1,2\n"), false))
	f.Add(encrypt(f, pub, []byte("x"), true))
	f.Add([]byte("\x84\x01"))
	f.Fuzz(func(t *testing.T, x []byte) {
		r, _, err := OpenInput(bytes.NewReader(x), "x.gpg", keys)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		var ie *sliced.InputError
		if err != nil && !errors.As(err, &ie) && !errors.Is(err, ErrWrongKey) {
			t.Fatalf("error %v (%T)", err, err)
		}
	})
}

// OpenIfEncrypted decrypts what is encrypted, with keys held for every
// input, and lets plain input through where OpenInput refuses it.
func TestOpenIfEncrypted(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keyFiles(t, dir, "server", nil)
	keys, err := ReadKeys(nil, priv)
	must(t, err)
	plain := []byte("id\n1\n")
	for _, name := range []string{"feed.csv", "feed.csv.gpg"} {
		r, inner, err := OpenIfEncrypted(bytes.NewReader(encrypt(t, pub, plain, false)), name, keys)
		must(t, err)
		if got, _ := io.ReadAll(r); !bytes.Equal(got, plain) || inner != "feed.csv" {
			t.Errorf("%s: %q as %q", name, got, inner)
		}
	}
	r, inner, err := OpenIfEncrypted(bytes.NewReader(plain), "feed.csv", keys)
	must(t, err)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, plain) || inner != "feed.csv" {
		t.Errorf("plain input with keys: %q as %q", got, inner)
	}
	if _, _, err := OpenIfEncrypted(bytes.NewReader(plain), "feed.csv.gpg", nil); !errors.Is(err, ErrNoKey) {
		t.Errorf(".gpg without keys: %v", err)
	}
}
