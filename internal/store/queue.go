package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// The run queue (FerretDB only).
//
// Every server looks for the most urgent runnable jobs at every poll. On
// MongoDB that is one query on the index {state, priority, _id}, whose cost
// does not grow with the number of jobs. FerretDB filters and sorts in Go
// over the whole jobs collection, completed jobs included (495 ms at 10k
// jobs). So on FerretDB a copy of every runnable job (queued or running) is
// kept in a collection per priority, queue_p001 to queue_p100 (or, for
// simple jobs written in bulk, in one of the priority's segments:
// segments.go), and a selection reads those in priority order, each in
// insertion order with a limit: a read that stops early, whatever the
// number of jobs.
//
// The copies are hints; the jobs collection is the truth. Every job write
// updates the copy right after (syncQueue). A process that dies between the
// two, or two writes of one job that race, can leave a copy missing or
// stale: an intent written before the job names the jobs whose copies are
// due (RepairIntents, once a minute across the cluster, writes those of
// writers that died), ReconcileQueue repairs every copy (once an hour
// across the cluster: it reads every job), and a stale copy is harmless meanwhile because every job write is guarded by the
// job's version (a worker that trips over one repairs it with RepairQueued).

const queuePrefix = "queue_p"

// queuePage is how many copies a selection reads from a priority at least.
const queuePage = 50

func (s *Store) queue(priority int) *mongo.Collection {
	return s.jobsDB.Collection(fmt.Sprintf("%s%03d", queuePrefix, priority))
}

// runnable reports whether a job belongs in the run queue: a queued job, or
// a running sliced job (its slices are shared by every worker). A running
// simple job is one server's until it ends: its copy would only be read and
// skipped.
func runnable(j *model.Job) bool {
	return j != nil && (j.State == model.StateQueued || j.State == model.StateRunning && j.Kind != model.KindSimple)
}

// syncQueue brings the run queue in line with a job write: before is the job
// as it was (nil for a new job), after as it is now (nil once deleted). It
// returns the error of writing a runnable job's copy: the caller then keeps
// the job's queue intent, for RepairIntents to write the copy (a missing
// copy hides the job from every selection). Other failures are left to
// ReconcileQueue: the job write itself succeeded.
func (s *Store) syncQueue(ctx context.Context, before, after *model.Job) error {
	return s.syncQueuePart(ctx, before, after, statePut|stateDrop)
}

// syncQueuePart is syncQueue making only part of the state index change
// (statePut, stateDrop, or both: see syncStatesPart).
func (s *Store) syncQueuePart(ctx context.Context, before, after *model.Job, statePart int) error {
	s.syncStatesPart(ctx, before, after, statePart) // the state index of listings (liststate.go)
	var putErr error
	if runnable(after) {
		if _, putErr = s.putQueued(ctx, after); putErr == nil && (!runnable(before) || before.Priority != after.Priority) {
			// A job became runnable, or moved to another priority's
			// collection (perhaps a new one): servers look now, whoever
			// wrote the copy (a repair that tripped over the job may have
			// written it first, and repairs wake only when they move one).
			s.Wake(ctx)
		}
	}
	if runnable(before) && (!runnable(after) || before.Priority != after.Priority) {
		if started(before, after) {
			s.dropStarted(ctx, before)
			return putErr
		}
		version := before.Version
		if after != nil {
			version = after.Version
		}
		_, _ = s.dropQueued(ctx, before.Priority, before.ID, version)
	}
	return putErr
}

// started reports whether a job write was the start of a simple job's run:
// queued, then running at the next version (a claimed transition).
func started(before, after *model.Job) bool {
	return before != nil && after != nil && before.State == model.StateQueued && after.State == model.StateRunning &&
		after.Kind == model.KindSimple && after.Version == before.Version+1 && after.Priority == before.Priority
}

