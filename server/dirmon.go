package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// DefaultDirmonInterval is how often Dirmon entries are scanned (by one
// server of the cluster per entry). A file is taken once it is unchanged
// for at least an interval, between two scans.
const DefaultDirmonInterval = 30 * time.Second

// dirmonMaxTries bounds the uploads of one file that fail for a passing
// reason (the database unreachable, a full disk) before the file is moved
// to the failed folder.
const dirmonMaxTries = 5

// dirmonConfig configures the Dirmon service.
type dirmonConfig struct {
	// Name is the server's name, written on the files it takes.
	Name string
	// Roots are the folders under which entries may watch, archive and
	// fail files on this server; an entry outside every root is left to
	// other servers. Each must exist.
	Roots []string
	// Interval is the time between scans of an entry (default
	// DefaultDirmonInterval), and the least time a file must stay
	// unchanged before it is taken.
	Interval time.Duration
	// DeadAfter is how old a taker's heartbeat may be before the files it
	// took are finished by another server (its own dead-after wins).
	DeadAfter time.Duration
	// Keep is how long the records of files done are kept
	// (sliced.DirmonKeepFiles).
	Keep time.Duration
}

func (c *dirmonConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultDirmonInterval
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.Keep <= 0 {
		c.Keep = sliced.DirmonKeepFiles
	}
}

// root is a Dirmon root as configured and with its symbolic links resolved.
type root struct{ clean, real string }

// resolveRoots checks the configured roots: absolute, existing folders.
func resolveRoots(paths []string) ([]root, error) {
	var out []root
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("dirmon root %q is not an absolute path", p)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("dirmon root: %w", err)
		}
		if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dirmon root %q is not a folder", p)
		}
		out = append(out, root{clean: filepath.Clean(p), real: real})
	}
	return out, nil
}

// within reports whether p is dir or lies under it (lexically).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// dirmon is the Dirmon service: every interval, for each entry whose
// folder lies under one of this server's roots, it claims the entry's scan
// of the period (a unique insert: one server per entry and period) and
// scans it:
//
//   - files this server took, or whose taker died, and that are not done
//     are finished first (the taker's next attempt is itself a unique
//     insert, so two servers never finish one file);
//   - a new file (regular, not hidden, matching the pattern) is recorded
//     as seen; a file seen by an earlier scan at least an interval ago with
//     the same size, modification time and inode is taken: a unique insert
//     of that identity, with the job id chosen now;
//   - a taken file is uploaded under that job id unless a job has it
//     already (a dead scan got that far), then moved to the archive folder;
//     a refused upload moves it to the failed folder with a .reason file.
//
// So each file becomes exactly one job, whatever dies when.
type dirmon struct {
	ticker
	cfg    dirmonConfig
	roots  []root
	client *rocketjob.Client
	store  *store.Store
	log    *slog.Logger
	now    func() time.Time
	// scanned, when not nil, is signalled after each pass (tests), without
	// blocking.
	scanned chan struct{}
	pruned  time.Time
}

func newDirmon(cfg dirmonConfig, client *rocketjob.Client, st *store.Store, log *slog.Logger) (*dirmon, error) {
	cfg.defaults()
	roots, err := resolveRoots(cfg.Roots)
	if err != nil {
		return nil, err
	}
	d := &dirmon{cfg: cfg, roots: roots, client: client, store: st, log: log.With("service", "dirmon"), now: time.Now}
	d.ticker = ticker{interval: cfg.Interval, pass: d.pass}
	return d, nil
}

// Start creates Dirmon's collections, then starts the scans.
func (d *dirmon) Start(ctx context.Context) error {
	if err := d.store.EnsureDirmon(ctx); err != nil {
		return fmt.Errorf("dirmon: %w", err)
	}
	return d.ticker.Start(ctx)
}

