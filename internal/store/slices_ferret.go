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
)

// ferretSlices is the FerretDB strategy. FerretDB's updates are not atomic
// across connections and every _id lookup scans the collection, so:
//
//   - input slices are written once and never updated or looked up by _id;
//   - a claim is a unique insert of "<slice>:<attempt>" into the claims
//     collection (exactly one inserter wins), made while streaming the input;
//   - a slice is finished by a unique insert of "<slice>" into the done
//     collection, after its output "<slice>:<attempt>" is written; a duplicate
//     means another attempt finished first, whose output alone counts;
//   - a requeue (zombie, graceful stop, retry) inserts "<slice>:<attempt+1>"
//     into the requeue collection, which makes that attempt claimable.
type ferretSlices struct {
	db     *mongo.Database
	ferret bool      // db is FerretDB (the insert strategy also runs on MongoDB)
	known  knownJobs // the finished slices this process knows of, by job

	countMu sync.Mutex
	counted map[bson.ObjectID]time.Time // when AllDone last counted a job's done markers exactly
}

// maxKnownJobs bounds the jobs whose finished slices a process remembers
// (see knownJobs); the least recently used is forgotten first.
const maxKnownJobs = 64

// knownJobs remembers, for each job this process finishes slices of, the
// slices whose done markers it inserted itself (CompleteMany won them)
// without failed records, with the sums their done markers hold.
//
// A done marker is never removed except by RetryFailed (which removes only
// markers of slices with failed records, never remembered here) and by
// Drop (which forgets the job). So a slice remembered here stays finished,
// and when every one of a job's slices is remembered, the done collection
// holds exactly these markers: AllDone, Progress and Totals then answer
// from memory what they would read from the database. Reading it means
// streaming the done and claims collections whole (FerretDB evaluates
// every filter in Go): about 0.7 s each at 10,000 slices, between a job's
// last slice and its completion. Anything less than complete knowledge (a
// slice finished by another process, or before this one started, or with
// failed records) reads the database as before. A job costs one bit a
// slice.
type knownJobs struct {
	mu   sync.Mutex
	jobs map[bson.ObjectID]*knownDone
	tick uint64
}

// knownDone is one job's entry of knownJobs.
type knownDone struct {
	bits       []uint64 // slice num is finished when bit num-1 is set
	n          int64    // bits set
	processed  int64
	totals     Totals
	sliceCount int64 // the job's slice count, once a caller said it (0 before)
	used       uint64
}

// entry returns job's entry, creating it (and forgetting the least
// recently used job when there are too many) when create is set (mu held).
func (k *knownJobs) entry(job bson.ObjectID, create bool) *knownDone {
	k.tick++
	if e := k.jobs[job]; e != nil {
		e.used = k.tick
		return e
	}
	if !create {
		return nil
	}
	if k.jobs == nil {
		k.jobs = map[bson.ObjectID]*knownDone{}
	}
	if len(k.jobs) >= maxKnownJobs {
		var oldest bson.ObjectID
		var at uint64 = ^uint64(0)
		for id, e := range k.jobs {
			if e.used < at {
				oldest, at = id, e.used
			}
		}
		delete(k.jobs, oldest)
	}
	e := &knownDone{used: k.tick}
	k.jobs[job] = e
	return e
}

// finished remembers slices of job that this process finished: their done
// markers went in (won). Slices with failed records are not remembered.
func (k *knownJobs) finished(job bson.ObjectID, done []Completion, won []bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var e *knownDone
	for i, d := range done {
		if !won[i] || d.FailedCount > 0 || d.Num < 1 {
			continue
		}
		if e == nil {
			e = k.entry(job, true)
		}
		w, bit := (d.Num-1)/64, uint64(1)<<((d.Num-1)%64)
		for int64(len(e.bits)) <= w {
			e.bits = append(e.bits, 0)
		}
		if e.bits[w]&bit != 0 {
			continue
		}
		e.bits[w] |= bit
		e.n++
		e.processed += int64(d.Count)
		e.totals.add(d.Batch.counts(), statistics(d.Batch), dropped(d.Batch))
	}
}

func statistics(b *BatchResult) map[string]int64 {
	if b == nil {
		return nil
	}
	return b.Statistics
}

func dropped(b *BatchResult) int64 {
	if b == nil {
		return 0
	}
	return b.Dropped
}

// all returns what this process knows of job's finished slices when that
// is every one of its sliceCount slices (sliceCount 0: the count recorded
// earlier): their record count and totals.
func (k *knownJobs) all(job bson.ObjectID, sliceCount int64) (processed int64, t Totals, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entry(job, false)
	if e == nil {
		return 0, t, false
	}
	if sliceCount > 0 {
		e.sliceCount = sliceCount
	}
	if e.sliceCount == 0 || e.n < e.sliceCount {
		return 0, t, false
	}
	t.add(e.totals.Categories, e.totals.Statistics, e.totals.Dropped) // a copy
	return e.processed, t, true
}

// forget drops what this process knows of job.
func (k *knownJobs) forget(job bson.ObjectID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.jobs, job)
}

func (f *ferretSlices) coll(job bson.ObjectID, kind string) *mongo.Collection {
	return sliceColl(f.db, job, kind)
}

