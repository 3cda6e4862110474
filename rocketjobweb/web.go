package rocketjobweb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketjob-go/rocketjob/internal/netaddr"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Defaults for Config.
const (
	// DefaultListen is the address the UI listens on when Config.Listen is empty.
	DefaultListen = "127.0.0.1:8080"
	// DefaultMaxUpload bounds the request body of an upload (1 GiB).
	DefaultMaxUpload = 1 << 30
	// DefaultSampleInterval is how often the UI process samples job counts
	// and progress for the dashboard, /api/stats and /metrics.
	DefaultSampleInterval = 5 * time.Second
	// TokenEnv is the environment variable the command line reads the
	// access token from.
	TokenEnv = "ROCKETJOB_UI_TOKEN"
)

// Config configures the web UI, the REST API and the metrics endpoint.
type Config struct {
	// Listen is the HOST:PORT the handler will be served on (default
	// DefaultListen). It is only checked: anything but a loopback address
	// needs Token or UsersFile.
	Listen string
	// Token is the access token of the admin role: API clients send it as
	// "Authorization: Bearer TOKEN"; browsers type it once on the login page.
	// Empty means no token.
	Token string
	// UsersFile names a file of users, one per line "name:role:hash" (see the
	// package documentation). Empty means no users file.
	UsersFile string
	// MaxUpload bounds the body of an upload request in bytes (default
	// DefaultMaxUpload). Uploads are streamed, never held in memory.
	MaxUpload int64
	// SampleInterval is how often the UI process samples job counts and
	// progress (records/s, /api/stats, /metrics); default
	// DefaultSampleInterval. Shorter is fresher and costs more reads.
	SampleInterval time.Duration
	// Logger receives request logs and errors; nil means slog.Default().
	Logger *slog.Logger
	// Collectors are extra metrics served on /metrics, e.g. the slice
	// latency histogram of a server running in the same process
	// (server.Server.Collectors).
	Collectors []prometheus.Collector
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
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

// Validate checks c (after filling in the defaults): a listen address of
// the form HOST:PORT, and authentication (Token or UsersFile) unless the
// address is loopback. New calls it; the command line calls it before it
// connects to the database.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: want HOST:PORT", c.Listen)
	}
	if c.MaxUpload < 0 {
		return fmt.Errorf("max upload must not be negative (got %d)", c.MaxUpload)
	}
	if c.SampleInterval < 0 {
		return errors.New("sample interval must not be negative")
	}
	if c.Token == "" && c.UsersFile == "" && !IsLoopback(c.Listen) {
		return fmt.Errorf("refusing to listen on %s without authentication: set %s or --users-file", c.Listen, TokenEnv)
	}
	return nil
}

// IsLoopback reports whether the HOST:PORT address addr only accepts
// connections from this machine (127.0.0.0/8, ::1 or "localhost"). An empty
// host (all interfaces) is not loopback.
func IsLoopback(addr string) bool { return netaddr.IsLoopback(addr) }

// Handler serves the web UI, the REST API (/api/...), /metrics, /healthz and
// /readyz. Create it with New and stop its background sampler with Close.
type Handler struct {
	client *rocketjob.Client
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux

	auth       *authenticator
	listenHost string // the host of cfg.Listen, a name the UI answers to
	sessions   *sessionStore
	pages      *pageRenderer
	stats      *statsCache
	metrics    *metrics

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// New checks cfg and returns the handler. It reads the users file (a
// malformed line is an error naming the line) and starts a background
// sampler of job counts that Close stops.
func New(client *rocketjob.Client, cfg Config) (*Handler, error) {
	if client == nil {
		return nil, errors.New("web: nil client")
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(cfg.Token, cfg.UsersFile)
	if err != nil {
		return nil, err
	}
	pages, err := newPageRenderer()
	if err != nil {
		return nil, err
	}
	listenHost, _, _ := net.SplitHostPort(cfg.Listen)
	h := &Handler{
		listenHost: listenHost,
		client:     client,
		cfg:        cfg,
		log:        cfg.Logger.With("component", "web"),
		mux:        http.NewServeMux(),
		auth:       auth,
		sessions:   newSessionStore(),
		pages:      pages,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if len(cfg.Token) > 0 && len(cfg.Token) < 16 {
		h.log.Warn("the access token is short: use at least 16 random characters (e.g. openssl rand -hex 16)")
	}
	h.stats = newStatsCache(client, cfg.SampleInterval, h.log)
	h.metrics = newMetrics(h.stats, cfg.Collectors...)
	h.routes()
	go h.sample()
	return h, nil
}

// Close stops the background sampler. The handler keeps answering requests
// (with statistics computed on demand).
func (h *Handler) Close() error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	return nil
}

// sample refreshes the statistics every SampleInterval until Close.
func (h *Handler) sample() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.SampleInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), max(h.cfg.SampleInterval, 10*time.Second))
		if _, err := h.stats.refresh(ctx); err != nil {
			h.log.Warn("sampling job statistics", "err", err)
		}
		cancel()
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
	}
}

// access levels of routes.
type access int

