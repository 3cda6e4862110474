package rocketjobweb

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Role is what a user may do.
type Role string

// Roles of the users file. The access token has the admin role.
const (
	// RoleAdmin may read everything and change jobs and servers.
	RoleAdmin Role = "admin"
	// RoleReadOnly may read everything (pages, API, metrics) and change nothing.
	RoleReadOnly Role = "read-only"
)

// Session settings.
const (
	sessionCookie = "rocketjob_session"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 10000
	csrfField     = "csrf_token"
	csrfHeader    = "X-CSRF-Token"
)

// Limits of failed logins. Failures are counted per credential tried (the
// user name of the users file, or a hash of the token presented), never per
// client address: behind a proxy every client has the same address, and a
// wrong token must not lock out the right one.
const (
	// loginFailures failures of one key within loginWindow lock that key
	// until the oldest of them is loginWindow old.
	loginFailures = 10
	loginWindow   = time.Minute
	// Past globalFailures failures of all keys within loginWindow, every
	// further failure is answered 429 after failDelay (at most maxHeld at
	// once): guessing slows down while correct credentials still get in.
	globalFailures = 100
	failDelay      = time.Second
	maxHeld        = 64
	// maxKeys bounds the keys remembered; when full, new keys are not
	// counted (the global limit still applies), so a flood of names cannot
	// flush a lock.
	maxKeys = 10000
)

// user is one line of the users file.
type user struct {
	name   string
	role   Role
	sha256 []byte // unsalted SHA-256 of the password, or
	bcrypt []byte // a bcrypt hash
}

// check reports whether password is the user's.
func (u *user) check(password string) bool {
	if u.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(u.bcrypt, []byte(password)) == nil
	}
	sum := sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(sum[:], u.sha256) == 1
}

// newUser checks one user: a name without spaces or ':', a role and a
// password hash (hex SHA-256 or bcrypt). Errors never show the hash.
func newUser(name, role, hash string) (*user, error) {
	if name == "" || strings.ContainsAny(name, " \t:") {
		return nil, errors.New("the user name must be non-empty without spaces")
	}
	u := &user{name: name, role: Role(role)}
	if u.role != RoleAdmin && u.role != RoleReadOnly {
		return nil, fmt.Errorf("unknown role %q (admin or read-only)", role)
	}
	switch {
	case strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, errors.New("malformed bcrypt hash")
		}
		u.bcrypt = []byte(hash)
	default:
		sum, err := hex.DecodeString(hash)
		if err != nil || len(sum) != sha256.Size {
			return nil, errors.New("the hash must be 64 hex digits (SHA-256) or a bcrypt hash")
		}
		u.sha256 = sum
	}
	return u, nil
}

// loadUsers reads a users file into users: one user per line
// "name:role:hash", where role is admin or read-only and hash is the hex
// SHA-256 of the password or a bcrypt hash ($2a$, $2b$, $2y$). Blank lines
// and lines starting with # are skipped. Errors name the line, never the
// hash.
func loadUsers(path string, users map[string]*user) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("users file %s, line %d: %s", path, n, why) }
		name, rest, ok1 := strings.Cut(line, ":")
		role, hash, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return bad("want name:role:hash")
		}
		u, err := newUser(name, role, hash)
		if err != nil {
			return bad(err.Error())
		}
		if _, dup := users[name]; dup {
			return bad(fmt.Sprintf("user %q appears twice", name))
		}
		users[name] = u
		found++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("users file %s: %w", path, err)
	}
	if found == 0 {
		return fmt.Errorf("users file %s has no users", path)
	}
	return nil
}

// authenticator checks credentials: the token (admin) and the users file.
type authenticator struct {
	token   string
	users   map[string]*user
	dummy   *user // checked for unknown users, so timing does not tell names
	limiter *loginLimiter
}

