package rocketjobweb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
	"github.com/rocketjob-go/rocketjob/sliced"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

// pgpPassphrase protects the server's test private key: it must never
// show in an answer, a log line or a job.
const pgpPassphrase = "pgp-passphrase-never-shown"

// pgpKeyPair writes a new key pair as armored files and returns their
// paths: the private key (protected by passphrase when not empty) and
// the public key.
func pgpKeyPair(t *testing.T, name, passphrase string) (private, public string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	must(t, err)
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, e.Serialize(w))
	must(t, w.Close())
	if passphrase != "" {
		must(t, e.EncryptPrivateKeys([]byte(passphrase), nil))
	}
	var priv bytes.Buffer
	w, err = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	must(t, err)
	must(t, e.SerializePrivateWithoutSigning(w, nil))
	must(t, w.Close())
	dir := t.TempDir()
	private, public = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	must(t, os.WriteFile(private, priv.Bytes(), 0o600))
	must(t, os.WriteFile(public, pub.Bytes(), 0o600))
	return private, public
}

// readKeys reads key files as the command line does.
func readKeys(t *testing.T, passphrase string, files ...string) *pgp.Keys {
	t.Helper()
	keys, err := pgp.ReadKeys([]byte(passphrase), files...)
	must(t, err)
	return keys
}

// pgpEncrypt encrypts plain to the public key file, armored or binary.
func pgpEncrypt(t *testing.T, pubFile string, plain []byte, armored bool) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := readKeys(t, "", pubFile).Encrypt(&out, armored)
	must(t, err)
	_, err = w.Write(plain)
	must(t, err)
	must(t, w.Close())
	return out.Bytes()
}

// pgpDecrypt decrypts a message with the private key file.
func pgpDecrypt(t *testing.T, privFile, passphrase string, msg []byte) []byte {
	t.Helper()
	r, err := readKeys(t, passphrase, privFile).Decrypt(bytes.NewReader(msg))
	must(t, err)
	plain, err := io.ReadAll(r)
	must(t, err)
	return plain
}

// setupPGP is setup with the PGP keys of a UI process: keys decrypt
// uploads, recipients encrypt downloads (nil: none). A server processes
// the jobs; csv_copy writes each row unchanged.
func setupPGP(t *testing.T, keys, recipients *pgp.Keys) *bundle {
	t.Helper()
	b := &bundle{reg: rocketjob.NewRegistry(), logs: &syncBuffer{}}
	must(t, examples.Register(b.reg))
	must(t, sliced.RegisterCSV(b.reg, "csv_copy", func(_ context.Context, _, row []string) ([]string, error) { return row, nil }, nil))
	jobs, work := dbtest.DBNames(t)
	b.client = newClient(t, b.reg, jobs, work)
	startServer(t, newClient(t, b.reg, jobs, work), "pgp-server")
	h, err := rocketjobweb.NewHandler(b.client, &rocketjobweb.Options{
		Listen: "127.0.0.1:0", Token: testToken, UsersFile: writeUsers(t), PGPKeys: keys, PGPRecipients: recipients,
		Logger: slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	must(t, err)
	b.h = h
	b.ts = httptest.NewServer(h)
	t.Cleanup(func() {
		b.ts.Close()
		h.Close()
		if t.Failed() {
			t.Logf("web logs:\n%s", b.logs.String())
		}
	})
	return b
}

// pgpFeed is the CSV file of the tests.
var pgpFeed = []byte("id,name,amount\n1,Zoë,10.50\n2,\"Smith, J\",7\n3,Ann,-2\n")

// output downloads the output of job id once it completed.
func (b *bundle) output(t *testing.T, id, query string) resp {
	t.Helper()
	if job := b.waitJob(t, id); job.State != rocketjob.StateCompleted {
		t.Fatalf("job %s %s: %+v", id, job.State, job.Failure)
	}
	r := b.do(t, req{method: "GET", path: "/api/jobs/" + id + "/output" + query, token: testToken})
	if r.status != http.StatusOK {
		t.Fatalf("output%s: %d %s", query, r.status, r.body)
	}
	return r
}

// A PGP-encrypted CSV file uploaded through REST (binary or armored,
// compressed inside, recognised by its name or by its first bytes) is
// decrypted as it streams in: its records are the plain file's, and the
// plain output downloads equal to the input. Plain files still upload.
// The passphrase and the key files show in no answer, log line or job.
func TestPGPUploadRoundTrip(t *testing.T) {
	priv, pub := pgpKeyPair(t, "server", pgpPassphrase)
	b := setupPGP(t, readKeys(t, pgpPassphrase, priv), nil)
	for _, c := range []struct {
		name    string
		content []byte
	}{
		{"feed.csv.gpg", pgpEncrypt(t, pub, pgpFeed, false)},
		{"feed.csv.asc", pgpEncrypt(t, pub, pgpFeed, true)},
		{"feed.csv.gz.pgp", pgpEncrypt(t, pub, gzipped(t, pgpFeed), false)},
		{"feed.csv", pgpEncrypt(t, pub, pgpFeed, false)}, // by its first bytes
		{"plain.csv", pgpFeed},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, ct := multipartBody(t, [][2]string{{"type", "csv_copy"}, {"slice_size", "2"}}, c.name, c.content)
			r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
			if r.status != http.StatusAccepted {
				t.Fatalf("upload: %d %s", r.status, r.body)
			}
			id := r.json(t)["id"].(string)
			job, err := b.client.Get(context.Background(), id)
			must(t, err)
			if job.RecordCount != 3 || job.Format != string(sliced.CSV) {
				t.Fatalf("job: %d records, format %s", job.RecordCount, job.Format)
			}
			out := b.output(t, id, "")
			if !bytes.Equal(out.body, pgpFeed) {
				t.Fatalf("output:\n%s\nwant:\n%s", out.body, pgpFeed)
			}
			show := b.get(t, "/api/jobs/"+id)
			for _, secret := range []string{pgpPassphrase, priv, filepath.Base(priv)} {
				if strings.Contains(string(r.body)+string(show.body)+b.logs.String(), secret) {
					t.Fatalf("%q shows in an answer or the logs", secret)
				}
			}
		})
	}
}