// dropStarted removes the run-queue copy of a simple job that its writer
// just started (or, for a held start, ended), by _id alone, without reading
// the copy's version first nor the job after (the one write of a simple
// job's run that every job makes). A later copy is rarely there: the job's
// server makes it runnable again after this, and a rescuer that took that
// server for dead, or a client rerunning the job just ended, may have
// written its copy first; those keep their intent for RepairIntents
// (takenBack).
func (s *Store) dropStarted(ctx context.Context, before *model.Job) {
	if s.segments.takeStart(before.ID, before.Version) {
		return // an offer in a segment, taken by the start: it goes with its segment
	}
	s.jobWriters().drops.do(ctx, dropCopy{priority: before.Priority, id: before.ID}) // with other workers' starts
}

// queuedVersion returns the version of the copy of job id in coll, if any.
func queuedVersion(ctx context.Context, coll *mongo.Collection, id bson.ObjectID) (version int64, ok bool, err error) {
	var have struct {
		Version int64 `bson:"version"`
	}
	err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&have)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, false, nil
	}
	return have.Version, err == nil, err
}

// putMoved is putQueued for a repair of a copy at priority from: when it
// wrote the job's copy at another priority (perhaps into a collection the
// servers' cached names lack), it wakes them.
func (s *Store) putMoved(ctx context.Context, job *model.Job, from int) error {
	wrote, err := s.putQueued(ctx, job)
	if wrote && job.Priority != from {
		s.Wake(ctx)
	}
	return err
}

// putQueued writes the copy of job in its priority's queue, unless a copy of
// the same or a later version is there already. It reports whether it wrote.
//
// The version check and the write are two commands, so a replace can land
// after a newer copy's writer checked and wrote: the older copy would stay
// (a running sliced job's copy could show its step held when it was given
// back, and no selection would offer it). A writer of a newer copy wrote its
// job first, so the job read after the replace shows it: putQueued then
// writes that one too (settleCopy).
func (s *Store) putQueued(ctx context.Context, job *model.Job) (bool, error) {
	wrote, replaced, err := s.putCopy(ctx, job)
	if err != nil || !replaced {
		return wrote, err
	}
	return wrote, s.settleCopy(ctx, job)
}

// putCopy is putQueued's write: it reports whether it wrote the copy, and
// whether it sent a replace of an older one (which may have been applied
// even when its answer was lost and the retry found the copy as new).
func (s *Store) putCopy(ctx context.Context, job *model.Job) (wrote, replaced bool, err error) {
	coll := s.queue(job.Priority)
	sent := false // a replace went out: its answer may be lost, and a retry find it as its own
	err = retry(ctx, func() error {
		wrote = false
		for range 2 {
			version, ok, err := queuedVersion(ctx, coll, job.ID)
			switch {
			case err != nil:
				return err
			case !ok:
				_, err = coll.InsertOne(ctx, job)
				if isDup(err) {
					continue // written meanwhile: compare with that copy
				}
				wrote = err == nil
				return err
			case version >= job.Version:
				return nil
			}
			sent = true
			res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: job.ID}}, job)
			if err != nil {
				return err
			}
			// Matching nothing, the copy was removed meanwhile (its job
			// left the queue); nothing is written.
			wrote = res.MatchedCount > 0
			return nil
		}
		return nil
	})
	return wrote, sent, err
}

// settleCopy makes the run queue agree with the job as stored after a copy
// of job, at job.Version, replaced another by _id: if the job has moved on
// since, the copy just written may have overwritten a newer one, so the
// stored job's copy is written (or the copy removed if the job left this
// priority's queue). Versions only grow, so this ends.
func (s *Store) settleCopy(ctx context.Context, job *model.Job) error {
	stored, err := s.GetJob(ctx, job.ID)
	switch {
	case errors.Is(err, model.ErrJobNotFound):
		_, err = s.dropQueued(ctx, job.Priority, job.ID, job.Version)
		return err
	case err != nil:
		return err
	case stored.Version <= job.Version:
		return nil
	}
	if runnable(stored) {
		if err := s.putMoved(ctx, stored, job.Priority); err != nil {
			return err
		}
	}
	if !runnable(stored) || stored.Priority != job.Priority {
		_, err = s.dropQueued(ctx, job.Priority, job.ID, stored.Version)
	}
	return err
}

