// Package store holds every collection name, filter, update and index
// rocketjob uses, for the jobs database (jobs, servers, claims) and the work
// database (slices). It detects FerretDB at connect and picks the slice claim
// strategy that is correct there.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Defaults for Config.
const (
	DefaultURI     = "mongodb://127.0.0.1:27017/"
	DefaultDB      = "rocketjob"
	DefaultWorkDB  = "rocketjob_work"
	ConnectTimeout = 5 * time.Second
)

// Config says where the two databases are.
type Config struct {
	URI     string // jobs database server; default DefaultURI
	WorkURI string // work (slices) database server; default URI
	DB      string // jobs database name; default DefaultDB
	WorkDB  string // work database name; default DefaultWorkDB
	// ClaimStrategy forces the slice claim strategy: StrategyFindAndModify
	// (atomic updates; MongoDB only: Open refuses it on a FerretDB work
	// database with ErrClaimStrategyUnsafe) or StrategyInsert (unique
	// inserts; correct on both). Empty or StrategyAuto picks by server kind.
	ClaimStrategy string
}

// Slice claim strategies (Config.ClaimStrategy).
const (
	StrategyAuto          = "auto"
	StrategyFindAndModify = "findandmodify"
	StrategyInsert        = "insert"
)

// Store is a connection to the jobs and work databases.
type Store struct {
	jobsClient *mongo.Client
	workClient *mongo.Client
	jobsDB     *mongo.Database
	workDB     *mongo.Database
	// runqDB holds the run-queue segments of this build and their marks
	// (segments.go): a database of its own on FerretDB (RunQueueDB), the
	// jobs database elsewhere.
	runqDB *mongo.Database
	// ferret reports that the jobs database is FerretDB: no change streams,
	// and a filter other than {_id} costs a scan in Go. The work database
	// is detected on its own and picks the slice strategy: the two
	// databases may be different servers of different kinds.
	ferret     bool
	workFerret bool
	// jobsStrategy is how the jobs database's jobs are written, selected
	// and listed: claimJobs (FerretDB's, jobs_claims.go), where a unique
	// insert of a claim decides each transition and selections and
	// listings read the run queue and the state index, or conditionalJobs
	// (MongoDB's, jobs_conditional.go), where an update conditioned on the
	// job's version decides and selections and listings query the jobs
	// collection on its indexes.
	jobsStrategy jobStrategy
	slices       SliceStore
	// newestFallbacks counts the newest-first listings that the windows
	// could not fill (recent.go); shared by the Store's copies.
	newestFallbacks *atomic.Int64
	// segmentListReads counts the run-queue segments that listings read
	// (tests).
	segmentListReads *atomic.Int64
	// segmentInfoReads counts the reads of the segments' info (tests).
	segmentInfoReads *atomic.Int64
	// listJobReads counts the jobs that most-urgent-first listings read by
	// id (tests).
	listJobReads *atomic.Int64
	// offersChecked counts the segment offers whose jobs checkOffers read
	// (tests).
	offersChecked *atomic.Int64
	// marksReads counts the reads of segments' marks by selections
	// (tests).
	marksReads *atomic.Int64
	// segments is what this Store knows of the run queue's segments
	// (segments.go); shared by the Store's copies.
	segments *segments
	// queueNames caches the collection names selections read (queue.go);
	// shared by the Store's copies.
	queueNames *queueNames
}

