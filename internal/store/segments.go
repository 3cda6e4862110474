package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Run-queue segments (FerretDB).
//
// Removing a started job's copy from the run queue costs FerretDB a delete
// statement per job, as much as the job's own update. So the copies of
// simple jobs written in bulk (InsertJobs with at least segmentMin simple
// jobs of a priority in one batch: EnqueueMany, or concurrent Enqueue
// calls that a Client coalesced) go into collections of their own,
// segments of at most segmentMax copies, runqb_p<NNN>_<first id>_<last
// id>_<Unix ms> in the run-queue database (below), each written once and
// dropped whole, its copies packed (packCopies):
// a copy in a segment is an offer of its job at its version, never updated
// nor removed alone. Other copies, and every later copy of a job, go to the
// priority's main collection as before (queue.go).
//
// An offer is taken once its job is stored past the offered version (or
// is gone): its writer then put whatever copy the job needs next in the
// main collection. A claim alone does not take it: a held start is not
// written yet, and should its server die, the other servers must still
// find the offer, trip over the claim and roll it forward. Each Store
// remembers the offers it saw taken (by its own starts, by the marks of
// the others, and by conflicts whose repair read the job), skips those and
// the ones it claimed when it selects, and drops a segment once every
// offer in it is taken: one command per segment instead of a delete per
// job. An offer found taken without a start (checkOffers, or a claim of
// this Store's that was not a start) is repaired first as a conflicting
// start would repair its copy: the job gets its copy if it is runnable.
//
// A segment is complete once its seal (a document with the nil ObjectID)
// is written after its copies. A reader caches a complete segment's copies
// and reads it no more; it reads an unsealed one again at every selection
// (its insertMany may not all be visible yet) and never drops it before it
// settles (segmentSettle): its writer may still be writing, or have died
// (its queue intent then gets the jobs their copies in the main
// collection). A writer whose seal lands later than half of segmentSettle
// keeps its intent as well: a reader may have taken the segment for settled
// without some of its copies.

// segmentMin is how many simple jobs of one priority an insertMany must
// hold for their copies to go into a segment of their own; fewer go into
// the priority's main queue collection.
const segmentMin = 64

// segmentMax is how many copies a segment holds at most (an insertMany of
// new jobs holds InsertBatch). Each segment is a table to SQLite, and its
// marks another, and SQLite reads its whole schema again on every
// connection after a table is created or dropped: fewer, larger segments
// keep a queue of a million jobs from making every statement slower
// (measured behind 200,000 queued jobs: 0.51-0.64 of the baseline's rate
// at 1,000 a segment, 0.39-0.41 at 250). Larger ones would make every
// reader cache more copies per segment.
const segmentMax = 1000

// segmentSettle is how old an unsealed segment must be before a reader
// takes what it holds for complete (a variable for tests).
var segmentSettle = time.Minute

// segmentIdle is how long a reader leaves a settled segment with nothing due
// for it unread.
const segmentIdle = 10 * time.Second

// segmentPrefix starts the name of a segment in the run-queue database
// (RunQueueDB): its copies are bundled (bundleCopies). Earlier builds
// wrote a copy a document there, the job packed in a binary
// (runqb_p<NNN>_..., packedPrefix), and before that the whole job
// (runq_p<NNN>_..., wholePrefix); before that into the jobs database as
// queue_p<NNN>_<first>_<Unix ms>. Those are still read, offered and dropped
// where they are, by their names (runQueueColl). The names differ so that
// a build that reads one kind of copies never reads another's for a job.
const (
	segmentPrefix = "runqs_p"
	packedPrefix  = "runqb_p"
	wholePrefix   = "runq_p"
)

// segmentPrefixes are the prefixes of the segments in the run-queue
// database, this build's first.
var segmentPrefixes = []string{segmentPrefix, packedPrefix, wholePrefix}

// segmentPrefixOf returns the prefix of segment name in the run-queue
// database, or "" when name is not such a segment's.
func segmentPrefixOf(name string) string {
	i := slices.IndexFunc(segmentPrefixes, func(prefix string) bool { return strings.HasPrefix(name, prefix) })
	if i < 0 {
		return ""
	}
	return segmentPrefixes[i]
}

// bundled reports whether name is a segment of this build: its copies are
// in bundles.
func bundled(name string) bool { return segmentPrefixOf(name) == segmentPrefix }

