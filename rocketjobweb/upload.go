package rocketjobweb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// maxFieldBytes bounds one form field or JSON string option.
const maxFieldBytes = 64 << 10

// uploadParams are the settings of a new job, from form fields, query
// parameters or a JSON body.
type uploadParams struct {
	Type        string
	Priority    int
	SliceSize   int
	Format      string
	Description string
	RunAt       time.Time
	Encrypt     *bool
	Compress    *bool
	// RequireColumns and AllowColumns are a CSV upload's own column checks
	// (sliced.UploadOptions.Columns).
	RequireColumns, AllowColumns []string
	Params                       json.RawMessage // a JSON object (JSON bodies)
	// ParamPairs are a job's parameters given as param.NAME fields or
	// query parameters ("NAME=VALUE", converted to the type's fields).
	ParamPairs []string
	// NotifyURL receives the job's end (sliced.UploadOptions.NotifyURL).
	NotifyURL string
	// The tabular options of sliced.UploadOptions: OutputFormat,
	// LenientQuotes, Columns (its Header: the names of a headerless file's
	// columns), Widths (fixed width) and Sheet (xlsx).
	OutputFormat  string
	LenientQuotes bool
	Columns       []string
	Widths        []int
	Sheet         string
	// The scheduling and throttling options (parity with the command
	// line): StopOnError, CollectOutput and MaxWorkers are a sliced job's,
	// RetryLimit and Cron a simple job's, the others both kinds'.
	StopOnError, CollectOutput *bool
	MaxWorkers                 int
	RetryLimit                 *int
	After                      []string
	ExpiresAt                  time.Time
	Window                     *rocketjob.Window
	Cron                       string
	// expiresAtText and windowText are the options as given (to show the
	// form again).
	expiresAtText, windowText string
	// runAtText is the run_at as given (to show the form again).
	runAtText string
	// given holds the options set so far: one given twice is an error,
	// so neither value is silently dropped.
	given map[string]bool
}

