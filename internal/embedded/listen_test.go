package embedded_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

func TestIsLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:0": true, "127.0.0.2:27017": true, "localhost:1": true, "[::1]:0": true,
		":27017": false, "0.0.0.0:0": false, "[::]:0": false, "192.168.1.10:0": false,
		"example.com:1": false, "127.0.0.1": false, "": false,
	} {
		if got := embedded.IsLoopback(listen); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", listen, got, want)
		}
	}
}

// Off the loopback interface the database starts only with client
// certificates or InsecureListen.
func TestRefusesToListenOffLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, listen := range []string{"0.0.0.0:0", ":0"} {
		db, err := embedded.Start(ctx, embedded.Options{Dir: filepath.Join(t.TempDir(), "d"), Listen: listen})
		if err == nil {
			db.Close()
			t.Fatalf("Start on %s without client authentication succeeded", listen)
		}
		if !errors.Is(err, embedded.ErrInsecureListen) {
			t.Fatalf("Start on %s: %v, want ErrInsecureListen", listen, err)
		}
	}
	// Server TLS without a CA encrypts but lets anyone in: still refused.
	c := newCerts(t)
	_, err := embedded.Start(ctx, embedded.Options{Dir: filepath.Join(t.TempDir(), "d"), Listen: "0.0.0.0:0",
		TLS: &embedded.TLS{CertFile: c.serverCert, KeyFile: c.serverKey}})
	if !errors.Is(err, embedded.ErrInsecureListen) {
		t.Fatalf("Start on 0.0.0.0 with TLS but no CA: %v, want ErrInsecureListen", err)
	}
	db := start(t, embedded.Options{Dir: filepath.Join(t.TempDir(), "d"), Listen: "0.0.0.0:0", InsecureListen: true})
	client := connect(t, db.URI())
	defer client.Disconnect(ctx)
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("InsecureListen: ping: %v", err)
	}
}

// With a CA file, only clients with a certificate it signed get in.
func TestClientCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCerts(t)
	db := start(t, embedded.Options{Dir: filepath.Join(t.TempDir(), "d"), Listen: "0.0.0.0:0",
		TLS: &embedded.TLS{CertFile: c.serverCert, KeyFile: c.serverKey, CAFile: c.caCert}})
	if !strings.HasSuffix(db.URI(), "/?tls=true") {
		t.Fatalf("URI() = %q, want .../?tls=true", db.URI())
	}
	try := func(clientCert string) error {
		cfg := &tls.Config{RootCAs: c.pool}
		if clientCert != "" {
			pair, err := tls.LoadX509KeyPair(clientCert, clientCert)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		mc, err := mongo.Connect(options.Client().ApplyURI(db.URI()).SetTLSConfig(cfg).SetServerSelectionTimeout(3 * time.Second))
		if err != nil {
			return err
		}
		defer mc.Disconnect(ctx)
		_, err = mc.Database("t").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		return err
	}
	if err := try(c.client); err != nil {
		t.Fatalf("client with a certificate signed by the CA: %v", err)
	}
	if err := try(""); err == nil {
		t.Fatal("a client without a certificate could write")
	}
	if err := try(c.rogue); err == nil {
		t.Fatal("a client with a certificate from another CA could write")
	}
	// Plain TCP to the TLS port gets nowhere either.
	mc, err := mongo.Connect(options.Client().ApplyURI(strings.TrimSuffix(db.URI(), "?tls=true")).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	if err := mc.Ping(ctx, nil); err == nil {
		t.Fatal("a plain TCP client could ping the TLS listener")
	}
}

func TestBadTLSFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newCerts(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		tls  embedded.TLS
		want string
	}{
		{embedded.TLS{CertFile: missing, KeyFile: c.serverKey, CAFile: c.caCert}, "TLS certificate"},
		{embedded.TLS{CertFile: c.serverCert, KeyFile: c.serverKey, CAFile: missing}, "TLS CA file"},
		{embedded.TLS{CertFile: c.serverCert, KeyFile: c.serverKey, CAFile: c.serverKey}, "no PEM certificate"},
		{embedded.TLS{CertFile: c.serverCert}, "both a certificate file and a key file"},
	} {
		db, err := embedded.Start(ctx, embedded.Options{Dir: filepath.Join(t.TempDir(), "d"), TLS: &tc.tls})
		if err == nil {
			db.Close()
			t.Fatalf("Start with %+v succeeded", tc.tls)
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Start with %+v: %q, want one line with %q", tc.tls, err, tc.want)
		}
	}
}

// certs are PEM files: a CA, a server certificate for 127.0.0.1 and a client
// certificate it signed, and a client certificate of another CA.
type certs struct {
	caCert, serverCert, serverKey, client, rogue string
	pool                                         *x509.CertPool
}

func newCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "test CA")
	other, otherKey := newCA(t, "other CA")
	c := certs{caCert: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"),
		serverKey: filepath.Join(dir, "server-key.pem"), client: filepath.Join(dir, "client.pem"),
		rogue: filepath.Join(dir, "rogue.pem"), pool: x509.NewCertPool()}
	c.pool.AddCert(ca)
	writePEM(t, c.caCert, pemCert(ca.Raw))
	der, key := issue(t, ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "server"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	writePEM(t, c.serverCert, pemCert(der))
	writePEM(t, c.serverKey, pemKey(t, key))
	for path, signer := range map[string]struct {
		cert *x509.Certificate
		key  *ecdsa.PrivateKey
	}{c.client: {ca, caKey}, c.rogue: {other, otherKey}} {
		der, key := issue(t, signer.cert, signer.key, &x509.Certificate{
			Subject: pkix.Name{CommonName: "worker"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		writePEM(t, path, append(pemCert(der), pemKey(t, key)...))
	}
	return c
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func writePEM(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