// segmentName is the name of a new segment of priority's queue whose
// smallest job id is first and largest last, created at born:
// runqs_p<NNN>_<first>_<last>_<Unix milliseconds>. Readers order a
// priority's segments by first (this build's and earlier ones' alike): a
// listing that has enough jobs with smaller ids reads no further segment;
// a newest-first one bounds a segment by last (newestBound).
func segmentName(priority int, first, last bson.ObjectID, born time.Time) string {
	return fmt.Sprintf("%s%03d_%s_%s_%013d", segmentPrefix, priority, first.Hex(), last.Hex(), born.UnixMilli())
}

// parseQueueName reads a run-queue collection's name: its priority, and
// whether it is a segment (then its smallest job id, its largest where the
// name holds it, and its creation). An earlier build's segment is named
// queue_p<NNN>_<first>_<Unix milliseconds>.
func parseQueueName(name string) (priority int, c queueColl, ok bool) {
	rest, earlier := strings.CutPrefix(name, queuePrefix)
	if !earlier {
		prefix := segmentPrefixOf(name)
		if prefix == "" {
			return 0, c, false
		}
		rest = name[len(prefix):]
	}
	p, tail, segment := strings.Cut(rest, "_")
	priority, err := strconv.Atoi(p)
	if err != nil {
		return 0, c, false
	}
	c = queueColl{name: name, segment: segment}
	if !segment {
		// A priority's main collection: queue_p<NNN> (no runq_p<NNN>).
		return priority, c, earlier
	}
	first, tail, _ := strings.Cut(tail, "_")
	if c.first, err = bson.ObjectIDFromHex(first); err != nil {
		return 0, c, false
	}
	if !earlier {
		var last string
		last, tail, _ = strings.Cut(tail, "_")
		if c.last, err = bson.ObjectIDFromHex(last); err != nil {
			return 0, c, false
		}
	}
	n, err := strconv.ParseInt(tail, 10, 64)
	if err != nil {
		return 0, c, false
	}
	c.born = time.UnixMilli(n)
	return priority, c, true
}

// isSegment reports whether name is a run-queue segment's.
func isSegment(name string) bool {
	_, c, ok := parseQueueName(name)
	return ok && c.segment
}

// The run-queue database.
//
// Every collection created or dropped in a SQLite database makes each of
// its connections parse the whole schema again at its next statement, and
// a queue of a million jobs is a thousand segments, each created once and
// dropped once, with its marks. In the jobs database that made every job
// update and read pay for the queue's size (behind a million queued jobs:
// 17-25% of the CPU of a run, and a third of the rate). So on FerretDB,
// which keeps a SQLite file per database, the segments and their marks
// live in a database of their own, RunQueueDB; the jobs database's schema
// stays a few dozen collections. The priorities' main collections, the
// segments' info and everything else stay in the jobs database. Servers of
// earlier builds read the jobs database only: they do not offer the jobs
// of segments written here, which servers of this build run (and, when one
// reconciles the queue, it copies such jobs into the main collection: an
// offer twice, which selection handles as any twin).

// runqSuffix ends the name of the run-queue database.
const runqSuffix = "_runq"

// maxDBName is the longest database name FerretDB accepts.
const maxDBName = 63

// RunQueueDB names the database that holds the run-queue segments of the
// jobs database jobsDB on FerretDB: jobsDB + "_runq", or jobsDB itself when
// that name would be too long.
func RunQueueDB(jobsDB string) string {
	if len(jobsDB)+len(runqSuffix) > maxDBName {
		return jobsDB
	}
	return jobsDB + runqSuffix
}

// runQueueColl returns the run-queue collection of that name: a segment of
// this build or its marks in the run-queue database, any other (a
// priority's main collection, a segment of an earlier build, its marks) in
// the jobs database.
func (s *Store) runQueueColl(name string) *mongo.Collection {
	if segmentPrefixOf(strings.TrimPrefix(name, marksPrefix)) != "" {
		return s.runqDB.Collection(name)
	}
	return s.jobsDB.Collection(name)
}

// listNames lists the collections a listing reads: the jobs database's,
// and with queued jobs (the segments) the run-queue database's.
func (s *Store) listNames(ctx context.Context, queued bool) ([]string, error) {
	if queued {
		return s.queueCollNames(ctx)
	}
	return collectionNames(ctx, s.jobsDB)
}

// queueCollNames lists the collections of the jobs database, and those of
// the run-queue database when it is another.
func (s *Store) queueCollNames(ctx context.Context) ([]string, error) {
	names, err := collectionNames(ctx, s.jobsDB)
	if err != nil || s.runqDB.Name() == s.jobsDB.Name() {
		return names, err
	}
	more, err := collectionNames(ctx, s.runqDB)
	if err != nil {
		return nil, err
	}
	return append(names, more...), nil
}