// set sets one option from its text. Unknown names are an error, so a
// misspelt option is not silently ignored, and so is an option given
// twice (in the query and the form, or twice in either).
func (u *uploadParams) set(name, value string) error {
	raw := value // a parameter keeps its spaces
	value = strings.TrimSpace(value)
	key := name
	if key == "job" {
		key = "type"
	}
	if pname, ok := strings.CutPrefix(name, "param."); ok && pname != "" {
		if value == "" {
			return nil // an empty form field leaves the parameter to its default
		}
		if u.given[key] {
			return badParam("parameter %q is given twice", truncate(pname, 40))
		}
		u.ParamPairs = append(u.ParamPairs, pname+"="+raw)
		return u.mark(key)
	}
	if u.given[key] {
		return badParam("option %q is given twice", truncate(name, 40))
	}
	switch name {
	case "type", "job":
		u.Type = value
	case "notify_url":
		if value != "" {
			if err := sliced.CheckNotifyURL(value); err != nil {
				return badParam("notify_url: %v", strings.TrimPrefix(err.Error(), sliced.ErrBadOptions.Error()+": "))
			}
		}
		u.NotifyURL = value
	case "priority":
		if value == "" {
			u.Priority = 0
			return nil
		}
		p, err := parsePriority(value)
		if err != nil {
			return err
		}
		u.Priority = p
	case "slice_size":
		if value == "" {
			u.SliceSize = 0
			return nil
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 100_000 {
			return badParam("slice_size must be a number from 1 to 100000 (got %q)", truncate(value, 20))
		}
		u.SliceSize = n
	case "format":
		if value != "" {
			if _, err := sliced.ParseFormat(value); err != nil {
				return badParam("format: %v", err)
			}
		}
		u.Format = value
	case "output_format":
		if value != "" {
			if _, err := sliced.ParseFormat(value); err != nil {
				return badParam("output_format: %v", err)
			}
		}
		u.OutputFormat = value
	case "lenient_quotes":
		b, err := parseBool(value)
		if err != nil {
			return badParam("%s: %v", name, err)
		}
		u.LenientQuotes = b
	case "columns", "widths":
		if name == "columns" {
			u.Columns = nil
		} else {
			u.Widths = nil
		}
		for _, n := range strings.Split(value, ",") {
			if value == "" {
				break
			}
			if strings.TrimSpace(n) == "" {
				return badParam("%s: empty entry (want A,B,...)", name)
			}
			if name == "columns" {
				u.Columns = append(u.Columns, n)
				continue
			}
			w, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil || w < 1 {
				return badParam("widths: %q is not a positive whole number", truncate(n, 20))
			}
			u.Widths = append(u.Widths, w)
		}
	case "sheet":
		u.Sheet = value
	case "description":
		if len(value) > 1000 {
			return badParam("description is longer than 1000 bytes")
		}
		u.Description = value
	case "run_at":
		u.runAtText = value
		t, err := parseRunAt(value)
		if err != nil {
			return err
		}
		u.RunAt = t
	case "encrypt", "compress":
		b, err := parseBool(value)
		if err != nil {
			return badParam("%s: %v", name, err)
		}
		if name == "encrypt" {
			u.Encrypt = &b
		} else {
			u.Compress = &b
		}
	case "stop_on_error", "collect_output":
		b, err := parseBool(value)
		if err != nil {
			return badParam("%s: %v", name, err)
		}
		if name == "stop_on_error" {
			u.StopOnError = &b
		} else {
			u.CollectOutput = &b
		}
	case "max_workers", "retry_limit":
		if value == "" {
			return nil
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return badParam("%s must be a number from 0 (got %q)", name, truncate(value, 20))
		}
		if name == "max_workers" {
			u.MaxWorkers = n
		} else {
			u.RetryLimit = &n
		}
	case "after":
		for _, id := range strings.Split(value, ",") {
			if id = strings.TrimSpace(id); id == "" {
				continue
			}
			if _, err := rocketjob.ParseID(id); err != nil {
				return badParam("after: %q is not a job id", truncate(id, 40))
			}
			u.After = append(u.After, id)
		}
	case "expires_at":
		u.expiresAtText = value
		t, err := parseWhen(name, value)
		if err != nil {
			return err
		}
		u.ExpiresAt = t
	case "window":
		u.windowText = value
		w, err := rocketjob.ParseWindow(value)
		if err != nil {
			return badParam("window: %v", err)
		}
		u.Window = w
	case "cron":
		if value != "" {
			if _, err := rocketjob.NextCronRun(value, time.Now()); err != nil {
				return badParam("cron: %v", err)
			}
		}
		u.Cron = value
	case "require_columns", "allow_columns":
		var names []string
		if value != "" {
			for _, n := range strings.Split(value, ",") {
				if strings.TrimSpace(n) == "" {
					return badParam("%s: empty column name (want NAME,NAME,...)", name)
				}
				names = append(names, n)
			}
		}
		if name == "require_columns" {
			u.RequireColumns = names
		} else {
			u.AllowColumns = names
		}
	default:
		return badParam("unknown option %q (type, priority, slice_size, format, description, run_at, expires_at, after, window, "+
			"max_workers, stop_on_error, collect_output, encrypt, compress, require_columns, allow_columns, output_format, lenient_quotes, columns, widths, sheet, notify_url, retry_limit, cron, param.NAME)", truncate(name, 40))
	}
	return u.mark(key)
}

// mark records that option key was given.
func (u *uploadParams) mark(key string) error {
	if u.given == nil {
		u.given = map[string]bool{}
	}
	u.given[key] = true
	return nil
}

// jobParams returns the parameters of u for its type, decoded and checked
// as the type says (jobparams.Encode): a JSON object (params) or
// param.NAME pairs, not both.
func (h *Handler) jobParams(u *uploadParams) (bson.Raw, error) {
	var args bson.Raw
	p := bytes.TrimSpace(u.Params)
	switch {
	case len(p) > 0 && !bytes.Equal(p, []byte("null")):
		if len(u.ParamPairs) > 0 {
			return nil, badParam("give params as a JSON object or as param.NAME fields, not both")
		}
		if p[0] != '{' {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params must be a JSON object")
		}
		var doc bson.D
		if err := bson.UnmarshalExtJSON(p, false, &doc); err != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params: "+truncate(err.Error(), 200))
		}
		raw, err := bson.Marshal(doc)
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params: "+truncate(err.Error(), 200))
		}
		args = raw
	case len(u.ParamPairs) > 0:
		raw, err := jobparams.Parse(h.client.Registry(), u.Type, u.ParamPairs)
		if err != nil {
			return nil, err
		}
		args = raw
	}
	return jobparams.Encode(h.client.Registry(), u.Type, args)
}

