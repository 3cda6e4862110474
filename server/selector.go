package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// candidateLimit is how many runnable jobs of this server's stripe (see
// stripes) one selection query lists, besides the reserve.
const candidateLimit = 50

// stripeRefresh is how often a selector re-reads the live servers that
// share the simple jobs between them (one small read). Until a server
// learns of one that joined, it takes that one's stripe too, and the
// newcomer trips over what it took (`bench --simple`, two servers started
// together: 100 to 400 conflicting starts, each a claim insert and a read).
const stripeRefresh = 250 * time.Millisecond

// selector keeps this server's view of the runnable jobs, ordered by priority
// then age, refreshed by one query at most every pollInterval (when workers
// are idle) or reCheck (when they are busy), so workers never query per slice.
type selector struct {
	store        *store.Store
	reCheck      time.Duration
	pollInterval time.Duration
	types        func() []string // the job types to offer; nil offers all
	// reserve is how many more jobs a read lists for those taken from the
	// list whose claims are still on their way (the blocks of this
	// server's workers, runBlock): a read lists them again, and a list of
	// candidateLimit could hold nothing else, leaving the workers idle
	// until the poll interval. Server.New makes it four blocks per worker:
	// with one, the workers of a busy server waited for the list to be
	// read again after every block or two (a third of their time).
	reserve int

	mu        sync.Mutex
	jobs      []model.Job
	hashes    []uint32    // each listed job's stripe hash (stripeHash), hashed once per list
	hidden    []time.Time // until when each listed job is hidden: a copy of its skip
	stale     bool        // hidden may hide longer than skip does: a skip changed since the list was read
	fetchedAt time.Time
	dropped   time.Time                 // when the list was last invalidated
	taken     bool                      // a worker took a simple job from the list since it was read
	idle      atomic.Int32              // workers waiting in wait
	skip      map[bson.ObjectID]skipped // jobs with nothing to claim here, for now
	prunedAt  time.Time                 // when the skips that ran out were last forgotten
	wakeCh    chan struct{}

	refreshMu sync.Mutex    // one selection query at a time; the others use its result
	ahead     chan struct{} // closed when the read ahead under way (readAhead) ends; nil: none (sel.mu)
	listed    int           // the queued jobs of this server's stripe in the list when read (mine)

	// Stripes: the simple jobs of one priority are shared out among the
	// live servers by a hash of their id, so that servers reading the same
	// first candidates do not race each other for them (a lost claim costs
	// several database calls). A server takes the jobs of its own stripe
	// first; another stripe's jobs of the same priority only when none of
	// its own is listed; never a less urgent job before a more urgent one.
	self      string        // this server's name ("" before identify)
	started   time.Time     // when this server started (zero: unknown)
	deadAfter time.Duration // judges the heartbeats of the other servers
	rank, of  int           // this server's stripe, and the number of stripes
	stripedAt time.Time     // when the live servers were last read
	holdUntil time.Time     // a server that joined others takes no simple job before (see joinHold)
}

func newSelector(s *store.Store, reCheck, poll time.Duration) *selector {
	return &selector{store: s, reCheck: reCheck, pollInterval: poll, skip: map[bson.ObjectID]skipped{}, wakeCh: make(chan struct{})}
}

// joinHold is how long a server that finds older live servers at its first
// read of them takes no simple job. Until an older server reads the
// servers again (within stripeRefresh), it still takes the newcomer's
// stripe, and the blocks it claimed by then end within about as long
// again: a newcomer that started on its stripe at once tripped over them
// (`bench --simple`, two servers started together: 200 to 300 conflicting
// starts in its first 400 ms, each a claim insert and a read). Held, it
// leaves them to the older server, which takes them anyway.
const joinHold = 2 * stripeRefresh

// identify names this server, and says when it started, so that its
// selector shares the simple jobs out with the other live servers (see
// stripes). Until it is called, or while this server is the only one, it
// takes every job. A zero started never holds (joinHold).
func (sel *selector) identify(name string, deadAfter time.Duration, started time.Time) {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	sel.self, sel.deadAfter, sel.started = name, deadAfter, started
}