// newAuthenticator builds the checks of the token, the users and the
// users file (read now).
func newAuthenticator(token string, list []User, usersFile string) (*authenticator, error) {
	a := &authenticator{token: token, limiter: newLoginLimiter()}
	users := map[string]*user{}
	for i, lu := range list {
		u, err := newUser(lu.Name, string(lu.Role), lu.PasswordHash)
		if err != nil {
			return nil, fmt.Errorf("users[%d]: %w", i, err)
		}
		if _, dup := users[u.name]; dup {
			return nil, fmt.Errorf("users[%d]: user %q appears twice", i, u.name)
		}
		users[u.name] = u
	}
	if usersFile != "" {
		if err := loadUsers(usersFile, users); err != nil {
			return nil, err
		}
	}
	if len(users) > 0 {
		a.users = users
	}
	sum := sha256.Sum256([]byte("no such user"))
	a.dummy = &user{sha256: sum[:]}
	return a, nil
}

// required reports whether requests must authenticate.
func (a *authenticator) required() bool { return a.token != "" || a.users != nil }

func (a *authenticator) checkToken(token string) bool {
	if a.token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(a.token)) == 1
}

// checkUser returns the user whose name and password these are, or nil.
func (a *authenticator) checkUser(name, password string) *user {
	u, ok := a.users[name]
	if !ok {
		a.dummy.check(password)
		return nil
	}
	if !u.check(password) {
		return nil
	}
	return u
}

// how a request authenticated.
type via int

const (
	viaNone    via = iota // no authentication configured: everyone is admin
	viaBearer             // Authorization: Bearer TOKEN
	viaBasic              // Authorization: Basic (users file)
	viaSession            // the session cookie of a browser
)

// principal is who makes a request.
type principal struct {
	Name string
	Role Role
	via  via
	sess *session // the browser session, if any (also when no auth is configured)
	// csrfPending: a multipart form whose CSRF token the upload handler
	// checks when it reads the form's first fields.
	csrfPending bool
}

func (p *principal) canAct() bool { return p.Role == RoleAdmin }

type principalKey struct{}

// principalFrom returns the authenticated caller of a request (nil on
// public routes).
func principalFrom(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// session is a browser's login (or, without authentication, its CSRF token).
type session struct {
	id      string
	user    string
	role    Role
	csrf    string
	expires time.Time

	mu    sync.Mutex
	flash string
}

// takeFlash returns and clears the message shown once on the next page.
func (s *session) takeFlash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (s *session) setFlash(msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

// sessionStore keeps sessions in memory: a restart logs everyone out.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore() *sessionStore { return &sessionStore{m: map[string]*session{}} }

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session, pruning expired ones (and the oldest when there
// are too many).
func (s *sessionStore) create(name string, role Role) *session {
	now := time.Now()
	sess := &session{id: randomToken(), user: name, role: role, csrf: randomToken(), expires: now.Add(sessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest *session
		for id, x := range s.m {
			if now.After(x.expires) {
				delete(s.m, id)
				continue
			}
			if oldest == nil || x.expires.Before(oldest.expires) {
				oldest = x
			}
		}
		if len(s.m) >= maxSessions && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	s.m[sess.id] = sess
	return sess
}

func (s *sessionStore) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return nil
	}
	if time.Now().After(sess.expires) {
		delete(s.m, id)
		return nil
	}
	return sess
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// setSessionCookie sends the session cookie, scoped to the handler's
// prefix (so the site that mounts the handler never receives it).
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, sess *session) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: sess.id, Path: h.cookiePath(), HttpOnly: true, Secure: h.https(r),
		SameSite: http.SameSiteStrictMode, Expires: sess.expires,
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: h.cookiePath(), HttpOnly: true, Secure: h.https(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
}

// cookieSession returns the live session named by the request's cookie.
func (h *Handler) cookieSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	return h.sessions.get(c.Value)
}

// isAPI reports whether a path answers JSON (errors included).
func isAPI(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/api/") || p == "/metrics" || p == "/healthz" || p == "/readyz"
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// crossOrigin guards every state-changing request that a browser could
// send on its own (cookies, cached credentials): it is refused when it
// comes from another site (Sec-Fetch-Site, else Origin, else Referer).
var crossOrigin = http.NewCrossOriginProtection()

// sameOrigin reports whether an unsafe request comes from this site (or
// from no browser at all).
func sameOrigin(r *http.Request) bool {
	if crossOrigin.Check(r) != nil {
		return false
	}
	if r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			u, err := url.Parse(ref)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				return false
			}
		}
	}
	return true
}

