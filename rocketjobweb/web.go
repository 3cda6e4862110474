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

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Handler serves the web UI, the REST API (/api/...), /metrics, /healthz
// and /readyz under its prefix (Options.Prefix). Create it with NewHandler;
// it is safe for concurrent use. It samples job statistics in the
// background until Close: whoever created it calls Close once the server
// that serves it has stopped.
type Handler struct {
	client *rocketjob.Client
	cfg    Options
	log    *slog.Logger
	mux    *http.ServeMux

	auth       *authenticator
	prefix     string // Options.Prefix without its trailing slash; "" at the root
	listenHost string // the host of cfg.Listen, a name the UI answers to
	sessions   *sessionStore
	pages      *pageRenderer
	stats      *statsCache
	metrics    *metrics

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewHandler checks opts (nil: the zero Options; see Options.Validate) and
// returns the handler of client's jobs and servers. It reads the users
// file (a malformed line is an error naming the line) and starts a
// background sampler of job counts that Close stops.
func NewHandler(client *rocketjob.Client, opts *Options) (*Handler, error) {
	if client == nil {
		return nil, errors.New("rocketjobweb: nil client")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := opts.withDefaults()
	auth, err := newAuthenticator(cfg.Token, cfg.Users, cfg.UsersFile)
	if err != nil {
		return nil, err
	}
	pages, err := newPageRenderer(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	listenHost := ""
	if cfg.Listen != "" {
		listenHost, _, _ = net.SplitHostPort(cfg.Listen)
	}
	h := &Handler{
		prefix:     cfg.Prefix,
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

// Close stops the background sampler and waits for it; it is idempotent
// and always returns nil. The handler keeps answering requests (with
// statistics computed on demand), so call it after the server that serves
// the handler has stopped.
func (h *Handler) Close() error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	return nil
}

// path returns the URL path of p, a path of the handler: p under the prefix.
func (h *Handler) path(p string) string { return h.prefix + p }

// cookiePath is the path of the session cookie: the prefix, or / at the root.
func (h *Handler) cookiePath() string {
	if h.prefix == "" {
		return "/"
	}
	return h.prefix
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
	h.handle("POST /jobs/pause-all", adminAccess, h.changeAllForm("pause", (*rocketjob.Client).PauseAll))
	h.handle("POST /jobs/resume-all", adminAccess, h.changeAllForm("resume", (*rocketjob.Client).ResumeAll))
	h.handle("GET /jobs/{id}/failures", readAccess, h.failuresPage)
	h.handle("POST /jobs/{id}/failures/{record}/{action}", adminAccess, h.failureForm)
	h.handle("GET /upload", readAccess, h.uploadPage)
	h.handle("POST /upload", adminAccess, h.uploadForm)
	h.handle("GET /enqueue", readAccess, h.enqueuePage)
	h.handle("POST /enqueue", adminAccess, h.enqueueForm)
	h.handle("GET /servers", readAccess, h.serversPage)
	h.handle("POST /servers/{name}/{command}", adminAccess, h.serverCommandForm)
	h.handle("GET /dirmon", readAccess, h.dirmonPage)
	h.handle("POST /dirmon", adminAccess, h.dirmonAddForm)
	h.handle("POST /dirmon/{name}/{action}", adminAccess, h.dirmonActionForm)

	// REST API.
	h.handle("GET /api/types", readAccess, h.apiTypes)
	h.handle("POST /api/jobs", adminAccess, h.apiCreateJob)
	h.handle("GET /api/jobs", readAccess, h.apiListJobs)
	h.handle("GET /api/jobs/{id}", readAccess, h.apiGetJob)
	h.handle("GET /api/jobs/{id}/output", readAccess, h.apiOutput)
	h.handle("GET /api/jobs/{id}/failures", readAccess, h.apiFailures)
	h.handle("POST /api/jobs/pause-all", adminAccess, h.apiChangeAll((*rocketjob.Client).PauseAll))
	h.handle("POST /api/jobs/resume-all", adminAccess, h.apiChangeAll((*rocketjob.Client).ResumeAll))
	h.handle("POST /api/jobs/{id}/{action}", adminAccess, h.apiJobAction)
	h.handle("DELETE /api/jobs/{id}", adminAccess, h.apiDestroyJob)
	h.handle("GET /api/jobs/{id}/failures/{record}", readAccess, h.apiFailedRecord)
	h.handle("POST /api/jobs/{id}/failures/{record}", adminAccess, h.apiFixRecord)
	h.handle("DELETE /api/jobs/{id}/failures/{record}", adminAccess, h.apiDeleteRecord)
	h.handle("GET /api/jobs/{id}/history", readAccess, h.apiHistory)
	h.handle("GET /api/servers", readAccess, h.apiServers)
	h.handle("POST /api/servers/{name}/{command}", adminAccess, h.apiServerCommand)
	h.handle("GET /api/stats", readAccess, h.apiStats)
	h.handle("GET /api/dirmon", readAccess, h.apiDirmon)
	h.handle("POST /api/dirmon", adminAccess, h.apiAddDirmon)
	h.handle("POST /api/dirmon/{name}/{action}", adminAccess, h.apiDirmonAction)
	h.handle("DELETE /api/dirmon/{name}", adminAccess, h.apiRemoveDirmon)
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
// A path outside the prefix is answered 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: http.StatusOK, prefix: h.prefix}
	id := requestID()
	info := &reqInfo{id: id, path: r.URL.Path}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
	inside := h.stripPrefix(r)
	setSecureHeaders(rw.Header(), r, h.https(r))
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
	if !inside {
		h.outsidePrefix(rw, r)
		return
	}
	h.mux.ServeHTTP(rw, r)
}

// stripPrefix removes the prefix from the path of r (a copy of the
// caller's request, whose URL it copies) and reports whether the path was
// under the prefix.
func (h *Handler) stripPrefix(r *http.Request) bool {
	if h.prefix == "" {
		return true
	}
	p := strings.TrimPrefix(r.URL.Path, h.prefix)
	rp := strings.TrimPrefix(r.URL.RawPath, h.prefix)
	if len(p) == len(r.URL.Path) || !strings.HasPrefix(p, "/") ||
		r.URL.RawPath != "" && len(rp) == len(r.URL.RawPath) {
		return false
	}
	u := *r.URL
	u.Path, u.RawPath = p, rp
	r.URL = &u
	return true
}

// outsidePrefix answers a request for a path outside the prefix: the
// prefix itself is redirected to prefix/, anything else is not found (the
// handler was mounted at another path, or behind http.StripPrefix).
func (h *Handler) outsidePrefix(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == h.prefix && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		target := h.path("/")
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	writeError(w, r, apiErr(http.StatusNotFound, "not_found",
		"no such path: this handler serves "+h.path("/")+" (mount it there without http.StripPrefix)"))
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
	h.log.Log(r.Context(), level, "request", "req_id", info.id, "method", r.Method, "path", info.path, "route", route,
		"status", rw.status, "bytes", rw.bytes, "duration_ms", d.Milliseconds(), "user", info.user, "remote", r.RemoteAddr)
}

// https reports whether the browser reached r over HTTPS: the handler's
// server speaks TLS, or a proxy does (Options.BehindTLSProxy).
func (h *Handler) https(r *http.Request) bool {
	return r.TLS != nil || h.cfg.BehindTLSProxy
}

// setSecureHeaders sets the headers every answer carries: no framing, no
// sniffing, a strict content security policy (scripts and styles only from
// /assets), no caching of pages or API answers and, over HTTPS,
// Strict-Transport-Security.
func setSecureHeaders(hd http.Header, r *http.Request, https bool) {
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if https {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		hd.Set("Cache-Control", "no-store")
	}
}

// recorder remembers the status and size of an answer, and keeps
// redirects under the prefix.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	prefix string // the handler's prefix
}

// WriteHeader sends the header. The handler's own redirects name paths
// under the prefix already; those of its ServeMux (a path cleaned, a
// trailing slash added) name a path of the handler, which it puts under
// the prefix.
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	if r.prefix != "" && code >= 300 && code < 400 {
		hd := r.Header()
		if loc := hd.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, r.prefix+"/") {
			hd.Set("Location", r.prefix+loc)
		}
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
	path string // the path as received, prefix included
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
