package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Batched job writes (FerretDB).
//
// Every job transition on FerretDB is a claim insert, then an update of the
// job by _id, and a simple job's start removes its run-queue copy: single
// writes that each cost a round trip and a command of the database, several
// per job. The transitions that the workers of a process make at the same
// time are written together instead: the claims with one insertMany (each
// claim still decided alone: an insert that meets another's _id fails
// alone), the job updates with one update command of a statement per job,
// the copies' removals with one delete command. While one batch is
// written, the writes that arrive wait for the next, so a lone write goes
// at once and a busy process writes a batch per round trip.
//
// FerretDB v1.24.2 hangs on update and delete commands of 100 statements or
// more (each statement's cursor is closed only at the end of the command,
// and the SQLite connections run out): batches are kept far below that.

// maxJobBatch bounds the statements of one batched write of updates or
// deletes (each a transaction of its own on FerretDB); maxInsertBatch the
// documents of one batched insert (one transaction for the batch).
const (
	maxJobBatch    = 32
	maxInsertBatch = 128
)

// endLinger is how long a batch of end records, or of state index changes,
// waits for more once writes come in company (batcher.linger), at least: a
// server leaves its simple jobs' ends in flight, so a wait there costs no
// worker time, and a batch of 60 costs the database little more than a
// batch of 2 (5 ms: batches of 40-80 ends at 3,000 jobs a second).
const endLinger = 5 * time.Millisecond

// lingerFill is the batch a lingering batcher waits for: when lingerFill
// items take longer than its linger to come, it waits for them, up to
// three times its linger. Each of two servers sharing the work gets half
// the items, and with the same wait wrote twice the batches, which contend
// for the database's one writer (`bench --simple`, 20,000 jobs: two
// servers 0.72-0.73 of one with 5 ms, 0.98-1.02 with 10 ms, which made one
// server alone a sixth slower).
const lingerFill = 32

// errClaimTaken is what a batched claim insert reports when another process
// holds the claim (its own duplicate-key error is one of the batch's).
var errClaimTaken = errors.New("claim taken")

// batcher writes the items of concurrent callers together: the caller that
// finds no batch in flight writes the items waiting, then the ones that
// arrived meanwhile, until none is left; the others wait for the batch that
// holds theirs. With linger, a caller that starts writing while items keep
// coming (the previous batch held more than one) first waits that long for
// more: for writes nobody waits on (the ends of simple jobs, written after
// their workers moved on), whose batches would otherwise stay small.
type batcher[T, R any] struct {
	write  func(ctx context.Context, items []T) []R
	linger time.Duration
	max    int // items per write (0: maxJobBatch)

	mu       sync.Mutex
	items    []T
	waiters  []chan R
	flushing bool
	last     int       // the size of the previous batch
	lastAt   time.Time // when it was taken
	gap      float64   // the average time between items of recent batches, in seconds
}

// do writes item in a batch and returns its result.
func (b *batcher[T, R]) do(ctx context.Context, item T) R {
	ch := make(chan R, 1)
	b.mu.Lock()
	b.items, b.waiters = append(b.items, item), append(b.waiters, ch)
	if b.flushing {
		b.mu.Unlock()
		return <-ch
	}
	b.flushing = true
	wait := b.lingerFor()
	b.mu.Unlock()
	ctx = context.WithoutCancel(ctx) // the batch holds other callers' writes
	if wait > 0 {
		time.Sleep(wait)
	}
	for {
		b.mu.Lock()
		n := min(len(b.items), cmp.Or(b.max, maxJobBatch))
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return <-ch
		}
		items, waiters := b.items[:n:n], b.waiters[:n:n]
		b.items, b.waiters = b.items[n:], b.waiters[n:]
		b.taken(n)
		b.mu.Unlock()
		res := b.write(ctx, items)
		for i, w := range waiters {
			w <- res[i]
		}
	}
}