// dropQueued removes the copy of job id from a priority's queue, unless the
// copy there is of a version later than version. It reports whether it
// removed one.
//
// FerretDB applies a filter other than _id in Go, so the version is read
// first and the copy deleted by _id: a newer copy written in between is
// removed. Its writer wrote its job first, so after a removal the job is
// read, and if it is runnable at this priority its copy is written again
// (a runnable job without a copy is offered to no server).
func (s *Store) dropQueued(ctx context.Context, priority int, id bson.ObjectID, version int64) (bool, error) {
	coll := s.queue(priority)
	dropped, sent := false, false // sent: a delete went out, its answer possibly lost
	err := retry(ctx, func() error {
		have, ok, err := queuedVersion(ctx, coll, id)
		if err != nil || !ok || have > version {
			return err
		}
		sent = true
		res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		dropped = err == nil && res.DeletedCount > 0
		return err
	})
	if err != nil || !sent {
		return dropped, err
	}
	stored, err := s.GetJob(ctx, id)
	switch {
	case errors.Is(err, model.ErrJobNotFound):
		return dropped, nil
	case err != nil:
		return dropped, err
	case runnable(stored) && stored.Priority == priority:
		_, err = s.putQueued(ctx, stored)
	}
	return dropped, err
}

// queueColl is one of a priority's run-queue collections: its main one, or
// a segment (segments.go).
type queueColl struct {
	name    string
	segment bool
	first   bson.ObjectID // a segment's smallest job id
	last    bson.ObjectID // a segment's largest job id, where its name holds it (zero: unknown)
	born    time.Time     // a segment's creation
	info    *segmentInfo  // a segment's info, where a listing read it (nil: unknown)
}

// Collection names.
//
// A selection lists the run-queue collections, and FerretDB answers a
// listCollections with every collection of the database: behind a million
// queued jobs (a thousand segments, and their marks) that was a tenth of
// the database's CPU while the servers ran. So a Store keeps the names it
// read, with the wake-up token it read just before them, and reads them
// again when the token changed, and at least every queueNamesTTL (for
// what does not wake: writers of earlier builds). A writer wakes the
// servers after it made a job runnable, wrote a copy at another priority
// (perhaps into a new collection), wrote a segment, or dropped one (the
// others would offer its taken offers from their cache until they read the
// names again).

// queueNamesTTL is how long a Store selects from the collection names it
// read, the wake-up token unchanged.
const queueNamesTTL = time.Second

// queueNames is a Store's cache of the jobs database's collection names.
type queueNames struct {
	mu    sync.Mutex
	names []string
	token bson.ObjectID // the wake-up token read before them
	at    time.Time
}

// get returns the collection names: those cached, unless fresh (then read,
// and not kept), stale, or the wake-up token changed since.
func (c *queueNames) get(ctx context.Context, s *Store, fresh bool) ([]string, error) {
	if fresh {
		return s.queueCollNames(ctx)
	}
	token, err := s.WakeToken(ctx)
	if err == nil {
		c.mu.Lock()
		names := c.names
		ok := names != nil && c.token == token && time.Since(c.at) < queueNamesTTL
		c.mu.Unlock()
		if ok {
			return names, nil
		}
	}
	at := time.Now()
	names, nerr := s.queueCollNames(ctx)
	if nerr != nil {
		return nil, nerr
	}
	if err == nil {
		c.mu.Lock()
		c.names, c.token, c.at = names, token, at
		c.mu.Unlock()
	}
	return names, nil
}

// forget makes the next get read the names.
func (c *queueNames) forget() {
	c.mu.Lock()
	c.names = nil
	c.mu.Unlock()
}

