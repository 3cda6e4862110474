package embedded

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/rocketjob-go/rocketjob/internal/netaddr"
)

// The embedded database (FerretDB v1.24.2 on SQLite) cannot check user names
// and passwords: its SQLite backend has no users, and the experimental SCRAM
// authentication is a test option that the embeddable ferretdb package does
// not expose. What it can check is a client certificate: with a TLS listener
// and a CA file, FerretDB requires and verifies one on every connection
// (tls.RequireAndVerifyClientCert). So the database listens off the
// loopback interface only with client certificates, or when the operator
// says explicitly that anyone who can reach the port may use it.

// ErrInsecureListen is wrapped by the error Start returns when Listen is not
// a loopback address, no client certificates are required (TLS.CAFile) and
// InsecureListen is not set.
var ErrInsecureListen = errors.New("refusing to listen off the loopback interface without client authentication")

// TLS configures the database's TLS listener.
type TLS struct {
	// CertFile and KeyFile are the server's PEM certificate and key. Required.
	CertFile, KeyFile string
	// CAFile holds the PEM certificates of the authorities whose client
	// certificates are accepted. When set, every client must present a
	// certificate signed by one of them; when empty, connections are
	// encrypted but anyone may connect.
	CAFile string
}

// ClientAuth reports whether t makes clients authenticate (a CA file is set).
func (t *TLS) ClientAuth() bool { return t != nil && t.CAFile != "" }

// IsLoopback reports whether the listen address host:port binds only the
// loopback interface: "localhost" or a loopback IP. An empty host, a
// wildcard address or any other name or address is not loopback.
func IsLoopback(addr string) bool { return netaddr.IsLoopback(addr) }

// CheckListen returns an error wrapping ErrInsecureListen when listen is not
// a loopback address and clients would not have to authenticate.
func CheckListen(listen string, t *TLS) error {
	if IsLoopback(listen) || t.ClientAuth() {
		return nil
	}
	return fmt.Errorf("listen %s: %w", listen, ErrInsecureListen)
}

// check loads the files of t, so that a bad file is a clear error before
// FerretDB starts (it leaks its backend when its listener fails).
func (t *TLS) check() error {
	if t.CertFile == "" || t.KeyFile == "" {
		return errors.New("TLS needs both a certificate file and a key file")
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %s", t.CertFile, t.KeyFile, clean(err))
	}
	if t.CAFile == "" {
		return nil
	}
	b, err := os.ReadFile(t.CAFile)
	if err != nil {
		return fmt.Errorf("TLS CA file: %s", clean(err))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("TLS CA file %s: no PEM certificate in it", t.CAFile)
	}
	return nil
}