// setAll sets the options given as query parameters.
func (u *uploadParams) setAll(v url.Values) error {
	for name, values := range v {
		for _, value := range values {
			if err := u.set(name, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseBool reads a checkbox ("on") or a boolean.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "yes":
		return true, nil
	case "", "off", "no":
		return false, nil
	}
	return strconv.ParseBool(s)
}

// parseRunAt reads an RFC 3339 time or a delay from now such as 10m.
func parseRunAt(s string) (time.Time, error) { return parseWhen("run_at", s) }

// parseWhen reads option name: an RFC 3339 time or a delay from now such
// as 10m.
func parseWhen(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, badParam("%s: the delay must not be negative", name)
		}
		return time.Now().Add(d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04"} { // the second is an HTML datetime-local
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badParam("%s %q: not an RFC 3339 time (2030-01-02T15:04:05Z) nor a delay (10s, 5m)", name, truncate(s, 40))
}

// slicedSpec looks up a job type that takes a file.
func (h *Handler) spec(typ string) (*rocketjob.TypeSpec, error) {
	if typ == "" {
		return nil, badParam("missing type: the job type to run")
	}
	return h.client.Registry().Lookup(typ)
}

// uploadOptions checks u for a sliced job. Jobs uploaded from the web keep
// their output until destroyed, like the CLI's.
func (h *Handler) uploadOptions(u *uploadParams) (*sliced.UploadOptions, error) {
	spec, err := h.spec(u.Type)
	if err != nil {
		return nil, err
	}
	if spec.Kind != rocketjob.KindSliced {
		return nil, apiErr(http.StatusBadRequest, "simple_job", fmt.Sprintf("job type %q is a simple job: POST JSON {\"type\": %q, \"params\": {...}} instead of a file", u.Type, u.Type))
	}
	if err := u.only(rocketjob.KindSliced); err != nil {
		return nil, err
	}
	collect, keep := true, false
	if u.CollectOutput != nil {
		collect = *u.CollectOutput
	}
	opts := &sliced.UploadOptions{
		Priority: u.Priority, Description: u.Description, RunAt: u.RunAt, SliceSize: u.SliceSize,
		Format: sliced.Format(u.Format), CollectOutput: &collect, DestroyOnComplete: &keep,
		Encrypt: u.Encrypt, Compress: u.Compress, StopOnError: u.StopOnError, MaxWorkers: u.MaxWorkers,
		DependsOn: u.After, ExpiresAt: u.ExpiresAt, Window: u.Window,
		OutputFormat: sliced.Format(u.OutputFormat), LenientQuotes: u.LenientQuotes, Header: u.Columns, Widths: u.Widths, Sheet: u.Sheet,
	}
	if err := h.checkAfter(context.Background(), u.After); err != nil {
		return nil, err
	}
	if len(u.RequireColumns)+len(u.AllowColumns) > 0 {
		opts.Columns = &sliced.Columns{Required: u.RequireColumns, Allowed: u.AllowColumns}
	}
	params, err := h.jobParams(u)
	if err != nil {
		return nil, err
	}
	if params != nil {
		opts.Params = params
	}
	opts.NotifyURL = u.NotifyURL
	format := sliced.Format(spec.Format)
	if u.Format != "" {
		format = sliced.Format(u.Format)
	}
	if !format.Tabular() && (opts.Columns != nil || sliced.TypeColumns(h.client.Registry(), u.Type) != nil) {
		return nil, badParam("column checks need csv input (or another tabular format): job type %q would read this upload as %s", u.Type, format)
	}
	if (u.Encrypt != nil && *u.Encrypt || u.Encrypt == nil && spec.Encrypt) && h.client.Keyring() == nil {
		return nil, apiErr(http.StatusBadRequest, "no_key", "this UI process has no encryption key (ROCKETJOB_KEYS or --key-file): it cannot upload encrypted jobs")
	}
	return opts, nil
}

// createJob creates a job from an upload request: a multipart form (the
// fields, then the file) or a JSON body. It answers the job and the options
// read (to show a form again after an error).
func (h *Handler) createJob(w http.ResponseWriter, r *http.Request, p *principal) (*rocketjob.Job, *uploadParams, error) {
	u := &uploadParams{}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxUpload)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := u.setAll(r.URL.Query()); err != nil {
			return nil, u, err
		}
		job, err := h.uploadMultipart(r, p, u)
		return job, u, err
	case "application/json":
		if err := u.setAll(r.URL.Query()); err != nil {
			return nil, u, err
		}
		job, err := h.uploadJSON(r, u)
		return job, u, err
	}
	return nil, u, apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send multipart/form-data (fields, then the file) or application/json")
}