// segments is a Store's knowledge of the run-queue segments: their offers,
// those it saw taken, and the cached copies of the settled ones.
type segments struct {
	mu         sync.Mutex
	segs       map[string]*segment        // by collection name
	byJob      map[bson.ObjectID]*segment // the segment each job's offer was read from
	marksEvery time.Duration              // marksEvery (0 in tests that read every take at once)
}

type segment struct {
	name    string
	born    time.Time
	offers  map[bson.ObjectID]int64     // job -> the version offered, as last read
	taken   map[bson.ObjectID]bool      // offers seen taken: their jobs stored past the version offered
	claimed map[bson.ObjectID]time.Time // offers this Store claimed, their jobs not yet seen moved on: when
	mine    []bson.ObjectID             // offers this Store took, not yet in the segment's marks
	twins   map[bson.ObjectID]bool      // offers seen copied in the main collection too, at the same version
	stale   bool                        // a start tripped over an offer taken unseen: check the others
	checked time.Time                   // when the offers were last checked against their jobs
	settled bool                        // the offers were read sealed or settled: they are all of them
	jobs    []model.Job                 // the copies last read (nil: let go, or not read)
	idle    time.Time                   // cached copies let go: nothing due for this Store until then
	dueSeen bool                        // the last selection from it found offers due
	ownDue  bool                        // ... and offers of this Store's share (all, without shares)
	marked  time.Time                   // when its marks were last read
}

func newSegments() *segments {
	return &segments{segs: map[string]*segment{}, byJob: map[bson.ObjectID]*segment{}, marksEvery: marksEvery}
}

// tripped records that a transition from the offer of job id conflicted
// and the job had moved on: the other servers' takes that this Store has
// not seen (a server killed before it published them, or one that does not
// read the marks) are likely more, so the segment's offers are checked
// against their jobs before the next selection from it (checkOffers).
func (c *segments) tripped(id bson.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seg := c.byJob[id]; seg != nil {
		seg.stale = true
	}
}

// segmentCheckEvery is how often a Store checks a segment's offers against
// their jobs at most.
const segmentCheckEvery = 2 * time.Second

// segmentCheckMax bounds the offers one check reads: the oldest untaken,
// which selections offer first. A server killed before it published its
// takes leaves them at the front of its stripe, and a live server's takes
// not yet published are where it works; the rest of a segment (up to
// segmentMax offers, most of them untaken) would cost a read each for
// nothing. Offers past these that turn out taken trip the next check.
const segmentCheckMax = 64

