package sliced

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Dirmon (directory monitor) turns files dropped into folders into jobs:
// an entry names a folder, a pattern of file names, a job type and its
// upload options. Servers started with Dirmon roots (server.Config.DirmonRoots,
// `rocketjob server --dirmon DIR`) scan the entries whose folders lie under
// a root, one server per entry at a time; a file is uploaded once its size
// and modification time have not changed between two scans, exactly once
// across servers and crashes, then moved to the archive folder (or, when
// the upload is refused, to the failed folder with a one-line NAME.reason
// file beside it). Entries live in the jobs database: add them from Go
// (AddDirmon), the command line (`rocketjob dirmon add`), the REST API or
// the web UI.

// Dirmon errors.
var (
	// ErrBadDirmon is wrapped by the errors of an entry that cannot work
	// (a relative folder, a pattern with a slash, an unknown or simple job
	// type, bad upload options): nothing is stored.
	ErrBadDirmon = errors.New("invalid dirmon entry")
	// ErrDirmonNotFound: no entry has the name.
	ErrDirmonNotFound = store.ErrDirmonNotFound
	// ErrDirmonExists: an entry with that name exists already.
	ErrDirmonExists = store.ErrDirmonExists
)

// DirmonEntry is one watched folder.
type DirmonEntry struct {
	// Name identifies the entry: letters, digits, '.', '_' and '-', at most
	// 64.
	Name string `json:"name"`
	// Folder is the absolute path of the folder to watch. Only the files
	// directly in it are taken (not those of subfolders), and only regular
	// files: symbolic links and names starting with '.' (the usual
	// temporary names of files being written) are left alone.
	Folder string `json:"folder"`
	// Pattern is a shell pattern (path/filepath.Match) of the file names to
	// take, without any '/'; empty means "*".
	Pattern string `json:"pattern"`
	// Type is the sliced job type each file becomes.
	Type string `json:"type"`
	// Params are the job's parameters as "key=value" pairs (the form of
	// `--param`), when the type takes any.
	Params []string `json:"params,omitempty"`
	// Options are the upload options of the jobs.
	Options DirmonOptions `json:"options"`
	// Archive is the absolute folder a file is moved to once its job
	// exists, renamed JOBID_NAME; empty means Folder/archive. Keep it on
	// Folder's file system: the move is a rename.
	Archive string `json:"archive"`
	// Failed is the absolute folder a refused file is moved to (renamed
	// JOBID_NAME, with JOBID_NAME.reason holding the reason on one line);
	// empty means Folder/failed.
	Failed string `json:"failed"`
	// Enabled entries are scanned; a disabled one keeps its files where
	// they are.
	Enabled bool `json:"enabled"`
	// CreatedAt is when the entry was added.
	CreatedAt time.Time `json:"created_at"`
	// Status is what the last scan found; nil before the first scan.
	Status *DirmonStatus `json:"status,omitempty"`
}

// DirmonOptions are the upload options of a Dirmon entry's jobs; zero
// fields take the job type's defaults. As for uploads from the command
// line, output is collected (unless CollectOutput says otherwise) and kept
// until the job is destroyed or retention removes it.
type DirmonOptions struct {
	Priority    int    `json:"priority,omitempty"`
	Description string `json:"description,omitempty"`
	SliceSize   int    `json:"slice_size,omitempty"`
	// Format is lines, csv or jsonl (or another format the build knows).
	Format     string `json:"format,omitempty"`
	MaxWorkers int    `json:"max_workers,omitempty"`
	// Window is a daily processing window, START,DURATION[,ZONE].
	Window         string   `json:"window,omitempty"`
	RequireColumns []string `json:"require_columns,omitempty"`
	AllowColumns   []string `json:"allow_columns,omitempty"`
	Encrypt        *bool    `json:"encrypt,omitempty"`
	Compress       *bool    `json:"compress,omitempty"`
	StopOnError    *bool    `json:"stop_on_error,omitempty"`
	CollectOutput  *bool    `json:"collect_output,omitempty"`
}

// DirmonStatus is what the last scan of an entry found.
type DirmonStatus struct {
	// At is when the scan ran, and Server the server that ran it.
	At     time.Time `json:"at"`
	Server string    `json:"server"`
	// Error says why the folder could not be scanned (not under one of the
	// scanning server's roots, missing, unreadable); empty when it was.
	Error string `json:"error,omitempty"`
	// Waiting counts the files seen and waiting for a second, unchanged
	// sighting; Taken the files this scan took; Resumed the files a dead
	// scan had taken and this one finished.
	Waiting int `json:"waiting"`
	Taken   int `json:"taken"`
	Resumed int `json:"resumed"`
}

