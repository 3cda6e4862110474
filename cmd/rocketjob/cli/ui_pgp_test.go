package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

// --pgp-key and --pgp-recipient of `ui` and `server --ui`: a key file that
// cannot be used, a protected key without its passphrase, or either flag
// without --ui, is one line and exit 2 before anything connects.
func TestUIPGPKeyRefused(t *testing.T) {
	dir := t.TempDir()
	locked, _ := lockedPGPKey(t, dir, "server", "ui-pgp-secret")
	plain, _ := pgpKeyFiles(t, dir, "plain")
	t.Setenv("ROCKETJOB_UI_TOKEN", "")
	t.Setenv("ROCKETJOB_UI_USERS_FILE", "")
	t.Setenv(pgpPassphraseEnv, "")
	nowhere := []string{"--uri", "mongodb://127.0.0.1:1/"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ui", "--listen", "127.0.0.1:0", "--pgp-key", filepath.Join(dir, "nope.key")}, "--pgp-key: PGP key open"},
		{[]string{"ui", "--listen", "127.0.0.1:0", "--pgp-key", locked}, "--pgp-key: PGP key file " + locked + ": the private key is protected by a passphrase: missing or wrong (set ROCKETJOB_PGP_PASSPHRASE)"},
		{[]string{"ui", "--listen", "127.0.0.1:0", "--pgp-recipient", filepath.Join(dir, "nope.pub")}, "--pgp-recipient: PGP key open"},
		{[]string{"server", "--ui", "127.0.0.1:0", "--pgp-key", locked}, "the private key is protected by a passphrase"},
		{[]string{"server", "--pgp-key", plain}, "server: --pgp-key is a setting of the web UI: it goes with --ui"},
		{[]string{"server", "--pgp-recipient", plain}, "server: --pgp-recipient is a setting of the web UI: it goes with --ui"},
		{[]string{"server", "--ui", "127.0.0.1:0", "--pgp-recipient", filepath.Join(dir, "nope.pub")}, "--pgp-recipient: PGP key open"},
	} {
		r := run(t, context.Background(), append(nowhere, tc.args...)...)
		if r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, r.code, ExitUsage)
		}
		oneErrorLine(t, r, tc.want)
	}
}

// `rocketjob ui --pgp-key` decrypts an encrypted upload (its protected
// key opened with $ROCKETJOB_PGP_PASSPHRASE) and --pgp-recipient encrypts
// a download asked with ?pgp=1; the passphrase shows nowhere.
func TestUIPGPUpload(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	const passphrase = "ui-pgp-secret"
	priv, pub := lockedPGPKey(t, dir, "server", passphrase)
	partnerPriv, partnerPub := pgpKeyFiles(t, dir, "partner")
	t.Setenv(pgpPassphraseEnv, passphrase)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- run(t, ctx, append(g, "ui", "--listen", addr, "--pgp-key", priv, "--pgp-recipient", partnerPub, "--log-level", "debug")...)
	}()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("rocketjob ui did not answer /healthz within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	plain := []byte("id,name\n1,Zoë\n2,\"a,b\"\n")
	keys, err := pgp.ReadKeys(nil, pub)
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	ew, err := keys.Encrypt(&msg, true)
	if err != nil {
		t.Fatal(err)
	}
	ew.Write(plain)
	ew.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("type", "convert")
	fw, _ := mw.CreateFormFile("file", "feed.csv.asc")
	fw.Write(msg.Bytes())
	mw.Close()
	res, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", res.StatusCode, answer)
	}
	var created struct{ ID string }
	if err := json.Unmarshal(answer, &created); err != nil {
		t.Fatal(err)
	}
	// Wait through the API: a second command line running beside `ui`
	// would race on urfave/cli's globals (see startServer).
	deadline = time.Now().Add(60 * time.Second)
	for state := ""; state != "completed"; {
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s after 60s", created.ID, state)
		}
		time.Sleep(20 * time.Millisecond)
		res, err := http.Get(base + "/api/jobs/" + created.ID)
		if err != nil {
			t.Fatal(err)
		}
		var job struct{ State string }
		err = json.NewDecoder(res.Body).Decode(&job)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if state = job.State; state == "failed" || state == "aborted" {
			t.Fatalf("job %s %s", created.ID, state)
		}
	}

	res, err = http.Get(base + "/api/jobs/" + created.ID + "/output?pgp=1")
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/pgp-encrypted" {
		t.Fatalf("pgp download: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	partner, err := pgp.ReadKeys(nil, partnerPriv)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := partner.Decrypt(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(dec); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypted output: %v\n%s", err, got)
	}

	cancel()
	select {
	case r := <-done:
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout+string(answer), passphrase) {
			t.Fatal("the passphrase shows in the output or an answer")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rocketjob ui did not stop")
	}
}
