package rocketjobweb

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// assets holds the templates and the static files (CSS, JS) of the UI.
//
//go:embed assets
var assets embed.FS

// Live refresh intervals of the pages, in milliseconds.
const (
	refreshList = 5000
	refreshJob  = 3000
)

// pageRenderer holds one template set per page (the layout plus the page).
type pageRenderer struct {
	pages   map[string]*template.Template
	version string // changes with the static files, for cache busting
}

// siteLink matches the start of a link to this site in a template: an
// href, action or src attribute whose value starts with "/".
var siteLink = regexp.MustCompile(`(\s(?:href|action|src)=")/`)

// newPageRenderer parses the templates with prefix put in front of their
// links to this site. The prefix is a validated path (letters, digits and
// - . _ ~ between slashes), inserted as template text, so html/template
// escapes the actions of each link exactly as without a prefix.
func newPageRenderer(prefix string) (*pageRenderer, error) {
	parse := func(t *template.Template, name string) (*template.Template, error) {
		src, err := assets.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if prefix != "" {
			src = siteLink.ReplaceAll(src, []byte("${1}"+prefix+"/"))
		}
		return t.Parse(string(src))
	}
	base, err := parse(template.New("layout.html").Funcs(templateFuncs), "assets/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	names, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		return nil, err
	}
	pr := &pageRenderer{pages: map[string]*template.Template{}}
	for _, name := range names {
		file := path.Base(name)
		if file == "layout.html" {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = parse(t.New(file), name)
		}
		if err != nil {
			return nil, fmt.Errorf("web templates: %s: %w", file, err)
		}
		pr.pages[strings.TrimSuffix(file, ".html")] = t
	}
	sum := sha256.New()
	for _, f := range []string{"assets/static/app.css", "assets/static/app.js"} {
		b, err := assets.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sum.Write(b)
	}
	pr.version = hex.EncodeToString(sum.Sum(nil))[:12]
	return pr, nil
}

// serveAssets serves /assets/ (the CSS and JS), cacheable: their URLs
// carry a version.
func serveAssets(w http.ResponseWriter, r *http.Request) {
	static, _ := fs.Sub(assets, "assets/static")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.StripPrefix("/assets/", http.FileServerFS(static)).ServeHTTP(w, r)
}

// pageData is what every page template gets.
type pageData struct {
	Title        string
	Nav          string
	User         string
	Role         Role
	CanAct       bool
	AuthRequired bool
	CSRF         string
	Flash        string
	FlashError   bool
	Refresh      int // live refresh interval in ms; 0: none
	Version      string
	Data         any
}

// session returns the browser session of a page request, creating an
// anonymous one (for the CSRF token) when no authentication is configured.
func (h *Handler) pageSession(w http.ResponseWriter, r *http.Request, p *principal) *session {
	if p == nil {
		return nil
	}
	if p.sess == nil && p.via == viaNone {
		p.sess = h.sessions.create("", RoleAdmin)
		h.setSessionCookie(w, r, p.sess)
	}
	return p.sess
}