// lingerFor is how long the caller that starts writing waits for more
// items (b.mu held): nothing when writes come alone (the previous batch
// held one), else linger, or up to three times that for lingerFill items
// at the pace they came in recent batches.
func (b *batcher[T, R]) lingerFor() time.Duration {
	if b.linger <= 0 || b.last <= 1 {
		return 0
	}
	fill := time.Duration(b.gap * lingerFill * float64(time.Second))
	return min(max(fill, b.linger), 3*b.linger)
}

// taken notes a batch of n items taken now (b.mu held): their pace, for
// lingerFor.
func (b *batcher[T, R]) taken(n int) {
	now := time.Now()
	if !b.lastAt.IsZero() {
		gap := now.Sub(b.lastAt).Seconds() / float64(n)
		if b.gap == 0 {
			b.gap = gap
		} else {
			b.gap += (gap - b.gap) / 4
		}
	}
	b.last, b.lastAt = n, now
}

// jobWriters are a Store's batchers of job writes.
type jobWriters struct {
	claims  batcher[bson.D, error]
	updates batcher[jobUpdate, updateResult]
	drops   batcher[dropCopy, struct{}]
	records batcher[bson.D, updateResult]  // end records (endrecords.go)
	states  batcher[stateChange, struct{}] // state index changes (liststate.go)

	heldMu sync.Mutex
	held   map[bson.ObjectID]*heldStart // simple jobs' starts held back (holdStart)
}

// jobUpdate is one transition's update of its job.
type jobUpdate struct {
	id        bson.ObjectID
	version   int64     // the version the transition moves the job from
	to        int64     // the version it moves the job to (version+1, or more for merged updates)
	claimedAt time.Time // when its claim was made
	update    bson.D
}

// Held starts (FerretDB).
//
// A job update costs FerretDB a write transaction of its own, even in a
// batch (each statement of an update command is read, changed in Go and
// written alone), and the database writes one transaction at a time: the
// two updates of a simple job's run (its start, its end) are most of what
// a run costs it. A short job ends before its start is written, so the
// start of a simple job is held back for up to startHold after its claim:
// when the job's next transition (its end, a retry, a give-back) comes
// meanwhile, one update makes both moves; otherwise the start is written
// alone when the hold ends. The job's running entry and the removal of its
// run-queue copy wait with the start: while the job is stored queued it
// keeps its copy, so a process killed while holding leaves a job that the
// other servers still find (and whose start's claim they roll forward).
//
// Nothing else may move the job while the start is held: the start's claim
// ("<job>:<version>") is this process's, so every other transition from
// that version fails its claim; and nobody can read the version after it
// until the start is written, so the transition written with a start that
// was never written needs no claim (takeFreshHeld). A reader that meets
// the job at the version the start moves it from (still queued) knows the
// start is held (the server's watch of the run accepts that version); a
// process that dies while holding leaves the start's claim, which is
// rolled forward like any claim whose writer died.

// startHold is how long a simple job's start waits for its next transition
// to be written with it (a variable for tests).
var startHold = 50 * time.Millisecond

// heldStart is a simple job's start update held back, with the job's
// running entry in the state index (written before the job, as for any
// start, when the start is written alone; not at all when the job's next
// transition is written with it: the job is then never stored running).
type heldStart struct {
	u             jobUpdate
	before, after *model.Job    // the job before and after its start
	timer         *time.Timer   // ends the hold
	sent          bool          // taken: written alone (its hold ended) or merged into the next transition
	done          chan struct{} // closed once written alone; res is then its result
	res           updateResult
}