// uploadMultipart streams a multipart form: option fields first (and, for
// a browser session, the CSRF token), then exactly one file, which goes
// straight into the job's slices without being stored anywhere else (a
// PGP-encrypted file decrypted on the way: pgpUpload). The
// file must be the last part: a second file, or an option after the file
// (which could only be read after the job was stored without it), is a 400
// and no job is created.
func (h *Handler) uploadMultipart(r *http.Request, p *principal, u *uploadParams) (*rocketjob.Job, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "bad_request", "unreadable multipart form")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, apiErr(http.StatusBadRequest, "missing_file", "no file: the form needs a file part named file, after the other fields")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, apiErr(http.StatusBadRequest, "bad_request", "unreadable multipart form")
		}
		name := part.FormName()
		if name == "file" || part.FileName() != "" {
			if p.csrfPending {
				return nil, apiErr(http.StatusForbidden, "csrf", "missing CSRF token: it must come before the file")
			}
			if part.FileName() == "" {
				return nil, apiErr(http.StatusBadRequest, "missing_file", "choose a file to upload")
			}
			if u.Type == "" {
				return nil, badParam("missing type: give the type (and the other fields) before the file part, or as ?type=")
			}
			opts, err := h.uploadOptions(u)
			if err != nil {
				return nil, err
			}
			opts.Name = part.FileName()
			file := &lastPart{part: part, mr: mr}
			br := bufio.NewReaderSize(file, 64<<10)
			if _, err := br.Peek(1); errors.Is(err, io.EOF) {
				if file.err != io.EOF {
					return nil, file.err
				}
				return nil, apiErr(http.StatusBadRequest, "bad_input", "the file "+truncate(opts.Name, 100)+" is empty")
			}
			in, err := h.pgpUpload(br, opts)
			if err != nil {
				if file.err != nil && file.err != io.EOF {
					return nil, file.err // what follows the file was refused
				}
				return nil, err
			}
			job, err := sliced.Upload(r.Context(), h.client, u.Type, in, opts)
			if file.err != nil && file.err != io.EOF {
				// What follows the file was refused: Upload saw it as a read
				// error and dropped the slices it stored.
				if job != nil {
					h.dropJob(r.Context(), job)
				}
				return nil, file.err
			}
			if err != nil {
				return nil, err
			}
			if file.err == nil {
				// The decoder stopped before the end of the part (bytes after
				// a compressed stream): read on to see what follows.
				if _, err := io.Copy(io.Discard, file); err != nil {
					h.dropJob(r.Context(), job)
					return nil, err
				}
			}
			return job, nil
		}
		value, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_request", "unreadable multipart form")
		}
		if len(value) > maxFieldBytes {
			return nil, badParam("field %q is too long", truncate(name, 40))
		}
		if name == csrfField {
			if p.csrfPending {
				if !validCSRF(p.sess, string(value)) {
					return nil, apiErr(http.StatusForbidden, "csrf", "wrong CSRF token: reload the page and try again")
				}
				p.csrfPending = false
			}
			continue
		}
		if err := u.set(name, string(value)); err != nil {
			return nil, err
		}
	}
}