// Open connects to both databases, detects FerretDB and creates the indexes.
// It fails within ConnectTimeout when a server cannot be reached, with an
// error that names the URI (password hidden).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URI == "" {
		cfg.URI = DefaultURI
	}
	if cfg.WorkURI == "" {
		cfg.WorkURI = cfg.URI
	}
	if cfg.DB == "" {
		cfg.DB = DefaultDB
	}
	if cfg.WorkDB == "" {
		cfg.WorkDB = DefaultWorkDB
	}
	switch cfg.ClaimStrategy {
	case "", StrategyAuto, StrategyFindAndModify, StrategyInsert:
	default:
		return nil, fmt.Errorf("unknown claim strategy %q (valid: auto, findandmodify, insert)", cfg.ClaimStrategy)
	}
	jc, err := connect(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	wc := jc
	if cfg.WorkURI != cfg.URI {
		if wc, err = connect(ctx, cfg.WorkURI); err != nil {
			_ = jc.Disconnect(context.Background())
			return nil, err
		}
	}
	s := &Store{jobsClient: jc, workClient: wc, jobsDB: jc.Database(cfg.DB), workDB: wc.Database(cfg.WorkDB),
		newestFallbacks: new(atomic.Int64), segmentListReads: new(atomic.Int64), segmentInfoReads: new(atomic.Int64),
		listJobReads: new(atomic.Int64), offersChecked: new(atomic.Int64), marksReads: new(atomic.Int64), segments: newSegments(), queueNames: &queueNames{}}
	if s.ferret, err = isFerret(ctx, s.jobsDB); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("database %s: %w", Redact(cfg.URI), err)
	}
	s.workFerret = s.ferret
	s.jobsStrategy = jobStrategyFor(s.ferret)
	if wc != jc {
		if s.workFerret, err = isFerret(ctx, s.workDB); err != nil {
			s.Close(context.Background())
			return nil, fmt.Errorf("database %s: %w", Redact(cfg.WorkURI), err)
		}
	}
	if !s.ferret {
		s.jobsDB = jc.Database(cfg.DB, mongoDurability())
	}
	s.runqDB = s.jobsDB
	if name := RunQueueDB(cfg.DB); s.ferret && name != cfg.DB {
		s.runqDB = jc.Database(name)
	}
	if !s.workFerret {
		s.workDB = wc.Database(cfg.WorkDB, mongoDurability())
	}
	strategy := StrategyFindAndModify
	if cfg.ClaimStrategy == StrategyInsert || s.workFerret && cfg.ClaimStrategy != StrategyFindAndModify {
		strategy = StrategyInsert
	}
	if strategy == StrategyFindAndModify && s.workFerret {
		s.Close(context.Background())
		return nil, fmt.Errorf("work database %s is on FerretDB, where findAndModify reads a slice and then writes it "+
			"(two workers can claim the same slice): use the insert or auto claim strategy: %w", cfg.WorkDB, ErrClaimStrategyUnsafe)
	}
	if strategy == StrategyInsert {
		s.slices = &ferretSlices{db: s.workDB, ferret: s.workFerret}
	} else {
		s.slices = &mongoSlices{db: s.workDB}
	}
	if err := s.recordStrategy(ctx, strategy, cfg.ClaimStrategy); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	if err := s.ensureIndexes(ctx); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("creating indexes: %w", err)
	}
	return s, nil
}

func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(ConnectTimeout).
		SetConnectTimeout(ConnectTimeout).
		SetAppName("rocketjob").
		SetRetryWrites(true).
		SetRetryReads(true)
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", Redact(uri), err)
	}
	pctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := c.Ping(pctx, nil); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, fmt.Errorf("cannot reach database at %s: %w", Redact(uri), shortErr(err))
	}
	return c, nil
}

// shortErr keeps the driver's long server-selection errors to their gist.
func shortErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err) {
		return errors.New("no answer within " + ConnectTimeout.String())
	}
	msg := err.Error()
	if i := strings.Index(msg, ", Type: Unknown"); i > 0 {
		msg = msg[:i]
	}
	return errors.New(msg)
}

// Redact hides the password of a connection URI.
func Redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparseable URI)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}