// restripe re-reads the live servers when that is older than
// stripeRefresh, and returns how many stripes there are. A failure keeps
// the stripes as they were.
func (sel *selector) restripe(ctx context.Context) int {
	sel.mu.Lock()
	self, started, deadAfter, of := sel.self, sel.started, sel.deadAfter, max(sel.of, 1)
	due := self != "" && time.Since(sel.stripedAt) >= stripeRefresh
	sel.mu.Unlock()
	if !due {
		return of
	}
	servers, err := sel.store.ListServers(ctx)
	if err != nil {
		return of
	}
	live, elder := []string{self}, false
	for i := range servers {
		srv := &servers[i]
		if srv.Name != self && srv.State == model.ServerRunning && time.Since(srv.HeartbeatAt) < srv.DeadAfterOr(deadAfter) {
			live = append(live, srv.Name)
			elder = elder || startedBefore(srv, started, self)
		}
	}
	slices.Sort(live)
	sel.mu.Lock()
	if sel.of == 0 && elder { // the first read: this server joins others
		sel.holdUntil = time.Now().Add(joinHold)
	}
	sel.rank, sel.of, sel.stripedAt = slices.Index(live, self), len(live), time.Now()
	sel.mu.Unlock()
	return len(live)
}

// startedBefore reports whether srv started before the server self, which
// started at started (by name when together): self then holds its simple
// jobs at first (joinHold). An unknown start (zero) holds nothing.
func startedBefore(srv *model.Server, started time.Time, self string) bool {
	if started.IsZero() {
		return false
	}
	return srv.StartedAt.Before(started) || srv.StartedAt.Equal(started) && srv.Name < self
}

// holding reports whether this server still holds its simple jobs
// (joinHold) (sel.mu held).
func (sel *selector) holding(now time.Time) bool {
	return now.Before(sel.holdUntil)
}

// restripeSoon makes the next refresh re-read the live servers: a start
// that conflicted is a sign that another server took the job, perhaps one
// that started after the last read (two servers started together would
// otherwise each take the other's stripe until the next stripeRefresh).
func (sel *selector) restripeSoon() {
	sel.mu.Lock()
	sel.stripedAt = time.Time{}
	sel.mu.Unlock()
}

// stripe returns the stripe of a simple job among of stripes: the FNV-1a
// hash of its id (servers of every build must agree on it) modulo of.
func stripe(id bson.ObjectID, of int) int { return int(stripeHash(id) % uint32(of)) }

// stripeHash is the FNV-1a hash of id, written out because hash/fnv
// allocates, and a read of the list hashes every job it reads.
func stripeHash(id bson.ObjectID) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for _, b := range id {
		h ^= uint32(b)
		h *= prime32
	}
	return h
}

// setList makes jobs the list (sel.mu held): each job's stripe hash and
// skip, read once. Selection walks the list from its head for every job it
// hands out (a block takes a few hundred one by one, and a list begins
// with the jobs taken from the one before, whose claims are on their way:
// the reserve), and hashing every entry, or looking up the skip of every
// one already taken, each time cost more than all the rest of the
// selector.
func (sel *selector) setList(jobs []model.Job) {
	if now := time.Now(); now.Sub(sel.prunedAt) >= sel.pollInterval {
		// Forget the skips that ran out, at most once a poll interval: a
		// job that ended is never listed again, and its skip would stay
		// (a map entry for every simple job a server ever ran).
		for id, sk := range sel.skip {
			if !now.Before(sk.until) {
				delete(sel.skip, id)
			}
		}
		sel.prunedAt = now
	}
	sel.jobs, sel.taken, sel.stale = jobs, false, false
	sel.hashes = make([]uint32, len(jobs))
	sel.hidden = make([]time.Time, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		sel.hashes[i] = stripeHash(j.ID)
		if sk, ok := sel.skip[j.ID]; ok && sk.version == j.Version {
			sel.hidden[i] = sk.until
		}
	}
}

// theirs reports whether the listed job i is a simple job of another
// server's stripe (sel.mu held).
func (sel *selector) theirs(i int) bool {
	return sel.of > 1 && sel.jobs[i].Kind == model.KindSimple && int(sel.hashes[i]%uint32(sel.of)) != sel.rank
}

// hiddenAt reports whether the listed job i is hidden from this server now:
// by its copy of its skip (read with the list, or written by a take from
// it), while no skip changed but by a take, or by its skip (sel.mu held).
func (sel *selector) hiddenAt(i int, now time.Time) bool {
	if !sel.stale && now.Before(sel.hidden[i]) {
		return true
	}
	return sel.skipped(&sel.jobs[i], now)
}