func (d *dirmon) pass(ctx context.Context) {
	defer func() {
		if d.scanned != nil {
			select {
			case d.scanned <- struct{}{}:
			default:
			}
		}
	}()
	entries, err := sliced.DirmonEntries(ctx, d.client)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dirmon: reading entries", "err", err)
		}
		return
	}
	var alive func(string) bool
	for i := range entries {
		e := &entries[i]
		if !d.serves(e) {
			continue
		}
		won, err := d.store.ClaimDirmonScan(ctx, e.Name, time.Now(), d.cfg.Interval)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("dirmon: claiming a scan", "entry", e.Name, "err", err)
		}
		if !won {
			// Another server scans it this period; files this server took
			// and left unfinished (a passing error, a takeover recorded
			// by another server, an earlier process of the same name) are
			// still its own to finish: nobody else takes over from a live
			// server. One read of the entry's records, every pass: the
			// same server may win every period's scan.
			d.resumeOwn(ctx, e)
			continue
		}
		if alive == nil {
			if alive, err = d.liveServers(ctx); err != nil {
				if ctx.Err() == nil {
					d.log.Warn("dirmon: listing servers", "err", err)
				}
				return
			}
		}
		d.scan(ctx, e, alive)
	}
	if now := d.now(); now.Sub(d.pruned) > time.Hour && ctx.Err() == nil {
		d.pruned = now
		if err := d.store.PruneDirmonFiles(ctx, now.Add(-d.cfg.Keep)); err != nil && ctx.Err() == nil {
			d.log.Warn("dirmon: pruning file records", "err", err)
		}
	}
}

// serves reports whether e's folder, archive and failed folders lie under
// this server's roots (as written: links are checked when they are used).
func (d *dirmon) serves(e *sliced.DirmonEntry) bool {
	under := func(p string) bool {
		for _, r := range d.roots {
			if within(r.clean, p) || within(r.real, p) {
				return true
			}
		}
		return false
	}
	return under(e.Folder) && under(e.Archive) && under(e.Failed)
}

// safeDir returns the real path of the folder p, which must lie under a
// root both as written and once its links are resolved (so a link cannot
// lead outside), creating it first when create is set.
func (d *dirmon) safeDir(p string, create bool) (string, error) {
	p = filepath.Clean(p)
	ok := false
	for _, r := range d.roots {
		ok = ok || within(r.clean, p) || within(r.real, p)
	}
	if !ok {
		return "", fmt.Errorf("%s is not under a dirmon root of server %s", p, d.cfg.Name)
	}
	if create {
		if err := os.MkdirAll(p, 0o750); err != nil {
			return "", err
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	for _, r := range d.roots {
		if within(r.real, real) {
			if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
				return "", fmt.Errorf("%s is not a folder", p)
			}
			return real, nil
		}
	}
	return "", fmt.Errorf("%s leads outside the dirmon roots of server %s", p, d.cfg.Name)
}

// liveServers returns whether a server, by name, is alive now.
func (d *dirmon) liveServers(ctx context.Context) (func(string) bool, error) {
	list, err := d.store.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for i := range list {
		if time.Since(list[i].HeartbeatAt) < list[i].DeadAfterOr(d.cfg.DeadAfter) {
			live[list[i].Name] = true
		}
	}
	return func(name string) bool { return live[name] }, nil
}

// scan is one scan of entry e by this server (whose claim for the period won).
func (d *dirmon) scan(ctx context.Context, e *sliced.DirmonEntry, alive func(string) bool) {
	start := time.Now().UTC()
	status := store.DirmonStatus{Name: e.Name, ScanAt: start, Server: d.cfg.Name}
	defer func() {
		if ctx.Err() != nil {
			return
		}
		if err := d.store.SetDirmonStatus(ctx, &status); err != nil {
			d.log.Warn("dirmon: writing status", "entry", e.Name, "err", err)
		}
	}()
	files, err := d.store.DirmonFiles(ctx, e.Name, 0)
	if err != nil {
		status.Error = err.Error()
		return
	}
	taken := map[string]bool{}
	for i := range files {
		f := &files[i]
		taken[f.Key] = true
		if f.Done() {
			continue
		}
		if f.Server != d.cfg.Name {
			if alive(f.Server) {
				continue // its taker is on it
			}
			won, err := d.store.TakeOverDirmonFile(ctx, f, d.cfg.Name, bson.NewObjectID())
			if err != nil {
				// Not recorded: a claim won is finished once a later scan
				// (here or elsewhere) records it.
				if ctx.Err() == nil {
					d.log.Warn("dirmon: taking over a file", "entry", e.Name, "file", f.Path, "err", err)
				}
				continue
			}
			if !won {
				continue
			}
			d.log.Info("dirmon: finishing a file taken by a dead server", "entry", e.Name, "file", f.Path, "job", f.JobID.Hex())
		}
		status.Resumed++
		d.process(ctx, e, f)
	}
	if !e.Enabled || ctx.Err() != nil {
		return
	}
	folder, err := d.safeDir(e.Folder, false)
	if err != nil {
		status.Error = err.Error()
		return
	}
	dirents, err := os.ReadDir(folder)
	if err != nil {
		status.Error = err.Error()
		return
	}
	sightings, err := d.store.DirmonSightings(ctx, e.Name)
	if err != nil {
		status.Error = err.Error()
		return
	}
	seen := map[string]time.Time{}
	for _, s := range sightings {
		seen[s.Key] = s.At
	}
	present := map[string]bool{}
	var forget []string
	for _, de := range dirents {
		if ctx.Err() != nil {
			return
		}
		name := de.Name()
		if strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
			continue
		}
		if ok, _ := filepath.Match(e.Pattern, name); !ok {
			continue
		}
		fi, err := de.Info() // lstat: a link is not a regular file
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		path := filepath.Join(folder, name)
		key := dirmonKey(e.Name, path, fi)
		present[key] = true
		if taken[key] {
			continue
		}
		at, ok := seen[key]
		if !ok {
			if err := d.store.SeeDirmonFile(ctx, &store.DirmonSeen{Key: key, Entry: e.Name, At: start}); err != nil {
				d.log.Warn("dirmon: recording a file", "entry", e.Name, "file", path, "err", err)
			}
			status.Waiting++
			continue
		}
		if start.Sub(at) < d.cfg.Interval {
			status.Waiting++
			continue
		}
		job := bson.NewObjectID()
		f := &store.DirmonFile{
			Key: key, Entry: e.Name, Path: path, Size: fi.Size(), ModTime: fi.ModTime().UTC(), Inode: inode(fi),
			JobID: job, Jobs: []bson.ObjectID{job}, State: store.DirmonTaken, Server: d.cfg.Name, Attempt: 1,
			TakenAt: time.Now().UTC().Truncate(time.Millisecond),
		}
		won, err := d.store.TakeDirmonFile(ctx, f)
		if err != nil {
			d.log.Warn("dirmon: taking a file", "entry", e.Name, "file", path, "err", err)
			continue
		}
		forget = append(forget, key)
		if !won {
			continue // another scan took it meanwhile
		}
		status.Taken++
		d.log.Info("dirmon: took a file", "entry", e.Name, "file", path, "size", fi.Size(), "job", f.JobID.Hex())
		d.process(ctx, e, f)
	}
	for key := range seen {
		if !present[key] {
			forget = append(forget, key) // changed or gone
		}
	}
	if err := d.store.ForgetDirmonSightings(ctx, forget); err != nil && ctx.Err() == nil {
		d.log.Warn("dirmon: forgetting sightings", "entry", e.Name, "err", err)
	}
}