// lastPart reads the file part of an upload form. At the end of the part
// it reads on: the end of the form is io.EOF; anything else (a second file,
// an option after the file, a broken form) is the error, so the upload
// fails instead of storing a job without what followed.
type lastPart struct {
	part *multipart.Part
	mr   *multipart.Reader
	err  error // sticky: io.EOF once the form ended properly
}

func (l *lastPart) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.part.Read(p)
	if errors.Is(err, io.EOF) {
		l.err = l.end()
		return n, l.err
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

// end reads what follows the file part.
func (l *lastPart) end() error {
	next, err := l.mr.NextPart()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiErr(http.StatusBadRequest, "bad_request", "unreadable multipart form")
	}
	if next.FormName() == "file" || next.FileName() != "" {
		return badParam("the form has more than one file: upload one file per job")
	}
	return badParam("the option %q comes after the file: options must come before the file part", truncate(next.FormName(), 40))
}

// dropJob destroys a job an upload created but must not keep.
func (h *Handler) dropJob(ctx context.Context, job *rocketjob.Job) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := h.client.Destroy(ctx, job.ID.Hex()); err != nil {
		h.log.Error("destroying a refused upload's job", "job", job.ID.Hex(), "err", err)
	}
}

// uploadJSON reads {"type": T, "records": [...], options...} or, for a
// simple job, {"type": T, "params": {...}, options...}, in any key order.
// Records are spooled to a temporary file while the body is read, so a
// large body is never held in memory: strings for a lines job, JSON values
// for a JSONL job, arrays of strings for a CSV job (the first is the header).
func (h *Handler) uploadJSON(r *http.Request, u *uploadParams) (*rocketjob.Job, error) {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	syntax := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiErr(http.StatusBadRequest, "bad_request", "invalid JSON body: "+truncate(err.Error(), 200))
	}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, syntax(err)
	}
	var sp *spool
	defer func() {
		if sp != nil {
			sp.close()
		}
	}()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, _ := tok.(string)
		switch key {
		case "records":
			if sp != nil {
				return nil, badParam("records appears twice")
			}
			if sp, err = newSpool(); err != nil {
				return nil, err
			}
			if err := expectDelim(dec, '['); err != nil {
				return nil, apiErr(http.StatusBadRequest, "bad_input", "records must be an array")
			}
			for dec.More() {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return nil, syntax(err)
				}
				if err := sp.add(raw); err != nil {
					return nil, err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, syntax(err)
			}
		case "params":
			if err := dec.Decode(&u.Params); err != nil {
				return nil, syntax(err)
			}
		case "after":
			// A string of ids or an array of them.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, syntax(err)
			}
			var ids []string
			if err := json.Unmarshal(raw, &ids); err != nil {
				var one string
				if err := json.Unmarshal(raw, &one); err != nil {
					return nil, badParam("after must be a job id or an array of them")
				}
				ids = []string{one}
			}
			if err := u.set(key, strings.Join(ids, ",")); err != nil {
				return nil, err
			}
		case "encrypt", "compress", "stop_on_error", "collect_output":
			var b bool
			if err := dec.Decode(&b); err != nil {
				return nil, badParam("%s must be true or false", key)
			}
			if err := u.set(key, strconv.FormatBool(b)); err != nil {
				return nil, err
			}
		case "priority", "slice_size", "max_workers", "retry_limit":
			var n json.Number
			if err := dec.Decode(&n); err != nil {
				return nil, badParam("%s must be a number", key)
			}
			if err := u.set(key, n.String()); err != nil {
				return nil, err
			}
		default:
			var s string
			if err := dec.Decode(&s); err != nil {
				return nil, badParam("%s must be a string", truncate(key, 40))
			}
			if err := u.set(key, s); err != nil {
				return nil, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, syntax(err)
	}
	spec, err := h.spec(u.Type)
	if err != nil {
		return nil, err
	}
	if spec.Kind == rocketjob.KindSimple {
		if sp != nil {
			return nil, badParam("job type %q is a simple job: it takes params, not records", u.Type)
		}
		return h.enqueue(r.Context(), u)
	}
	if sp == nil || sp.n == 0 {
		return nil, apiErr(http.StatusBadRequest, "bad_input", "no records: give \"records\": [...] or upload a file")
	}
	if u.Format != "" && u.Format != spec.Format {
		return nil, badParam("format: JSON records take the job type's format (%s)", spec.Format)
	}
	opts, err := h.uploadOptions(u)
	if err != nil {
		return nil, err
	}
	return h.uploadSpool(r.Context(), spec, sp, opts)
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("expected %q", string(d))
	}
	return nil
}

