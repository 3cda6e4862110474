package rocketjobweb

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketjob-go/rocketjob/internal/netaddr"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

// Defaults of Options.
const (
	// DefaultMaxUpload bounds the request body of an upload (1 GiB).
	DefaultMaxUpload = 1 << 30
	// DefaultSampleInterval is how often the handler samples job counts
	// and progress for the dashboard, /api/stats and /metrics.
	DefaultSampleInterval = 5 * time.Second
)

// ErrAuthRequired is wrapped by the error of NewHandler and
// Options.Validate when no authentication is configured (Token, Users,
// UsersFile) and Options.Listen is not a loopback address.
var ErrAuthRequired = errors.New("authentication required")

// Options configures a Handler. A nil *Options is the zero Options, which
// NewHandler refuses (ErrAuthRequired): set Token, Users or UsersFile, or
// Listen to a loopback address.
type Options struct {
	// Prefix is the path the handler is mounted at, e.g. "/rocketjob";
	// empty (the default) or "/" is the root. The handler answers the
	// paths under Prefix+"/" and strips Prefix itself: mount it as
	// mux.Handle(Prefix+"/", h), without http.StripPrefix. Links,
	// redirects, assets, the links in API answers and the session
	// cookie's path all carry Prefix. It must start with "/" and hold only
	// letters, digits and - . _ ~ / (a trailing "/" is dropped).
	Prefix string

	// Listen is the HOST:PORT of the server that serves the handler,
	// when that server listens only there. It decides one thing: without
	// authentication (no Token, Users nor UsersFile) NewHandler accepts
	// only a loopback Listen (127.0.0.0/8, ::1, localhost), and then the
	// handler answers only requests whose Host is that host, localhost or
	// a loopback address (421 otherwise, against DNS rebinding). Empty
	// (the default) means the handler cannot know where it is served, so
	// it requires authentication. Set it only when the server that mounts
	// the handler listens on that address alone: a server that also
	// accepts connections on other addresses would serve an
	// unauthenticated UI to them.
	Listen string

	// Token is the access token of the admin role: API clients send it
	// as "Authorization: Bearer TOKEN"; browsers type it once on the login
	// page. Empty means no token. Use at least 16 random characters.
	Token string

	// Users sign in with a name and password (browsers on the login page,
	// API clients with HTTP Basic). Empty means none.
	Users []User

	// UsersFile names a file of users, one per line "name:role:hash"
	// (see the package documentation), read once by NewHandler. Empty
	// means no users file. A name may not appear both here and in Users.
	UsersFile string

	// MaxUpload bounds the body of an upload request in bytes (default
	// DefaultMaxUpload). Uploads are streamed, never held in memory.
	MaxUpload int64

	// SampleInterval is how often the handler samples job counts and
	// progress (records/s, /api/stats, /metrics); default
	// DefaultSampleInterval. Shorter is fresher and costs more reads.
	SampleInterval time.Duration

	// Logger receives one line per request and the errors; nil means
	// slog.Default().
	Logger *slog.Logger

	// BehindTLSProxy says that browsers reach the handler over HTTPS
	// through a proxy that terminates TLS (the handler itself sees plain
	// HTTP): the session cookie is then marked Secure and answers carry
	// Strict-Transport-Security, as when the handler's own server speaks
	// TLS. Leave it off when browsers may reach the handler over plain
	// HTTP: a Secure cookie would never come back and sign-ins would fail.
	BehindTLSProxy bool

	// PGPKeys are the OpenPGP private keys that decrypt uploaded files
	// (REST and the upload form): a file named .gpg, .pgp or .asc, or
	// whose first bytes open an OpenPGP message, is decrypted as it
	// streams in, and the name without that ending says its format and
	// compression. Nil (the default) decrypts nothing: an upload named
	// .gpg, .pgp or .asc is then a 400 and nothing is stored. Read them
	// with pgp.ReadKeys (protected keys opened there, with their
	// passphrase); neither the keys nor the passphrase are ever shown,
	// logged or stored.
	PGPKeys *pgp.Keys

	// PGPRecipients are the OpenPGP public keys that a download of a
	// job's output asked with ?pgp=1 is encrypted to. Nil (the default)
	// refuses such a download (400).
	PGPRecipients *pgp.Keys

	// Collectors are extra metrics served on /metrics, e.g. the slice
	// latency histogram of a server running in the same process
	// (server.Server.Collectors). The handler's own metrics are in a
	// registry of its own, never the global one.
	Collectors []prometheus.Collector
}

// User is a user who signs in with a name and a password.
type User struct {
	// Name is the user name: not empty, without spaces or ':'.
	Name string
	// Role is what the user may do: RoleAdmin or RoleReadOnly.
	Role Role
	// PasswordHash is the hex SHA-256 of the password or, better, a bcrypt
	// hash ($2a$, $2b$ or $2y$). The password itself is never stored.
	PasswordHash string
}

// withDefaults returns a copy of o (nil: the zero Options) with the
// defaults filled in.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.MaxUpload == 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks o (nil is the zero Options) without reading the users
// file: the prefix, a Listen of the form HOST:PORT, the users, the limits,
// and authentication unless Listen is a loopback address (an error
// wrapping ErrAuthRequired). NewHandler calls it; call it yourself to
// refuse bad settings before connecting to the database.
func (o *Options) Validate() error {
	c := o.withDefaults()
	if err := validPrefix(c.Prefix); err != nil {
		return err
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen address %q: want HOST:PORT", c.Listen)
		}
	}
	if c.MaxUpload < 0 {
		return fmt.Errorf("max upload must not be negative (got %d)", c.MaxUpload)
	}
	if c.SampleInterval < 0 {
		return errors.New("sample interval must not be negative")
	}
	for i, u := range c.Users {
		if _, err := newUser(u.Name, string(u.Role), u.PasswordHash); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	if c.Token == "" && len(c.Users) == 0 && c.UsersFile == "" && !netaddr.IsLoopback(c.Listen) {
		if c.Listen == "" {
			return fmt.Errorf("%w: set Token, Users or UsersFile (or Listen, when the handler is served on a loopback address only)", ErrAuthRequired)
		}
		return fmt.Errorf("%w: refusing to serve on %s without Token, Users or UsersFile", ErrAuthRequired, c.Listen)
	}
	return nil
}

// validPrefix checks a prefix without its trailing slash: empty, or
// segments of letters, digits and - . _ ~ (neither "." nor "..").
func validPrefix(p string) error {
	if p == "" {
		return nil
	}
	bad := fmt.Errorf("prefix %q: want a path such as /rocketjob (letters, digits and - . _ ~ between slashes)", p)
	if !strings.HasPrefix(p, "/") {
		return bad
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad
		}
		for _, c := range seg {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)) {
				return bad
			}
		}
	}
	return nil
}