// refresh re-reads the runnable jobs when the cached list is older than
// maxAge. Workers that ask while another one reads wait for its list.
func (sel *selector) refresh(ctx context.Context, maxAge time.Duration) error {
	sel.mu.Lock()
	fresh := time.Since(sel.fetchedAt) < maxAge
	sel.mu.Unlock()
	if fresh {
		return nil
	}
	asked := time.Now()
	sel.refreshMu.Lock()
	defer sel.refreshMu.Unlock()
	sel.mu.Lock()
	fresh = sel.fetchedAt.After(asked) // read while this one waited
	sel.mu.Unlock()
	if fresh {
		return nil
	}
	var types []string
	if sel.types != nil {
		types = sel.types()
	}
	// Each server keeps about candidateLimit jobs of its own stripe listed
	// (and as many of the others').
	of := sel.restripe(ctx)
	sel.mu.Lock()
	rank := sel.rank
	sel.mu.Unlock()
	var mine func(*model.Job) bool // nil: alone, every job is this server's
	if of > 1 {
		mine = func(j *model.Job) bool { return j.Kind != model.KindSimple || stripe(j.ID, of) == rank }
	}
	started := time.Now()
	jobs, err := sel.store.RunnableShare(ctx, started, int64(candidateLimit+sel.reserve), types, mine)
	if err != nil {
		return err
	}
	sel.mu.Lock()
	sel.setList(jobs)
	sel.listed = sel.mine(time.Now())
	if !sel.dropped.After(started) { // else invalidated while read: read again next time
		sel.fetchedAt = started
	}
	sel.mu.Unlock()
	return nil
}

// mine counts the queued jobs of the list that this server's workers may
// take (its stripe's, not skipped) (sel.mu held).
func (sel *selector) mine(now time.Time) int {
	n := 0
	for i := range sel.jobs {
		j := &sel.jobs[i]
		if j.State == model.StateQueued && !sel.theirs(i) && !sel.hiddenAt(i, now) {
			n++
		}
	}
	return n
}

// aheadDue reports whether the list should be read again now, in the
// background (readAhead): it listed at least long queued jobs for this
// server, and its workers took half of them. With blocks of short jobs a
// list of hundreds lasts a few blocks; read only once it ran out, every
// worker waited for each read (a third of their time in `bench
// --simple`). A shorter list is read again once it runs out, as before.
func (sel *selector) aheadDue(long int) bool {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if !sel.taken || sel.ahead != nil || sel.listed < long || 2*sel.mine(time.Now()) >= sel.listed {
		return false
	}
	sel.ahead = make(chan struct{})
	return true
}

// readAhead reads the list again (aheadDue said so); a failure leaves it
// to the workers, once the list runs out.
func (sel *selector) readAhead(ctx context.Context) {
	_ = sel.refresh(ctx, 0)
	sel.mu.Lock()
	close(sel.ahead)
	sel.ahead = nil
	sel.mu.Unlock()
}

// awaitAhead waits for a read ahead under way, if there is one, and
// reports whether there was.
func (sel *selector) awaitAhead() bool {
	sel.mu.Lock()
	done := sel.ahead
	sel.mu.Unlock()
	if done == nil {
		return false
	}
	<-done
	return true
}

// consumed reports whether the list ran out because this server's workers
// took its simple jobs: then it is worth reading again at once instead of
// waiting for the poll interval.
func (sel *selector) consumed() bool {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return sel.taken
}

// invalidate makes the next refresh query the database.
func (sel *selector) invalidate() {
	sel.mu.Lock()
	sel.fetchedAt, sel.dropped = time.Time{}, time.Now()
	sel.mu.Unlock()
}

// next returns the most urgent job that is not skipped, or nil. Among the
// simple jobs of one priority it prefers those of this server's stripe; it
// takes another stripe's (the youngest listed, farthest from where that
// stripe's server takes them) only when none of its own is listed at that
// priority, and not from a list whose own jobs this server already took:
// the caller then reads the list again, which usually brings more of its
// own.
func (sel *selector) next() *model.Job {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	now := time.Now()
	foreign := -1 // another stripe's simple job, at the most urgent priority listed
	for i := range sel.jobs {
		j := &sel.jobs[i]
		if sel.hiddenAt(i, now) {
			continue
		}
		if j.State != model.StateQueued && j.State != model.StateRunning {
			continue
		}
		if foreign >= 0 && j.Priority != sel.jobs[foreign].Priority {
			break // never a less urgent job before a more urgent one
		}
		if j.Kind == model.KindSimple && sel.holding(now) {
			return nil // nor while the older servers take them (joinHold)
		}
		if sel.theirs(i) {
			foreign = i // keep looking for one of ours at this priority
			continue
		}
		return sel.take(i, now)
	}
	if foreign < 0 || sel.taken {
		return nil
	}
	return sel.take(foreign, now)
}

