package encryption

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretWindow is the length of the substrings of a key's encodings that
// must never appear in an error.
const secretWindow = 8

// keyForms returns a key's encodings as they could be pasted by mistake.
func keyForms(key []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		string(key),
	}
}

// malformedEntries builds broken keyring values out of one key: swapped id
// and key, the key alone, the key split by a colon at every position, cut
// short, in the wrong encoding, quoted, repeated.
func malformedEntries(key []byte) []string {
	b64 := base64.StdEncoding.EncodeToString(key)
	url := base64.URLEncoding.EncodeToString(key)
	raw := base64.RawStdEncoding.EncodeToString(key)
	hx := hex.EncodeToString(key)
	valid := "k0:" + base64.StdEncoding.EncodeToString(make([]byte, KeySize))
	var out []string
	for _, f := range []string{b64, url, raw, hx, strings.ToUpper(hx)} {
		out = append(out,
			f,                  // the key alone
			f+":k1",            // swapped
			f+":"+f,            // key as id and key
			"k1:"+f+"AAAA",     // too long
			"k1:"+f[:len(f)-5], // cut short
			"k1:"+f[:len(f)/2]+"!"+f[len(f)/2+1:], // a bad character
			"k1 :"+f, "k 1:"+f, `"k1:`+f+`"`, `k1:"`+f+`"`, "k1="+f, "k1;"+f,
			"'"+f+"':k1",
			f+":"+"k1"+",k2:"+f,
		)
		for p := 1; p < len(f); p++ {
			out = append(out,
				f[:p]+":"+f[p:], // split by a colon
				f[:p]+":k1",     // truncated and swapped
				"k1:"+f[:p],     // truncated
			)
		}
	}
	out = append(out,
		"k1:"+url, "k1:"+raw, "k1:"+hx, // valid key, wrong encoding (url only differs when it has - or _)
		"k1:"+b64+",k1:"+b64, // repeated id
		b64+":"+b64+","+b64+":"+b64,
		"k1:"+b64+"\n# comment\n"+b64,
		"k1:"+b64+",\n,"+b64+":k2",
		"k1:"+b64+" extra",
		"k1:"+b64+":"+b64,
		":"+b64,
		strings.Repeat("x", 65)+":"+b64,
		string(key)+":k1",
		"k1:"+string(key),
	)
	// The same mistakes after a valid key, so the entry number matters.
	n := len(out)
	for _, e := range out[:n] {
		out = append(out, valid+","+e, valid+"\n"+e)
	}
	return out
}

// checkNoKey fails when msg contains any secretWindow-long substring of any
// encoding of key.
func checkNoKey(t *testing.T, input, msg string, key []byte) {
	t.Helper()
	for _, form := range keyForms(key) {
		for i := 0; i+secretWindow <= len(form); i++ {
			if w := form[i : i+secretWindow]; strings.Contains(msg, w) {
				t.Fatalf("error for %q contains key material %q:\n%s", input, w, msg)
			}
		}
	}
}

func TestMalformedKeysNeverEchoKeyMaterial(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i*37 + 11) // fixed bytes: its base64 has both cases, digits, + and /
	}
	if url := base64.URLEncoding.EncodeToString(key); url == base64.StdEncoding.EncodeToString(key) {
		t.Fatalf("test key %s has no base64 character that differs in base64url", url)
	}
	entries := malformedEntries(key)
	for _, in := range entries {
		k, err := ParseKeyring(in)
		if err == nil {
			// A split key can happen to leave a valid-looking entry; it
			// must then not hold the test key under any id.
			for _, id := range k.IDs() {
				if string(k.keys[id]) == string(key) && id != "k1" && id != "k2" {
					t.Fatalf("%q parsed into a keyring holding the key under id %q", in, id)
				}
			}
			continue
		}
		msg := err.Error()
		checkNoKey(t, in, msg, key)
		if !strings.Contains(msg, "key entry ") && err != ErrNoKeyring {
			t.Fatalf("error for %q does not name the entry: %s", in, msg)
		}
	}
	t.Logf("%d malformed keyrings, no key material in their errors", len(entries))

	// The loaders add their own context; it must not add the key either.
	t.Setenv(EnvKeys, entries[1])
	if _, err := LoadKeyring(""); err == nil {
		t.Fatalf("%s=%q loaded", EnvKeys, entries[1])
	} else {
		checkNoKey(t, entries[1], err.Error(), key)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# keys\n"+entries[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(path); err == nil {
		t.Fatalf("key file with %q loaded", entries[1])
	} else {
		checkNoKey(t, entries[1], err.Error(), key)
	}
}

func TestKeyringErrorsNameTheEntry(t *testing.T) {
	good, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, b64, _ := strings.Cut(good, ":")
	for _, c := range []struct{ in, want string }{
		{b64 + ":" + id, "key entry 1: the part before ':' is a key, not an id: are id and key swapped?"},
		{good + "\n\n# old keys\n" + b64, "key entry 2: no ':'"},
		{good + ",k2:" + b64[:20], "key entry 2: the part after ':' is not a 32-byte key in standard base64"},
		{"k2:" + hexOf(t, b64), "key entry 1: the part after ':' is not a 32-byte key in standard base64 (it is in another encoding"},
		{good + ",k2:" + b64 + "," + good, `key entry 3: repeats the id of entry 1 ("` + id + `")`},
		{"k 2:" + b64, "key entry 1: the id before ':' must be 1 to 64 characters"},
	} {
		_, err := ParseKeyring(c.in)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseKeyring: got %v, want an error starting %q", err, c.want)
		}
	}
	if k, err := ParseKeyring(good + "\n# comment\n\nk2:" + b64); err != nil || k.Current() != id || !k.Has("k2") {
		t.Errorf("a valid keyring: %v, %v", k, err)
	}
}

func hexOf(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