func isFerret(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, err
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

// Ferret reports whether the jobs database is FerretDB.
func (s *Store) Ferret() bool { return s.ferret }

// WorkFerret reports whether the work database is FerretDB.
func (s *Store) WorkFerret() bool { return s.workFerret }

// mongoDurability is how the jobs and work databases are used on MongoDB,
// stated here rather than left to the server's defaults: a write is
// acknowledged once a majority of the replica set has it in its journal
// (a transition, claim or completion that a failover could roll back would
// let two servers run the same work), and reads see only majority-committed
// data, so no decision rests on a write that may be rolled back. Retryable
// writes are on (the driver's default, set explicitly in connect). On a
// standalone mongod majority means the one node. FerretDB gets its
// defaults: it has no replica set and ignores both.
func mongoDurability() *options.DatabaseOptionsBuilder {
	return options.Database().
		SetWriteConcern(writeconcern.Majority()).
		SetReadConcern(readconcern.Majority())
}

// ErrClaimStrategyMismatch is wrapped by the error of Open when the work
// database was first used with the other slice claim strategy: the two
// keep slices differently, and a process on the wrong one would process
// slices twice or not at all.
var ErrClaimStrategyMismatch = errors.New("claim strategy differs from the one the work database uses")

// ErrClaimStrategyUnsafe is wrapped by the error of Open when the
// findandmodify claim strategy is asked for on a FerretDB work database:
// FerretDB answers findAndModify with a read and then a write of the whole
// slice, so two workers can claim one slice (and one's failure can be
// written over). Nothing is recorded in the database.
var ErrClaimStrategyUnsafe = errors.New("claim strategy is not safe on this database")

// settingsCollection (work database) holds {_id: "claim_strategy", value}
// written by the first process that opens the database.
const settingsCollection = "settings"

// recordStrategy records the slice claim strategy in the work database the
// first time it is opened and, afterwards, refuses a process that would use
// the other one. asked is what the configuration forced ("" or auto: the
// choice followed the database kind).
func (s *Store) recordStrategy(ctx context.Context, strategy, asked string) error {
	coll := s.workDB.Collection(settingsCollection)
	err := retry(ctx, func() error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "claim_strategy"}, {Key: "value", Value: strategy}, {Key: "at", Value: time.Now().UTC()}})
		if mongo.IsDuplicateKeyError(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the claim strategy: %w", err)
	}
	var rec struct {
		Value string `bson:"value"`
	}
	err = retry(ctx, func() error {
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: "claim_strategy"}}).Decode(&rec)
	})
	if err != nil {
		return fmt.Errorf("reading the claim strategy: %w", err)
	}
	if rec.Value == strategy {
		return nil
	}
	why := "the database kind picked " + strategy
	if asked != "" && asked != StrategyAuto {
		why = "this process asked for " + strategy
	}
	return fmt.Errorf("work database %s uses the %s claim strategy and %s (set the same claim strategy on every process): %w",
		s.workDB.Name(), rec.Value, why, ErrClaimStrategyMismatch)
}

// Slices returns the slice store strategy chosen for the work database.
func (s *Store) Slices() SliceStore { return s.slices }

// WithSlices replaces the slice strategy (for the conformance tests).
func (s *Store) WithSlices(mongoStrategy bool) *Store {
	c := *s
	if mongoStrategy {
		c.slices = &mongoSlices{db: s.workDB}
	} else {
		c.slices = &ferretSlices{db: s.workDB, ferret: s.workFerret}
	}
	return &c
}

// WithJobStrategy returns a Store on the same connections whose job
// writes, selections and listings take the claims strategy (FerretDB's) or
// the conditional one (MongoDB's), whatever the database (for the
// conformance tests: the conditional strategy is not atomic on FerretDB,
// so only one writer at a time may use it there).
func (s *Store) WithJobStrategy(claims bool) *Store {
	c := *s
	c.jobsStrategy = jobStrategyFor(claims)
	return &c
}

// jobStrategyFor returns the claims job strategy (claims) or the
// conditional one.
func jobStrategyFor(claims bool) jobStrategy {
	if claims {
		return claimJobs{}
	}
	return conditionalJobs{}
}

// Close disconnects both clients.
func (s *Store) Close(ctx context.Context) error {
	s.forgetRecent() // recent.go
	err := s.jobsClient.Disconnect(ctx)
	if s.workClient != s.jobsClient {
		err = errors.Join(err, s.workClient.Disconnect(ctx))
	}
	return err
}

// jobIndexes returns the indexes of the jobs collection on MongoDB (the
// slice strategies create their own). The driver mutates index options, so
// each call builds new ones.
func jobIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "state", Value: 1}, {Key: "priority", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("state_priority_id")},
		{Keys: bson.D{{Key: "type", Value: 1}, {Key: "state", Value: 1}}, Options: options.Index().SetName("type_state")},
		retentionIndex(),
		// Newest-first listings by state.
		{Keys: bson.D{{Key: "state", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("state_id")},
	}
}

// ferretUnusedIndexes are the jobs indexes that builds before 2026-12-03
// created on FerretDB too, where nothing reads them (jobIndexModels).
var ferretUnusedIndexes = []string{"state_priority_id", "type_state"}

func (s *Store) ensureIndexes(ctx context.Context) error {
	// Create the collections that take unique-insert claims before anyone
	// races to create them with a first insert.
	if err := ensureCollections(ctx, s.jobsDB, jobsCollection, jobClaimsCollection, slotsCollection, serversCollection, commandsCollection, cronSuccessorsCollection); err != nil {
		return err
	}
	if s.ferret {
		// And the end records' (read by _id: the embedded database indexes
		// a table soon after it exists, not only once a run ended).
		if err := ensureCollections(ctx, s.jobsDB, endRecordsCollection); err != nil {
			return err
		}
		return dropIndexes(ctx, s.jobs(), ferretUnusedIndexes)
	}
	return ensureIndexes(ctx, s.jobs(), s.jobIndexModels())
}