// guard refuses cross-site state changes, authenticates a request,
// refuses unproven (CSRF) state changes and checks the role that level
// needs.
//
//   - Every state change (any method but GET, HEAD, OPTIONS) from another
//     site is refused, whatever the credentials: browsers say where a
//     request comes from (Sec-Fetch-Site, Origin, Referer); API clients
//     send none of these.
//   - Authorization: Bearer TOKEN is the admin token; no CSRF token needed.
//   - Authorization: Basic is a user of the users file (API clients).
//   - The session cookie is a browser login: every state change must come
//     from this site and carry the session's CSRF token (form field
//     csrf_token or header X-CSRF-Token).
//   - Without authentication configured (loopback only), everyone is admin;
//     browsers still get a session for the CSRF token.
func (h *Handler) guard(level access, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if level == public {
			next(w, r)
			return
		}
		if unsafeMethod(r.Method) && !sameOrigin(r) {
			h.fail(w, r, apiErr(http.StatusForbidden, "csrf", "cross-site request refused"))
			return
		}
		p, err := h.authenticate(r)
		if err != nil {
			h.unauthorized(w, r, err)
			return
		}
		if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
			info.user = p.Name
		}
		if unsafeMethod(r.Method) {
			if p.sess != nil && (p.via == viaSession || p.via == viaNone) {
				if err := h.checkCSRF(r, p); err != nil {
					h.fail(w, r, err)
					return
				}
			}
		}
		if level == adminAccess && !p.canAct() {
			h.fail(w, r, apiErr(http.StatusForbidden, "forbidden", "user "+p.Name+" is read-only"))
			return
		}
		// Changes name the user in job histories.
		ctx := rocketjob.ContextWithUser(context.WithValue(r.Context(), principalKey{}, p), p.Name)
		next(w, r.WithContext(ctx))
	})
}

// knownHost reports whether a request's Host names this server. Without a
// login (loopback only) a page on any web site could otherwise reach the
// UI through DNS rebinding: its own name, re-resolved to 127.0.0.1, makes
// the browser treat the UI as that site. So the UI then answers only to
// the host it listens on, "localhost" and loopback addresses (with any
// port: the port does not tell a rebinding page from a local client). With
// authentication any Host is fine: another site's page has no session.
func (h *Handler) knownHost(r *http.Request) bool {
	if h.auth.required() {
		return true
	}
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, h.listenHost) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refuseHost answers a request for an unknown Host (421 Misdirected Request).
func refuseHost(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, apiErr(http.StatusMisdirectedRequest, "bad_host",
		fmt.Sprintf("host %q is not this server: without a login the UI answers only to localhost and loopback addresses", truncate(r.Host, 100))))
}

// errUnauthenticated is a request without credentials where they are needed.
var errUnauthenticated = errors.New("authentication required")

// authenticate finds the caller of r.
func (h *Handler) authenticate(r *http.Request) (*principal, error) {
	if authz := r.Header.Get("Authorization"); authz != "" {
		scheme, cred, _ := strings.Cut(authz, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			token := strings.TrimSpace(cred)
			err := h.auth.attempt(r.Context(), tokenKey(token), func() bool { return h.auth.checkToken(token) })
			if err != nil {
				if errors.Is(err, errTooManyAttempts) {
					return nil, err
				}
				return nil, errors.New("invalid token")
			}
			return &principal{Name: "token", Role: RoleAdmin, via: viaBearer}, nil
		case strings.EqualFold(scheme, "Basic"):
			name, password, ok := r.BasicAuth()
			if !ok {
				return nil, errors.New("malformed basic credentials")
			}
			var u *user
			err := h.auth.attempt(r.Context(), userKey(name), func() bool {
				u = h.auth.checkUser(name, password)
				return u != nil
			})
			if err != nil {
				if errors.Is(err, errTooManyAttempts) {
					return nil, err
				}
				return nil, errors.New("invalid user name or password")
			}
			return &principal{Name: u.name, Role: u.role, via: viaBasic}, nil
		default:
			return nil, fmt.Errorf("unsupported authorization scheme %q (Bearer or Basic)", scheme)
		}
	}
	if sess := h.cookieSession(r); sess != nil {
		if !h.auth.required() {
			return &principal{Name: "anonymous", Role: RoleAdmin, via: viaNone, sess: sess}, nil
		}
		if sess.user != "" {
			return &principal{Name: sess.user, Role: sess.role, via: viaSession, sess: sess}, nil
		}
	}
	if !h.auth.required() {
		return &principal{Name: "anonymous", Role: RoleAdmin, via: viaNone}, nil
	}
	return nil, errUnauthenticated
}