// render writes page name with the common fields filled in.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, pd pageData) {
	t, ok := h.pages.pages[name]
	if !ok {
		h.fail(w, r, fmt.Errorf("no template %q", name))
		return
	}
	pd.Version = h.pages.version
	pd.AuthRequired = h.auth.required()
	if p := principalFrom(r); p != nil {
		pd.User, pd.Role, pd.CanAct = p.Name, p.Role, p.canAct()
		if sess := h.pageSession(w, r, p); sess != nil {
			pd.CSRF = sess.csrf
			// A live refresh must not eat the message meant for the next page.
			if r.Header.Get("X-Live-Refresh") == "" {
				if f := sess.takeFlash(); f != "" {
					pd.FlashError = strings.HasPrefix(f, "!")
					pd.Flash = strings.TrimPrefix(f, "!")
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		h.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, "internal error (request "+requestIDFrom(r)+")", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows an error to a browser.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, e *apiError) {
	h.render(w, r, e.Status, "error", pageData{Title: http.StatusText(e.Status), Data: e})
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "login", pageData{Title: "Sign in", Data: map[string]any{
		"Error": msg, "Next": safeNext(r.FormValue("next")), "Token": h.auth.token != "", "Users": h.auth.users != nil,
	}})
}

// flash keeps a message for the next page of this browser ("!" marks an error).
func flash(r *http.Request, msg string, isErr bool) {
	p := principalFrom(r)
	if p == nil || p.sess == nil {
		return
	}
	if isErr {
		msg = "!" + msg
	}
	p.sess.setFlash(msg)
}

// jobRow is a job in a list, with its progress from the job document (and
// the last sample of a running job).
type jobRow struct {
	jobJSON
	Created time.Time
}

func (h *Handler) jobRows(jobs []rocketjob.Job) []jobRow {
	sampled := h.stats.sampledCounts()
	rows := make([]jobRow, 0, len(jobs))
	for i := range jobs {
		var cp *counts
		if c, ok := sampled[jobs[i].ID]; ok {
			cp = &c
		}
		rows = append(rows, jobRow{jobJSON: newJobJSON(h.prefix, &jobs[i], nil, cp), Created: jobs[i].CreatedAt})
	}
	return rows
}

// stateCount is one tile of the dashboard.
type stateCount struct {
	State string
	N     int64
}

// chart is the records/s sparkline of the dashboard.
type chart struct {
	Points string // SVG polyline points in a 600x120 box
	Max    float64
	Last   float64
	Span   string
	Empty  bool
}

func newChart(points []ratePoint, window time.Duration) chart {
	c := chart{Span: humanDuration(window), Empty: len(points) < 2}
	if c.Empty {
		return c
	}
	now := time.Now()
	for _, p := range points {
		c.Max = max(c.Max, float64(p.Processed)/p.Seconds)
	}
	scale := c.Max
	if scale == 0 {
		scale = 1
	}
	var b strings.Builder
	for _, p := range points {
		x := 600 * (1 - now.Sub(p.At).Seconds()/window.Seconds())
		y := 115 - 105*(float64(p.Processed)/p.Seconds)/scale
		fmt.Fprintf(&b, "%.1f,%.1f ", max(0, x), y)
	}
	last := points[len(points)-1]
	c.Last = float64(last.Processed) / last.Seconds
	c.Points = strings.TrimSpace(b.String())
	return c
}

// dashboardPage: GET /.
func (h *Handler) dashboardPage(w http.ResponseWriter, r *http.Request) {
	snap, err := h.stats.get(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var states []stateCount
	for _, st := range allStates {
		states = append(states, stateCount{State: string(st), N: snap.Counts[st]})
	}
	var running []rocketjob.Job
	for _, j := range snap.Jobs {
		if j.State == rocketjob.StateRunning && len(running) < 10 {
			running = append(running, j)
		}
	}
	workers, busy := 0, 0
	for _, s := range snap.Servers {
		workers += s.Workers
		busy += s.Busy
	}
	data := map[string]any{
		"States":     states,
		"Total":      len(snap.Jobs),
		"Rate":       h.stats.tp.rate(rateWindow),
		"Chart":      newChart(h.stats.tp.history(historyWindow), historyWindow),
		"Servers":    serverRows(snap.Servers),
		"Workers":    workers,
		"Busy":       busy,
		"Running":    h.jobRows(running),
		"ComputedAt": snap.At,
		"Interval":   humanDuration(h.cfg.SampleInterval),
	}
	if j := snap.OldestQueued; j != nil {
		data["Oldest"] = map[string]any{"ID": j.ID.Hex(), "Type": j.Type, "Priority": j.Priority, "Description": j.Description, "Since": waitingSince(j)}
	}
	h.render(w, r, http.StatusOK, "dashboard", pageData{Title: "Dashboard", Nav: "dashboard", Refresh: refreshList, Data: data})
}

// jobsPage: GET /jobs?state=&type=&q=&order=&page=.
func (h *Handler) jobsPage(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), 25)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if q.Q != "" && q.Page == 1 && len(q.States) == 0 && q.Type == "" {
		if _, err := rocketjob.ParseID(q.Q); err == nil {
			if _, err := h.client.Get(r.Context(), q.Q); err == nil {
				http.Redirect(w, r, h.path("/jobs/"+q.Q), http.StatusSeeOther)
				return
			}
		}
	}
	jobs, more, err := h.listJobs(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	types := h.client.Registry().Names()
	if snap := h.stats.latest(); snap != nil {
		for t := range snap.ByType {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		slices.Sort(types)
	}
	state := ""
	if len(q.States) > 0 {
		var names []string
		for _, s := range q.States {
			names = append(names, string(s))
		}
		state = strings.Join(names, ",")
	}
	pageURL := func(page int) string {
		v := url.Values{}
		if state != "" {
			v.Set("state", state)
		}
		if q.Type != "" {
			v.Set("type", q.Type)
		}
		if q.Q != "" {
			v.Set("q", q.Q)
		}
		if q.Newest {
			v.Set("order", "newest")
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return h.path("/jobs")
		}
		return h.path("/jobs?" + v.Encode())
	}
	data := map[string]any{
		"Rows": h.jobRows(jobs), "State": state, "Type": q.Type, "Q": q.Q, "Page": q.Page, "Newest": q.Newest,
		"States": allStates, "Types": types,
	}
	if q.Page > 1 {
		data["Prev"] = pageURL(q.Page - 1)
	}
	if more {
		data["Next"] = pageURL(q.Page + 1)
	}
	h.render(w, r, http.StatusOK, "jobs", pageData{Title: "Jobs", Nav: "jobs", Refresh: refreshList, Data: data})
}

// jobPage: GET /jobs/{id}: progress, timings, options, params, failure,
// the first failed records and the actions.
func (h *Handler) jobPage(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	job, p, err := h.jobWithProgress(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := newJobJSON(h.prefix, job, p, nil)
	data := map[string]any{
		"Job":         v,
		"Live":        job.State.Live(),
		"CanPause":    job.State == rocketjob.StateQueued || job.State == rocketjob.StateRunning && job.Kind == rocketjob.KindSliced,
		"CanResume":   job.State == rocketjob.StatePaused,
		"CanAbort":    job.State.Live(),
		"CanRetry":    job.State == rocketjob.StateFailed,
		"CanRunNow":   job.State == rocketjob.StateQueued && job.RunAt.After(time.Now()),
		"CanEdit":     job.State == rocketjob.StateQueued || job.State == rocketjob.StateRunning,
		"CanDownload": downloadable(job) == nil,
		"Sliced":      job.Kind == rocketjob.KindSliced,
	}
	if len(v.Params) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, v.Params, "", "  ") == nil {
			data["Params"] = pretty.String()
		}
	}
	if job.Kind == rocketjob.KindSliced && v.Progress.Failed > 0 {
		list, more, err := h.failedRecords(r.Context(), job, 0, 20)
		if err != nil {
			data["FailuresError"] = classify(err, requestIDFrom(r)).Message
		}
		data["Failures"], data["MoreFailures"] = list, more
	}
	refresh := refreshJob
	if job.State == rocketjob.StateCompleted || job.State == rocketjob.StateAborted {
		refresh = 0
	}
	h.render(w, r, http.StatusOK, "job", pageData{Title: "Job " + id, Nav: "jobs", Refresh: refresh, Data: data})
}

// jobActionForm: POST /jobs/{id}/{action} from the job page's forms.
func (h *Handler) jobActionForm(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	action := r.PathValue("action")
	job, err := h.doJobAction(r, id, action)
	if err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status == http.StatusNotFound || e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		flash(r, e.Message, true)
		http.Redirect(w, r, h.path("/jobs/"+id), http.StatusSeeOther)
		return
	}
	h.stats.invalidate()
	h.log.Info("job changed", "job", id, "action", action, "user", principalFrom(r).Name)
	switch action {
	case "destroy":
		flash(r, "Job "+id+" destroyed.", false)
		http.Redirect(w, r, h.path("/jobs"), http.StatusSeeOther)
		return
	case "priority":
		flash(r, fmt.Sprintf("Priority set to %d.", job.Priority), false)
	case "edit":
		flash(r, "Job edited.", false)
	case "run-now":
		flash(r, "Job is due now.", false)
	default:
		flash(r, "Job is "+string(job.State)+".", false)
	}
	http.Redirect(w, r, h.path("/jobs/"+id), http.StatusSeeOther)
}

// uploadPage: GET /upload.
func (h *Handler) uploadPage(w http.ResponseWriter, r *http.Request) {
	h.renderUpload(w, r, http.StatusOK, &uploadParams{Type: r.URL.Query().Get("type")}, "")
}

func (h *Handler) renderUpload(w http.ResponseWriter, r *http.Request, status int, u *uploadParams, msg string) {
	var types []typeJSON
	for _, t := range h.types() {
		if t.Kind == string(rocketjob.KindSliced) {
			types = append(types, t)
		}
	}
	h.render(w, r, status, "upload", pageData{Title: "Upload", Nav: "upload", Data: map[string]any{
		"Types": types, "Form": u, "Error": msg, "MaxUpload": humanBytes(h.cfg.MaxUpload),
		"Formats": []string{"lines", "csv", "psv", "tsv", "fixed", "xlsx", "jsonl"}, "OutputFormats": []string{"csv", "psv", "tsv", "jsonl", "xlsx"}, "HasKeys": h.client.Keyring() != nil,
	}})
}

// uploadForm: POST /upload, the upload page's form (streamed).
func (h *Handler) uploadForm(w http.ResponseWriter, r *http.Request) {
	job, u, err := h.createJob(w, r, principalFrom(r))
	if err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status == http.StatusForbidden || e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		h.renderUpload(w, r, e.Status, u, e.Message)
		return
	}
	h.stats.invalidate()
	h.log.Info("job uploaded", "job", job.ID.Hex(), "type", job.Type, "records", job.RecordCount, "user", principalFrom(r).Name)
	flash(r, fmt.Sprintf("Uploaded %s records into job %s.", commas(job.RecordCount), job.ID.Hex()), false)
	http.Redirect(w, r, h.path("/jobs/"+job.ID.Hex()), http.StatusSeeOther)
}