// resumeOwn finishes the files of e that this server took and left
// unfinished.
func (d *dirmon) resumeOwn(ctx context.Context, e *sliced.DirmonEntry) {
	files, err := d.store.DirmonFiles(ctx, e.Name, 0)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dirmon: reading file records", "entry", e.Name, "err", err)
		}
		return
	}
	for i := range files {
		if f := &files[i]; !f.Done() && f.Server == d.cfg.Name {
			d.process(ctx, e, f)
		}
	}
}

// dirmonKey is the identity of a file of an entry: the same key on two
// scans means the file did not change between them.
func dirmonKey(entry, path string, fi fs.FileInfo) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d\x00%d", entry, path, fi.Size(), fi.ModTime().UnixNano(), inode(fi)))
	return hex.EncodeToString(h[:16])
}

// dirmonHold is how far in the future an upload is scheduled until it is
// the file's one job (CommitDirmonFile): until then no server runs it.
const dirmonHold = 10 * 365 * 24 * time.Hour

// process takes a file from where its record says it is to the end:
// uploaded (unless an attempt's job exists already) and committed as the
// file's one job, then archived; or failed. A step that fails for a
// passing reason is left for the next scan.
//
// Each attempt uploads under its own job id, held (scheduled years ahead)
// until a unique insert commits one job per file: a taker that was judged
// dead but still runs (a paused process) can finish its upload, but its
// job then loses the commit and is destroyed, never run.
func (d *dirmon) process(ctx context.Context, e *sliced.DirmonEntry, f *store.DirmonFile) {
	log := d.log.With("entry", e.Name, "file", f.Path, "job", f.JobID.Hex())
	// A job committed already is the file's one job, whatever the record
	// names: an attempt may have committed it and died before recording
	// it, a late takeover may have written the record back to taken, and
	// a record written by an earlier build may name the attempt's own id.
	job, committed, err := d.store.DirmonCommitted(ctx, f.Key)
	if err != nil {
		log.Warn("dirmon: reading the file's job", "err", err)
		return
	}
	if committed && f.State == store.DirmonUploaded {
		f.JobID = job
	}
	if f.State == store.DirmonTaken {
		// Else the first attempt whose upload finished, or a new upload.
		if !committed {
			job, err = d.uploaded(ctx, f)
		}
		if err != nil {
			log.Warn("dirmon: looking for the file's jobs", "err", err)
			return
		}
		if job.IsZero() {
			if !d.upload(ctx, e, f, log) {
				return
			}
			job = f.JobID
		}
		if !d.commit(ctx, f, job, log) {
			return
		}
		f.State = store.DirmonUploaded
		if err := d.store.UpdateDirmonFile(ctx, f); err != nil {
			log.Warn("dirmon: recording an upload", "err", err)
			return
		}
	}
	if f.State != store.DirmonUploaded {
		return
	}
	dest, err := d.moveTo(e.Archive, f)
	if err != nil {
		f.Reason = "archiving: " + err.Error()
		log.Warn("dirmon: archiving a file", "err", err)
		_ = d.store.UpdateDirmonFile(ctx, f)
		return
	}
	f.State, f.MovedTo, f.Reason = store.DirmonArchived, dest, ""
	if dest == "" {
		f.Reason = "the file was gone before it was archived"
	}
	d.finish(ctx, f, log)
}