// DirmonFile is a file a scan took, and what became of it.
type DirmonFile struct {
	Entry   string    `json:"entry"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// JobID is the job made of the file (chosen when the file was taken:
	// the job may not exist yet, or may have been refused).
	JobID string `json:"job_id"`
	// State is taken (being uploaded), uploaded (the job exists, the file
	// is being moved), archived or failed.
	State string `json:"state"`
	// Server took the file (or finished it after its first taker died).
	Server  string     `json:"server"`
	MovedTo string     `json:"moved_to,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	TakenAt time.Time  `json:"taken_at"`
	DoneAt  *time.Time `json:"done_at,omitempty"`
}

var dirmonName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Check fills in the defaults of e (pattern, archive and failed folders)
// and reports, wrapping ErrBadDirmon, what cannot work with the job types
// of reg.
func (e *DirmonEntry) Check(reg *rocketjob.Registry) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDirmon, fmt.Sprintf(format, a...))
	}
	if !dirmonName.MatchString(e.Name) {
		return bad("name %q: want 1-64 letters, digits, '.', '_' or '-'", truncateText(e.Name, 70))
	}
	folder := func(what, p string) (string, error) {
		if !filepath.IsAbs(p) {
			return "", bad("%s %q is not an absolute path", what, truncateText(p, 200))
		}
		if strings.ContainsRune(p, 0) {
			return "", bad("%s holds a NUL byte", what)
		}
		return filepath.Clean(p), nil
	}
	var err error
	if e.Folder, err = folder("folder", e.Folder); err != nil {
		return err
	}
	if e.Pattern == "" {
		e.Pattern = "*"
	}
	if strings.ContainsAny(e.Pattern, "/\\\x00") || e.Pattern == "." || e.Pattern == ".." {
		return bad("pattern %q: a pattern of file names, without any '/'", truncateText(e.Pattern, 100))
	}
	if _, err := filepath.Match(e.Pattern, ""); err != nil {
		return bad("pattern %q: %v", truncateText(e.Pattern, 100), err)
	}
	if e.Archive == "" {
		e.Archive = filepath.Join(e.Folder, "archive")
	}
	if e.Failed == "" {
		e.Failed = filepath.Join(e.Folder, "failed")
	}
	if e.Archive, err = folder("archive folder", e.Archive); err != nil {
		return err
	}
	if e.Failed, err = folder("failed folder", e.Failed); err != nil {
		return err
	}
	if e.Archive == e.Folder || e.Failed == e.Folder {
		return bad("the archive and failed folders must not be the watched folder")
	}
	spec, err := reg.Lookup(e.Type)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDirmon, err)
	}
	if spec.Kind != rocketjob.KindSliced {
		return bad("job type %q is a simple job: Dirmon uploads files into sliced jobs", e.Type)
	}
	if _, err := e.UploadOptions(reg); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDirmon, err)
	}
	return nil
}