// serverRow is a server on the servers page.
type serverRow struct {
	rocketjob.Server
	Age   time.Duration
	Stale bool // no heartbeat for 30 s: probably dead
}

func serverRows(list []rocketjob.Server) []serverRow {
	rows := make([]serverRow, 0, len(list))
	for _, s := range list {
		age := max(0, time.Since(s.HeartbeatAt))
		rows = append(rows, serverRow{Server: s, Age: age, Stale: age > 30*time.Second})
	}
	return rows
}

// serversPage: GET /servers.
func (h *Handler) serversPage(w http.ResponseWriter, r *http.Request) {
	list, err := h.client.Servers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "servers", pageData{Title: "Servers", Nav: "servers", Refresh: refreshList, Data: map[string]any{
		"Servers": serverRows(list),
	}})
}

// serverCommandForm: POST /servers/{name}/{command} from the servers page.
func (h *Handler) serverCommandForm(w http.ResponseWriter, r *http.Request) {
	name, command := r.PathValue("name"), r.PathValue("command")
	if err := h.sendServerCommand(r, name, command); err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		flash(r, e.Message, true)
	} else {
		target := "server " + name
		if name == "*" {
			target = "every server"
		}
		flash(r, fmt.Sprintf("Sent %s to %s: it acts at its next heartbeat.", command, target), false)
	}
	http.Redirect(w, r, h.path("/servers"), http.StatusSeeOther)
}