// checkOffers reads the jobs of up to segmentCheckMax offers of seg that
// this Store has not seen taken nor claimed, the oldest first, a few at
// once, and takes those whose jobs moved on (takeMovedOn, which repairs as
// a conflicting start would): a few reads by _id once, instead of a
// conflicting start for each.
func (s *Store) checkOffers(ctx context.Context, seg *segment) error {
	c := s.segments
	c.mu.Lock()
	if !seg.stale || time.Since(seg.checked) < segmentCheckEvery {
		c.mu.Unlock()
		return nil
	}
	seg.stale, seg.checked = false, time.Now()
	var ids []bson.ObjectID
	for id := range seg.offers {
		if _, claimed := seg.claimed[id]; !seg.taken[id] && !claimed {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(ids, compareIDs)
	ids = ids[:min(len(ids), segmentCheckMax)]
	s.offersChecked.Add(int64(len(ids)))
	for chunk := range slices.Chunk(ids, listLookups) {
		jobs, errs := s.getJobs(ctx, chunk)
		for i, id := range chunk {
			c.mu.Lock()
			offered := seg.offers[id]
			c.mu.Unlock()
			if err := s.takeMovedOn(ctx, id, offered, jobs[i], errs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeMovedOn takes the offer of job id at version when the job, as just
// read (stored, or err), is gone or stored past it. A job moved on to
// another runnable version gets its copy written first, as a conflicting
// start's repair would: a writer that kept a job runnable (run now, an
// edit, a priority change) and died before its copy leaves no intent, and
// the offer, dropped with its segment, would have been the job's last
// copy.
func (s *Store) takeMovedOn(ctx context.Context, id bson.ObjectID, version int64, stored *model.Job, err error) error {
	switch {
	case errors.Is(err, model.ErrJobNotFound):
	case err != nil:
		return err
	case stored.Version <= version:
		return nil
	case runnable(stored):
		// The offer's priority is unknown here: a copy written wakes the
		// servers (it may be in a collection their names lack).
		if err := s.putMoved(ctx, stored, -1); err != nil {
			return err
		}
	}
	s.segments.take(id, version, false)
	return nil
}

// twin records that the main collection holds a copy of job id at version
// too (written by a repair: of the intent of a segment sealed late, or
// while the job waited for a roll-forward): if that is an offer this Store
// read, the start that takes the offer removes that copy as well.
func (c *segments) twin(id bson.ObjectID, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seg := c.byJob[id]; seg != nil && seg.offers[id] == version {
		seg.twins[id] = true
	}
}

// takeStart is take for the start of job id from version, by this Store.
// It reports whether the start's copy was an offer alone, which needs no
// removal (it goes with its segment).
func (c *segments) takeStart(id bson.ObjectID, version int64) bool {
	if !c.take(id, version, true) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seg := c.byJob[id]
	return seg != nil && !seg.twins[id]
}

// claim records that this Store claimed a transition of job id from
// version: if that is an offer it read, it is not offered to this Store
// again. The offer is not taken until the job is stored past it (a held
// start is not, and should this process die before writing it, the other
// servers must still trip over the offer and roll the claim forward).
func (c *segments) claim(id bson.ObjectID, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seg := c.byJob[id]; seg != nil && seg.offers[id] == version && !seg.taken[id] {
		seg.claimed[id] = time.Now()
	}
}

// claimedElsewhere records that another process claimed a transition of
// job id from version moments ago (ErrClaimed): if that is an offer this
// Store read, it is not offered again until the claim could be rolled
// forward, when the job shows whether it moved on (segmentDue: unsure), as
// for a claim of this Store's.
func (c *segments) claimedElsewhere(id bson.ObjectID, version int64) { c.claim(id, version) }

// take records that job id is stored past version (or gone): its offer at
// that version, if this Store read one, is taken. When this Store moved the
// job (mine), the segment's marks tell the other Stores at the next
// selection. It reports whether there was such an offer.
func (c *segments) take(id bson.ObjectID, version int64, mine bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	seg := c.byJob[id]
	if seg == nil || seg.offers[id] != version {
		return false
	}
	if mine && !seg.taken[id] {
		seg.mine = append(seg.mine, id)
		seg.idle = time.Time{} // to publish at the next selection (and maybe drop the segment)
	}
	seg.taken[id] = true
	delete(seg.claimed, id)
	return true
}

// keep forgets the segments that are not among names (dropped).
func (c *segments) keep(names map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, seg := range c.segs {
		if !names[name] {
			c.forgetLocked(seg)
		}
	}
}

func (c *segments) forgetLocked(seg *segment) {
	for id := range seg.offers {
		if c.byJob[id] == seg {
			delete(c.byJob, id)
		}
	}
	delete(c.segs, seg.name)
}

// read records the copies read from a segment, and caches them (all of
// them when settled, else those that were there when read).
func (c *segments) read(seg *segment, jobs []model.Job, settled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range jobs {
		j := &jobs[i]
		seg.offers[j.ID] = j.Version
		c.byJob[j.ID] = seg
	}
	seg.settled, seg.jobs = settled, jobs
}

func (c *segments) get(name string, born time.Time) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	seg := c.segs[name]
	if seg == nil {
		seg = &segment{name: name, born: born, offers: map[bson.ObjectID]int64{}, taken: map[bson.ObjectID]bool{},
			claimed: map[bson.ObjectID]time.Time{}, twins: map[bson.ObjectID]bool{}}
		c.segs[name] = seg
	}
	return seg
}

// segmentDue appends to due the runnable copies due at now (of types,
// unless nil) that q wants from one segment whose offers this Store has not
// seen taken, the first in the segment's order (its jobs' age, for a bulk
// enqueue's), and counts them in q. It reads the
// segment unless its copies are cached, or nothing in it is due for this
// Store until later; it drops the segment once every offer in it is taken.
func (s *Store) segmentDue(ctx context.Context, due []model.Job, name string, born, now time.Time, q *quota, types []string) ([]model.Job, error) {
	c := s.segments
	seg := c.get(name, born)
	c.mu.Lock()
	idle := now.Before(seg.idle)
	c.mu.Unlock()
	if idle {
		return due, nil
	}
	c.mu.Lock()
	// What this selection lists from the segment may be tried at once (see
	// Marks): its own offers, or the others' while it wants more of those.
	tried := q.isMine != nil && (seg.ownDue || q.others > 0)
	c.mu.Unlock()
	if err := s.exchangeMarks(ctx, seg, tried); err != nil {
		return due, err
	}
	if err := s.checkOffers(ctx, seg); err != nil {
		return due, err
	}
	// Sealed, or settled before the read began: the read sees every offer.
	settled := time.Since(born) > segmentSettle
	c.mu.Lock()
	jobs := seg.jobs
	reread := jobs == nil || !seg.settled // not cached, or cached before it was sealed or settled
	c.mu.Unlock()
	if reread {
		var err error
		jobs, err = s.readCopies(ctx, name)
		if err != nil {
			return due, err
		}
		n := len(jobs)
		jobs = slices.DeleteFunc(jobs, func(j model.Job) bool { return j.ID == sealID })
		c.read(seg, jobs, settled || len(jobs) < n)
	}
	c.mu.Lock()
	var unsure []model.Job // offers this Store claimed a while ago, their jobs not seen moved on
	untaken, dueNow, ownDue := false, false, false
	next := now.Add(segmentIdle) // when something here may be due for this Store
	for i := range jobs {
		j := &jobs[i]
		if seg.taken[j.ID] {
			continue
		}
		untaken = true
		if at, ok := seg.claimed[j.ID]; ok {
			if time.Since(at) > rollForwardAfter {
				unsure = append(unsure, *j)
			}
			continue
		}
		if !runnable(j) || types != nil && !slices.Contains(types, j.Type) {
			continue
		}
		if j.RunAt.After(now) {
			next = minTime(next, j.RunAt)
			continue
		}
		dueNow = true
		own := q.owns(j)
		ownDue = ownDue || own
		if q.count(own) {
			due = append(due, *j)
		}
	}
	seg.dueSeen, seg.ownDue = dueNow, ownDue
	drop := seg.settled && !untaken
	if seg.settled && !drop && !dueNow {
		// Nothing here for this Store now: keep the untaken copies if they
		// are few (most often the offers it claimed at the end of the
		// segment, whose takes come within milliseconds: the segment is
		// then dropped without reading its copies again), else let them go.
		seg.jobs, seg.idle = untakenCopies(jobs, seg.taken), next
	}
	c.mu.Unlock()
	for i := range unsure {
		// A transition this Store claimed that did not take the offer
		// (not a start, or a start made runnable again with its end):
		// the job shows whether it moved on; if it did not, the offer is
		// offered again (whoever takes it trips over the claim and rolls
		// it forward).
		j := &unsure[i]
		stored, err := s.GetJob(ctx, j.ID)
		if err == nil && stored.Version == j.Version {
			c.mu.Lock()
			delete(seg.claimed, j.ID)
			c.mu.Unlock()
			continue
		}
		if err := s.takeMovedOn(ctx, j.ID, j.Version, stored, err); err != nil {
			return due, err
		}
	}
	if drop {
		if err := s.dropSegment(ctx, seg); err != nil {
			return due, err
		}
	}
	return due, nil
}

// segmentKeep bounds the untaken copies of a settled segment a Store keeps
// while nothing in it is due for it: about the jobs a server has in flight.
const segmentKeep = 256

// untakenCopies returns the copies of jobs not taken, in a slice of their
// own, or nil when there are more than segmentKeep.
func untakenCopies(jobs []model.Job, taken map[bson.ObjectID]bool) []model.Job {
	var keep []model.Job
	for i := range jobs {
		if taken[jobs[i].ID] {
			continue
		}
		if len(keep) == segmentKeep {
			return nil
		}
		keep = append(keep, jobs[i])
	}
	return keep
}

// dropSegment drops seg, every offer of which is taken: the jobs moved on,
// and the copies they need now are elsewhere.
func (s *Store) dropSegment(ctx context.Context, seg *segment) error {
	for _, coll := range []string{seg.name, marksPrefix + seg.name} {
		if err := retry(ctx, func() error { return s.runQueueColl(coll).Drop(ctx) }); err != nil {
			return err
		}
	}
	s.dropSegmentInfo(ctx, seg.name)
	s.queueNames.forget()
	s.Wake(ctx) // the other Stores read the names again, and let it go
	c := s.segments
	c.mu.Lock()
	c.forgetLocked(seg)
	c.mu.Unlock()
	return nil
}

// Marks.
//
// Servers stripe simple jobs among them (server/selector.go): each takes
// the jobs of its stripe first. A Store that learned of other servers'
// takes only by meeting their claims would list, and try, every offer the
// others took. So each Store publishes the offers it took in the segment's
// marks collection (taken_<segment>: one document {ids} per selection
// that follows takes, the ids packed in a binary b for a segment of
// bundles), and reads the others' before it selects from the
// segment: one small insert and one small read per selection, instead of a
// delete per job. An offer taken since the others last wrote their marks
// is still tried, and learned by its conflict.
//
// A Store reads a segment's marks before it selects from it when what it
// lists from there may be tried at once: a Store that shares the jobs out
// (RunnableShare) when it had offers of its own due there at its last
// selection, or still wants others' offers (its workers take another
// share's when their own in the list are all on their way, and the other
// servers take from its share likewise: a take it did not read costs a
// conflicting start). Else, and for a Store that takes every job (a
// server alone), it reads them at most every marksEvery while offers are
// due for it there, and at every selection once none is (the segment
// goes once every offer is seen taken). `bench --simple`, 100,000 jobs:
// one server read marks 792 times, 173 after; two servers 2,185 times,
// 1,340 after: each walked the segments the other had not finished (3.7
// a selection) and read their marks for offers it no longer wanted.

// marksPrefix names a segment's marks collection: marksPrefix + the
// segment's name.
const marksPrefix = "taken_"

// marksEvery is how often a Store reads the marks of a segment where it
// has offers due when it need not read them at every selection (see
// Marks).
const marksEvery = 500 * time.Millisecond

// exchangeMarks writes the offers of seg this Store took since it last
// did, and reads those every Store took: always when always is set, else
// unless this Store has offers due there and read the marks less than
// marksEvery ago.
func (s *Store) exchangeMarks(ctx context.Context, seg *segment, always bool) error {
	if err := s.publishTakes(ctx, seg); err != nil {
		return err
	}
	c := s.segments
	c.mu.Lock()
	read := always || !seg.dueSeen || time.Since(seg.marked) >= c.marksEvery
	c.mu.Unlock()
	if !read {
		return nil
	}
	started := time.Now()
	taken, err := s.segmentMarks(ctx, seg.name)
	if err != nil {
		return err
	}
	s.marksReads.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range taken {
		seg.taken[id] = true
	}
	seg.marked = started
	return nil
}

// publishTakes writes the offers of seg this Store took since it last did
// into the segment's marks.
func (s *Store) publishTakes(ctx context.Context, seg *segment) error {
	c := s.segments
	c.mu.Lock()
	mine := seg.mine
	seg.mine = nil
	c.mu.Unlock()
	if len(mine) == 0 {
		return nil
	}
	marks := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "ids", Value: mine}}
	if bundled(seg.name) {
		// The ids packed in one binary value (FerretDB decodes each value of
		// an array). Only builds that write bundles read their marks.
		packed := make([]byte, 0, len(mine)*len(bson.ObjectID{}))
		for _, id := range mine {
			packed = append(packed, id[:]...)
		}
		marks[1] = bson.E{Key: "b", Value: bson.Binary{Data: packed}}
	}
	err := retry(ctx, func() error {
		_, err := s.runQueueColl(marksPrefix+seg.name).InsertOne(ctx, marks)
		return err
	})
	if err != nil {
		c.mu.Lock()
		seg.mine = append(seg.mine, mine...)
		c.mu.Unlock()
	}
	return err
}

// LeaveSegments does what this Store's next selection from each segment
// it read would: it writes into the segment's marks the offers it took and
// has not published yet, and drops the segment once every offer in it is
// taken. A server calls it when it stops, so that the other servers and
// the listings of queued jobs learn of its last takes without trying them
// or reading them (a listing reads a segment left behind whole).
func (s *Store) LeaveSegments(ctx context.Context) error {
	c := s.segments
	c.mu.Lock()
	segs := make([]*segment, 0, len(c.segs))
	for _, seg := range c.segs {
		segs = append(segs, seg)
	}
	c.mu.Unlock()
	var errs []error
	for _, seg := range segs {
		if err := s.exchangeMarks(ctx, seg, true); err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		drop := seg.settled && len(seg.offers) > 0
		for id := range seg.offers {
			drop = drop && seg.taken[id]
		}
		c.mu.Unlock()
		if drop {
			errs = append(errs, s.dropSegment(ctx, seg))
		}
	}
	return errors.Join(errs...)
}

// segmentMarks reads the offers of segment name that every Store marked
// taken.
func (s *Store) segmentMarks(ctx context.Context, name string) (map[bson.ObjectID]bool, error) {
	marks, err := findAll[struct {
		IDs    []bson.ObjectID `bson:"ids"`
		Packed []byte          `bson:"b"` // the ids one after the other (a segment of bundles)
	}](ctx, s.runQueueColl(marksPrefix+name), bson.D{})
	if err != nil {
		return nil, err
	}
	taken := map[bson.ObjectID]bool{}
	for _, m := range marks {
		for _, id := range m.IDs {
			taken[id] = true
		}
		for p := m.Packed; len(p) >= len(bson.ObjectID{}); p = p[len(bson.ObjectID{}):] {
			taken[bson.ObjectID(p)] = true
		}
	}
	return taken, nil
}

// errSegmentLate is writeSegment's answer when the segment was sealed after
// readers may have cached it without some of its copies.
var errSegmentLate = errors.New("run-queue segment sealed late")

// sealID is the _id of a segment's seal: a document written after its
// copies, which tells readers that they have all of them.
var sealID = bson.NilObjectID

// writeSegment writes copies of new simple jobs of priority into a new
// segment, then its seal. It returns errSegmentLate when that took so long
// that readers may have cached the segment without some of its copies
// (and could drop them with it): the caller then keeps its queue intent.
func (s *Store) writeSegment(ctx context.Context, priority int, docs []any) error {
	var first bson.ObjectID
	var info segmentInfo // its largest id and its types
	for i, d := range docs {
		raw := d.(bson.Raw)
		id, ok := raw.Lookup("_id").ObjectIDOK()
		if !ok {
			return fmt.Errorf("run-queue segment: a copy without an ObjectID _id")
		}
		if i == 0 || bytes.Compare(id[:], first[:]) < 0 {
			first = id
		}
		if bytes.Compare(id[:], info.Last[:]) > 0 {
			info.Last = id
		}
		if typ, ok := raw.Lookup("type").StringValueOK(); ok && !slices.Contains(info.Types, typ) {
			info.Types = append(info.Types, typ)
		}
	}
	born := time.Now()
	coll := s.runQueueColl(segmentName(priority, first, info.Last, born))
	info.Name = coll.Name()
	s.writeSegmentInfo(ctx, info)
	if _, _, err := s.insert(ctx, coll, bundleCopies(docs)); err != nil {
		return err
	}
	err := retry(ctx, func() error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: sealID}})
		if isDup(err) {
			return nil // a retry's
		}
		return err
	})
	if err == nil && time.Since(born) > segmentSettle/2 {
		err = errSegmentLate
	}
	return err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Segment info.