const (
	public      access = iota // no authentication (health checks, login, assets)
	readAccess                // any authenticated user
	adminAccess               // admin role: everything that changes something
)

// routes registers every endpoint. Page routes answer HTML (and redirect
// to the login page); /api routes answer JSON.
func (h *Handler) routes() {
	// Health, metrics and assets.
	h.handle("GET /healthz", public, h.healthz)
	h.handle("GET /readyz", public, h.readyz)
	h.handle("GET /metrics", readAccess, h.metrics.serve)
	h.handle("GET /assets/", public, serveAssets)

	// Login.
	h.handle("GET /login", public, h.loginPage)
	h.handle("POST /login", public, h.login)
	h.handle("POST /logout", readAccess, h.logout)

	// Pages.
	h.handle("GET /{$}", readAccess, h.dashboardPage)
	h.handle("GET /jobs", readAccess, h.jobsPage)
	h.handle("GET /jobs/{id}", readAccess, h.jobPage)
	h.handle("POST /jobs/{id}/{action}", adminAccess, h.jobActionForm)
	h.handle("GET /upload", readAccess, h.uploadPage)
	h.handle("POST /upload", adminAccess, h.uploadForm)
	h.handle("GET /servers", readAccess, h.serversPage)
	h.handle("POST /servers/{name}/{command}", adminAccess, h.serverCommandForm)

	// REST API.
	h.handle("GET /api/types", readAccess, h.apiTypes)
	h.handle("POST /api/jobs", adminAccess, h.apiCreateJob)
	h.handle("GET /api/jobs", readAccess, h.apiListJobs)
	h.handle("GET /api/jobs/{id}", readAccess, h.apiGetJob)
	h.handle("GET /api/jobs/{id}/output", readAccess, h.apiOutput)
	h.handle("GET /api/jobs/{id}/failures", readAccess, h.apiFailures)
	h.handle("POST /api/jobs/{id}/{action}", adminAccess, h.apiJobAction)
	h.handle("DELETE /api/jobs/{id}", adminAccess, h.apiDestroyJob)
	h.handle("GET /api/servers", readAccess, h.apiServers)
	h.handle("POST /api/servers/{name}/{command}", adminAccess, h.apiServerCommand)
	h.handle("GET /api/stats", readAccess, h.apiStats)
	h.handle("/api/", public, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, apiErr(http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	h.handle("/", public, func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, apiErr(http.StatusNotFound, "not_found", "page not found"))
	})
}

// handle registers fn under pattern behind the access check of level.
func (h *Handler) handle(pattern string, level access, fn http.HandlerFunc) {
	h.mux.Handle(pattern, h.guard(level, fn))
}

// ServeHTTP serves one request: secure headers, panic recovery, request
// log and metrics around the routes. Without authentication a request for
// another Host than this server's is refused (421), against DNS rebinding.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	id := requestID()
	info := &reqInfo{id: id}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
	setSecureHeaders(rw.Header(), r)
	rw.Header().Set("X-Request-Id", id)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				h.logRequest(r, rw, start, info)
				panic(v) // net/http aborts the response (a broken download)
			}
			h.log.Error("panic serving request", "req_id", id, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if !rw.wrote {
				writeError(rw, r, apiErr(http.StatusInternalServerError, "internal", "internal error (request "+id+")"))
			}
		}
		h.logRequest(r, rw, start, info)
	}()
	if !h.knownHost(r) {
		refuseHost(rw, r)
		return
	}
	h.mux.ServeHTTP(rw, r)
}

func (h *Handler) logRequest(r *http.Request, rw *recorder, start time.Time, info *reqInfo) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	h.metrics.observeRequest(route, r.Method, rw.status, d)
	level := slog.LevelDebug
	if r.Method != http.MethodGet && r.Method != http.MethodHead || rw.status >= 400 {
		level = slog.LevelInfo
	}
	if rw.status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "request", "req_id", info.id, "method", r.Method, "path", r.URL.Path, "route", route,
		"status", rw.status, "bytes", rw.bytes, "duration_ms", d.Milliseconds(), "user", info.user, "remote", r.RemoteAddr)
}

// setSecureHeaders sets the headers every answer carries: no framing, no
// sniffing, a strict content security policy (scripts and styles only from
// /assets), and no caching of pages or API answers.
func setSecureHeaders(hd http.Header, r *http.Request) {
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if r.TLS != nil {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		hd.Set("Cache-Control", "no-store")
	}
}

// recorder remembers the status and size of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// reqInfo is what the request log learns about a request while it is
// served (the user is known only after authentication).
type reqInfo struct {
	id   string
	user string
}

type reqInfoKey struct{}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestIDFrom(r *http.Request) string {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return info.id
	}
	return ""
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the jobs database answers within 3 seconds.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if _, err := h.client.Servers(ctx); err != nil {
		h.log.Warn("readyz: database not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Serve serves h on ln until ctx ends, then shuts down gracefully, giving
// requests in flight (downloads) up to 10 seconds. It returns nil after a
// shutdown caused by ctx.
func (h *Handler) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-errc
	return err
}
