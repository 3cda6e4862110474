package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Dirmon (directory monitor): the entries that say which folders to watch
// and what job to make of each file (dirmon_entries), the scan status of
// each entry (dirmon_status, written by the scanning server only, so that
// a scan never races an operator's enable or disable on one document), the
// files seen once and waiting to be seen again unchanged (dirmon_seen) and
// the files taken (dirmon_files). Taking a file is a unique insert of its
// identity into dirmon_files: of any number of servers, exactly one takes
// a file, and the record it writes (with the job id chosen at that moment)
// is what a later scan resumes from when the taker died.

const (
	dirmonEntriesCollection = "dirmon_entries"
	dirmonStatusCollection  = "dirmon_status"
	dirmonSeenCollection    = "dirmon_seen"
	dirmonFilesCollection   = "dirmon_files"
	dirmonCommitsCollection = "dirmon_commits"
)

// ErrDirmonTakenOver is returned when writing the record of a file that
// another server has taken over (its taker was judged dead).
var ErrDirmonTakenOver = errors.New("dirmon file was taken over by another server")

// ErrDirmonNotFound is returned for a Dirmon entry name that does not exist.
var ErrDirmonNotFound = errors.New("dirmon entry not found")

// ErrDirmonExists is returned when adding an entry whose name is taken.
var ErrDirmonExists = errors.New("dirmon entry already exists")

// DirmonEntry is one watched folder: which files (Pattern, matched against
// file names in Folder), what job they become (Type, Params, Upload) and
// where they go once taken (Archive, Failed).
type DirmonEntry struct {
	Name      string            `bson:"_id"`
	Folder    string            `bson:"folder"`
	Pattern   string            `bson:"pattern"`
	Type      string            `bson:"type"`
	Params    map[string]string `bson:"params,omitempty"`
	Upload    DirmonUpload      `bson:"upload"`
	Archive   string            `bson:"archive"`
	Failed    string            `bson:"failed"`
	Enabled   bool              `bson:"enabled"`
	CreatedAt time.Time         `bson:"created_at"`
}

// DirmonUpload are the upload options of an entry's jobs, as stored.
type DirmonUpload struct {
	Priority       int      `bson:"priority,omitempty"`
	Description    string   `bson:"description,omitempty"`
	SliceSize      int      `bson:"slice_size,omitempty"`
	Format         string   `bson:"format,omitempty"`
	MaxWorkers     int      `bson:"max_workers,omitempty"`
	Window         string   `bson:"window,omitempty"`
	RequireColumns []string `bson:"require_columns,omitempty"`
	AllowColumns   []string `bson:"allow_columns,omitempty"`
	Encrypt        *bool    `bson:"encrypt,omitempty"`
	Compress       *bool    `bson:"compress,omitempty"`
	StopOnError    *bool    `bson:"stop_on_error,omitempty"`
	CollectOutput  *bool    `bson:"collect_output,omitempty"`
}

// DirmonStatus is what the last scan of an entry found.
type DirmonStatus struct {
	Name    string    `bson:"_id"`
	ScanAt  time.Time `bson:"scan_at"`
	Server  string    `bson:"server"`
	Error   string    `bson:"error,omitempty"`
	Waiting int       `bson:"waiting"` // files seen once, not yet stable
	Taken   int       `bson:"taken"`   // files taken by this scan
	Resumed int       `bson:"resumed"` // files of a dead scan finished by this one
}

// Dirmon file states, in order.
const (
	DirmonTaken    = "taken"    // claimed; the upload may be under way
	DirmonUploaded = "uploaded" // the job exists; the file is still to move
	DirmonArchived = "archived" // moved to the archive folder: done
	DirmonFailed   = "failed"   // refused; moved to the failed folder with a reason
)

// DirmonFile is a file taken by a scan. Its _id is the file's identity
// (entry, path, size, modification time, inode): the unique insert that
// takes it.
type DirmonFile struct {
	Key     string        `bson:"_id"`
	Entry   string        `bson:"entry"`
	Path    string        `bson:"path"`
	Size    int64         `bson:"size"`
	ModTime time.Time     `bson:"mod_time"`
	Inode   uint64        `bson:"inode"`
	JobID   bson.ObjectID `bson:"job_id"`
	// Jobs are the job ids of every attempt so far, JobID (the current
	// attempt's) last: an earlier attempt's upload may have finished.
	Jobs    []bson.ObjectID `bson:"jobs,omitempty"`
	State   string          `bson:"state"`
	Server  string          `bson:"server"`
	Attempt int             `bson:"attempt"`
	// Tries counts uploads that failed for a passing reason (the database
	// unreachable); past a limit the file is failed.
	Tries   int        `bson:"tries,omitempty"`
	MovedTo string     `bson:"moved_to,omitempty"`
	Reason  string     `bson:"reason,omitempty"`
	TakenAt time.Time  `bson:"taken_at"`
	DoneAt  *time.Time `bson:"done_at,omitempty"`
}