// enqueue creates a simple job from JSON params.
func (h *Handler) enqueue(ctx context.Context, u *uploadParams) (*rocketjob.Job, error) {
	var args any // an untyped nil without params: the type's zero arguments
	if p := bytes.TrimSpace(u.Params); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		if p[0] != '{' {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params must be a JSON object")
		}
		var doc bson.D
		if err := bson.UnmarshalExtJSON(p, false, &doc); err != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params: "+truncate(err.Error(), 200))
		}
		raw, err := bson.Marshal(doc)
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_args", "params: "+truncate(err.Error(), 200))
		}
		args = bson.Raw(raw)
	}
	opts, err := h.enqueueOptions(ctx, u)
	if err != nil {
		return nil, err
	}
	job, err := h.client.Enqueue(ctx, u.Type, args, opts)
	return job, scheduleErr(err)
}

// uploadSpool uploads the spooled JSON records into a new sliced job. A
// record of the wrong shape stops the upload (nothing is left behind) and
// is a 400 naming its index.
func (h *Handler) uploadSpool(ctx context.Context, spec *rocketjob.TypeSpec, sp *spool, opts *sliced.UploadOptions) (*rocketjob.Job, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var badRecord error
	stop := func(err error) {
		badRecord = err
		cancel(err)
	}
	finish := func(job *rocketjob.Job, err error) (*rocketjob.Job, error) {
		if badRecord != nil {
			return nil, badRecord
		}
		return job, err
	}
	bad := func(i int64, format string, a ...any) error {
		return apiErr(http.StatusBadRequest, "bad_input", fmt.Sprintf("records[%d]: ", i)+fmt.Sprintf(format, a...))
	}
	switch sliced.Format(spec.Format) {
	case sliced.CSV:
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			cw := csv.NewWriter(pw)
			for i, raw := range sp.all(stop) {
				var row []string
				if err := json.Unmarshal(raw, &row); err != nil {
					err = bad(i, "a CSV job takes arrays of strings (the first is the header)")
					stop(err)
					pw.CloseWithError(err)
					return
				}
				if err := cw.Write(row); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			cw.Flush()
			pw.CloseWithError(cw.Error())
		}()
		opts.Format, opts.Name = sliced.CSV, "records.csv"
		job, err := sliced.Upload(ctx, h.client, spec.Name, pr, opts)
		pr.Close() // unblocks the writer if the upload stopped early
		<-done
		return finish(job, err)
	case sliced.JSONL:
		seq := func(yield func([]byte) bool) {
			for _, raw := range sp.all(stop) {
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					stop(err)
					return
				}
				if !yield(b.Bytes()) {
					return
				}
			}
		}
		return finish(sliced.UploadRecords(ctx, h.client, spec.Name, seq, opts))
	default:
		seq := func(yield func([]byte) bool) {
			for i, raw := range sp.all(stop) {
				var line string
				if err := json.Unmarshal(raw, &line); err != nil {
					stop(bad(i, "a lines job takes strings"))
					return
				}
				if strings.ContainsAny(line, "\r\n") {
					stop(bad(i, "a line must not contain a line break"))
					return
				}
				if !yield([]byte(line)) {
					return
				}
			}
		}
		return finish(sliced.UploadRecords(ctx, h.client, spec.Name, seq, opts))
	}
}