// Prepare creates every collection of the job's slices up front.
func (f *ferretSlices) Prepare(ctx context.Context, job bson.ObjectID) error {
	for _, k := range strings.Fields(sliceKinds) {
		err := retry(ctx, func() error {
			err := f.db.CreateCollection(ctx, f.coll(job, k).Name())
			if ce := (mongo.CommandError{}); errors.As(err, &ce) && ce.Code == codeNamespaceExists {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("creating the slice collections of job %s: %w", job.Hex(), err)
		}
	}
	return nil
}

// codeNamespaceExists is the server's error code for a collection that
// exists already.
const codeNamespaceExists = 48

// InsertInput writes each slice into the collection of its input chunk
// (see inputChunk).
func (f *ferretSlices) InsertInput(ctx context.Context, job bson.ObjectID, in []InputSlice) error {
	for len(in) > 0 {
		c := chunkOf(in[0].Num)
		n := 1
		for n < len(in) && chunkOf(in[n].Num) == c {
			n++
		}
		if err := insertInput(ctx, f.coll(job, inputKind(c)), in[:n], nil); err != nil {
			return err
		}
		in = in[n:]
	}
	return nil
}

// insertInput bulk-inserts slices (unordered, so a retry after a partial
// success only reports duplicates, which it ignores).
func insertInput(ctx context.Context, coll *mongo.Collection, in []InputSlice, extra bson.D) error {
	docs := make([]any, len(in))
	for i, s := range in {
		d := bson.D{{Key: "_id", Value: sliceID(s.Num)}, {Key: "first", Value: s.First}, {Key: "count", Value: s.Count},
			{Key: "records", Value: bson.Binary{Data: s.Records}}}
		docs[i] = append(d, extra...)
	}
	_, _, err := insertMany(ctx, coll, docs) // duplicates: slices an earlier try wrote
	return err
}

func (f *ferretSlices) insert(ctx context.Context, job bson.ObjectID, kind string, doc bson.D) error {
	return retry(ctx, func() error {
		_, err := f.coll(job, kind).InsertOne(ctx, doc)
		return err
	})
}

type inputDoc struct {
	ID      string `bson:"_id"`
	First   int64  `bson:"first"`
	Count   int    `bson:"count"`
	Records []byte `bson:"records"`
}

type doneDoc struct {
	ID        string `bson:"_id"`
	Attempt   int    `bson:"attempt"`
	Processed int64  `bson:"processed"`
	Failed    int64  `bson:"failed"`
	Output    bool   `bson:"output"`
	// A batch type's slice (see BatchResult).
	Categories map[string]int64 `bson:"cats,omitempty"`
	Statistics map[string]int64 `bson:"stats,omitempty"`
	Dropped    int64            `bson:"dropped,omitempty"`
}

// jobState is a snapshot of a job's claims, requeues and finished slices.
type jobState struct {
	done     map[int64]doneDoc
	claimed  map[int64]int    // highest attempt claimed
	owner    map[int64]string // server of the highest claimed attempt
	requeued map[int64]int    // highest attempt made claimable
}

func (f *ferretSlices) loadState(ctx context.Context, job bson.ObjectID) (*jobState, error) {
	done, err := f.loadDone(ctx, job)
	if err != nil {
		return nil, err
	}
	return f.loadClaims(ctx, job, done)
}

// loadClaims reads the claims and requeue collections into a state with
// the finished slices done.
func (f *ferretSlices) loadClaims(ctx context.Context, job bson.ObjectID, done map[int64]doneDoc) (*jobState, error) {
	st := &jobState{done: done, claimed: map[int64]int{}, owner: map[int64]string{}, requeued: map[int64]int{}}
	err := stream(ctx, f.coll(job, "claims"), func(raw bson.Raw) error {
		var c struct {
			ID     string `bson:"_id"`
			Server string `bson:"server"`
		}
		if err := bson.Unmarshal(raw, &c); err != nil {
			return err
		}
		n, a, err := parseAttemptID(c.ID)
		if err != nil {
			return err
		}
		if a > st.claimed[n] {
			st.claimed[n], st.owner[n] = a, c.Server
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if st.requeued, err = f.loadRequeued(ctx, job); err != nil {
		return nil, err
	}
	return st, nil
}

// loadDone reads the done collection: the finished slices, by number. It
// is the only part of a job's state that finished slices need (progress,
// totals, downloads): the claims collection is as big and is not read.
func (f *ferretSlices) loadDone(ctx context.Context, job bson.ObjectID) (map[int64]doneDoc, error) {
	done := map[int64]doneDoc{}
	err := stream(ctx, f.coll(job, "done"), func(raw bson.Raw) error {
		var d doneDoc
		if err := bson.Unmarshal(raw, &d); err != nil {
			return err
		}
		n, err := parseSliceID(d.ID)
		if err != nil {
			return err
		}
		done[n] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// loadRequeued reads the requeue collection: the highest attempt made
// claimable for each requeued slice.
func (f *ferretSlices) loadRequeued(ctx context.Context, job bson.ObjectID) (map[int64]int, error) {
	requeued := map[int64]int{}
	err := stream(ctx, f.coll(job, "requeue"), func(raw bson.Raw) error {
		n, a, err := parseAttemptID(raw.Lookup("_id").StringValue())
		if err != nil {
			return err
		}
		requeued[n] = max(requeued[n], a)
		return nil
	})
	return requeued, err
}

// stream reads a whole collection in natural order.
func stream(ctx context.Context, coll *mongo.Collection, fn func(bson.Raw) error) error {
	return retry(ctx, func() error {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur)
		for cur.Next(ctx) {
			if err := fn(cur.Current); err != nil {
				return err
			}
		}
		return cur.Err()
	})
}

// Claiming, as measured on FerretDB: each write is its own SQLite
// transaction and writers queue for one lock, so claims are made in blocks
// with one insertMany.
const (
	claimBlock  = 16                     // slices claimed per insertMany
	inputBatch  = 64                     // input slices per cursor batch
	rescanAfter = 500 * time.Millisecond // how long "no work" is believed before looking again
)

func (f *ferretSlices) NewFeeder(job bson.ObjectID, server string, sliceCount int64) Feeder {
	return &ferretFeeder{f: f, job: job, server: server, sliceCount: sliceCount}
}

// ferretFeeder streams the input collections and claims blocks of the
// slices it passes. A pass starts with a snapshot of the small collections
// (done, claims, requeue); it reads only the input chunks that hold a
// claimable slice, one cursor at a time (see inputChunk), and when the
// snapshot shows nothing claimable the input is not read at all. While the
// workers process, it reads the next chunk ahead (readAhead) and claims the
// next block ahead (claimAheadAt), so that neither holds them up.
type ferretFeeder struct {
	f          *ferretSlices
	job        bson.ObjectID
	server     string
	sliceCount int64

	mu          sync.Mutex
	reading     bool       // a pass is under way
	chunks      []int      // input chunks of the pass still to read
	buf         []inputDoc // claimable slices of the chunk in hand, not yet claimed
	partial     bool       // a chunk held more than inputChunk claimable slices
	deferred    []int64    // claimable slices of the pass left to another server's feeder (see collided)
	collisions  int        // blocks of the pass mostly lost to other servers
	whole       bool       // the job's input is one collection (uploaded before chunks)
	st          *jobState
	found       int        // candidates seen in the current pass
	pending     []*Claimed // claimed, not yet handed out
	noWorkUntil time.Time
	ahead       *chunkAhead   // the next chunk of the pass, being read ahead
	claiming    chan struct{} // closed when the claim made ahead (claimAhead) is in
	aheadErr    error         // the claim made ahead failed
	aheadWG     sync.WaitGroup
}

func (ff *ferretFeeder) Next(ctx context.Context) (*Claimed, error) {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	for restarts := 0; ; {
		if len(ff.pending) > 0 {
			c := ff.pending[0]
			ff.pending = ff.pending[1:]
			ff.claimAhead(ctx)
			return c, nil
		}
		if err := ff.waitClaiming(ctx); err != nil {
			return nil, err
		}
		if len(ff.pending) > 0 {
			continue // the claims made ahead
		}
		if err := ff.aheadErr; err != nil {
			ff.aheadErr = nil
			ff.endPass()
			ff.st = nil
			return nil, err
		}
		if !ff.reading {
			if time.Now().Before(ff.noWorkUntil) {
				return nil, ErrNoWork
			}
			more, err := ff.startPass(ctx)
			if err != nil {
				return nil, err
			}
			if !more {
				ff.noWorkUntil = time.Now().Add(rescanAfter)
				return nil, ErrNoWork
			}
		}
		block, ended, err := ff.readBlock(ctx)
		if err == nil && ended && len(ff.deferred) > 0 {
			err = ff.settleDeferred(ctx)
			if err == nil {
				continue // what it claimed is pending; the rest of a chunk it read, in buf
			}
		}
		if err != nil {
			ff.endPass()
			ff.st = nil // the pass did not complete: the next one reloads everything
			if ctx.Err() != nil || restarts > 3 {
				return nil, err
			}
			restarts++ // a lost cursor: start a new pass; the claims keep it exact
			continue
		}
		if ended {
			found, partial := ff.found, ff.partial
			ff.endPass()
			if partial {
				ff.st = nil // slices were left unread: the next pass reloads everything
			}
			if len(block) == 0 && found == 0 {
				ff.noWorkUntil = time.Now().Add(rescanAfter)
				return nil, ErrNoWork
			}
		}
		if len(block) > 0 {
			if err := ff.claim(ctx, block); err != nil {
				ff.endPass()
				ff.st = nil
				return nil, err
			}
		}
	}
}

// startPass snapshots the job's claim state and reads the first input chunk
// that holds a claimable slice, or reports that no slice is claimable. After a complete pass, every slice it
// passed was claimed (by this server or another) or done, so only a requeue
// can make a slice claimable again: it then reads just the small requeue
// collection, and the big ones only when a requeue appeared.
func (ff *ferretFeeder) startPass(ctx context.Context) (bool, error) {
	if ff.st != nil {
		requeued, err := ff.f.loadRequeued(ctx, ff.job)
		if err != nil {
			return false, fmt.Errorf("loading requeued slices: %w", err)
		}
		fresh := false
		for num, a := range requeued {
			if a > ff.st.claimed[num] {
				fresh = true
				break
			}
		}
		if !fresh {
			return false, nil
		}
	}
	st, err := ff.f.loadState(ctx, ff.job)
	if err != nil {
		return false, fmt.Errorf("loading slice state: %w", err)
	}
	ff.st = st
	ff.chunks = ff.chunks[:0]
	for num := int64(1); num <= ff.sliceCount; num++ {
		c := chunkOf(num)
		if ff.whole {
			c = 1 // every slice is in the first collection
		}
		if st.claimable(num) && !slices.Contains(ff.chunks, c) {
			ff.chunks = append(ff.chunks, c)
		}
	}
	ff.found = 0
	return ff.nextChunk(ctx)
}

// nextChunk reads the claimable slices of the next input chunk of the pass
// into buf, with a cursor it closes at once, or reports that the pass has
// no chunk left. The chunk after it is then read ahead (see readAhead).
func (ff *ferretFeeder) nextChunk(ctx context.Context) (bool, error) {
	if len(ff.chunks) == 0 {
		ff.reading = false
		return false, nil
	}
	chunk := ff.chunks[0]
	ff.chunks = ff.chunks[1:]
	ff.buf = ff.buf[:0]
	if docs, ok, err := ff.takeAhead(ctx, chunk); err != nil {
		return false, err
	} else if ok {
		for _, in := range docs {
			if num, _ := parseSliceID(in.ID); ff.st.claimable(num) {
				ff.buf = append(ff.buf, in)
			}
		}
		ff.found += len(ff.buf)
		ff.reading = true
		ff.readAhead()
		return true, nil
	}
	err := ff.scanChunk(ctx, chunk, func() { ff.buf = ff.buf[:0] }, func(in inputDoc) (bool, error) {
		num, err := parseSliceID(in.ID)
		if err != nil {
			return false, err
		}
		if chunkOf(num) != chunk {
			ff.whole = true
		}
		if ff.st.claimable(num) {
			if len(ff.buf) == inputChunk {
				// Only a job uploaded before the input was chunked holds
				// more: the rest waits for the next pass, so that memory
				// stays bounded.
				ff.partial = true
				return false, nil
			}
			ff.buf = append(ff.buf, in)
		}
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("reading input slices: %w", err)
	}
	ff.found += len(ff.buf) // counted once the read succeeded (a retry reads again)
	ff.reading = true
	ff.readAhead()
	return true, nil
}

// chunkAhead is an input chunk being read ahead.
type chunkAhead struct {
	chunk  int
	done   chan struct{} // closed when docs and ok are set
	docs   []inputDoc
	ok     bool // the read succeeded and the chunk holds its own slices only
	cancel context.CancelFunc
}

// readAhead starts reading the next chunk of the pass in the background,
// so that the workers need not wait for it when the chunk in hand runs out:
// reading a chunk takes about as long as processing a few hundred slices
// on FerretDB, and every worker of the feeder waited for it (about a third
// of the processing time of a 1M-line job). The read closes its cursor at
// once, as nextChunk's does; it holds every slice of the chunk, so a
// feeder holds at most two chunks in memory. Only chunks after the first
// are read ahead, and not in a job uploaded before the input was chunked
// (whole): such a collection is not bounded by inputChunk. What the read
// brings is filtered when it is taken (takeAhead), against the state of
// that moment; a failed read is simply read again then.
func (ff *ferretFeeder) readAhead() {
	if ff.ahead != nil || ff.whole || len(ff.chunks) == 0 || ff.chunks[0] < 2 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &chunkAhead{chunk: ff.chunks[0], done: make(chan struct{}), cancel: cancel}
	ff.ahead = a
	coll := ff.f.coll(ff.job, inputKind(a.chunk))
	ff.aheadWG.Go(func() {
		defer close(a.done)
		defer cancel()
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(inputBatch).SetLimit(inputChunk+1))
		if err != nil {
			return
		}
		defer closeCursor(ctx, cur)
		docs := make([]inputDoc, 0, inputChunk)
		for cur.Next(ctx) {
			var in inputDoc
			if cur.Decode(&in) != nil {
				return
			}
			num, err := parseSliceID(in.ID)
			if err != nil || chunkOf(num) != a.chunk || len(docs) == inputChunk {
				return // not a chunk of its own: nextChunk reads it as it can
			}
			docs = append(docs, in)
		}
		a.docs, a.ok = docs, cur.Err() == nil
	})
}

// takeAhead returns the slices of chunk when they were read ahead, waiting
// for the read to end; ok is false when they were not (or the read
// failed). Anything else read ahead is dropped.
func (ff *ferretFeeder) takeAhead(ctx context.Context, chunk int) (docs []inputDoc, ok bool, err error) {
	a := ff.ahead
	if a == nil {
		return nil, false, nil
	}
	ff.ahead = nil
	if a.chunk != chunk {
		a.cancel()
		return nil, false, nil
	}
	select {
	case <-a.done:
		return a.docs, a.ok, nil
	case <-ctx.Done():
		a.cancel()
		return nil, false, ctx.Err()
	}
}

// dropAhead cancels a read ahead.
func (ff *ferretFeeder) dropAhead() {
	if ff.ahead != nil {
		ff.ahead.cancel()
		ff.ahead = nil
	}
}

// claimable reports whether slice num may be claimed now: not finished, and
// its current attempt not claimed yet.
func (st *jobState) claimable(num int64) bool {
	if _, done := st.done[num]; done {
		return false
	}
	return st.claimed[num] < max(1, st.requeued[num])
}

// readBlock takes up to claimBlock claimable slices of the chunk in hand,
// reading the next chunks of the pass as it needs them; ended reports that
// the pass has no chunk left.
func (ff *ferretFeeder) readBlock(ctx context.Context) (block []inputDoc, ended bool, err error) {
	for len(ff.buf) == 0 {
		more, err := ff.nextChunk(ctx)
		if err != nil {
			return nil, false, err
		}
		if !more {
			return nil, true, nil
		}
	}
	n := min(claimBlock, len(ff.buf))
	block = slices.Clone(ff.buf[:n])
	ff.buf = ff.buf[n:]
	return block, false, nil
}

// claim inserts claims for a block of slices with one unordered insertMany;
// the slices whose claim went in become pending, the others belong to
// another server.
func (ff *ferretFeeder) claim(ctx context.Context, block []inputDoc) error {
	req := ff.prepareClaim(block)
	mine, err := ff.insertClaims(ctx, req)
	ff.applyClaim(req, mine)
	return err
}

// claimReq is a block of claims on its way to the claims collection.
type claimReq struct {
	block    []inputDoc
	docs     []any
	attempts []int
	nums     []int64
	token    bson.ObjectID // marks the claims of this request
}

// prepareClaim builds the claims of a block (ff.mu held).
func (ff *ferretFeeder) prepareClaim(block []inputDoc) *claimReq {
	r := &claimReq{block: block, docs: make([]any, len(block)), attempts: make([]int, len(block)),
		nums: make([]int64, len(block)), token: bson.NewObjectID()}
	now := time.Now()
	for i, in := range block {
		r.nums[i], _ = parseSliceID(in.ID)
		r.attempts[i] = max(1, ff.st.requeued[r.nums[i]])
		r.docs[i] = bson.D{{Key: "_id", Value: attemptID(r.nums[i], r.attempts[i])}, {Key: "server", Value: ff.server},
			{Key: "at", Value: now}, {Key: "token", Value: r.token}}
	}
	return r
}

// insertClaims inserts a block's claims and reports which are this
// feeder's. It needs no lock: it touches only the request.
func (ff *ferretFeeder) insertClaims(ctx context.Context, r *claimReq) (mine []bool, err error) {
	ours := func(_ int, raw bson.Raw) bool {
		t, ok := raw.Lookup("token").ObjectIDOK()
		return ok && t == r.token
	}
	lost, retried, err := ff.f.insertDocs(ctx, ff.f.coll(ff.job, "claims"), r.docs)
	mine = make([]bool, len(r.docs))
	if err != nil {
		// Some claims may have gone in before the error (a full disk): they
		// carry our token and nobody else would give them back, so they are
		// handed out like any other.
		all := make([]bool, len(r.docs))
		for i := range all {
			all[i] = true
		}
		if rerr := ff.f.resolveDups(ctx, ff.job, "claims", r.docs, all, ours, mine); rerr != nil {
			return mine, fmt.Errorf("claiming slices: %w (and reading back the claims made: %v)", err, rerr)
		}
		return mine, fmt.Errorf("claiming slices: %w", err)
	}
	if retried {
		// A claim that came back as a duplicate may be our own, written
		// before a transient error: a claim is ours if it carries our token.
		if err := ff.f.resolveDups(ctx, ff.job, "claims", r.docs, lost, ours, mine); err != nil {
			return make([]bool, len(r.docs)), fmt.Errorf("claiming slices: %w", err)
		}
	}
	for i := range lost {
		mine[i] = mine[i] || !lost[i]
	}
	return mine, nil
}

// applyClaim makes a block's claims that are this feeder's pending, and
// notes every slice of the block as claimed (ff.mu held). A block mostly
// lost to other servers means one of them is claiming the chunk in hand:
// the feeder moves away from it (see collided).
func (ff *ferretFeeder) applyClaim(r *claimReq, mine []bool) {
	won := 0
	for i, in := range r.block {
		ff.st.claimed[r.nums[i]] = max(ff.st.claimed[r.nums[i]], r.attempts[i])
		if mine[i] {
			won++
			ff.pending = append(ff.pending, &Claimed{InputSlice: InputSlice{Num: r.nums[i], First: in.First, Count: in.Count, Records: in.Records}, Attempt: r.attempts[i]})
		}
	}
	if len(r.block) > 0 && 2*won < len(r.block) {
		ff.collided()
	}
}

// collided moves the pass away from a chunk another server is claiming
// (ff.mu held). Every server's feeder reads the chunks of a pass in the
// same order, from the same snapshot, so without this two servers on one
// job read every chunk and raced for every block of it, one of them losing
// each (measured: with 2 and 4 servers, each chunk was read 2 and 4 times
// and half or three quarters of the claim inserts were refused; the one
// database did that much more work and 2 servers processed at half the
// speed of one). Now a feeder whose block was lost leaves the rest of the
// chunk to the server that won it and, the first time in a pass, takes
// the chunks left in its pass from the far end (the other server goes on
// forwards: they meet once); after that, it leaves every chunk left to the
// others. What it leaves is deferred, not forgotten: the other server may
// stop, or leave some too, so before the pass ends settleDeferred claims
// those slices without reading them and reads a chunk only for the slices
// it won. One server alone never collides and reads its input in order.
func (ff *ferretFeeder) collided() {
	if ff.whole || !ff.reading {
		return // one collection: a pass reads it whole anyway
	}
	ff.collisions++
	for _, in := range ff.buf {
		if num, err := parseSliceID(in.ID); err == nil {
			ff.deferred = append(ff.deferred, num)
		}
	}
	ff.buf = nil
	if len(ff.chunks) == 0 {
		return
	}
	ff.dropAhead()
	if ff.collisions == 1 {
		slices.Reverse(ff.chunks)
		ff.readAhead()
		return
	}
	left := map[int]bool{}
	for _, c := range ff.chunks {
		left[c] = true
	}
	for num := int64(1); num <= ff.sliceCount; num++ {
		if left[chunkOf(num)] && ff.st.claimable(num) {
			ff.deferred = append(ff.deferred, num)
		}
	}
	ff.chunks = ff.chunks[:0]
}

// settleDeferred claims the slices the pass deferred (ff.mu held), a block
// at a time, without reading them: a block all lost costs one insert. At
// the first block with a claim won, it reads that block's chunk, makes the
// slices won pending and puts the chunk's other deferred slices in buf,
// to be claimed as any others; the rest stay deferred until the pass ends
// again. A lost block here does not count as a collision.
func (ff *ferretFeeder) settleDeferred(ctx context.Context) error {
	for len(ff.deferred) > 0 {
		chunk := chunkOf(ff.deferred[0])
		n := min(claimBlock, len(ff.deferred))
		for k := 1; k < n; k++ {
			if chunkOf(ff.deferred[k]) != chunk {
				n = k
				break
			}
		}
		nums := ff.deferred[:n]
		r := &claimReq{docs: make([]any, 0, n), token: bson.NewObjectID()}
		now := time.Now()
		for _, num := range nums {
			if !ff.st.claimable(num) {
				continue
			}
			a := max(1, ff.st.requeued[num])
			r.nums, r.attempts = append(r.nums, num), append(r.attempts, a)
			r.docs = append(r.docs, bson.D{{Key: "_id", Value: attemptID(num, a)}, {Key: "server", Value: ff.server},
				{Key: "at", Value: now}, {Key: "token", Value: r.token}})
		}
		var mine []bool
		if len(r.docs) > 0 {
			var err error
			if mine, err = ff.insertClaims(ctx, r); err != nil && !slices.Contains(mine, true) {
				return err
			}
		}
		ff.deferred = ff.deferred[n:]
		won := map[int64]int{}
		for i, num := range r.nums {
			ff.st.claimed[num] = max(ff.st.claimed[num], r.attempts[i])
			if mine[i] {
				won[num] = r.attempts[i]
			}
		}
		if len(won) == 0 {
			continue
		}
		docs, err := ff.readChunk(ctx, chunk)
		if err != nil {
			// The slices won cannot be handed out without their records:
			// give them back, for a later pass.
			for num, a := range won {
				_ = ff.f.requeue(context.WithoutCancel(ctx), ff.job, num, a+1)
			}
			return err
		}
		rest := map[int64]bool{} // the chunk's other deferred slices
		for _, num := range ff.deferred {
			if chunkOf(num) == chunk {
				rest[num] = true
			}
		}
		ff.buf = ff.buf[:0]
		for _, in := range docs {
			num, _ := parseSliceID(in.ID)
			if a, ok := won[num]; ok {
				ff.pending = append(ff.pending, &Claimed{InputSlice: InputSlice{Num: num, First: in.First, Count: in.Count, Records: in.Records}, Attempt: a})
			} else if rest[num] && ff.st.claimable(num) {
				ff.buf = append(ff.buf, in)
			}
		}
		if len(ff.buf) > 0 {
			ff.deferred = slices.DeleteFunc(ff.deferred, func(num int64) bool { return rest[num] })
			ff.reading = true
		}
		return nil
	}
	return nil
}

// readChunk reads every slice of an input chunk.
func (ff *ferretFeeder) readChunk(ctx context.Context, chunk int) ([]inputDoc, error) {
	var docs []inputDoc
	err := ff.scanChunk(ctx, chunk, func() { docs = docs[:0] }, func(in inputDoc) (bool, error) {
		docs = append(docs, in)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading input slices: %w", err)
	}
	return docs, nil
}

// scanChunk reads the slices of an input chunk in stored order, with a
// cursor it closes at once, and hands each to each until it says stop. A
// read that fails and is tried again starts over, after start.
func (ff *ferretFeeder) scanChunk(ctx context.Context, chunk int, start func(), each func(inputDoc) (more bool, err error)) error {
	return retry(ctx, func() error {
		start()
		cur, err := ff.f.coll(ff.job, inputKind(chunk)).Find(ctx, bson.D{}, options.Find().SetBatchSize(inputBatch))
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur)
		for cur.Next(ctx) {
			var in inputDoc
			if err := cur.Decode(&in); err != nil {
				return fmt.Errorf("decoding input slice: %w", err)
			}
			if more, err := each(in); err != nil || !more {
				return err
			}
		}
		return cur.Err()
	})
}

// claimAheadAt is how few pending slices make Next claim the next block in
// the background (ff.mu held). A claim is a write, and on FerretDB writes
// queue for one lock behind the outputs being written: made when the
// pending slices ran out, it held up every worker of the feeder (a
// thousandth of a second at best, tens under load, once every claimBlock
// slices). Claimed ahead, it is made while the workers process the last
// pending slices. So a feeder holds at most claimBlock+claimAheadAt slices
// claimed and not handed out (claimAheadAt more than before); a server
// killed meanwhile leaves them to be requeued and run again (Perform is
// at-least-once; output stays exactly-once).
//
// Only the chunk in hand is claimed from in the background: anything else
// (reading the next chunk, ending or starting a pass) waits for the claim
// in flight and is done by Next itself, as before.
const claimAheadAt = 4

func (ff *ferretFeeder) claimAhead(ctx context.Context) {
	if len(ff.pending) > claimAheadAt || ff.claiming != nil || ff.aheadErr != nil || !ff.reading || len(ff.buf) == 0 || ff.st == nil {
		return
	}
	n := min(claimBlock, len(ff.buf))
	req := ff.prepareClaim(slices.Clone(ff.buf[:n]))
	ff.buf = ff.buf[n:]
	done := make(chan struct{})
	ff.claiming = done
	ctx = context.WithoutCancel(ctx)
	ff.aheadWG.Go(func() {
		mine, err := ff.insertClaims(ctx, req)
		ff.mu.Lock()
		defer ff.mu.Unlock()
		ff.applyClaim(req, mine)
		if err != nil {
			ff.aheadErr = err // Next ends the pass and reports it
		}
		ff.claiming = nil
		close(done)
	})
}

// waitClaiming waits (ff.mu held, released meanwhile) until no claim made
// ahead is in flight.
func (ff *ferretFeeder) waitClaiming(ctx context.Context) error {
	for ff.claiming != nil {
		ch := ff.claiming
		ff.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		ff.mu.Lock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// endPass forgets what is left of the pass under way.
func (ff *ferretFeeder) endPass() {
	ff.reading, ff.partial = false, false
	ff.deferred, ff.collisions = ff.deferred[:0], 0
	ff.chunks, ff.buf = ff.chunks[:0], nil
	ff.dropAhead()
}

func (ff *ferretFeeder) Release(ctx context.Context) error {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	_ = ff.waitClaiming(context.WithoutCancel(ctx)) // its claims are given back too
	var errs []error
	var kept []*Claimed
	for _, c := range ff.pending {
		if err := ff.f.Release(ctx, ff.job, c); err != nil {
			errs = append(errs, err)
			kept = append(kept, c) // handed out again, or given back by the next Release
		}
	}
	ff.pending = kept
	ff.noWorkUntil = time.Time{}
	return errors.Join(errs...)
}

func (ff *ferretFeeder) Close(ctx context.Context) error {
	err := ff.Release(ctx)
	ff.mu.Lock()
	ff.endPass()
	ff.mu.Unlock()
	ff.aheadWG.Wait() // a read ahead ends at once when cancelled
	return err
}

func (f *ferretSlices) Complete(ctx context.Context, job bson.ObjectID, c *Claimed, r Result) (bool, error) {
	won, err := f.CompleteMany(ctx, job, []Completion{{Claimed: c, Result: r}})
	if err != nil {
		return false, err
	}
	return won[0], nil
}

// CompleteMany writes the outputs and failed records of several slices, then
// their done documents, each kind with one insertMany. A done document that
// is a duplicate means another attempt finished that slice first.
func (f *ferretSlices) CompleteMany(ctx context.Context, job bson.ObjectID, done []Completion) ([]bool, error) {
	var outputs, failed []any
	dones := make([]any, len(done))
	for i, d := range done {
		id := attemptID(d.Num, d.Attempt)
		cats := d.Batch.categoryDocs()
		hasOutput := d.Output != nil || cats != nil
		if hasOutput {
			doc := bson.D{{Key: "_id", Value: id}, {Key: "count", Value: d.OutputCount}}
			if d.Output != nil {
				doc = append(doc, bson.E{Key: "records", Value: bson.Binary{Data: d.Output}})
			}
			if cats != nil {
				doc = append(doc, bson.E{Key: "categories", Value: cats})
			}
			outputs = append(outputs, doc)
		}
		if d.FailedCount > 0 {
			failed = append(failed, bson.D{{Key: "_id", Value: id}, {Key: "count", Value: d.FailedCount},
				{Key: "records", Value: bson.Binary{Data: d.Failed}}})
		}
		dones[i] = append(bson.D{{Key: "_id", Value: sliceID(d.Num)}, {Key: "attempt", Value: d.Attempt},
			{Key: "processed", Value: int64(d.Count)}, {Key: "failed", Value: int64(d.FailedCount)}, {Key: "output", Value: hasOutput}},
			d.Batch.fields()...)
	}
	if len(outputs) > 0 {
		if _, _, err := f.insertDocs(ctx, f.coll(job, "output"), outputs); err != nil {
			return nil, fmt.Errorf("writing output slices: %w", err)
		}
	}
	if len(failed) > 0 {
		if _, _, err := f.insertDocs(ctx, f.coll(job, "failed"), failed); err != nil {
			return nil, fmt.Errorf("writing failed records: %w", err)
		}
	}
	dup, retried, err := f.insertDocs(ctx, f.coll(job, "done"), dones)
	if err != nil {
		return nil, fmt.Errorf("finishing slices: %w", err)
	}
	won := make([]bool, len(done))
	for i := range won {
		won[i] = !dup[i]
	}
	if retried {
		// A duplicate may be this call's own insert from before a transient
		// error: it won if the stored document names this attempt.
		err := f.resolveDups(ctx, job, "done", dones, dup, func(i int, raw bson.Raw) bool {
			a, ok := raw.Lookup("attempt").AsInt64OK()
			return ok && int(a) == done[i].Attempt
		}, won)
		if err != nil {
			return nil, err
		}
	}
	f.known.finished(job, done, won)
	return won, nil
}

// resolveDups reads the stored documents behind duplicate-key errors and sets
// mine[i] when mineFn says the stored document is the caller's own.
func (f *ferretSlices) resolveDups(ctx context.Context, job bson.ObjectID, kind string, docs []any, dup []bool, mineFn func(int, bson.Raw) bool, mine []bool) error {
	idx := map[string]int{}
	var ids bson.A
	for i, d := range dup {
		if d {
			id := docs[i].(bson.D)[0].Value.(string)
			idx[id] = i
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cur, err := f.coll(job, kind).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return err
	}
	defer closeCursor(ctx, cur)
	for cur.Next(ctx) {
		i := idx[cur.Current.Lookup("_id").StringValue()]
		if mineFn(i, cur.Current) {
			mine[i] = true
		}
	}
	return cur.Err()
}

func (f *ferretSlices) requeue(ctx context.Context, job bson.ObjectID, num int64, attempt int) error {
	err := f.insert(ctx, job, "requeue", bson.D{{Key: "_id", Value: attemptID(num, attempt)}, {Key: "at", Value: time.Now()}})
	if isDup(err) {
		return nil
	}
	return err
}

func (f *ferretSlices) Release(ctx context.Context, job bson.ObjectID, c *Claimed) error {
	return f.requeue(ctx, job, c.Num, c.Attempt+1)
}

func (f *ferretSlices) RequeueServer(ctx context.Context, job bson.ObjectID, server string) (int, error) {
	st, err := f.loadState(ctx, job)
	if err != nil {
		return 0, err
	}
	n := 0
	for num, owner := range st.owner {
		if owner != server {
			continue
		}
		if _, done := st.done[num]; done || st.requeued[num] > st.claimed[num] {
			continue
		}
		if err := f.requeue(ctx, job, num, st.claimed[num]+1); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (f *ferretSlices) RetryFailed(ctx context.Context, job bson.ObjectID) (int, error) {
	st, err := f.loadState(ctx, job)
	if err != nil {
		return 0, err
	}
	n := 0
	for num, d := range st.done {
		if d.Failed == 0 {
			continue
		}
		if err := f.requeue(ctx, job, num, max(st.claimed[num], st.requeued[num])+1); err != nil {
			return n, err
		}
		err := retry(ctx, func() error {
			_, err := f.coll(job, "done").DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}})
			return err
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// AllDone counts the done markers. Counting them exactly streams the whole
// collection through FerretDB (about a second at 10,000 slices on a busy
// machine), and with several servers on a job every idle one asks at every
// re-check while the others finish their last slices: at 1M lines and two
// servers, seconds of the database's time after the last slice. So the
// count of the collection's statistics (collStats: on SQLite the rows of
// its table, read from the table's pages, milliseconds) answers "not yet"
// on its own; "all done" is only ever answered by the exact count, as is
// "not yet" once every exactEvery per job (from the first time it asked),
// since on PostgreSQL that count is the planner's estimate and could stay
// below the truth.
func (f *ferretSlices) AllDone(ctx context.Context, job bson.ObjectID, sliceCount int64) (bool, error) {
	if _, _, ok := f.known.all(job, sliceCount); ok {
		return true, nil
	}
	if n, ok := f.statsCount(ctx, f.coll(job, "done")); ok && n < sliceCount && !f.exactDue(job) {
		return false, nil
	}
	var n int64
	err := retry(ctx, func() error {
		var err error
		n, err = f.coll(job, "done").CountDocuments(ctx, bson.D{})
		return err
	})
	return n >= sliceCount, err
}

// exactEvery is how often, at most, AllDone counts a job's done markers
// exactly while the collection's statistics say some are missing.
const exactEvery = 5 * time.Second

// exactDue reports whether AllDone should count job's done markers exactly
// although the statistics say some are missing, and notes that it will.
func (f *ferretSlices) exactDue(job bson.ObjectID) bool {
	f.countMu.Lock()
	defer f.countMu.Unlock()
	now := time.Now()
	at, ok := f.counted[job]
	if ok && now.Sub(at) < exactEvery {
		return false
	}
	if f.counted == nil || len(f.counted) >= maxKnownJobs {
		f.counted = map[bson.ObjectID]time.Time{} // forgetting only delays the next exact answer
	}
	f.counted[job] = now
	return ok // the first "not yet" of a job starts the clock
}

// statsCount returns the document count of coll's statistics, if the
// database gives one.
func (f *ferretSlices) statsCount(ctx context.Context, coll *mongo.Collection) (int64, bool) {
	var st struct {
		Count int64 `bson:"count"`
	}
	if err := f.db.RunCommand(ctx, bson.D{{Key: "collStats", Value: coll.Name()}}).Decode(&st); err != nil {
		return 0, false
	}
	return st.Count, true
}

// Progress reads the done markers, and the claims only while some slice is
// not finished (a finished job has none running).
func (f *ferretSlices) Progress(ctx context.Context, job bson.ObjectID, sliceCount, _ int64) (Progress, error) {
	if processed, _, ok := f.known.all(job, sliceCount); ok {
		return Progress{Done: sliceCount, Processed: processed}, nil
	}
	var p Progress
	done, err := f.loadDone(ctx, job)
	if err != nil {
		return p, err
	}
	for _, d := range done {
		p.Done++
		p.Processed += d.Processed
		p.FailedRecords += d.Failed
		if d.Failed > 0 {
			p.Failed++
		}
	}
	if sliceCount > 0 && p.Done >= sliceCount {
		return p, nil
	}
	st, err := f.loadClaims(ctx, job, done)
	if err != nil {
		return p, err
	}
	for num, a := range st.claimed {
		if _, done := st.done[num]; !done && st.requeued[num] <= a {
			p.Running++
		}
	}
	return p, nil
}

// Totals sums the batch fields of the done documents: one per finished
// slice, of the attempt that won.
func (f *ferretSlices) Totals(ctx context.Context, job bson.ObjectID) (Totals, error) {
	if _, t, ok := f.known.all(job, 0); ok {
		return t, nil
	}
	var t Totals
	done, err := f.loadDone(ctx, job)
	if err != nil {
		return t, err
	}
	for _, d := range done {
		t.add(d.Categories, d.Statistics, d.Dropped)
	}
	return t, nil
}

func (f *ferretSlices) StreamOutput(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return f.streamFinished(ctx, job, "output", func(d doneDoc) bool { return d.Output }, fn)
}

func (f *ferretSlices) StreamFailed(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return f.streamFinished(ctx, job, "failed", func(d doneDoc) bool { return d.Failed > 0 }, fn)
}

// streamFinished streams kind ("output" or "failed") in natural order, keeps
// only the attempt that finished each slice, and hands the slices to fn in
// slice order through a bounded reorder buffer.
func (f *ferretSlices) streamFinished(ctx context.Context, job bson.ObjectID, kind string, has func(doneDoc) bool, fn func(OutputSlice) error) error {
	// The done markers say which attempt of each slice finished it. They
	// are read while the output starts to stream: the slices read before
	// the markers are in wait for them (up to maxReorderBytes of records;
	// past that the stream waits), instead of the whole output waiting for
	// the whole done collection.
	type loaded struct {
		finished map[int64]doneDoc
		err      error
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	markers := make(chan loaded, 1)
	go func() {
		finished, err := f.loadDone(lctx, job)
		markers <- loaded{finished, err}
	}()
	cur, err := f.coll(job, kind).Find(ctx, bson.D{}, options.Find().SetBatchSize(64))
	if err != nil {
		return fmt.Errorf("reading %s slices: %w", kind, err)
	}
	defer closeCursor(ctx, cur)

	type finishedDoc struct {
		ID         string           `bson:"_id"`
		Count      int              `bson:"count"`
		Records    []byte           `bson:"records"`
		Categories []CategoryOutput `bson:"categories"`
	}
	var (
		finished   map[int64]doneDoc
		ro         *reorder
		early      []finishedDoc // read before the markers were in
		earlyBytes int
	)
	add := func(d finishedDoc) error {
		num, attempt, err := parseAttemptID(d.ID)
		if err != nil {
			return err
		}
		if done, ok := finished[num]; !ok || done.Attempt != attempt {
			return nil // an attempt that lost, or a slice requeued for retry
		}
		return ro.add(OutputSlice{Num: num, Count: d.Count, Records: d.Records, Categories: d.Categories})
	}
	start := func(l loaded) error {
		if l.err != nil {
			return l.err
		}
		finished = l.finished
		var expected []int64
		for num, d := range finished {
			if has(d) {
				expected = append(expected, num)
			}
		}
		slices.Sort(expected)
		ro = newReorder(expected, fn)
		for _, d := range early {
			if err := add(d); err != nil {
				return err
			}
		}
		early = nil
		return nil
	}
	defer func() {
		if ro != nil {
			ro.close()
		}
	}()
	for cur.Next(ctx) {
		var d finishedDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("decoding %s slice: %w", kind, err)
		}
		if ro == nil {
			select {
			case l := <-markers:
				if err := start(l); err != nil {
					return err
				}
			default:
				if earlyBytes < maxReorderBytes {
					early, earlyBytes = append(early, d), earlyBytes+len(d.Records)
					for _, c := range d.Categories {
						earlyBytes += len(c.Records)
					}
					continue
				}
				if err := start(<-markers); err != nil {
					return err
				}
			}
		}
		if err := add(d); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading %s slices: %w", kind, err)
	}
	if ro == nil {
		if err := start(<-markers); err != nil {
			return err
		}
	}
	return ro.finish(kind)
}

// DropInput drops only the input: the small claims and requeue collections
// stay until the job is destroyed, so a server still in a claim pass when the
// job completed (an open cursor, an old snapshot) loses every claim it tries
// as a duplicate instead of running a finished slice again.
func (f *ferretSlices) DropInput(ctx context.Context, job bson.ObjectID) error {
	kinds, err := jobKinds(ctx, f.db, job, "input")
	if err != nil {
		return err
	}
	if !slices.Contains(kinds, "input") {
		kinds = append(kinds, "input") // listed or not: gone afterwards
	}
	return dropAll(ctx, f.db, job, strings.Join(kinds, " "))
}

func (f *ferretSlices) Drop(ctx context.Context, job bson.ObjectID) error {
	f.known.forget(job)
	return errors.Join(f.DropInput(ctx, job), dropAll(ctx, f.db, job, strings.TrimPrefix(sliceKinds, "input ")))
}