// Done reports whether the file reached its final state.
func (f *DirmonFile) Done() bool { return f.State == DirmonArchived || f.State == DirmonFailed }

// DirmonSeen is a file seen by a scan and not taken yet: a later scan that
// finds the same identity takes it (the file was stable between the two).
type DirmonSeen struct {
	Key   string    `bson:"_id"`
	Entry string    `bson:"entry"`
	At    time.Time `bson:"at"`
}

func (s *Store) dirmonEntries() *mongo.Collection {
	return s.jobsDB.Collection(dirmonEntriesCollection)
}
func (s *Store) dirmonStatus() *mongo.Collection { return s.jobsDB.Collection(dirmonStatusCollection) }
func (s *Store) dirmonSeen() *mongo.Collection   { return s.jobsDB.Collection(dirmonSeenCollection) }
func (s *Store) dirmonFiles() *mongo.Collection  { return s.jobsDB.Collection(dirmonFilesCollection) }
func (s *Store) dirmonCommits() *mongo.Collection {
	return s.jobsDB.Collection(dirmonCommitsCollection)
}

// EnsureDirmon creates the collections that take unique inserts, before
// anyone races to create them with a first insert.
func (s *Store) EnsureDirmon(ctx context.Context) error {
	return ensureCollections(ctx, s.jobsDB, dirmonEntriesCollection, dirmonSeenCollection, dirmonFilesCollection, dirmonStatusCollection, dirmonCommitsCollection)
}

// AddDirmonEntry inserts e; a name in use is ErrDirmonExists.
func (s *Store) AddDirmonEntry(ctx context.Context, e *DirmonEntry) error {
	if err := s.EnsureDirmon(ctx); err != nil {
		return err
	}
	err := retry(ctx, func() error {
		_, err := s.dirmonEntries().InsertOne(ctx, e)
		return err
	})
	if isDup(err) {
		return fmt.Errorf("%w: %q", ErrDirmonExists, e.Name)
	}
	return err
}

// DirmonEntries returns every entry, by name.
func (s *Store) DirmonEntries(ctx context.Context) ([]DirmonEntry, error) {
	out, err := findAll[DirmonEntry](ctx, s.dirmonEntries(), bson.D{})
	slices.SortFunc(out, func(a, b DirmonEntry) int { return cmp.Compare(a.Name, b.Name) })
	return out, err
}

// SetDirmonEnabled enables or disables the entry name.
func (s *Store) SetDirmonEnabled(ctx context.Context, name string, enabled bool) error {
	var res *mongo.UpdateResult
	err := retry(ctx, func() error {
		var err error
		res, err = s.dirmonEntries().UpdateOne(ctx, bson.D{{Key: "_id", Value: name}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "enabled", Value: enabled}}}})
		return err
	})
	if err == nil && res.MatchedCount == 0 {
		return fmt.Errorf("%w: %q", ErrDirmonNotFound, name)
	}
	return err
}

// RemoveDirmonEntry deletes the entry name with its status and the files
// seen and not taken. Records of files taken stay: a file being uploaded by
// a scan is finished by it, done records age out (PruneDirmonFiles), and
// the record of a file left unfinished stays with the file (the entry added
// again under the name resumes it).
func (s *Store) RemoveDirmonEntry(ctx context.Context, name string) error {
	var res *mongo.DeleteResult
	err := retry(ctx, func() error {
		var err error
		res, err = s.dirmonEntries().DeleteOne(ctx, bson.D{{Key: "_id", Value: name}})
		return err
	})
	if err != nil {
		return err
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: %q", ErrDirmonNotFound, name)
	}
	return errors.Join(
		retry(ctx, func() error {
			_, err := s.dirmonStatus().DeleteOne(ctx, bson.D{{Key: "_id", Value: name}})
			return err
		}),
		retry(ctx, func() error {
			_, err := s.dirmonSeen().DeleteMany(ctx, bson.D{{Key: "entry", Value: name}})
			return err
		}))
}