// An encrypted upload the UI process cannot open is one line of 400 and
// leaves nothing behind: no PGP key configured, a key that is not the
// recipient's, a file that is no PGP message, a tampered message (found
// only at its end, after slices were stored). The upload form answers the
// same line on its page.
func TestPGPUploadRefused(t *testing.T) {
	priv, pub := pgpKeyPair(t, "server", "")
	otherPriv, _ := pgpKeyPair(t, "other", "")
	big := lines(3000, func(i int) string { return "n" + strings.Repeat("x", i%50) })
	msg := pgpEncrypt(t, pub, append([]byte("id\n"), big...), false)
	tampered := bytes.Clone(msg)
	tampered[len(tampered)-30] ^= 1

	noKey := setupPGP(t, nil, nil)
	wrongKey := setupPGP(t, readKeys(t, "", otherPriv), nil)
	rightKey := setupPGP(t, readKeys(t, "", priv), nil)
	for _, c := range []struct {
		name     string
		b        *bundle
		filename string
		content  []byte
		code     string
		want     string
	}{
		{"no key", noKey, "feed.csv.gpg", msg, "pgp_no_key", "feed.csv.gpg: the file is PGP-encrypted and this server has no PGP private key to decrypt it (start it with --pgp-key KEYFILE); nothing was stored"},
		{"no key, armored", noKey, "feed.csv.asc", pgpEncrypt(t, pub, pgpFeed, true), "pgp_no_key", "--pgp-key"},
		{"wrong key", wrongKey, "feed.csv.gpg", msg, "pgp_wrong_key", "feed.csv.gpg: none of this server's PGP private keys can decrypt it"},
		{"wrong key, by its first bytes", wrongKey, "feed.csv", msg, "pgp_wrong_key", "none of this server's PGP private keys"},
		{"not a PGP message", rightKey, "feed.csv.gpg", []byte("id\n1\n"), "bad_input", "feed.csv.gpg: not a readable PGP message"},
		{"tampered", rightKey, "feed.csv.gpg", tampered, "bad_input", "PGP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.b
			before, collections := countJobs(t, b), sliceCollections(t, b)
			body, ct := multipartBody(t, [][2]string{{"type", "csv_copy"}, {"slice_size", "10"}}, c.filename, c.content)
			r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
			msg := errMessage(t, r)
			if r.status != http.StatusBadRequest || r.errCode(t) != c.code || !strings.Contains(msg, c.want) || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("got %d %s, want 400 %s with %q on one line", r.status, r.body, c.code, c.want)
			}
			for _, secret := range []string{priv, otherPriv, filepath.Base(otherPriv)} {
				if strings.Contains(msg, secret) {
					t.Fatalf("the answer names the key file %s", secret)
				}
			}
			if n := countJobs(t, b); n != before {
				t.Fatalf("a refused upload left a job: %d jobs before, %d after", before, n)
			}
			if after := sliceCollections(t, b); !slices.Equal(after, collections) {
				t.Fatalf("a refused upload left slices: %v before, %v after", collections, after)
			}
		})
	}

	t.Run("upload form", func(t *testing.T) {
		br := login(t, noKey, "", testToken)
		page, csrf := br.page("/upload")
		if !strings.Contains(string(page.body), ".gpg, .pgp or .asc") {
			t.Fatalf("the upload form does not mention PGP files:\n%s", page.body)
		}
		before := countJobs(t, noKey)
		body, ct := form(t, field("csrf_token", csrf), field("type", "csv_copy"), file("feed.csv.gpg", msg))
		r := noKey.do(t, req{method: "POST", path: "/upload", body: body, ctype: ct, cookie: br.cookie, header: map[string]string{"Origin": noKey.ts.URL}})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "this server has no PGP private key to decrypt it") {
			t.Fatalf("form: %d %s", r.status, r.body)
		}
		if n := countJobs(t, noKey); n != before {
			t.Fatalf("a refused form left a job: %d before, %d after", before, n)
		}
	})
}