// holdStart holds back the update u that starts simple job before (after:
// the job started), and its running entry (see Held starts), and returns
// at once.
func (s *Store) holdStart(ctx context.Context, u jobUpdate, before, after *model.Job) {
	w := s.jobWriters()
	h := &heldStart{u: u, before: before, after: after, done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	if w.held == nil {
		w.held = map[bson.ObjectID]*heldStart{}
	}
	w.held[u.id] = h
	h.timer = time.AfterFunc(startHold, func() {
		w.heldMu.Lock()
		if h.sent {
			w.heldMu.Unlock()
			return
		}
		h.sent = true
		w.heldMu.Unlock()
		s.syncStatesPart(ctx, h.before, h.after, statePut)
		h.res = w.updates.do(ctx, h.u)
		if h.res.err == nil && h.res.matched > 0 {
			s.dropStarted(ctx, h.before) // the copy goes once the job is stored running
		}
		w.heldMu.Lock()
		if w.held[u.id] == h {
			delete(w.held, u.id)
		}
		w.heldMu.Unlock()
		close(h.done)
	})
}

// takeHeld returns the held start that a transition of job id from version
// must be written with: a start to that version still held (taken from its
// hold: fresh, its running entry never written), or one that was written
// alone but not applied (a failed write, or a job gone). It returns nil
// when there is none, after waiting for a start being written alone.
func (s *Store) takeHeld(id bson.ObjectID, version int64) (h *heldStart, fresh bool) {
	w := s.jobWriters()
	w.heldMu.Lock()
	h = w.held[id]
	if h == nil || h.u.target() != version {
		w.heldMu.Unlock()
		return nil, false
	}
	if !h.sent {
		h.sent = true
		h.timer.Stop()
		delete(w.held, id)
		w.heldMu.Unlock()
		return h, true
	}
	w.heldMu.Unlock()
	<-h.done
	if h.res.err == nil && h.res.matched > 0 {
		return nil, false
	}
	return h, false
}

// takeFreshHeld takes from its hold the held start of job id to version
// that was never written, if there is one and its claim is young: no other
// process can then move the job from that version (the job is not stored
// at it, and the start's claim is rolled forward only after
// rollForwardAfter), so the job's next transition, written with the start,
// needs no claim of its own. The update that writes both names the job by
// _id alone only while the start's claim is young (jobUpdate.filter).
func (s *Store) takeFreshHeld(id bson.ObjectID, version int64) *heldStart {
	w := s.jobWriters()
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	h := w.held[id]
	if h == nil || h.sent || h.u.target() != version || !claimYoung(h.u.claimedAt) {
		return nil
	}
	h.sent = true
	h.timer.Stop()
	delete(w.held, id)
	return h
}

// mergeUpdates returns one update that makes update a, then update b: b's
// $set and $unset win over a's for the fields both name.
func mergeUpdates(a, b bson.D) bson.D {
	parts := func(u bson.D) (set bson.D, unset []string) {
		for _, e := range u {
			d, _ := e.Value.(bson.D)
			switch e.Key {
			case "$set":
				set = d
			case "$unset":
				for _, f := range d {
					unset = append(unset, f.Key)
				}
			}
		}
		return set, unset
	}
	aSet, aUnset := parts(a)
	bSet, bUnset := parts(b)
	named := map[string]bool{}
	for _, e := range bSet {
		named[e.Key] = true
	}
	for _, f := range bUnset {
		named[f] = true
	}
	set := bson.D{}
	for _, e := range aSet {
		if !named[e.Key] {
			set = append(set, e)
		}
	}
	set = append(set, bSet...)
	unset := bson.D{}
	for _, f := range aUnset {
		if !named[f] {
			unset = append(unset, bson.E{Key: f, Value: ""})
		}
	}
	for _, f := range bUnset {
		unset = append(unset, bson.E{Key: f, Value: ""})
	}
	out := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		out = append(out, bson.E{Key: "$unset", Value: unset})
	}
	return out
}

type updateResult struct {
	matched int64
	err     error
}

// dropCopy is a run-queue copy to remove.
type dropCopy struct {
	priority int
	id       bson.ObjectID
}