//
// A segment's name holds its smallest job id and its born time, not its
// largest id nor its jobs' types: servers and CLIs of earlier builds parse
// the names, so they cannot change. What listings need beyond that is in
// a small collection of its own, segment_info, one document per segment
// (its largest job id and its types), written before the segment and
// deleted after it is dropped. A listing that finds a segment without its
// info (one written by an earlier build, or whose info write failed) reads
// it as before. Info left behind by a segment dropped by an earlier build
// is deleted by the hourly reconcile.

// segmentInfoColl names the collection of the segments' info.
const segmentInfoColl = "segment_info"

// segmentInfo is what listings know of a segment beyond its name.
type segmentInfo struct {
	Name  string        `bson:"_id"`
	Last  bson.ObjectID `bson:"last"`  // its largest job id
	Types []string      `bson:"types"` // its jobs' types, sorted
}

// writeSegmentInfo writes the info of a segment about to be written. It is
// a hint: a listing reads a segment without its info as it reads one of an
// earlier build, so a failure is not the write's.
func (s *Store) writeSegmentInfo(ctx context.Context, info segmentInfo) {
	slices.Sort(info.Types)
	_ = retry(ctx, func() error {
		_, err := s.jobsDB.Collection(segmentInfoColl).InsertOne(ctx, info)
		if isDup(err) {
			return nil
		}
		return err
	})
}

