package encryption

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// KeySize is the size of a master key: AES-256.
const KeySize = 32

// EnvKeys is the environment variable holding the keyring.
const EnvKeys = "ROCKETJOB_KEYS"

// Errors callers branch on.
var (
	// ErrNoKey: the keyring lacks the key a slice was written with.
	ErrNoKey = errors.New("key not in keyring")
	// ErrNoKeyring: encryption was asked for but no key is configured.
	ErrNoKeyring = errors.New("no encryption key configured (set " + EnvKeys + " or use a key file; `rocketjob keys generate` makes one)")
)

// Keyring holds named master keys; the first is the current (writing) key.
// Its String and Format methods never reveal key material.
type Keyring struct {
	ids  []string // in order; ids[0] is current
	keys map[string][]byte
}

// GenerateKey returns a new random key as "ID:BASE64", usable on its own as
// the value of ROCKETJOB_KEYS.
func GenerateKey() (string, error) {
	var id [4]byte
	key := make([]byte, KeySize)
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return "k" + hex.EncodeToString(id[:]) + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// ParseKeyring parses "ID:BASE64[,ID:BASE64...]" (commas or newlines between
// keys; blank lines and lines starting with # ignored). The first key is the
// current one.
func ParseKeyring(s string) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		id, b64, ok := strings.Cut(f, ":")
		if !ok || id == "" || len(id) > 64 || strings.ContainsAny(id, " \t") {
			return nil, fmt.Errorf("key %d: want ID:BASE64 (see `rocketjob keys generate`)", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("key %q: want %d bytes of base64", id, KeySize)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("key %q appears twice", id)
		}
		k.ids = append(k.ids, id)
		k.keys[id] = key
	}
	if len(k.ids) == 0 {
		return nil, ErrNoKeyring
	}
	return k, nil
}

// LoadKeyring reads the keyring from the key file at path, if path is not
// empty, else from ROCKETJOB_KEYS. It returns (nil, nil) when neither is set.
// A key file readable by group or others is refused.
func LoadKeyring(path string) (*Keyring, error) {
	if path != "" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key file %s is readable by other users (mode %04o): chmod 600 it", path, fi.Mode().Perm())
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		defer f.Close()
		var b strings.Builder
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			b.WriteString(sc.Text())
			b.WriteByte('\n')
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		k, err := ParseKeyring(b.String())
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return k, nil
	}
	v := os.Getenv(EnvKeys)
	if v == "" {
		return nil, nil
	}
	k, err := ParseKeyring(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvKeys, err)
	}
	return k, nil
}

// Current returns the id of the key that writes.
func (k *Keyring) Current() string { return k.ids[0] }

// IDs returns the key ids, current first.
func (k *Keyring) IDs() []string { return slices.Clone(k.ids) }

// Has reports whether the keyring holds the key with this id.
func (k *Keyring) Has(id string) bool {
	if k == nil {
		return false
	}
	_, ok := k.keys[id]
	return ok
}

// String names the keys, never their material.
func (k *Keyring) String() string {
	if k == nil {
		return "keyring(none)"
	}
	return "keyring(" + strings.Join(k.ids, ", ") + ")"
}

// GoString is String, so %#v does not print key material either.
func (k *Keyring) GoString() string { return k.String() }