// filter names the job by _id alone while the claim is young: the claim
// makes this process the only one to move the job from this version until
// another may roll the claim forward, so the update can name the job by
// _id alone, the one filter FerretDB runs in the database (an _id+version
// filter decodes every job in Go: 250 ms at 10k jobs, against 35 ms by _id,
// and under 1 ms with the embedded database's _id index). Later (retries
// that took long), the version too.
func (u jobUpdate) filter() bson.D {
	f := bson.D{{Key: "_id", Value: u.id}, {Key: "version", Value: u.version}}
	if claimYoung(u.claimedAt) {
		f = f[:1]
	}
	return f
}

// claimYoung reports whether a transition claim made at claimedAt is
// young: no other process rolls it forward before rollForwardAfter, so
// until half of that its holder alone moves the job from its version (an
// update may name the job by _id alone, a held start be written with the
// next transition, a run's end be an end record).
func claimYoung(claimedAt time.Time) bool { return time.Since(claimedAt) < rollForwardAfter/2 }

// target is the version the update moves the job to.
func (u jobUpdate) target() int64 {
	if u.to == 0 {
		return u.version + 1
	}
	return u.to
}

// jobWriterSets holds each Store's batchers, by a weak pointer to the Store.
var jobWriterSets sync.Map // weak.Pointer[Store] -> *jobWriters

// jobWriters returns the Store's batchers (made on first use).
func (s *Store) jobWriters() *jobWriters {
	key := weak.Make(s)
	if w, ok := jobWriterSets.Load(key); ok {
		return w.(*jobWriters)
	}
	// The batchers hold the Store weakly too, so that a closed Store is not
	// kept alive by its entry (a caller holds it while a batch is written).
	w := &jobWriters{}
	w.claims.write = func(ctx context.Context, c []bson.D) []error { return key.Value().writeClaims(ctx, c) }
	w.updates.write = func(ctx context.Context, u []jobUpdate) []updateResult { return key.Value().writeUpdates(ctx, u) }
	w.drops.write = func(ctx context.Context, d []dropCopy) []struct{} { return key.Value().writeDrops(ctx, d) }
	w.records.write = func(ctx context.Context, r []bson.D) []updateResult { return key.Value().writeEndRecords(ctx, r) }
	w.states.write = func(ctx context.Context, c []stateChange) []struct{} {
		key.Value().syncStateChanges(ctx, c)
		return make([]struct{}, len(c))
	}
	w.records.linger, w.states.linger = endLinger, endLinger
	w.claims.max, w.records.max, w.states.max = maxInsertBatch, maxInsertBatch, maxInsertBatch
	got, loaded := jobWriterSets.LoadOrStore(key, w)
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Store]) { jobWriterSets.Delete(k) }, key)
	}
	return got.(*jobWriters)
}

// writeClaims inserts transition claims: nil for each claim inserted,
// errClaimTaken for each held by another, and its own error for a claim
// refused (the others are decided as if it were not there).
func (s *Store) writeClaims(ctx context.Context, claims []bson.D) []error {
	out := make([]error, len(claims))
	docs := make([]any, len(claims))
	for i, c := range claims {
		// A token of this insert alone: a claim read back as a duplicate
		// is ours only when it carries it (another writer's may say the
		// same: the same server, millisecond and update).
		claims[i] = append(c[:len(c):len(c)], bson.E{Key: "token", Value: bson.NewObjectID()})
		docs[i] = claims[i]
	}
	dup, retried, err := s.insert(ctx, s.jobClaims(), docs)
	// Each claim is decided alone: a claim refused for its own reason
	// fails alone, not the batch (nor does it make the others duplicates).
	refused := make([]error, len(claims))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && !transient(err) {
		for _, we := range bwe.WriteErrors {
			if we.Code == 11000 {
				dup[we.Index] = true
			} else {
				refused[we.Index] = storeErr(we)
			}
		}
		err = nil
	}
	if err == nil && retried {
		// A claim that came back as a duplicate may be this one, written
		// before a transient error made the insert go again.
		err = s.ownClaims(ctx, claims, dup)
	}
	for i := range out {
		switch {
		case err != nil:
			out[i] = err
		case refused[i] != nil:
			out[i] = refused[i]
		case dup[i]:
			out[i] = errClaimTaken
		}
	}
	return out
}