// uploaded returns the job of the first attempt on f whose upload
// finished (its job exists), or a zero id.
func (d *dirmon) uploaded(ctx context.Context, f *store.DirmonFile) (bson.ObjectID, error) {
	jobs := f.Jobs
	if len(jobs) == 0 {
		jobs = []bson.ObjectID{f.JobID}
	}
	for _, id := range jobs {
		_, err := d.client.Get(ctx, id.Hex())
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, rocketjob.ErrJobNotFound) {
			return bson.ObjectID{}, err
		}
	}
	return bson.ObjectID{}, nil
}

// commit makes job the file's one job unless another attempt's won,
// releases the winner (due now) and destroys the other attempts' jobs. It
// reports whether the file's job is settled.
func (d *dirmon) commit(ctx context.Context, f *store.DirmonFile, job bson.ObjectID, log *slog.Logger) bool {
	winner, err := d.store.CommitDirmonFile(ctx, f.Key, job)
	if err != nil {
		log.Warn("dirmon: committing the file's job", "err", err)
		return false
	}
	var ite *rocketjob.InvalidTransitionError
	if _, err := d.client.RunNow(ctx, winner.Hex()); err != nil && !errors.As(err, &ite) && !errors.Is(err, rocketjob.ErrJobNotFound) {
		log.Warn("dirmon: releasing the file's job", "err", err)
		return false
	}
	for _, id := range append(slices.Clone(f.Jobs), f.JobID, job) {
		if id == winner || id.IsZero() {
			continue
		}
		if err := d.client.Destroy(ctx, id.Hex()); err == nil {
			log.Info("dirmon: destroyed the job of another attempt on the file", "destroyed", id.Hex(), "kept", winner.Hex())
		} else if !errors.Is(err, rocketjob.ErrJobNotFound) {
			log.Warn("dirmon: destroying another attempt's job", "job", id.Hex(), "err", err)
		}
	}
	f.JobID = winner
	return true
}

// upload makes f's job and reports whether it exists now. A refused
// upload (or a file that cannot be read) fails the file.
func (d *dirmon) upload(ctx context.Context, e *sliced.DirmonEntry, f *store.DirmonFile, log *slog.Logger) bool {
	fh, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone: moved to the failed folder by a scan that died before it
		// said so, or taken away by someone else.
		if dest := d.movedBefore(e.Failed, f); dest != "" {
			f.State, f.MovedTo, f.Reason = store.DirmonFailed, dest, readReason(dest)
		} else {
			f.State, f.Reason = store.DirmonFailed, "the file was gone before it was uploaded"
		}
		d.finish(ctx, f, log)
		return false
	}
	if err != nil {
		d.fail(ctx, e, f, err, log)
		return false
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || dirmonKey(e.Name, f.Path, fi) != f.Key {
		// Replaced or changed since it was taken: the new content is a new
		// file, taken by a later scan.
		f.State, f.Reason = store.DirmonFailed, "the file changed after it was taken; its new content is taken as a new file"
		d.finish(ctx, f, log)
		return false
	}
	opts, err := e.UploadOptions(d.client.Registry())
	if err != nil {
		d.fail(ctx, e, f, err, log)
		return false
	}
	opts.ID, opts.Name, opts.RunAt = f.JobID, filepath.Base(f.Path), time.Now().Add(dirmonHold)
	if f.Tries > 0 {
		// What a failed try of this attempt stored under its id.
		if err := d.store.Slices().Drop(ctx, f.JobID); err != nil {
			log.Warn("dirmon: dropping what an earlier try stored", "err", err)
			return false
		}
	}
	if _, err := sliced.Upload(ctx, d.client, e.Type, fh, opts); err != nil {
		if ctx.Err() != nil {
			return false // stopping: the next scan (here or elsewhere) resumes
		}
		if refused(err) {
			d.fail(ctx, e, f, err, log)
			return false
		}
		f.Tries++
		log.Warn("dirmon: upload failed; retried at the next scan", "try", f.Tries, "err", err)
		if f.Tries >= dirmonMaxTries {
			d.fail(ctx, e, f, fmt.Errorf("%d uploads failed, the last: %w", f.Tries, err), log)
			return false
		}
		f.Reason = oneLine(err.Error())
		_ = d.store.UpdateDirmonFile(ctx, f)
		return false
	}
	log.Info("dirmon: uploaded")
	return true
}