// SetDirmonStatus records what a scan of an entry found.
func (s *Store) SetDirmonStatus(ctx context.Context, st *DirmonStatus) error {
	return retry(ctx, func() error {
		_, err := s.dirmonStatus().ReplaceOne(ctx, bson.D{{Key: "_id", Value: st.Name}}, st, options.Replace().SetUpsert(true))
		return err
	})
}

// DirmonStatuses returns the status of every entry scanned, by name.
func (s *Store) DirmonStatuses(ctx context.Context) (map[string]DirmonStatus, error) {
	list, err := findAll[DirmonStatus](ctx, s.dirmonStatus(), bson.D{})
	out := make(map[string]DirmonStatus, len(list))
	for _, st := range list {
		out[st.Name] = st
	}
	return out, err
}

// ClaimDirmonScan reports whether this call is the one to scan entry name
// in the current period of length every (wall clock). It removes the
// claim of two periods ago.
func (s *Store) ClaimDirmonScan(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error) {
	every = max(every, time.Millisecond)
	period := now.UnixNano() / int64(every)
	key := func(p int64) string { return fmt.Sprintf("dirmon:%s:%d:%d", name, every.Milliseconds(), p) }
	return s.claimPeriod(ctx, key, period)
}

// DirmonSightings returns the files of entry seen and not taken yet.
func (s *Store) DirmonSightings(ctx context.Context, entry string) ([]DirmonSeen, error) {
	return findAll[DirmonSeen](ctx, s.dirmonSeen(), bson.D{{Key: "entry", Value: entry}})
}

// SeeDirmonFile records a first sighting of a file; a second sighting of
// the same identity keeps the first time.
func (s *Store) SeeDirmonFile(ctx context.Context, seen *DirmonSeen) error {
	err := retry(ctx, func() error {
		_, err := s.dirmonSeen().InsertOne(ctx, seen)
		return err
	})
	if isDup(err) {
		return nil
	}
	return err
}

// ForgetDirmonSightings deletes sightings by key (files taken, changed or
// gone).
func (s *Store) ForgetDirmonSightings(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return retry(ctx, func() error {
		_, err := s.dirmonSeen().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		return err
	})
}

// TakeDirmonFile takes a file: the unique insert of its record. It reports
// false, without error, when the file was taken already (by this server or
// another).
func (s *Store) TakeDirmonFile(ctx context.Context, f *DirmonFile) (bool, error) {
	err := retry(ctx, func() error {
		_, err := s.dirmonFiles().InsertOne(ctx, f)
		return err
	})
	if isDup(err) {
		return false, nil
	}
	return err == nil, err
}

// dirmonTakeoverPrefix begins the id of every takeover claim in job_claims:
// the prefix, the file's key, a colon and the attempt.
const dirmonTakeoverPrefix = "dirmon-file:"

// dirmonTakeover is the claim of one attempt on a file (in job_claims):
// the server that won it and the attempt's own job id, so that the record
// can be written from it by anyone when the winner died before writing it.
type dirmonTakeover struct {
	ID     string        `bson:"_id"`
	Server string        `bson:"server"`
	Job    bson.ObjectID `bson:"job"`
	At     time.Time     `bson:"at"`
}