// jobIndexModels is jobIndexes on MongoDB, and nothing on FerretDB: v1.24.2
// pushes down a filter on _id alone (its own index serves it) and runs every
// other filter and sort in Go, so another index would serve no query and
// only be written, at every insert and at every update of its fields (a
// job's state changes at every transition). The claims strategy reads by
// _id, from the run queue and from the state index instead (liststate.go).
func (s *Store) jobIndexModels() []mongo.IndexModel {
	if s.ferret {
		return nil
	}
	return jobIndexes()
}

// indexNames returns the names of coll's indexes.
func indexNames(ctx context.Context, coll *mongo.Collection) ([]string, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var docs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = d.Name
	}
	return names, nil
}

// dropIndexes drops the named indexes of coll that exist.
func dropIndexes(ctx context.Context, coll *mongo.Collection, names []string) error {
	have, err := indexNames(ctx, coll)
	if err != nil {
		return err
	}
	for _, name := range have {
		if !slices.Contains(names, name) {
			continue
		}
		err := coll.Indexes().DropOne(ctx, name)
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && (ce.Code == 27 || ce.Name == "IndexNotFound")) { // dropped meanwhile
			return fmt.Errorf("dropping index %s of %s: %w", name, coll.Name(), err)
		}
	}
	return nil
}

// ensureCollections creates the named collections that do not exist yet.
func ensureCollections(ctx context.Context, db *mongo.Database, names ...string) error {
	have, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, name := range names {
		if slices.Contains(have, name) {
			continue
		}
		err := db.CreateCollection(ctx, name)
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && (ce.Code == 48 || ce.Name == "NamespaceExists")) {
			return fmt.Errorf("creating collection %s: %w", name, err)
		}
	}
	return nil
}

// ensureIndexes creates the indexes that do not exist yet, one at a time:
// FerretDB v1.24.2 panics on a createIndexes of indexes that already exist.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, models []mongo.IndexModel) error {
	have, err := indexNames(ctx, coll)
	if err != nil {
		return err
	}
	for _, m := range models {
		var o options.IndexOptions
		for _, set := range m.Options.List() {
			_ = set(&o)
		}
		if o.Name != nil && slices.Contains(have, *o.Name) {
			continue
		}
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// transient reports whether err is worth retrying: SQLite lock contention
// and schema changes in FerretDB, and network blips.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") ||
		// SQLITE_SCHEMA, from FerretDB on SQLite when another connection
		// created or dropped a table (a run-queue segment) while the
		// statement was prepared: nothing was done, and a retry prepares
		// it against the new schema.
		strings.Contains(msg, "database schema has changed")
}

// retryBudget bounds how long one operation is retried: long enough to ride
// out SQLite lock contention and a database restart, short enough that a
// command facing a dead database gives up with an error instead of hanging.
const retryBudget = 20 * time.Second

