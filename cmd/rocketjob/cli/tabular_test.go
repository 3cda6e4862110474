package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

// The convert job: CSV to JSONL (one object per row keyed by the header),
// to XLSX and back by the download's file name, fixed width to PSV, and a
// mixed-line-endings copy that comes back byte for byte; bad tabular flags
// are usage errors (exit 2) with nothing stored.
func TestConvertCLI(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upDown := func(out string, flags ...string) string {
		t.Helper()
		id := strings.TrimSpace(mustRun(t, append(append(g, "upload"), flags...)...).stdout)
		mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
		dest := filepath.Join(dir, out)
		mustRun(t, append(g, "download", id, dest)...)
		b, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	csvIn := write("in.csv", "id,name\r\n1,\"Smith, J\"\r\n2,Zoë\r\n")
	if got, want := upDown("out.jsonl", "--job", "convert", "--output-format", "jsonl", csvIn),
		"{\"id\":\"1\",\"name\":\"Smith, J\"}\r\n{\"id\":\"2\",\"name\":\"Zoë\"}\r\n"; got != want {
		t.Errorf("csv -> jsonl: %q, want %q", got, want)
	}
	xlsx := upDown("out.xlsx", "--job", "convert", "--output-format", "xlsx", csvIn)
	if !strings.HasPrefix(xlsx, "PK\x03\x04") {
		t.Fatalf("xlsx output starts %q", xlsx[:min(len(xlsx), 8)])
	}
	xlsxIn := write("back.xlsx", xlsx)
	if got, want := upDown("back.csv", "--job", "convert", xlsxIn), "id,name\n1,\"Smith, J\"\n2,Zoë\n"; got != want {
		t.Errorf("xlsx -> csv by name: %q, want %q", got, want)
	}
	fixed := write("legacy.txt", "0001Alice     \n0002Zoë       \n")
	if got, want := upDown("out.psv", "--job", "convert", "--format", "fixed", "--columns", "id,name", "--widths", "4,10", fixed),
		"id|name\n0001|Alice\n0002|Zoë\n"; got != want {
		t.Errorf("fixed -> psv: %q, want %q", got, want)
	}
	mixed := "a\r\nb\nc\r\nd\n"
	if got := upDown("mixed.txt", "--job", "copy", write("mixed.txt", mixed)); got != mixed {
		t.Errorf("mixed line endings: %q, want %q", got, mixed)
	}
	if got := upDown("pipe.csv", "--job", "convert", "--lenient-quotes", write("pipe.csv", "item,size\npipe,12\" pipe\n")); got != "item,size\npipe,\"12\"\" pipe\"\n" {
		t.Errorf("lenient: %q", got)
	}

	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--job", "convert", "--output-format", "yaml", csvIn}, "--output-format: unknown format"},
		{[]string{"--job", "convert", "--format", "fixed", "--columns", "a,b", "--widths", "4", fixed}, "2 names"},
		{[]string{"--job", "convert", "--format", "fixed", fixed}, "needs a layout"},
		{[]string{"--job", "copy", "--output-format", "csv", csvIn}, "only tabular input"},
		{[]string{"--job", "convert", write("bad.csv", "item,size\npipe,12\" pipe\n")}, `line 2: bare " in non-quoted-field (column 8) (nothing was uploaded)`},
		{[]string{"--job", "convert", "--sheet", "Nope", xlsxIn}, `no sheet "Nope"`},
	} {
		r := run(t, context.Background(), append(append(g, "upload"), tc.flags...)...)
		if r.code == 0 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", tc.flags, r.code, r.stdout)
		}
		oneErrorLine(t, r, tc.want)
	}
}

// pgpKeyFiles writes a new key pair as armored files.
func pgpKeyFiles(t *testing.T, dir, name string) (private, public string) {
	t.Helper()
	return lockedPGPKey(t, dir, name, "")
}

// lockedPGPKey writes a new key pair as armored files, the private key
// protected by passphrase (none when empty).
func lockedPGPKey(t *testing.T, dir, name, passphrase string) (private, public string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub, priv bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if passphrase != "" {
		if err := e.EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
			t.Fatal(err)
		}
	}
	w, _ = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	private, public = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for p, b := range map[string][]byte{private: priv.Bytes(), public: pub.Bytes()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return private, public
}

// A PGP-encrypted upload decrypts with its key and the download encrypts
// to a public key (gzip inside); a missing or wrong key is one line, exit
// 2, nothing stored; a .gpg download name needs --pgp-recipient.
func TestPGPFilesCLI(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	priv, pub := pgpKeyFiles(t, dir, "partner")
	otherPriv, _ := pgpKeyFiles(t, dir, "other")
	plain := "id,name\n1,Zoë\n2,\"a,b\"\n"
	in := filepath.Join(dir, "feed.csv.gz")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	if err := os.WriteFile(in, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Encrypt it with the download path's own writer: a copy job would
	// do, but the test wants the input encrypted by the library itself.
	keys, err := pgp.ReadKeys(nil, pub)
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	ew, err := keys.Encrypt(&msg, false)
	if err != nil {
		t.Fatal(err)
	}
	ew.Write(gz.Bytes())
	ew.Close()
	enc := filepath.Join(dir, "feed.csv.gz.gpg")
	if err := os.WriteFile(enc, msg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{enc}, "feed.csv.gz.gpg: it is PGP-encrypted and no private key was given: give its private key with --pgp-key KEYFILE (nothing was uploaded)"},
		{[]string{"--pgp-key", otherPriv, enc}, "none of the private keys given can decrypt it"},
		{[]string{"--pgp-key", priv, in}, "a PGP key was given but it is not PGP-encrypted"},
		{[]string{"--pgp-key", filepath.Join(dir, "nope.key"), enc}, "--pgp-key: PGP key open"},
	} {
		r := run(t, context.Background(), append(append(g, "upload", "--job", "convert"), tc.flags...)...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", tc.flags, r.code, r.stdout)
		}
		oneErrorLine(t, r, tc.want)
	}
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: g[1], DB: g[3], WorkDB: g[5], Registry: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	if jobs, err := client.List(context.Background(), nil); err != nil || len(jobs) != 0 {
		t.Fatalf("refused uploads left %d jobs (%v)", len(jobs), err)
	}

	id := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "convert", "--pgp-key", priv, enc)...).stdout)
	mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
	if r := run(t, context.Background(), append(g, "download", id, filepath.Join(dir, "out.csv.gpg"))...); r.code != ExitUsage {
		t.Errorf(".gpg without --pgp-recipient: exit %d", r.code)
	} else {
		oneErrorLine(t, r, "--pgp-recipient KEYFILE")
	}
	out := filepath.Join(dir, "out.tsv.gz.asc")
	mustRun(t, append(g, "download", "--pgp-recipient", pub, id, out)...)
	armored, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(armored, []byte("-----BEGIN PGP MESSAGE-----")) || bytes.Contains(armored, []byte("Zoë")) {
		t.Fatalf("download is not an armored message: %q", armored[:min(len(armored), 40)])
	}
	privKeys, err := pgp.ReadKeys(nil, priv)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := pgp.OpenInput(bytes.NewReader(armored), out, privKeys)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "id\tname\n1\tZoë\n2\ta,b\n"; string(got) != want {
		t.Fatalf("decrypted download %q, want %q", got, want)
	}
}