// TakeOverDirmonFile claims the next attempt of a file whose taker died
// (or stopped): of the servers that try, exactly one gets true, and its
// name, the attempt and the attempt's own job id (job) are written to the
// record. A file whose job is committed (DirmonUploaded) keeps that job:
// the attempt only moves the file, under the job's name. f is the record
// as the caller read it, and is the record as written on return.
//
// The claim is a unique insert that carries what the record is to say, and
// the record is written after it: a loser writes the winner's claim to the
// record too, so that a winner killed between the two still shows as the
// file's taker (and, dead, is taken over at the next scan) instead of
// holding the file forever with a claim nobody reads. A claim already in
// this server's name is its own (an insert retried after its answer was
// lost, or an earlier process of the same name). The record is written
// only over the record f says (attempt, state, job): a taker judged dead
// that still runs may have recorded progress since f was read, and that is
// read again, never undone; a file done meanwhile is left alone (false).
//
// When the claim is won and its record write fails, the answer is true
// with the error: the file is the caller's to finish once it is recorded
// (by the caller's next scan, or by any other server's).
func (s *Store) TakeOverDirmonFile(ctx context.Context, f *DirmonFile, server string, job bson.ObjectID) (bool, error) {
	attempt := f.Attempt + 1
	claim := dirmonTakeover{ID: fmt.Sprintf("%s%s:%d", dirmonTakeoverPrefix, f.Key, attempt), Server: server, Job: job, At: time.Now()}
	err := retry(ctx, func() error {
		_, err := s.jobClaims().InsertOne(ctx, claim)
		return err
	})
	won := err == nil
	if isDup(err) {
		var other dirmonTakeover
		err = retry(ctx, func() error {
			return s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: claim.ID}}).Decode(&other)
		})
		if err != nil {
			return false, fmt.Errorf("dirmon takeover of %s: reading the winner's claim: %w", f.Path, err)
		}
		claim, won = other, other.Server == server
	} else if err != nil {
		return false, err
	}
	const looks = 3 // the record may move on between a read and a write: read again
	for range looks {
		if f.Done() || f.Attempt >= attempt {
			// Finished, or this attempt (or a later one) is recorded:
			// ours when the record names this claim.
			return won && !f.Done() && f.Attempt == attempt && f.Server == claim.Server, nil
		}
		next := *f
		next.Jobs = slices.Clone(f.Jobs)
		if len(next.Jobs) == 0 {
			next.Jobs = []bson.ObjectID{f.JobID}
		}
		next.Attempt, next.Server = attempt, claim.Server
		if f.State != DirmonUploaded {
			next.JobID, next.Jobs = claim.Job, append(next.Jobs, claim.Job)
		}
		var res *mongo.UpdateResult
		err := retry(ctx, func() error {
			var err error
			res, err = s.dirmonFiles().UpdateOne(ctx,
				bson.D{{Key: "_id", Value: f.Key}, {Key: "attempt", Value: f.Attempt}, {Key: "state", Value: f.State}, {Key: "job_id", Value: f.JobID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "attempt", Value: next.Attempt}, {Key: "server", Value: next.Server},
					{Key: "job_id", Value: next.JobID}, {Key: "jobs", Value: next.Jobs}}}})
			return err
		})
		if err != nil {
			return won, fmt.Errorf("dirmon takeover of %s: %w", f.Path, err)
		}
		if res.MatchedCount > 0 {
			*f = next
			return won, nil
		}
		fresh, err := s.dirmonFile(ctx, f.Key)
		if err != nil {
			return won, fmt.Errorf("dirmon takeover of %s: %w", f.Path, err)
		}
		*f = *fresh
	}
	return won, fmt.Errorf("dirmon takeover of %s: the record kept changing", f.Path)
}

// dirmonFile reads the record of the file key.
func (s *Store) dirmonFile(ctx context.Context, key string) (*DirmonFile, error) {
	list, err := findAll[DirmonFile](ctx, s.dirmonFiles(), bson.D{{Key: "_id", Value: key}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("dirmon file record %s: %w", key, mongo.ErrNoDocuments)
	}
	return &list[0], nil
}

// UpdateDirmonFile writes a file record's progress (state, the job id the
// attempt settled on, tries, destination, reason, done time). Only the
// file's taker writes it: a record taken over since (a later attempt) is
// left alone and the answer is ErrDirmonTakenOver.
func (s *Store) UpdateDirmonFile(ctx context.Context, f *DirmonFile) error {
	var res *mongo.UpdateResult
	err := retry(ctx, func() error {
		var err error
		res, err = s.dirmonFiles().UpdateOne(ctx, bson.D{{Key: "_id", Value: f.Key}, {Key: "attempt", Value: f.Attempt}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "state", Value: f.State},
				{Key: "job_id", Value: f.JobID},
				{Key: "tries", Value: f.Tries},
				{Key: "moved_to", Value: f.MovedTo},
				{Key: "reason", Value: f.Reason},
				{Key: "done_at", Value: f.DoneAt},
			}}})
		return err
	})
	if err == nil && res.MatchedCount == 0 {
		return ErrDirmonTakenOver
	}
	return err
}

// dirmonCommit is the one job made of a file.
type dirmonCommit struct {
	Job bson.ObjectID `bson:"job"`
}