// dropSegmentInfo deletes the info of a dropped segment (what a failure
// leaves, the reconcile deletes).
func (s *Store) dropSegmentInfo(ctx context.Context, name string) {
	_ = retry(ctx, func() error {
		_, err := s.jobsDB.Collection(segmentInfoColl).DeleteOne(ctx, bson.D{{Key: "_id", Value: name}})
		return err
	})
}

// segmentInfos reads every segment's info, by segment name.
func (s *Store) segmentInfos(ctx context.Context) (map[string]segmentInfo, error) {
	s.segmentInfoReads.Add(1)
	infos, err := findAll[segmentInfo](ctx, s.jobsDB.Collection(segmentInfoColl), bson.D{}, options.Find().SetBatchSize(InsertBatch))
	if err != nil {
		return nil, fmt.Errorf("reading the run-queue segments' info: %w", err)
	}
	out := make(map[string]segmentInfo, len(infos))
	for _, info := range infos {
		out[info.Name] = info
	}
	return out, nil
}

// mayHold reports whether a segment with info (ok: known) may hold jobs
// of type typ ("": any).
func (info segmentInfo) mayHold(typ string, ok bool) bool {
	return typ == "" || !ok || slices.Contains(info.Types, typ)
}

// dropOrphanInfo deletes the info of the segments that are gone, of those
// settled (the info of a segment being written precedes it).
func (s *Store) dropOrphanInfo(ctx context.Context) error {
	infos, err := s.segmentInfos(ctx)
	if err != nil || len(infos) == 0 {
		return err
	}
	names, err := s.queueCollNames(ctx)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, name := range names {
		listed[name] = true
	}
	for name := range infos {
		_, c, ok := parseQueueName(name)
		if ok && (listed[name] || time.Since(c.born) < segmentSettle) {
			continue
		}
		s.dropSegmentInfo(ctx, name)
	}
	return nil
}