// UploadOptions are the options of an upload of one of e's files.
func (e *DirmonEntry) UploadOptions(reg *rocketjob.Registry) (*UploadOptions, error) {
	o := e.Options
	if o.Priority < 0 || o.Priority > 100 {
		return nil, fmt.Errorf("priority must be 1..100 (got %d)", o.Priority)
	}
	if o.SliceSize < 0 || o.SliceSize > 100_000 {
		return nil, fmt.Errorf("slice size must be 1..100000 (got %d)", o.SliceSize)
	}
	if o.MaxWorkers < 0 {
		return nil, fmt.Errorf("max workers must not be negative (got %d)", o.MaxWorkers)
	}
	if len(o.Description) > 1000 {
		return nil, errors.New("description is longer than 1000 bytes")
	}
	opts := &UploadOptions{
		Priority:      o.Priority,
		Description:   o.Description,
		SliceSize:     o.SliceSize,
		MaxWorkers:    o.MaxWorkers,
		Encrypt:       o.Encrypt,
		Compress:      o.Compress,
		StopOnError:   o.StopOnError,
		CollectOutput: o.CollectOutput,
	}
	if opts.CollectOutput == nil {
		collect := true
		opts.CollectOutput = &collect
	}
	keep := false // until destroyed or expired by retention, like CLI uploads
	opts.DestroyOnComplete = &keep
	if o.Format != "" {
		f, err := ParseFormat(o.Format)
		if err != nil {
			return nil, err
		}
		opts.Format = f
	}
	w, err := rocketjob.ParseWindow(o.Window)
	if err != nil {
		return nil, err
	}
	opts.Window = w
	if len(o.RequireColumns)+len(o.AllowColumns) > 0 {
		opts.Columns = &Columns{Required: o.RequireColumns, Allowed: o.AllowColumns}
	}
	// Parameters are decoded and checked as the type says (a required one
	// missing is an error here, not at each file).
	params, err := jobparams.Parse(reg, e.Type, e.Params)
	if err == nil {
		params, err = jobparams.Encode(reg, e.Type, params)
	}
	if err != nil {
		return nil, err
	}
	if params != nil {
		opts.Params = params
	}
	return opts, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// AddDirmon checks e (Check, against the client's job types) and stores it.
// A name in use is ErrDirmonExists.
func AddDirmon(ctx context.Context, c *rocketjob.Client, e *DirmonEntry) error {
	if err := e.Check(c.Registry()); err != nil {
		return err
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	return clientstore.Of(c).AddDirmonEntry(ctx, toStoreEntry(e))
}

// DirmonEntries returns every entry, by name, with the status of its last
// scan.
func DirmonEntries(ctx context.Context, c *rocketjob.Client) ([]DirmonEntry, error) {
	st := clientstore.Of(c)
	list, err := st.DirmonEntries(ctx)
	if err != nil {
		return nil, err
	}
	status, err := st.DirmonStatuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DirmonEntry, len(list))
	for i := range list {
		out[i] = fromStoreEntry(&list[i])
		if s, ok := status[list[i].Name]; ok {
			out[i].Status = &DirmonStatus{At: s.ScanAt, Server: s.Server, Error: s.Error, Waiting: s.Waiting, Taken: s.Taken, Resumed: s.Resumed}
		}
	}
	return out, nil
}

// EnableDirmon enables (or, with enabled false, disables) the entry name.
// A disabled entry is not scanned; a file being uploaded is finished.
func EnableDirmon(ctx context.Context, c *rocketjob.Client, name string, enabled bool) error {
	return clientstore.Of(c).SetDirmonEnabled(ctx, name, enabled)
}

// RemoveDirmon deletes the entry name. A file being uploaded is finished;
// the records of the files taken stay until they age out.
func RemoveDirmon(ctx context.Context, c *rocketjob.Client, name string) error {
	return clientstore.Of(c).RemoveDirmonEntry(ctx, name)
}

// DirmonFiles returns the files taken, newest first: those of entry (every
// entry when empty), at most limit (all when limit <= 0). Records of files
// done are kept for DirmonKeepFiles.
func DirmonFiles(ctx context.Context, c *rocketjob.Client, entry string, limit int) ([]DirmonFile, error) {
	list, err := clientstore.Of(c).DirmonFiles(ctx, entry, limit)
	out := make([]DirmonFile, len(list))
	for i, f := range list {
		out[i] = DirmonFile{
			Entry: f.Entry, Path: f.Path, Size: f.Size, ModTime: f.ModTime, JobID: f.JobID.Hex(),
			State: f.State, Server: f.Server, MovedTo: f.MovedTo, Reason: f.Reason, TakenAt: f.TakenAt, DoneAt: f.DoneAt,
		}
	}
	return out, err
}

// DirmonKeepFiles is how long the record of a file taken is kept once the
// file was archived or failed.
const DirmonKeepFiles = 30 * 24 * time.Hour

func toStoreEntry(e *DirmonEntry) *store.DirmonEntry {
	params := map[string]string{}
	for _, p := range e.Params {
		k, v, _ := strings.Cut(p, "=")
		params[k] = v
	}
	o := e.Options
	return &store.DirmonEntry{
		Name: e.Name, Folder: e.Folder, Pattern: e.Pattern, Type: e.Type, Params: params,
		Archive: e.Archive, Failed: e.Failed, Enabled: e.Enabled, CreatedAt: e.CreatedAt,
		Upload: store.DirmonUpload{
			Priority: o.Priority, Description: o.Description, SliceSize: o.SliceSize, Format: o.Format,
			MaxWorkers: o.MaxWorkers, Window: o.Window, RequireColumns: o.RequireColumns, AllowColumns: o.AllowColumns,
			Encrypt: o.Encrypt, Compress: o.Compress, StopOnError: o.StopOnError, CollectOutput: o.CollectOutput,
		},
	}
}

func fromStoreEntry(e *store.DirmonEntry) DirmonEntry {
	var params []string
	for k, v := range e.Params {
		params = append(params, k+"="+v)
	}
	slices.Sort(params)
	u := e.Upload
	return DirmonEntry{
		Name: e.Name, Folder: e.Folder, Pattern: e.Pattern, Type: e.Type, Params: params,
		Archive: e.Archive, Failed: e.Failed, Enabled: e.Enabled, CreatedAt: e.CreatedAt,
		Options: DirmonOptions{
			Priority: u.Priority, Description: u.Description, SliceSize: u.SliceSize, Format: u.Format,
			MaxWorkers: u.MaxWorkers, Window: u.Window, RequireColumns: u.RequireColumns, AllowColumns: u.AllowColumns,
			Encrypt: u.Encrypt, Compress: u.Compress, StopOnError: u.StopOnError, CollectOutput: u.CollectOutput,
		},
	}
}