// CommitDirmonFile makes job the one job of the file key, unless another
// was made it first: a unique insert, so that of the attempts that
// uploaded the file (a taker judged dead may still finish its upload),
// exactly one job is released. It returns the job that won.
func (s *Store) CommitDirmonFile(ctx context.Context, key string, job bson.ObjectID) (bson.ObjectID, error) {
	err := retry(ctx, func() error {
		_, err := s.dirmonCommits().InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "job", Value: job}, {Key: "at", Value: time.Now()}})
		return err
	})
	if err == nil {
		return job, nil
	}
	if !isDup(err) {
		return bson.ObjectID{}, err
	}
	list, err := findAll[dirmonCommit](ctx, s.dirmonCommits(), bson.D{{Key: "_id", Value: key}})
	if err != nil {
		return bson.ObjectID{}, err
	}
	if len(list) == 0 {
		return bson.ObjectID{}, fmt.Errorf("dirmon commit of %s: lost and not found", key)
	}
	return list[0].Job, nil
}

// DirmonCommitted returns the job committed as the file key's one job, if
// one was (CommitDirmonFile), without committing one.
func (s *Store) DirmonCommitted(ctx context.Context, key string) (bson.ObjectID, bool, error) {
	list, err := findAll[dirmonCommit](ctx, s.dirmonCommits(), bson.D{{Key: "_id", Value: key}})
	if err != nil || len(list) == 0 {
		return bson.ObjectID{}, false, err
	}
	return list[0].Job, true, nil
}

// DirmonFiles returns the records of files taken: of entry (all entries
// when empty), newest first, at most limit (no limit when <= 0).
func (s *Store) DirmonFiles(ctx context.Context, entry string, limit int) ([]DirmonFile, error) {
	filter := bson.D{}
	if entry != "" {
		filter = bson.D{{Key: "entry", Value: entry}}
	}
	out, err := findAll[DirmonFile](ctx, s.dirmonFiles(), filter)
	slices.SortStableFunc(out, func(a, b DirmonFile) int { return b.TakenAt.Compare(a.TakenAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// PruneDirmonFiles deletes the records of files done before cutoff with
// their takeover claims, the sightings older than cutoff (files that
// appeared once and went), and the commits older than cutoff except those
// of files not done yet: a file stuck that long (its servers down for a
// month) still finishes under the job committed for it, never under a
// second one. A file returning with the same identity after its record is
// pruned meets none of its old claims.
func (s *Store) PruneDirmonFiles(ctx context.Context, cutoff time.Time) error {
	type fileAttempt struct {
		Key     string `bson:"_id"`
		Attempt int    `bson:"attempt"`
	}
	unfinished, err := findAll[fileAttempt](ctx, s.dirmonFiles(),
		bson.D{{Key: "state", Value: bson.D{{Key: "$nin", Value: bson.A{DirmonArchived, DirmonFailed}}}}})
	if err != nil {
		return fmt.Errorf("pruning dirmon records: reading the unfinished files: %w", err)
	}
	keep := bson.A{}
	for _, f := range unfinished {
		keep = append(keep, f.Key)
	}
	done, err := findAll[fileAttempt](ctx, s.dirmonFiles(), bson.D{{Key: "done_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return fmt.Errorf("pruning dirmon records: reading the files done: %w", err)
	}
	// A file's takeover claims are those of its attempts after the first,
	// and at most one past the attempt recorded (a takeover that lost to
	// the file's end). Deleted by _id (the embedded database's one indexed
	// lookup) before the record that names them.
	for _, f := range done {
		for attempt := 2; attempt <= f.Attempt+1; attempt++ {
			id := fmt.Sprintf("%s%s:%d", dirmonTakeoverPrefix, f.Key, attempt)
			err := retry(ctx, func() error {
				_, err := s.jobClaims().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
				return err
			})
			if err != nil {
				return fmt.Errorf("pruning dirmon takeover claims: %w", err)
			}
		}
	}
	// The commits go before the records: a record pruned with its commit
	// left would leave that job to a file that returns with the same
	// identity.
	err = retry(ctx, func() error {
		_, err := s.dirmonCommits().DeleteMany(ctx, bson.D{
			{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}},
			{Key: "_id", Value: bson.D{{Key: "$nin", Value: keep}}},
		})
		return err
	})
	if err == nil {
		err = retry(ctx, func() error {
			_, err := s.dirmonFiles().DeleteMany(ctx, bson.D{{Key: "done_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
			return err
		})
	}
	return errors.Join(err,
		retry(ctx, func() error {
			_, err := s.dirmonSeen().DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
			return err
		}))
}