// retry runs op until it succeeds, fails with a non-transient error, the
// retry budget is spent, or ctx ends.
func retry(ctx context.Context, op func() error) error {
	delay := 5 * time.Millisecond
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := op()
		if !transient(err) {
			return storeErr(err)
		}
		if time.Since(start) > retryBudget {
			return &UnavailableError{Waited: time.Since(start).Round(time.Second), Err: err}
		}
		select {
		case <-ctx.Done():
			return errors.Join(storeErr(err), ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

// UnavailableError is what an operation returns when the database kept
// failing with connection or lock errors for the whole retry budget. Its
// message is one short line; Unwrap gives the driver's error.
type UnavailableError struct {
	Waited time.Duration
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("database unavailable (retried for %s): %s", e.Waited, StripFrames(lastError(e.Err)))
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// frames matches the "[file.go:123 pkg.Func] " prefixes that FerretDB's
// lazyerrors package puts in its error messages (Go source locations of the
// database server, meaningless to users).
var frames = regexp.MustCompile(`\[[^\]\s]+\.go:\d+[^\]]*\] ?`)

// StripFrames removes FerretDB's source locations from an error message.
func StripFrames(msg string) string { return frames.ReplaceAllString(msg, "") }

// storeErr is how retry returns a failure: a full disk becomes a
// *DiskFullError, a message with FerretDB's source locations loses them
// (the driver's error stays reachable with errors.As); other errors are
// returned unchanged.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case isDiskFull(err):
		return &DiskFullError{Err: err}
	case frames.MatchString(err.Error()):
		return &cleanError{msg: StripFrames(err.Error()), err: err}
	}
	return err
}

type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// ErrDiskFull is matched (errors.Is) by the errors of operations that failed
// because the database server's disk is full.
var ErrDiskFull = errors.New("the database's disk is full")

// DiskFullError is an operation that failed on a full disk. Where, when
// known, says which disk (see Store.Locate).
type DiskFullError struct {
	Where string // e.g. "data folder /var/lib/rocketjob on host db1"
	Err   error  // the driver's error
}

func (e *DiskFullError) Error() string {
	if e.Where == "" {
		return ErrDiskFull.Error()
	}
	return ErrDiskFull.Error() + " (" + e.Where + ")"
}

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

func (e *DiskFullError) Unwrap() error { return e.Err }

// isDiskFull recognises a full disk: SQLite's SQLITE_FULL as FerretDB passes
// it on, MongoDB's OutOfDiskSpace, or ENOSPC in words.
func isDiskFull(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(14031) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "No space left on device") ||
		strings.Contains(msg, "no space left on device")
}

// The embedded database describes itself in this document (written by
// internal/embedded, which this package must not import).
const (
	embeddedInfoDB   = "rocketjob_embedded"
	embeddedInfoColl = "info"
	embeddedInfoID   = "server"
)

// Locate fills in where the disk is full when err holds a *DiskFullError
// and the database is rocketjob's embedded one ("data folder DIR on host
// H"), and returns err. It reads one small document, within 2 s; on any
// problem err is returned as it was.
func (s *Store) Locate(ctx context.Context, err error) error {
	var df *DiskFullError
	if !errors.As(err, &df) || df.Where != "" {
		return err
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, c := range []*mongo.Client{s.workClient, s.jobsClient} {
		var info struct {
			DataFolder string `bson:"data_folder"`
			Host       string `bson:"host"`
		}
		e := c.Database(embeddedInfoDB).Collection(embeddedInfoColl).FindOne(lctx, bson.D{{Key: "_id", Value: embeddedInfoID}}).Decode(&info)
		if e == nil && info.DataFolder != "" {
			df.Where = "data folder " + info.DataFolder
			if info.Host != "" {
				df.Where += " on host " + info.Host
			}
			break
		}
	}
	return err
}

// lastError pulls the gist out of the driver's long server-selection errors
// ("... Last error: dial tcp ...: connection refused }, ] }").
func lastError(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "Last error: "); ok {
		if i := strings.Index(rest, " }"); i > 0 {
			return rest[:i]
		}
		return rest
	}
	return msg
}

// collectionNames lists db's collections, retrying transient failures.
func collectionNames(ctx context.Context, db *mongo.Database) ([]string, error) {
	var names []string
	err := retry(ctx, func() error {
		var err error
		names, err = db.ListCollectionNames(ctx, bson.D{})
		return err
	})
	return names, err
}

// findAll runs a query, retried as a whole, and decodes every document.
func findAll[T any](ctx context.Context, coll *mongo.Collection, filter any, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	var out []T
	err := retry(ctx, func() error {
		cur, err := coll.Find(ctx, filter, opts...)
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur) // All closes it, unless ctx ends first
		out = nil
		return cur.All(ctx, &out)
	})
	return out, err
}

// compareIDs orders ObjectIDs as the database does: by their bytes, so by
// creation second first.
func compareIDs(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) }

// isDup reports a duplicate-key error: the loser of a unique insert.
func isDup(err error) bool { return mongo.IsDuplicateKeyError(err) }

// WorkCollections lists the slice collections of the work database
// (slices_<job>_<kind>), leaving out the database's own settings.
func (s *Store) WorkCollections(ctx context.Context) ([]string, error) {
	names, err := s.workDB.ListCollectionNames(ctx, bson.D{})
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "slices_") }), err
}

// closeCursor closes cur, on the server too, even when ctx has ended (a
// read cancelled half-way): a cursor left open on FerretDB keeps one of
// its database's SQLite connections, and a read of the collection, until
// it times out, and enough of them stall every write of that database.
func closeCursor(ctx context.Context, cur *mongo.Cursor) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = cur.Close(cctx)
}
