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
//
// Its errors never contain key material: they name a malformed entry by its
// position (entry 1 is the first key), and name an id only in the error about
// a repeated id, where the entry is otherwise well-formed. An id that is
// itself a key (id and key swapped) is refused.
func ParseKeyring(s string) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
	first := map[string]int{} // id -> entry number
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
	n := 0
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		n++
		id, b64, ok := strings.Cut(f, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("key entry %d: no ':' (want ID:BASE64, as printed by `rocketjob keys generate`)", n)
		case looksLikeKey(id):
			return nil, fmt.Errorf("key entry %d: the part before ':' is a key, not an id: are id and key swapped? (want ID:BASE64)", n)
		case id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\"'"):
			return nil, fmt.Errorf("key entry %d: the id before ':' must be 1 to 64 characters without spaces or quotes (want ID:BASE64)", n)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != KeySize {
			hint := ""
			if looksLikeKey(b64) {
				hint = " (it is in another encoding: use standard base64)"
			}
			return nil, fmt.Errorf("key entry %d: the part after ':' is not a %d-byte key in standard base64%s (want ID:BASE64)", n, KeySize, hint)
		}
		if prev, dup := first[id]; dup {
			return nil, fmt.Errorf("key entry %d: repeats the id of entry %d%s", n, prev, idLabel(id))
		}
		first[id] = n
		k.ids = append(k.ids, id)
		k.keys[id] = key
	}
	if len(k.ids) == 0 {
		return nil, ErrNoKeyring
	}
	return k, nil
}

// looksLikeKey reports whether s decodes to a key of KeySize bytes in any
// common encoding (base64, base64url, with or without padding, or hex).
func looksLikeKey(s string) bool {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return true
		}
	}
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == KeySize
}

// idLabel returns ` ("ID")` for an id short and plain enough to show in an
// error, and "" otherwise. It is only used for ids of well-formed entries.
func idLabel(id string) string {
	if len(id) > 16 {
		return ""
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return ""
		}
	}
	return fmt.Sprintf(" (%q)", id)
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