// checkCSRF checks the session's CSRF token on a state-changing browser
// request. A multipart form's token is checked by the upload handler as it
// streams the form.
func (h *Handler) checkCSRF(r *http.Request, p *principal) error {
	token := r.Header.Get(csrfHeader)
	if token == "" {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch ct {
		case "multipart/form-data":
			p.csrfPending = true
			return nil
		case "application/x-www-form-urlencoded":
			r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				return apiErr(http.StatusBadRequest, "bad_request", "unreadable form")
			}
			token = r.PostForm.Get(csrfField)
		}
	}
	if !validCSRF(p.sess, token) {
		return apiErr(http.StatusForbidden, "csrf", "missing or wrong CSRF token: reload the page and try again")
	}
	return nil
}

func validCSRF(sess *session, token string) bool {
	return sess != nil && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// unauthorized answers a request that could not authenticate: 401 JSON for
// the API, the login page for a browser.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errTooManyAttempts) {
		h.fail(w, r, apiErr(http.StatusTooManyRequests, "too_many_attempts", "too many failed logins: wait a minute"))
		return
	}
	if isAPI(r) || r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rocketjob"`)
		msg := "authentication required: send Authorization: Bearer TOKEN (or Basic for a user of the users file)"
		if !errors.Is(err, errUnauthenticated) {
			msg = err.Error()
		}
		h.fail(w, r, apiErr(http.StatusUnauthorized, "unauthorized", msg))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A form sent after the session expired: sign in again (the form is lost).
		http.Redirect(w, r, h.path("/login"), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, h.path("/login")+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// loginKey names what a login tried: a user of the users file or a token
// (hashed, so the table never holds a token or an unbounded name).
type loginKey [sha256.Size]byte

func tokenKey(token string) loginKey { return sha256.Sum256([]byte("token\x00" + token)) }

func userKey(name string) loginKey { return sha256.Sum256([]byte("user\x00" + name)) }

var (
	errTooManyAttempts = errors.New("too many failed attempts")
	errBadCredentials  = errors.New("wrong credentials")
)

// attempt checks one credential under the login limits. A locked key is
// refused without a check (errTooManyAttempts). Otherwise check decides;
// a failure is counted and, past the global limit, held for a while and
// answered errTooManyAttempts. A correct credential is never held or
// refused because of other keys' failures.
func (a *authenticator) attempt(ctx context.Context, key loginKey, check func() bool) error {
	if !a.limiter.allow(key) {
		return errTooManyAttempts
	}
	if check() {
		return nil
	}
	if a.limiter.fail(ctx, key) {
		return errTooManyAttempts
	}
	return errBadCredentials
}

// loginLimiter counts failed logins per key and over all keys.
type loginLimiter struct {
	mu   sync.Mutex
	keys map[loginKey][]time.Time // the last loginFailures failures of each key, oldest first
	// all holds the times of the last globalFailures failures of any key,
	// a ring whose oldest entry is at next.
	all    [globalFailures]time.Time
	next   int
	held   int       // failures being held now
	pruned time.Time // when keys was last pruned (at most once a second)
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{keys: map[loginKey][]time.Time{}}
}

// allow reports whether key may try: fewer than loginFailures failures
// within loginWindow.
func (l *loginLimiter) allow(key loginKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	return len(f) < loginFailures || time.Since(f[0]) >= loginWindow
}

// fail counts a failure of key and reports whether all keys together are
// past the global limit; if so it first holds the caller for failDelay (or
// until ctx ends) unless maxHeld failures are held already.
func (l *loginLimiter) fail(ctx context.Context, key loginKey) (throttled bool) {
	l.mu.Lock()
	now := time.Now()
	f, known := l.keys[key]
	if !known && len(l.keys) >= maxKeys && now.Sub(l.pruned) >= time.Second {
		l.pruned = now
		for k, kf := range l.keys {
			if now.Sub(kf[len(kf)-1]) >= loginWindow {
				delete(l.keys, k)
			}
		}
	}
	if known || len(l.keys) < maxKeys {
		if len(f) == loginFailures {
			f = append(f[:0:0], f[1:]...)
		}
		l.keys[key] = append(f, now)
	}
	oldest := l.all[l.next]
	l.all[l.next] = now
	l.next = (l.next + 1) % globalFailures
	throttled = !oldest.IsZero() && now.Sub(oldest) < loginWindow
	hold := throttled && l.held < maxHeld
	if hold {
		l.held++
	}
	l.mu.Unlock()
	if hold {
		t := time.NewTimer(failDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		l.mu.Lock()
		l.held--
		l.mu.Unlock()
	}
	return throttled
}

// safeNext returns next if it is a path on this site, else "/". Browsers
// drop tabs and line breaks from a URL and read a backslash as a slash,
// so "/\t/evil.example" or "/\\evil.example" would lead to another host:
// control characters, spaces and backslashes are refused anywhere (in the
// path also percent-encoded), and the path must start with exactly one
// slash, also once decoded. next is a path of the handler, without its
// prefix: the redirect adds the prefix (a fixed path that starts with one
// slash and a letter, digit or - . _ ~), which keeps it on this site.
func safeNext(next string) string {
	if len(next) == 0 || next[0] != '/' || len(next) > 1 && next[1] == '/' {
		return "/"
	}
	if strings.ContainsFunc(next, unsafeInURL) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsFunc(u.Path, unsafeInURL) ||
		strings.HasPrefix(u.Path, "/login") {
		return "/"
	}
	return next
}

// unsafeInURL reports the characters a redirect target must not have, even
// percent-encoded in its path: controls, spaces and backslashes.
func unsafeInURL(c rune) bool { return c <= ' ' || c == 0x7f || c == '\\' }

// loginPage shows the login form (or goes home when no login is needed).
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if !h.auth.required() {
		http.Redirect(w, r, h.path("/"), http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, "")
}

// login checks the form and starts a session: an empty user name means the
// password is the access token.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.auth.required() {
		http.Redirect(w, r, h.path("/"), http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		h.fail(w, r, apiErr(http.StatusForbidden, "csrf", "cross-site request refused"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, r, http.StatusBadRequest, "Unreadable form.")
		return
	}
	name, password := strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")
	var sess *session
	var err error
	if name == "" {
		err = h.auth.attempt(r.Context(), tokenKey(password), func() bool { return h.auth.checkToken(password) })
		if err == nil {
			sess = h.sessions.create("token", RoleAdmin)
		}
	} else {
		var u *user
		err = h.auth.attempt(r.Context(), userKey(name), func() bool {
			u = h.auth.checkUser(name, password)
			return u != nil
		})
		if err == nil {
			sess = h.sessions.create(u.name, u.role)
		}
	}
	if errors.Is(err, errTooManyAttempts) {
		h.log.Info("login refused: too many failures", "user", name, "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins: wait a minute.")
		return
	}
	if sess == nil {
		h.log.Info("failed login", "user", name, "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusUnauthorized, "Wrong user name, password or token.")
		return
	}
	if old := h.cookieSession(r); old != nil {
		h.sessions.delete(old.id)
	}
	h.setSessionCookie(w, r, sess)
	h.log.Info("login", "user", sess.user, "role", sess.role, "remote", r.RemoteAddr)
	http.Redirect(w, r, h.path(safeNext(r.PostForm.Get("next"))), http.StatusSeeOther)
}

// logout ends the browser session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if p := principalFrom(r); p != nil && p.sess != nil {
		h.sessions.delete(p.sess.id)
	}
	h.clearSessionCookie(w, r)
	http.Redirect(w, r, h.path("/login"), http.StatusSeeOther)
}