// templateFuncs are the helpers the templates use.
var templateFuncs = template.FuncMap{
	"ago": func(t time.Time) string { return humanDuration(time.Since(t)) + " ago" },
	"agoPtr": func(t *time.Time) string {
		return optional(t, func(t time.Time) string { return humanDuration(time.Since(t)) + " ago" })
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"whenPtr": func(t *time.Time) string {
		return optional(t, func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") })
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dur":  humanDuration,
	"secs": func(s float64) string { return humanDuration(time.Duration(s * float64(time.Second))) },
	"secsPtr": func(s *float64) string {
		return optional(s, func(s float64) string { return humanDuration(time.Duration(s * float64(time.Second))) })
	},
	"commas":   commas,
	"num":      func(f float64) string { return commas(int64(f + 0.5)) },
	"pct":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
	"bytes":    humanBytes,
	"pathEsc":  url.PathEscape,
	"queryEsc": url.QueryEscape,
	"add":      func(a, b int) int { return a + b },
	"contains": strings.Contains,
}

func optional[T any](p *T, f func(T) string) string {
	if p == nil {
		return "-"
	}
	return f(*p)
}

// humanDuration shows a duration in its two largest units: 3h 20m, 45s.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// commas writes 1234567 as 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanBytes writes a size as 1.5 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