// refused reports an upload error that trying again cannot cure.
func refused(err error) bool {
	var ie *sliced.InputError
	return errors.As(err, &ie) ||
		errors.Is(err, sliced.ErrBadOptions) || errors.Is(err, sliced.ErrColumns) ||
		errors.Is(err, rocketjob.ErrUnknownType) || errors.Is(err, rocketjob.ErrBadArgs) ||
		errors.Is(err, rocketjob.ErrBadWindow) || errors.Is(err, encryption.ErrNoKeyring) ||
		errors.Is(err, fs.ErrPermission)
}

// fail moves f to the entry's failed folder with a one-line reason file
// and records it as failed.
func (d *dirmon) fail(ctx context.Context, e *sliced.DirmonEntry, f *store.DirmonFile, why error, log *slog.Logger) {
	f.State, f.Reason = store.DirmonFailed, oneLine(why.Error())
	log.Warn("dirmon: upload refused", "reason", f.Reason)
	dest, err := d.moveTo(e.Failed, f, f.Reason)
	if err != nil {
		log.Warn("dirmon: moving a refused file", "err", err)
		f.Reason += " (not moved: " + oneLine(err.Error()) + ")"
	}
	f.MovedTo = dest
	d.finish(ctx, f, log)
}

// finish records f as done.
func (d *dirmon) finish(ctx context.Context, f *store.DirmonFile, log *slog.Logger) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.DoneAt = &now
	if err := d.store.UpdateDirmonFile(ctx, f); err != nil {
		log.Warn("dirmon: recording a file done", "state", f.State, "err", err)
		if !errors.Is(err, store.ErrDirmonTakenOver) {
			f.DoneAt = nil // not recorded: record it at the next pass
		}
	}
}

// movedBefore returns where an earlier attempt on f moved it into folder
// dir (JOBID_NAME, under its attempt's job id, or under the committed
// job's), or "" when no attempt did (or dir is not a safe folder).
func (d *dirmon) movedBefore(dir string, f *store.DirmonFile) string {
	real, err := d.safeDir(dir, false)
	if err != nil {
		return ""
	}
	for _, id := range append([]bson.ObjectID{f.JobID}, f.Jobs...) {
		if dest := filepath.Join(real, id.Hex()+"_"+filepath.Base(f.Path)); !id.IsZero() && exists(dest) {
			return dest
		}
	}
	return ""
}

// moveTo renames f into dir (created if need be), writing reason (if any)
// to DEST.reason first. It returns the destination, or "" with no error
// when the file is gone and not at the destination either.
func (d *dirmon) moveTo(dir string, f *store.DirmonFile, reason ...string) (string, error) {
	real, err := d.safeDir(dir, true)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(real, f.JobID.Hex()+"_"+filepath.Base(f.Path))
	if len(reason) > 0 {
		if err := os.WriteFile(dest+".reason", []byte(reason[0]+"\n"), 0o640); err != nil {
			return "", err
		}
	}
	err = os.Rename(f.Path, dest)
	if errors.Is(err, fs.ErrNotExist) {
		return d.movedBefore(dir, f), nil // a scan that died had moved it, or it is gone
	}
	if err != nil {
		return "", err
	}
	return dest, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// readReason reads the reason file written beside a failed file.
func readReason(dest string) string {
	b, err := os.ReadFile(dest + ".reason")
	if err != nil {
		return "refused"
	}
	return strings.TrimSpace(string(b))
}

// oneLine is s on one line, without the database's source locations, at
// most 500 bytes.
func oneLine(s string) string {
	s = store.StripFrames(strings.Join(strings.Fields(s), " "))
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