// Bundles.
//
// FerretDB encodes and decodes every document it writes or reads, and each
// of its values, in Go: reading a segment of a thousand copies, a document
// each, was about 50 ms of the database's CPU (a fifth of a server's
// processing of short jobs), and writing it a third of a bulk enqueue's.
// So a segment's copies are written in bundles: a document {_id: the first
// copy's job id, b: a binary} holding up to bundleMax copies, each the job's
// BSON document, one after the other. Nothing reads or removes a segment's
// copies one by one (the segment is dropped whole once every offer in it
// is taken); readers read every bundle of a segment, which is at most
// segmentMax/bundleMax documents, and filter its copies themselves.

// bundleMax is how many copies a bundle holds at most.
const bundleMax = 100

// bundleCopies returns docs (whole jobs, as bson.Raw) in bundles.
func bundleCopies(docs []any) []any {
	var out []any
	for chunk := range slices.Chunk(docs, bundleMax) {
		var b []byte
		for _, d := range chunk {
			b = append(b, d.(bson.Raw)...)
		}
		out = append(out, bson.D{{Key: "_id", Value: chunk[0].(bson.Raw).Lookup("_id")}, {Key: "b", Value: bson.Binary{Data: b}}})
	}
	return out
}

// unbundle returns the copies a run-queue document holds: a bundle's, or
// the document itself (a copy of another kind, or a segment's seal).
func unbundle(doc bson.Raw) ([]bson.Raw, error) {
	_, b, ok := doc.Lookup("b").BinaryOK()
	if !ok {
		return []bson.Raw{doc}, nil
	}
	var out []bson.Raw
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, fmt.Errorf("run-queue bundle %s: %d bytes left over", doc.Lookup("_id"), len(b))
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n < 5 || n > len(b) {
			return nil, fmt.Errorf("run-queue bundle %s: a copy of %d bytes in %d", doc.Lookup("_id"), n, len(b))
		}
		out = append(out, bson.Raw(b[:n]))
		b = b[n:]
	}
	return out, nil
}