// ownClaims clears dup[i] for each claim stored exactly as claims[i] (by,
// at, update and token alike): a claim written by an insert whose answer
// was lost.
func (s *Store) ownClaims(ctx context.Context, claims []bson.D, dup []bool) error {
	for i, c := range claims {
		if !dup[i] {
			continue
		}
		var stored bson.Raw
		err := retry(ctx, func() error {
			return s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: c[0].Value}}).Decode(&stored)
		})
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // rolled forward and removed, or given back: not ours to act on
		}
		if err != nil {
			return fmt.Errorf("reading back a transition claim: %w", err)
		}
		want, err := bson.Marshal(c)
		if err != nil {
			return err
		}
		if sameClaim(stored, want) {
			dup[i] = false
		}
	}
	return nil
}

// sameClaim reports whether two claim documents are one insert's: the same
// claimer, time, update and token.
func sameClaim(a, b bson.Raw) bool {
	for _, key := range []string{"by", "at", "update", "token"} {
		if !a.Lookup(key).Equal(b.Lookup(key)) {
			return false
		}
	}
	return true
}

// writeUpdates applies job updates: one update command for the batch (a
// single update for a batch of one). When that fails or matches fewer jobs
// than it has statements, each update is settled alone (settle): never
// written again by _id alone, which could undo transitions made since.
func (s *Store) writeUpdates(ctx context.Context, ups []jobUpdate) []updateResult {
	out := make([]updateResult, len(ups))
	models := make([]mongo.WriteModel, len(ups))
	for i, u := range ups {
		models[i] = mongo.NewUpdateOneModel().SetFilter(u.filter()).SetUpdate(u.update)
	}
	res, err := s.jobs().BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err == nil && res.MatchedCount == int64(len(ups)) {
		for i := range out {
			out[i].matched = 1
		}
		return out
	}
	for i := range ups {
		out[i] = s.settle(ctx, ups[i])
	}
	return out
}

// settle applies one update of a batch that failed or matched fewer jobs
// than it had statements, unless the batch (or the roll-forward of its
// claim, which applies the same update) applied it already. It must not apply it again
// by _id alone: other transitions may have followed it since, and writing
// it again would undo them (a job sent back to a step its server had
// left, which nobody would then move). So the update is conditioned on the
// version it moves the job from; when that does not match, the job is at
// or past the version the update moves it to (only the claim's holder, or
// its roll-forward, moves a job from it: the update was applied, matched
// 1), or gone, or (a held start merged with the next transition, whose
// start alone was rolled forward) between the two (matched 0).
func (s *Store) settle(ctx context.Context, u jobUpdate) updateResult {
	var r updateResult
	r.err = retry(ctx, func() error {
		res, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: u.id}, {Key: "version", Value: u.version}}, u.update)
		if err != nil {
			return err
		}
		if res.MatchedCount > 0 {
			r.matched = 1
			return nil
		}
		var cur struct {
			Version int64 `bson:"version"`
		}
		err = s.jobs().FindOne(ctx, bson.D{{Key: "_id", Value: u.id}}).Decode(&cur)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			r.matched = 0
			return nil
		case err != nil:
			return err
		}
		r.matched = 0
		if cur.Version >= u.target() {
			r.matched = 1
		}
		return nil
	})
	return r
}

// writeDrops removes run-queue copies by _id, one delete command per
// priority.
func (s *Store) writeDrops(ctx context.Context, drops []dropCopy) []struct{} {
	byPriority := map[int][]mongo.WriteModel{}
	for _, d := range drops {
		byPriority[d.priority] = append(byPriority[d.priority], mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: d.id}}))
	}
	for p, models := range byPriority {
		_ = retry(ctx, func() error {
			_, err := s.queue(p).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
			return err
		})
	}
	return make([]struct{}, len(drops))
}