// queueColls lists the run-queue collections by priority, most urgent
// first, each priority's segments by their smallest job id, and forgets the segments
// that are gone (and drops marks left behind by them: a marks write that
// landed after its segment was dropped).
func (s *Store) queueColls(ctx context.Context, fresh bool) ([]int, map[int][]queueColl, error) {
	names, err := s.queueNames.get(ctx, s, fresh)
	if err != nil {
		return nil, nil, err
	}
	byPriority := map[int][]queueColl{}
	var prios []int
	listed := map[string]bool{}
	for _, name := range names {
		p, c, ok := parseQueueName(name)
		if !ok {
			continue
		}
		if _, ok := byPriority[p]; !ok {
			prios = append(prios, p)
		}
		byPriority[p] = append(byPriority[p], c)
		listed[name] = true
	}
	s.segments.keep(listed)
	for _, name := range names {
		if seg, ok := strings.CutPrefix(name, marksPrefix); ok && !listed[seg] {
			_ = s.runQueueColl(name).Drop(ctx) // the next listing tries again
			s.queueNames.forget()
		}
	}
	slices.Sort(prios)
	for _, colls := range byPriority {
		// The main collection first (no first id), then the segments by
		// their smallest job id, this build's and earlier ones' alike.
		slices.SortFunc(colls, func(a, b queueColl) int {
			if c := compareIDs(a.first, b.first); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
	}
	return prios, byPriority, nil
}

// queueFanout is how many priorities a selection reads at once, at most.
const queueFanout = 16

// queuedRunnable returns up to limit runnable jobs due at now from the run
// queue, by priority, then age among the copies read from one priority. It
// reads the most urgent priority alone (it usually has enough), then ever
// more priorities in parallel. With mine (a server's share: RunnableShare),
// limit counts the jobs of its share, and as many others are listed among
// those read on the way.
func (s *Store) queuedRunnable(ctx context.Context, now time.Time, limit int, types []string, mine func(*model.Job) bool) ([]model.Job, error) {
	prios, colls, err := s.queueColls(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []model.Job // the first priority's copies, then the others' appended
	q := newQuota(limit, mine)
	for width := 1; len(prios) > 0 && !q.full(); width = min(width*4, queueFanout) {
		batch := prios[:min(width, len(prios))]
		prios = prios[len(batch):]
		dues := make([][]model.Job, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, p := range batch {
			wg.Go(func() { dues[i], errs[i] = s.dueQueued(ctx, p, colls[p], now, q.clone(), types) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for _, due := range dues {
			// Kept in place: a list holds hundreds of jobs of 688 bytes,
			// and copying it at each step was a fifth of what a server
			// allocated (`bench --simple`, two servers: a third).
			kept := due[:0]
			for i := range due {
				if q.take(&due[i]) {
					kept = append(kept, due[i])
				}
			}
			if out == nil {
				out = kept
			} else {
				out = append(out, kept...)
			}
		}
	}
	return out, nil
}

// quota counts the copies a selection still wants: those of the selecting
// server's share (all of them without a share), and of the others.
type quota struct {
	mine, others int
	isMine       func(*model.Job) bool // nil: every job is mine
}

func newQuota(n int, isMine func(*model.Job) bool) *quota {
	q := &quota{mine: n, isMine: isMine}
	if isMine != nil {
		q.others = n
	}
	return q
}

func (q *quota) clone() *quota { c := *q; return &c }

// full reports whether the selection has all the copies of its share it
// wants.
func (q *quota) full() bool { return q.mine <= 0 }

// take counts j in, and reports whether the selection wants it.
func (q *quota) take(j *model.Job) bool { return q.count(q.owns(j)) }

// owns reports whether j is of the selecting server's share.
func (q *quota) owns(j *model.Job) bool { return q.isMine == nil || q.isMine(j) }

// count counts in a job of the selecting server's share (own) or of
// another's, and reports whether the selection wants it.
func (q *quota) count(own bool) bool {
	if own {
		q.mine--
		return q.mine >= 0
	}
	q.others--
	return q.others >= 0
}

// dueQueued returns the runnable copies due at now (of the given types,
// unless nil) that q wants from one priority's queue collections (colls,
// as queueColls lists them), oldest first among the copies read: from the
// segments, oldest first, until q is full, and from the main collection.
func (s *Store) dueQueued(ctx context.Context, priority int, colls []queueColl, now time.Time, q *quota, types []string) ([]model.Job, error) {
	var due []model.Job
	mainQ := q.clone() // the main collection's copies are sorted in with the segments'
	for _, c := range colls {
		if !c.segment {
			continue
		}
		if q.full() {
			break
		}
		if due == nil {
			due = make([]model.Job, 0, q.mine+q.others)
		}
		var err error
		if due, err = s.segmentDue(ctx, due, c.name, c.born, now, q, types); err != nil {
			return nil, err
		}
	}
	mainDue, err := s.dueMain(ctx, priority, now, mainQ, types)
	if err != nil {
		return nil, err
	}
	for i := range mainDue {
		s.segments.twin(mainDue[i].ID, mainDue[i].Version)
	}
	if due == nil {
		due = mainDue
	} else {
		due = append(due, mainDue...)
	}
	slices.SortFunc(due, func(a, b model.Job) int { return compareIDs(a.ID, b.ID) })
	return due, nil
}

// dueMain is dueQueued in a priority's main collection. It reads the
// first copies q wants (at least queuePage), and the first twice as many
// again while those are not enough: FerretDB applies a skip by reading the
// rows it skips, so pages of queuePage with a growing skip read the head
// of the queue again for every page (a server asking for 150 candidates
// read 300 copies).
func (s *Store) dueMain(ctx context.Context, priority int, now time.Time, q *quota, types []string) ([]model.Job, error) {
	var due []model.Job
	for limit := int64(max(q.mine+q.others, queuePage)); ; limit *= 2 {
		page, err := findAll[model.Job](ctx, s.queue(priority), bson.D{}, options.Find().SetLimit(limit))
		if err != nil {
			return nil, err
		}
		due = page[:0] // kept in place
		pq := q.clone()
		for i := range page {
			if runnable(&page[i]) && !page[i].RunAt.After(now) && (types == nil || slices.Contains(types, page[i].Type)) && pq.take(&page[i]) {
				due = append(due, page[i])
			}
		}
		if pq.full() || int64(len(page)) < limit {
			break
		}
	}
	return due, nil
}

// RepairQueued replaces a copy from the run queue that turned out stale (a
// transition from it conflicted, or its job is gone) by the job as stored.
func (s *Store) RepairQueued(ctx context.Context, stale *model.Job) error {
	return s.jobsStrategy.repairQueued(ctx, s, stale)
}

// repairQueued is RepairQueued of the claims strategy.
func (s *Store) repairQueued(ctx context.Context, stale *model.Job) error {
	job, err := s.GetJob(ctx, stale.ID)
	if errors.Is(err, model.ErrJobNotFound) || err == nil && job.Version > stale.Version {
		// Moved on (or gone): an offer of stale in a segment is taken.
		// (A job still at that version has a transition claimed but not
		// written: held, or its writer died and someone must trip over
		// the claim and roll it forward; its offer stays.) The repair
		// below still runs: what was tried may have been a copy in the
		// main collection at the same version (a repair wrote one while
		// the job waited for a roll-forward).
		if s.segments.take(stale.ID, stale.Version, false) {
			s.segments.tripped(stale.ID)
		}
	}
	if errors.Is(err, model.ErrJobNotFound) {
		s.syncStates(ctx, stale, nil)
		_, err = s.dropQueued(ctx, stale.Priority, stale.ID, stale.Version)
		return err
	}
	if err != nil {
		return err
	}
	s.syncStates(ctx, stale, job)
	if runnable(job) {
		if err := s.putMoved(ctx, job, stale.Priority); err != nil {
			return err
		}
	}
	if !runnable(job) || job.Priority != stale.Priority {
		_, err = s.dropQueued(ctx, stale.Priority, stale.ID, job.Version)
	}
	return err
}

// ReconcileQueue repairs the run queue from the jobs collection: it writes
// the copies of runnable jobs that are missing or older than their job, and
// removes the copies of jobs that are no longer runnable. It returns how
// many copies it wrote or removed. It reads the queue before the jobs, so a
// copy written meanwhile is never taken for stale; every write compares
// versions again. It reads every copy and every live job: run it rarely.
func (s *Store) ReconcileQueue(ctx context.Context) (int, error) {
	n, err := s.jobsStrategy.reconcileQueue(ctx, s)
	if err == nil && s.ferret {
		err = s.markQueueWhole(ctx)
	}
	return n, err
}

// QueueWhole reports whether the run queue is known to hold a copy of every
// runnable job (on FerretDB), but for those of writers that died (their
// intents are repaired every minute) and of writes behind the store's back:
// the database was new when this build first wrote a job, or a reconcile
// ran since. A database written by a build from before the run queue is
// not: its first reconcile is due at once. Always true on MongoDB, which
// needs no run queue.
func (s *Store) QueueWhole(ctx context.Context) (bool, error) {
	if !s.ferret {
		return true, nil
	}
	err := retry(ctx, func() error {
		return s.jobsDB.Collection(stateIndexColl).FindOne(ctx, bson.D{{Key: "_id", Value: queueWhole}}).Err()
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// markQueueWhole marks the run queue whole (QueueWhole).
func (s *Store) markQueueWhole(ctx context.Context) error {
	return retry(ctx, func() error {
		_, err := s.jobsDB.Collection(stateIndexColl).InsertOne(ctx, bson.D{{Key: "_id", Value: queueWhole}, {Key: "at", Value: time.Now()}})
		if isDup(err) {
			return nil
		}
		return err
	})
}

// A reconcile reads every copy and every live job: with a queue of a
// million jobs, minutes of the database's time. It runs beside the
// workers, so it paces its reads of the run queue (one collection at a
// time, segments included): after each it waits reconcileYield times as
// long as the read took (at most a second), leaving the database to the
// workers for most of the time. A copy written while it reads must not look
// missing: it reads the segments created meanwhile after the jobs (a bulk
// enqueue's jobs are read with their segment), and it leaves alone the jobs
// created after it began (by their id's second), whose copies may still be
// on their way (their writers' queue intents cover them).
const reconcileYield = 3

// reconcileQueueRead, when set (tests), runs when a reconcile has read the
// queue, before it reads the jobs.
var reconcileQueueRead func()

// reconcilePace waits reconcileYield times as long as a read that began at
// start took, at most a second, or until ctx ends.
func reconcilePace(ctx context.Context, start time.Time) error {
	t := time.NewTimer(min(time.Since(start)*reconcileYield, time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jobHead is what a reconcile reads of every queued or running job.
type jobHead struct {
	ID       bson.ObjectID `bson:"_id"`
	Kind     model.Kind    `bson:"kind"`
	State    model.State   `bson:"state"`
	Priority int           `bson:"priority"`
	Version  int64         `bson:"version"`
}

// reconcileQueue is ReconcileQueue of the claims strategy.
func (s *Store) reconcileQueue(ctx context.Context) (int, error) {
	type copyOf struct {
		priority int
		version  int64
		segment  bool // an offer in a segment: never removed alone
	}
	began := time.Now()
	copies := map[bson.ObjectID][]copyOf{}
	read := map[string]bool{} // the queue collections read
	// readQueue reads the copies of the queue collections not read yet (of
	// the segments only, with segmentsOnly).
	readQueue := func(segmentsOnly bool) error {
		prios, colls, err := s.queueColls(ctx, true)
		if err != nil {
			return err
		}
		for _, p := range prios {
			for _, c := range colls[p] {
				if read[c.name] || segmentsOnly && !c.segment {
					continue
				}
				read[c.name] = true
				start := time.Now()
				docs, err := s.runQueueCopies(ctx, c.name, nil, bson.D{{Key: "version", Value: 1}})
				if err != nil {
					return fmt.Errorf("reading the run queue: %w", err)
				}
				for _, d := range docs {
					var head struct {
						ID      bson.ObjectID `bson:"_id"`
						Version int64         `bson:"version"`
					}
					if err := bson.Unmarshal(d, &head); err != nil {
						return fmt.Errorf("reading the run queue: %s: %w", c.name, err)
					}
					copies[head.ID] = append(copies[head.ID], copyOf{p, head.Version, c.segment})
				}
				if err := reconcilePace(ctx, start); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := readQueue(false); err != nil {
		return 0, err
	}
	if reconcileQueueRead != nil {
		reconcileQueueRead()
	}
	// The jobs in one read: paced, a cursor would keep a snapshot of the
	// database open for minutes (and the log of its writes growing). Only
	// what decides whether a job's copy is right, unsorted: a queue of a
	// million jobs is tens of megabytes so, not a gigabyte of arguments.
	all, err := findAll[jobHead](ctx, s.jobs(),
		bson.D{{Key: "state", Value: bson.D{{Key: "$in", Value: []model.State{model.StateQueued, model.StateRunning}}}}},
		options.Find().SetBatchSize(InsertBatch).SetProjection(bson.D{
			{Key: "kind", Value: 1}, {Key: "state", Value: 1}, {Key: "priority", Value: 1}, {Key: "version", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("reading the jobs: %w", err)
	}
	// The segments written since the queue was read (a bulk enqueue whose
	// ids were made before the reconcile began): their offers are copies
	// of jobs just read, not to be written again beside them. (Not the
	// main collections: a copy read now may be a job's created after the
	// jobs were read, which would look gone. Offers are never removed.)
	if err := readQueue(true); err != nil {
		return 0, err
	}
	// Simple jobs that ended by an end record are stored as they were
	// before their run: not runnable (endrecords.go).
	heads, err := s.recordHeads(ctx)
	if err != nil {
		return 0, err
	}
	jobs := all[:0]
	for _, j := range all {
		stored := &model.Job{ID: j.ID, Kind: j.Kind, State: j.State, Version: j.Version}
		if runnable(stored) && supersededIn(heads, stored) == "" {
			jobs = append(jobs, j)
		}
	}
	fixed := 0
	count := func(changed bool, err error) error {
		if changed {
			fixed++
		}
		return err
	}
	// whole reads the job of head for its copy; false when it moved on
	// since (its writer's sync, or its intent, brings its copy in line).
	whole := func(head *jobHead) (*model.Job, bool, error) {
		job, err := s.GetJob(ctx, head.ID)
		if errors.Is(err, model.ErrJobNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return job, job.Version == head.Version, nil
	}
	missing := map[int][]any{} // priority -> jobs without any copy
	live := map[bson.ObjectID]bool{}
	for i := range jobs {
		head := &jobs[i]
		live[head.ID] = true
		if head.ID.Timestamp().After(began) {
			continue // created since the queue was read
		}
		have := copies[head.ID]
		if len(have) == 0 {
			job, ok, err := whole(head)
			if err != nil {
				return fixed, err
			}
			if ok {
				missing[job.Priority] = append(missing[job.Priority], job)
			}
			continue
		}
		put := true
		for _, c := range have {
			var err error
			switch {
			case c.priority != head.Priority:
				if !c.segment {
					err = count(s.dropQueued(ctx, c.priority, head.ID, c.version))
				}
			case c.version >= head.Version:
				put = false
			}
			if err != nil {
				return fixed, err
			}
		}
		if put {
			job, ok, err := whole(head)
			if err == nil && ok {
				err = count(s.putQueued(ctx, job))
			}
			if err != nil {
				return fixed, err
			}
		}
	}
	for p, docs := range missing {
		// A copy written meanwhile by the job's own sync is newer: keep it.
		dup, _, err := s.insert(ctx, s.queue(p), docs)
		if err != nil {
			return fixed, err
		}
		for _, d := range dup {
			if !d {
				fixed++
			}
		}
	}
	for id, have := range copies {
		have = slices.DeleteFunc(have, func(c copyOf) bool { return c.segment }) // taken offers, dropped with their segments
		if live[id] || len(have) == 0 {
			continue
		}
		// Its writer may have died before the queue and the state index
		// followed the write: give the job its state index entry.
		if job, err := s.GetJob(ctx, id); err == nil {
			s.syncStates(ctx, nil, job)
		}
		for _, c := range have {
			// Only the copy we read: a job resumed meanwhile has a newer one.
			if err := count(s.dropQueued(ctx, c.priority, id, c.version)); err != nil {
				return fixed, err
			}
		}
	}
	if fixed > 0 {
		s.Wake(ctx) // copies written, perhaps in new collections
	}
	// The info of segments dropped by servers of earlier builds.
	return fixed, s.dropOrphanInfo(ctx)
}