// runQueueCopies reads the copies in the run-queue collection name whose
// top-level fields equal filter's (strings: state, type), each as a
// document with at least _id, version, state and type: of a segment of
// this build every copy of its bundles, filtered here; of any other
// collection its documents as stored, filtered and projected (proj, unless
// nil) by the database. A segment's seal is a document with its _id alone.
func (s *Store) runQueueCopies(ctx context.Context, name string, filter, proj bson.D) ([]bson.Raw, error) {
	coll := s.runQueueColl(name)
	if filter == nil {
		filter = bson.D{}
	}
	if !bundled(name) {
		opts := options.Find().SetBatchSize(InsertBatch)
		if proj != nil {
			opts.SetProjection(proj)
		}
		return findAll[bson.Raw](ctx, coll, filter, opts)
	}
	docs, err := findAll[bson.Raw](ctx, coll, bson.D{}, options.Find())
	if err != nil {
		return nil, err
	}
	var out []bson.Raw
	for _, d := range docs {
		copies, err := unbundle(d)
		if err != nil {
			return nil, err
		}
		for _, c := range copies {
			if fieldsEqual(c, filter) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// fieldsEqual reports whether each field of filter, a string, is doc's.
func fieldsEqual(doc bson.Raw, filter bson.D) bool {
	for _, e := range filter {
		v, ok := doc.Lookup(e.Key).StringValueOK()
		if !ok || v != fmt.Sprint(e.Value) {
			return false
		}
	}
	return true
}

// readCopies reads every copy of the segment name: bundled, packed (a
// document per copy, the job in p) or whole (earlier builds).
func (s *Store) readCopies(ctx context.Context, name string) ([]model.Job, error) {
	raws, err := s.runQueueCopies(ctx, name, nil, nil)
	if err != nil {
		return nil, err
	}
	jobs := make([]model.Job, len(raws))
	for i, raw := range raws {
		if _, p, ok := raw.Lookup("p").BinaryOK(); ok {
			raw = p
		}
		if err := bson.Unmarshal(raw, &jobs[i]); err != nil {
			return nil, fmt.Errorf("reading run-queue segment %s: %w", name, err)
		}
	}
	return jobs, nil
}