// nextLike takes another queued simple job like job (its type and
// priority, this server's stripe) that is not skipped, or returns nil: the
// rest of a block (runBlock). The list holds the jobs of a priority in
// age order, so a block takes the oldest first, as next does.
func (sel *selector) nextLike(like *model.Job) *model.Job {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	now := time.Now()
	for i := range sel.jobs {
		j := &sel.jobs[i]
		switch {
		case j.Priority < like.Priority:
			continue
		case j.Priority > like.Priority:
			return nil // never a less urgent job
		case j.Kind != model.KindSimple || j.Type != like.Type || j.State != model.StateQueued:
			continue
		case sel.theirs(i):
			continue
		}
		if sel.hiddenAt(i, now) {
			continue
		}
		return sel.take(i, now)
	}
	return nil
}

// skipped reports whether j is hidden from this server now (skipFor),
// forgetting a skip that ran out or that a change of the job ended
// (sel.mu held).
func (sel *selector) skipped(j *model.Job, now time.Time) bool {
	sk, ok := sel.skip[j.ID]
	if !ok {
		return false
	}
	if now.Before(sk.until) && sk.version == j.Version {
		return true
	}
	if sk.version != j.Version {
		sel.stale = true // an entry of another version may still copy the skip
	}
	delete(sel.skip, j.ID)
	return false
}

// take hands out sel.jobs[i] (sel.mu held).
func (sel *selector) take(i int, now time.Time) *model.Job {
	j := &sel.jobs[i]
	job := *j
	if j.Kind == model.KindSimple {
		// One worker per simple job: the others take the next
		// candidate instead of racing this one for the same job.
		sel.skip[j.ID] = skipped{until: now.Add(sel.pollInterval), version: j.Version}
		sel.hidden[i] = now.Add(sel.pollInterval)
		sel.taken = true
	}
	return &job
}

// better reports whether a job other than current should be worked on now:
// current is no longer runnable, or a more urgent job has work.
func (sel *selector) better(current *model.Job) bool {
	cur, ok := sel.current(current.ID)
	if !ok {
		// Gone from the runnable list: paused, aborted, failed or destroyed
		// (or behind candidateLimit more urgent jobs). Leave it even when no
		// other job waits: the job's controls must reach running work.
		return true
	}
	best := sel.next()
	if best == nil || best.ID == current.ID {
		return false
	}
	return best.Priority < cur.Priority // cur carries a priority changed meanwhile
}

// current returns the cached copy of a job, if it is still runnable.
func (sel *selector) current(id bson.ObjectID) (model.Job, bool) {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	for _, j := range sel.jobs {
		if j.ID == id {
			return j, true
		}
	}
	return model.Job{}, false
}

// skipped hides a job from this server until a time, or until the job
// changes (a new version: resumed, retried, re-prioritised), whichever comes
// first.
type skipped struct {
	until   time.Time
	version int64
}

// skipFor hides a job from this server for d (it has nothing to claim here),
// unless it changes meanwhile.
func (sel *selector) skipFor(job *model.Job, d time.Duration) {
	sel.mu.Lock()
	sel.skip[job.ID] = skipped{until: time.Now().Add(d), version: job.Version}
	sel.stale = true // it may end a skip that a take copied earlier
	sel.mu.Unlock()
}

// wait blocks an idle worker for the poll interval, or until woken, or
// until the join hold ends (joinHold), whichever comes first.
func (sel *selector) wait(ctx context.Context) {
	sel.idle.Add(1)
	defer sel.idle.Add(-1)
	sel.mu.Lock()
	ch := sel.wakeCh
	d := sel.pollInterval
	if sel.holding(time.Now()) {
		d = min(d, time.Until(sel.holdUntil))
	}
	sel.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-t.C:
	}
	sel.mu.Lock()
	if !sel.holdUntil.IsZero() && !sel.holding(time.Now()) {
		// The hold ended: read the list again, as its offers are as old
		// as the hold (the older servers ran many of them meanwhile).
		sel.holdUntil, sel.fetchedAt, sel.dropped = time.Time{}, time.Time{}, time.Now()
	}
	sel.mu.Unlock()
}

// wake releases every idle worker.
func (sel *selector) wake() {
	sel.mu.Lock()
	close(sel.wakeCh)
	sel.wakeCh = make(chan struct{})
	sel.mu.Unlock()
}