// spool keeps JSON records in a temporary file, each prefixed by its length.
type spool struct {
	f *os.File
	w *bufio.Writer
	n int64
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "rocketjob-upload-*.spool")
	if err != nil {
		return nil, fmt.Errorf("spooling records: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spool) add(raw []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := s.w.Write(n[:binary.PutUvarint(n[:], uint64(len(raw)))]); err != nil {
		return fmt.Errorf("spooling records: %w", err)
	}
	if _, err := s.w.Write(raw); err != nil {
		return fmt.Errorf("spooling records: %w", err)
	}
	s.n++
	return nil
}

// all replays the records with their index; a read error goes to fail.
func (s *spool) all(fail func(error)) iter.Seq2[int64, []byte] {
	return func(yield func(int64, []byte) bool) {
		if err := s.w.Flush(); err != nil {
			fail(err)
			return
		}
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			fail(err)
			return
		}
		br := bufio.NewReaderSize(s.f, 256<<10)
		var buf []byte
		for i := int64(0); i < s.n; i++ {
			n, err := binary.ReadUvarint(br)
			if err != nil {
				fail(fmt.Errorf("reading spooled records: %w", err))
				return
			}
			if uint64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				fail(fmt.Errorf("reading spooled records: %w", err))
				return
			}
			if !yield(i, buf) {
				return
			}
		}
	}
}

func (s *spool) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// apiCreateJob: POST /api/jobs. Answers 202 with the job's id, its status
// URL and its results URL (Location: the status URL). A JSON array body
// enqueues many simple jobs (createMany).
func (h *Handler) apiCreateJob(w http.ResponseWriter, r *http.Request) {
	if h.createMany(w, r) {
		return
	}
	job, _, err := h.createJob(w, r, principalFrom(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := job.ID.Hex()
	h.log.Info("job created", "job", id, "type", job.Type, "records", job.RecordCount, "user", principalFrom(r).Name)
	h.stats.invalidate()
	status := h.path("/api/jobs/" + id)
	resp := map[string]any{
		"id": id, "type": job.Type, "state": job.State, "record_count": job.RecordCount,
		"status_url": status, "page_url": h.path("/jobs/" + id), "job": newJobJSON(h.prefix, job, nil, nil),
	}
	if job.Kind == rocketjob.KindSliced {
		resp["results_url"] = status + "/output"
		resp["failures_url"] = status + "/failures"
	}
	w.Header().Set("Location", status)
	writeJSON(w, http.StatusAccepted, resp)
}

// RunAtText is the start time as typed (to show the form again).
func (u *uploadParams) RunAtText() string { return u.runAtText }

// ColumnsText is the declared columns as given, for the form.
func (u *uploadParams) ColumnsText() string { return strings.Join(u.Columns, ",") }

// WidthsText is the fixed-width layout's widths as given, for the form.
func (u *uploadParams) WidthsText() string {
	parts := make([]string, len(u.Widths))
	for i, w := range u.Widths {
		parts[i] = strconv.Itoa(w)
	}
	return strings.Join(parts, ",")
}

// ParamValue is the value given for parameter name (to show the form again).
func (u *uploadParams) ParamValue(name string) string {
	for _, p := range u.ParamPairs {
		if k, v, _ := strings.Cut(p, "="); k == name {
			return v
		}
	}
	return ""
}

// Encrypted reports whether encryption was asked for.
func (u *uploadParams) Encrypted() bool { return u.Encrypt != nil && *u.Encrypt }

// Compressed reports whether compression was asked for.
func (u *uploadParams) Compressed() bool { return u.Compress != nil && *u.Compress }
