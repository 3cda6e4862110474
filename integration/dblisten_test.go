package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 13: the embedded database refuses to listen off the loopback
// interface unless clients must present a certificate or the operator adds
// --insecure-listen, and then it warns on every start.
func TestEmbeddedDatabaseListenRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	for _, args := range [][]string{
		{"db", "--data", data, "--listen", ":0"},
		{"db", "--data", data, "--listen", "0.0.0.0:0"},
		{"db", "--data", data, "--listen", "[::]:0"},
		{"server", "--embedded", data, "--listen", "0.0.0.0:0"},
	} {
		r := run(t, runOpts{timeout: 30 * time.Second}, args...)
		r.expect(t, 2)
		if line := r.oneLine(t); !strings.Contains(line, "--insecure-listen") || !strings.Contains(line, "not a loopback address") {
			t.Errorf("%v: the refusal does not say why and what to do: %q", args, line)
		}
		if _, err := os.Stat(data); err == nil {
			t.Fatalf("%v: a refused start created the data folder", args)
		}
	}

	// --insecure-listen: it starts, serves, and warns on every start.
	for i := range 2 {
		db := startProc(t, dir, fmt.Sprintf("db-insecure-%d", i), baseEnv(), "db", "--data", data, "--listen", "0.0.0.0:0", "--insecure-listen")
		uri := waitURI(t, db)
		r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + uri}, timeout: 30 * time.Second}, "job", "list")
		r.expect(t, 0)
		u, _ := url.Parse(uri)
		if want := "warning: the embedded database listens on 0.0.0.0:" + u.Port() + " without authentication"; !strings.Contains(db.stderr(), want) {
			t.Errorf("start %d: no warning %q on stderr:\n%s", i+1, want, db.stderr())
		}
		db.stop(15 * time.Second)
	}

	// A loopback address needs no flag and gets no warning.
	db := startProc(t, dir, "db-loopback", baseEnv(), "db", "--data", data, "--listen", "127.0.0.1:0")
	waitURI(t, db)
	db.stop(15 * time.Second)
	if strings.Contains(db.stderr(), "warning") {
		t.Errorf("a loopback database warned:\n%s", db.stderr())
	}
}

// Issue 13: with --tls-ca the embedded database accepts only clients with a
// certificate its CA signed, and may listen on every interface.
func TestEmbeddedDatabaseClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := newPKI(t, dir)
	db := startProc(t, dir, "db-tls", baseEnv(), "db", "--data", filepath.Join(dir, "data"), "--listen", "0.0.0.0:0",
		"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-ca", pki.ca)
	uri := waitURI(t, db)
	if !strings.HasSuffix(uri, "/?tls=true") {
		t.Fatalf("the TLS database printed %q, want a URI ending /?tls=true", uri)
	}
	if strings.Contains(db.stderr(), "warning") {
		t.Errorf("a database requiring client certificates warned:\n%s", db.stderr())
	}
	withCert := uri + "&tlsCAFile=" + url.QueryEscape(pki.ca) + "&tlsCertificateKeyFile=" + url.QueryEscape(pki.client)
	r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + withCert}, timeout: 30 * time.Second}, "job", "enqueue", "nap")
	r.expect(t, 0)
	id := strings.TrimSpace(r.stdout)

	for name, u := range map[string]string{
		"no certificate":                uri + "&tlsCAFile=" + url.QueryEscape(pki.ca),
		"a certificate of another CA":   uri + "&tlsCAFile=" + url.QueryEscape(pki.ca) + "&tlsCertificateKeyFile=" + url.QueryEscape(pki.rogue),
		"plain TCP to the TLS listener": strings.TrimSuffix(uri, "?tls=true"),
	} {
		r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + u}, timeout: 60 * time.Second}, "job", "show", id)
		r.expect(t, 1)
		line := r.oneLine(t)
		if strings.Contains(line, "nap") {
			t.Errorf("%s: the job was read: %q", name, line)
		}
	}
	db.stop(15 * time.Second)
}

// waitURI waits until a `rocketjob db` process prints its URI and returns it.
func waitURI(t *testing.T, db *proc) string {
	t.Helper()
	var uri string
	eventually(t, 30*time.Second, db.name+" prints its URI", func() (bool, string) {
		if !db.running() {
			t.Fatalf("%s exited early (%s):\n%s", db.name, describeExit(db.waitErr), db.stderr())
		}
		b, _ := os.ReadFile(db.outPath)
		line, _, found := strings.Cut(string(b), "\n")
		uri = strings.TrimSpace(line)
		return found, fmt.Sprintf("stdout so far: %q", b)
	})
	return uri
}

// pki holds PEM files: a CA, a server certificate for 127.0.0.1, a client
// certificate and key signed by the CA, and one signed by another CA.
type pki struct {
	ca, serverCert, serverKey, client, rogue string
}

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	p := pki{ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server-key.pem"),
		client: filepath.Join(dir, "client.pem"), rogue: filepath.Join(dir, "rogue.pem")}
	ca, caKey := certificate(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	other, otherKey := certificate(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "other CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	server, serverKey := certificate(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "db"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	client, clientKey := certificate(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "worker"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	rogue, rogueKey := certificate(t, other, otherKey, &x509.Certificate{Subject: pkix.Name{CommonName: "intruder"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	for path, blocks := range map[string][][]byte{
		p.ca: {certPEM(ca)}, p.serverCert: {certPEM(server)}, p.serverKey: {keyPEM(t, serverKey)},
		p.client: {certPEM(client), keyPEM(t, clientKey)}, p.rogue: {certPEM(rogue), keyPEM(t, rogueKey)},
	} {
		var b []byte
		for _, blk := range blocks {
			b = append(b, blk...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// certificate creates a certificate from tmpl signed by parent (self-signed
// when parent is nil) and returns it with its new key.
func certificate(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