// The upload form takes an encrypted file like REST does.
func TestPGPUploadForm(t *testing.T) {
	priv, pub := pgpKeyPair(t, "server", "")
	b := setupPGP(t, readKeys(t, "", priv), nil)
	br := login(t, b, "", testToken)
	_, csrf := br.page("/upload")
	body, ct := form(t, field("csrf_token", csrf), field("type", "csv_copy"), file("feed.csv.gz.asc", pgpEncrypt(t, pub, gzipped(t, pgpFeed), true)))
	r := b.do(t, req{method: "POST", path: "/upload", body: body, ctype: ct, cookie: br.cookie, header: map[string]string{"Origin": b.ts.URL}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/jobs/") {
		t.Fatalf("form upload: %d %s", r.status, r.body)
	}
	if out := b.output(t, strings.TrimPrefix(r.header.Get("Location"), "/jobs/"), ""); !bytes.Equal(out.body, pgpFeed) {
		t.Fatalf("output:\n%s", out.body)
	}
}

// ?pgp=1 downloads the output encrypted to the UI process's recipients
// (compressed first with ?gzip=1); without recipients it is a 400.
func TestPGPDownload(t *testing.T) {
	partnerPriv, partnerPub := pgpKeyPair(t, "partner", "")
	b := setupPGP(t, nil, readKeys(t, "", partnerPub))
	id := b.upload(t, [][2]string{{"type", "csv_copy"}}, "feed.csv", pgpFeed)

	r := b.output(t, id, "?pgp=1")
	if ct, disp := r.header.Get("Content-Type"), r.header.Get("Content-Disposition"); ct != "application/pgp-encrypted" || !strings.Contains(disp, ".csv.gpg\"") {
		t.Fatalf("pgp download: %s, %s", ct, disp)
	}
	if bytes.Contains(r.body, []byte("Zoë")) {
		t.Fatal("plaintext in the encrypted download")
	}
	if got := pgpDecrypt(t, partnerPriv, "", r.body); !bytes.Equal(got, pgpFeed) {
		t.Fatalf("decrypted download:\n%s", got)
	}

	r = b.output(t, id, "?pgp=1&gzip=1")
	if disp := r.header.Get("Content-Disposition"); !strings.Contains(disp, ".csv.gz.gpg\"") {
		t.Fatalf("pgp gzip download: %s", disp)
	}
	zr, err := gzip.NewReader(bytes.NewReader(pgpDecrypt(t, partnerPriv, "", r.body)))
	must(t, err)
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, pgpFeed) {
		t.Fatalf("decrypted gzip download: %v\n%s", err, got)
	}

	if r := b.do(t, req{method: "GET", path: "/api/jobs/" + id + "/output?pgp=1&format=json", token: testToken}); r.status != http.StatusBadRequest {
		t.Errorf("pgp with a page of records: %d %s", r.status, r.body)
	}
	plain := setupPGP(t, nil, nil)
	id = plain.upload(t, [][2]string{{"type", "csv_copy"}}, "feed.csv", pgpFeed)
	plain.waitJob(t, id)
	r = plain.do(t, req{method: "GET", path: "/api/jobs/" + id + "/output?pgp=1", token: testToken})
	if r.status != http.StatusBadRequest || r.errCode(t) != "pgp_no_recipient" || !strings.Contains(errMessage(t, r), "--pgp-recipient") {
		t.Fatalf("pgp without recipients: %d %s", r.status, r.body)
	}
}
