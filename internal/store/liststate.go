package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// The state index (FerretDB only): job listings with a limit that cost the
// same with a thousand jobs as with a million.
//
// FerretDB v1.24.2 on SQLite runs every filter and every sort in Go over
// the whole collection; it pushes down to SQLite only a lookup by _id and,
// with no filter, sort or skip, a limit (so a find reads the first
// documents in insertion order and stops). A listing "most urgent first,
// limit 50" of the jobs collection therefore decodes every job (seconds at
// 100k jobs, a minute at 1M).
//
// So, as the run queue keeps a copy of every runnable job per priority
// (queue.go: queued jobs and running sliced jobs), the state index keeps an
// entry {_id, v: version, type} for every job that is not queued, per state
// and priority: state_running_p050 (running jobs), state_completed_p050,
// ... A limited listing reads, priority by priority, the first entries of
// the run queue and of the state index collections of the states asked
// for, in the order the jobs entered them, puts a window of them in age
// (_id) order, and reads each job by _id (indexed by the embedded database)
// to return it as stored and to skip entries that are out of date. It
// reads a few times the limit, whatever the number of jobs.
//
// Entries are hints, like the run-queue copies: the jobs collection is the
// truth. syncStates follows every job write (it runs with syncQueue);
// entries are versioned, so that writes that race cannot remove the entry
// of a later version; an entry found out of date by a listing is removed.
// A database written before the index existed gets its entries from one
// scan, the first time a limited listing runs (buildStateIndex).

const (
	statePrefix = "state_"
	// stateIndexColl holds one document once the index covers every job,
	// and the markers of the windows of newest-first listings (recent.go).
	stateIndexColl = "state_index"
	stateIndexDone = "built"
	// queueWhole, beside it, marks a run queue that holds a copy of every
	// runnable job, but for writers that died (their intents) and writes
	// behind the store's back: the database was new when this build first
	// wrote a job, or a reconcile ran (QueueWhole).
	queueWhole = "queue_whole"
)

// stateEntry is a job's entry in the state index.
type stateEntry struct {
	ID      bson.ObjectID `bson:"_id"`
	Version int64         `bson:"v"`
	Type    string        `bson:"type"`
}

func (s *Store) stateColl(state model.State, priority int) *mongo.Collection {
	return s.jobsDB.Collection(fmt.Sprintf("%s%s_p%03d", statePrefix, state, priority))
}

// indexedState is the state under which j is in the state index, or ""
// (no job, or a queued one: those are in the run queue instead). A running
// sliced job is in both: the run queue offers its slices, the state index
// tells the rescuer that it runs.
func indexedState(j *model.Job) model.State {
	if j == nil || j.State == model.StateQueued {
		return ""
	}
	return j.State
}

// syncStates brings the state index in line with a job write: before is the
// job as it was (nil for a new job), after as it is now (nil once deleted).
// A failure leaves an entry missing (the job is left out of limited
// listings) or out of date (skipped by them); the job write itself succeeded.
//
// The writes of concurrent job writes are made together (jobWriters.states,
// a batcher: jobs_batch.go): while one batch is written, the changes that
// arrive wait for the next, so that the workers of a busy server add one
// insertMany (and, as jobs complete, one deleteMany) per batch rather than
// a write or two per job. A failure is not reported: the index is a hint.
func (s *Store) syncStates(ctx context.Context, before, after *model.Job) {
	s.syncStatesPart(ctx, before, after, statePut|stateDrop)
}

// What part of a state index sync to make: the new entry, the removal of
// the old one, or both.
const (
	statePut = 1 << iota
	stateDrop
)

// syncStatesPart is syncStates making only part of the change: a job
// write puts its new entry before the write (so that a job entering a state
// has its entry even when its writer dies right after the write: the
// rescuer finds running jobs by their entries) and removes the old one
// after it.
func (s *Store) syncStatesPart(ctx context.Context, before, after *model.Job, part int) {
	if part == 0 {
		return
	}
	from, to := indexedState(before), indexedState(after)
	if from == to && (from == "" || before.Priority == after.Priority) {
		return // same entry, or none
	}
	if part&statePut == 0 && from == "" || part&stateDrop == 0 && to == "" {
		return // nothing of that part to do
	}
	s.jobWriters().states.do(ctx, stateChange{before, after, part})
}

// stateChange is one job write's change of the state index.
type stateChange struct {
	before, after *model.Job
	part          int // statePut, stateDrop or both
}

// syncStateChanges makes a batch of state index changes (jobWriters.states),
// each only in its part, in few database writes: one insertMany of new
// entries per state and priority; for the entries to remove, one
// deleteMany of the running ones per priority, its filter guarding each by
// its version (FerretDB runs a deleteMany over the whole collection:
// running jobs are few), and a read then a delete of each other one.
func (s *Store) syncStateChanges(ctx context.Context, changes []stateChange) {
	type key struct {
		state    model.State
		priority int
	}
	puts := map[key][]*model.Job{}
	type drop struct {
		id      bson.ObjectID
		version int64
	}
	drops := map[key][]drop{}
	// Jobs moved to another priority in the same state: the removal of
	// the old entry reads it, then deletes by _id, and takes with it an
	// entry a later move back to that priority wrote in between. They are
	// read again once the removals are done (relook).
	var reprioritized []bson.ObjectID
	for _, c := range changes {
		b, a := c.before, c.after
		from, to := indexedState(b), indexedState(a)
		moved := from != to || (b != nil && a != nil && b.Priority != a.Priority)
		if !moved {
			continue
		}
		if from != "" && from == to && c.part&stateDrop != 0 {
			reprioritized = append(reprioritized, a.ID)
		}
		if to != "" && c.part&statePut != 0 {
			puts[key{to, a.Priority}] = append(puts[key{to, a.Priority}], a)
		}
		if from != "" && c.part&stateDrop != 0 {
			version := int64(math.MaxInt64)
			if a != nil {
				version = a.Version
			}
			drops[key{from, b.Priority}] = append(drops[key{from, b.Priority}], drop{b.ID, version})
		}
	}
	// The windows of newest-first listings (recent.go) are written while
	// the entries are, and before the old entries go.
	var entered []*model.Job
	for _, jobs := range puts {
		entered = append(entered, jobs...)
	}
	noted := make(chan struct{})
	go func() {
		defer close(noted)
		s.noteRecent(ctx, entered...)
	}()
	for k, jobs := range puts {
		docs := make([]any, len(jobs))
		for i, j := range jobs {
			docs[i] = stateEntry{ID: j.ID, Version: j.Version, Type: j.Type}
		}
		dup, _, err := s.insert(ctx, s.stateColl(k.state, k.priority), docs)
		if err != nil {
			continue
		}
		for i, d := range dup {
			if d {
				_ = s.putState(ctx, jobs[i]) // keep the later version
			}
		}
	}
	<-noted
	for k, ds := range drops {
		if k.state != model.StateRunning {
			for _, d := range ds {
				_ = s.dropState(ctx, k.state, k.priority, d.id, d.version)
			}
			continue
		}
		// One deleteMany whose filter keeps the version guard of each
		// entry: {$or: [{_id, v <= version}, ...]}.
		coll := s.stateColl(k.state, k.priority)
		var or bson.A
		for _, d := range ds {
			or = append(or, bson.D{{Key: "_id", Value: d.id}, {Key: "v", Value: bson.D{{Key: "$lte", Value: d.version}}}})
		}
		_ = retry(ctx, func() error {
			_, err := coll.DeleteMany(ctx, bson.D{{Key: "$or", Value: or}})
			return err
		})
	}
	s.relook(ctx, reprioritized)
}

// relook writes again the state index entry of each job as stored now
// (putState keeps an entry as new): after removals that may have taken a
// newer entry of the job with them. The rescuer and the minute's sweep
// find running jobs by their entries.
func (s *Store) relook(ctx context.Context, ids []bson.ObjectID) {
	for _, id := range ids {
		job, err := s.GetJob(ctx, id)
		if err == nil && indexedState(job) != "" {
			_ = s.putState(ctx, job)
		}
	}
}

// putState writes job's entry under its state and priority, unless an entry
// of the same or a later version is there (whose writer put it in its
// window too).
func (s *Store) putState(ctx context.Context, job *model.Job) error {
	coll := s.stateColl(job.State, job.Priority)
	entry := stateEntry{ID: job.ID, Version: job.Version, Type: job.Type}
	wrote := false
	err := retry(ctx, func() error {
		_, err := coll.InsertOne(ctx, entry)
		if !isDup(err) {
			wrote = err == nil
			return err
		}
		var have stateEntry
		err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: job.ID}}).Decode(&have)
		if err != nil || have.Version >= job.Version {
			return err
		}
		_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: job.ID}}, entry)
		wrote = err == nil
		return err
	})
	if wrote {
		s.noteRecent(ctx, job) // and in its window (recent.go)
	}
	return err
}

// dropState removes the entry of job id from a state and priority, unless
// it is of a version later than version.
func (s *Store) dropState(ctx context.Context, state model.State, priority int, id bson.ObjectID, version int64) error {
	coll := s.stateColl(state, priority)
	return retry(ctx, func() error {
		var have stateEntry
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&have)
		if errors.Is(err, mongo.ErrNoDocuments) || err == nil && have.Version > version {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
}

// putStatesNew writes the entries of new jobs that are not runnable, one
// insertMany per state and priority (an entry already there is kept).
func (s *Store) putStatesNew(ctx context.Context, jobs []*model.Job) error {
	type key struct {
		state    model.State
		priority int
	}
	groups := map[key][]any{}
	for _, j := range jobs {
		if st := indexedState(j); st != "" {
			k := key{st, j.Priority}
			groups[k] = append(groups[k], stateEntry{ID: j.ID, Version: j.Version, Type: j.Type})
		}
	}
	for k, docs := range groups {
		for len(docs) > 0 {
			batch := docs[:min(InsertBatch, len(docs))]
			docs = docs[len(batch):]
			if _, _, err := s.insert(ctx, s.stateColl(k.state, k.priority), batch); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureStateIndex makes sure the state index covers the jobs written
// before it existed: the first time, it scans the jobs collection once.
func (s *Store) ensureStateIndex(ctx context.Context) error {
	built, err := s.stateIndexBuilt(ctx)
	if built || err != nil {
		return err
	}
	return s.buildStateIndex(ctx)
}

// stateIndexBuilt reports whether the state index covers every job: it is
// marked built, or there is no job yet (then it marks it: every job written
// from now on gets its entry from its writer).
func (s *Store) stateIndexBuilt(ctx context.Context) (bool, error) {
	marker := s.jobsDB.Collection(stateIndexColl)
	err := retry(ctx, func() error {
		return marker.FindOne(ctx, bson.D{{Key: "_id", Value: stateIndexDone}}).Err()
	})
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return err == nil, err
	}
	var some []bson.Raw
	if some, err = findAll[bson.Raw](ctx, s.jobs(), bson.D{}, options.Find().SetLimit(1)); err != nil || len(some) > 0 {
		return false, err
	}
	// The windows of newest-first listings (recent.go) are complete from
	// the first job on too, and so is the run queue.
	if err = s.markWindowsWhole(ctx); err != nil {
		return false, err
	}
	if err = s.markQueueWhole(ctx); err != nil {
		return false, err
	}
	err = retry(ctx, func() error {
		_, err := marker.InsertOne(ctx, bson.D{{Key: "_id", Value: stateIndexDone}, {Key: "at", Value: time.Now()}})
		if isDup(err) {
			return nil
		}
		return err
	})
	return err == nil, err
}

// buildStateIndex writes the entries of every job that is not queued (one
// scan of the jobs collection, in batches), then marks the index built.
// Jobs written meanwhile get their entries from their writers; an entry
// this scan writes for a job changed meanwhile is out of date, which
// listings detect. A scan that fails part way is run again whole (its
// entries already written are kept). Jobs that ended by an end record
// (endrecords.go; stored queued, so not read here) get their entries from
// their enders, as every job written by this build does.
func (s *Store) buildStateIndex(ctx context.Context) error {
	type jobState struct {
		ID       bson.ObjectID `bson:"_id"`
		State    model.State   `bson:"state"`
		Kind     model.Kind    `bson:"kind"`
		Priority int           `bson:"priority"`
		Version  int64         `bson:"version"`
		Type     string        `bson:"type"`
	}
	err := retry(ctx, func() error {
		opts := options.Find().SetBatchSize(InsertBatch).SetProjection(bson.D{
			{Key: "state", Value: 1}, {Key: "kind", Value: 1}, {Key: "priority", Value: 1}, {Key: "version", Value: 1}, {Key: "type", Value: 1}})
		cur, err := s.jobs().Find(ctx, bson.D{{Key: "state", Value: bson.D{{Key: "$ne", Value: model.StateQueued}}}}, opts)
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur)
		batch := make([]*model.Job, 0, InsertBatch)
		flush := func() error {
			err := s.putStatesNew(ctx, batch)
			batch = batch[:0]
			return err
		}
		for cur.Next(ctx) {
			var j jobState
			if err := cur.Decode(&j); err != nil {
				return err
			}
			batch = append(batch, &model.Job{ID: j.ID, State: j.State, Kind: j.Kind, Priority: j.Priority, Version: j.Version, Type: j.Type})
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := cur.Err(); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		_, err = s.jobsDB.Collection(stateIndexColl).InsertOne(ctx, bson.D{{Key: "_id", Value: stateIndexDone}, {Key: "at", Value: time.Now()}})
		if isDup(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("building the state index: %w", err)
	}
	return nil
}

// listSource is a collection a limited listing reads at one priority: the
// run queue's (queued, running) or a state's.
type listSource struct {
	coll   *mongo.Collection
	filter bson.D
	state  model.State            // "" for the run queue
	first  bson.ObjectID          // a run-queue segment's smallest job id (segments.go); nil for other sources
	taken  map[bson.ObjectID]bool // a segment's offers its marks show taken (nil: not read yet)
	ids    []bson.ObjectID        // the first ids read, less the taken offers
	whole  bool                   // ids are all the source's
}

// readListSource reads the first window ids of src (not again once it read
// them all). A segment's are read past the offers its marks show taken
// (those of a segment not dropped yet are all of them once its last job
// started): they are jobs that moved on, not to be looked up one by one,
// and most of them are its first.
func (s *Store) readListSource(ctx context.Context, src *listSource, window int) error {
	if src.whole {
		return nil
	}
	segment := !src.first.IsZero()
	if segment && src.taken == nil {
		var err error
		if src.taken, err = s.segmentMarks(ctx, src.coll.Name()); err != nil {
			return err
		}
	}
	var ids []bson.ObjectID
	if segment && bundled(src.coll.Name()) {
		// Its bundles hold at most segmentMax copies: read whole.
		copies, err := s.runQueueCopies(ctx, src.coll.Name(), src.filter, nil)
		if err != nil {
			return err
		}
		for _, c := range copies {
			id, _ := c.Lookup("_id").ObjectIDOK()
			ids = append(ids, id)
		}
		src.whole = true
	} else {
		limit := window + len(src.taken)
		docs, err := findAll[struct {
			ID bson.ObjectID `bson:"_id"`
		}](ctx, src.coll, src.filter, options.Find().SetLimit(int64(limit)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return err
		}
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		src.whole = len(docs) < limit
	}
	if segment {
		s.segmentListReads.Add(1)
	}
	src.ids = src.ids[:0]
	for _, id := range ids {
		if !src.taken[id] && !(segment && id == sealID) {
			src.ids = append(src.ids, id)
		}
	}
	return nil
}

// listLookups is how many jobs a listing reads by _id at once.
const listLookups = 8

// listFlat is ListJobs with a limit on FerretDB: most urgent first, from the
// run queue and the state index (see above), without reading every job.
func (s *Store) listFlat(ctx context.Context, f JobFilter) ([]model.Job, error) {
	if err := s.ensureStateIndex(ctx); err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	want := map[model.State]bool{}
	for _, st := range f.States {
		want[st] = true
	}
	if len(want) == 0 {
		for _, st := range model.States {
			want[st] = true
		}
	}
	var queueStates []model.State
	for _, st := range []model.State{model.StateQueued, model.StateRunning} {
		if want[st] {
			queueStates = append(queueStates, st)
		}
	}
	names, err := s.listNames(ctx, want[model.StateQueued])
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	typed := func(filter bson.D) bson.D {
		if f.Type != "" {
			filter = append(filter, bson.E{Key: "type", Value: f.Type})
		}
		return filter
	}
	var infos map[string]segmentInfo // for their types: 1,000 a second's read
	if want[model.StateQueued] && f.Type != "" && slices.ContainsFunc(names, isSegment) {
		if infos, err = s.segmentInfos(ctx); err != nil {
			return nil, fmt.Errorf("listing jobs: %w", err)
		}
	}
	sources := map[int][]listSource{}
	for _, name := range names {
		if n, c, ok := parseQueueName(name); ok {
			filter := typed(bson.D{})
			info, known := infos[name]
			switch {
			case c.segment && (!want[model.StateQueued] || !info.mayHold(f.Type, known)):
				continue // a segment offers queued jobs only, of the types in its info
			case c.segment && known && len(info.Types) == 1:
				// A filter costs FerretDB the limit's pushdown (the whole
				// collection is read), and a segment needs none for its
				// state (its copies are all of queued jobs) nor, of one
				// type, for its type.
				filter = bson.D{}
			case len(queueStates) == 0:
				continue
			case len(queueStates) == 1 && !c.segment:
				filter = typed(bson.D{{Key: "state", Value: queueStates[0]}})
			}
			sources[n] = append(sources[n], listSource{coll: s.runQueueColl(name), filter: filter, first: c.first})
			continue
		}
		rest, ok := strings.CutPrefix(name, statePrefix)
		if !ok {
			continue
		}
		state, p, ok := strings.Cut(rest, "_p")
		n, err := strconv.Atoi(p)
		if !ok || err != nil || !want[model.State(state)] {
			continue
		}
		sources[n] = append(sources[n], listSource{coll: s.jobsDB.Collection(name), filter: typed(bson.D{}), state: model.State(state)})
	}
	prios := make([]int, 0, len(sources))
	for p, srcs := range sources {
		prios = append(prios, p)
		// Segments last, by their smallest job id (listPriority stops at
		// the first that cannot hold a job among those it lists).
		slices.SortStableFunc(srcs, func(a, b listSource) int { return compareIDs(a.first, b.first) })
	}
	slices.Sort(prios)
	need := int(f.Skip + f.Limit)
	var out []model.Job
	for _, p := range prios {
		if len(out) >= need {
			break
		}
		jobs, err := s.listPriority(ctx, p, sources[p], want, f.Type, need-len(out))
		if err != nil {
			return nil, fmt.Errorf("listing jobs: %w", err)
		}
		out = append(out, jobs...)
	}
	if int(f.Skip) >= len(out) {
		return nil, nil
	}
	out = out[f.Skip:]
	return out[:min(len(out), int(f.Limit))], nil
}

// listPriority returns up to n jobs of priority p in the states of want
// (and of type typ, unless empty), oldest first among the entries read: it
// reads the first entries of each source, a few more than n, in _id order,
// and reads again further when out-of-date entries leave it short.
func (s *Store) listPriority(ctx context.Context, p int, sources []listSource, want map[model.State]bool, typ string, n int) ([]model.Job, error) {
	// The jobs read in a narrower window, not read again.
	type lookup struct {
		job *model.Job
		err error
	}
	looked := map[bson.ObjectID]lookup{}
	for window := n + 16; ; window *= 2 {
		type candidate struct {
			id  bson.ObjectID
			src *listSource
		}
		var cands []candidate
		exhausted := true
		var cut bson.ObjectID // the smallest id of the segments left unread (zero: none)
		for i := range sources {
			src := &sources[i]
			if !src.first.IsZero() && len(cands) >= window {
				slices.SortFunc(cands, func(a, b candidate) int { return compareIDs(a.id, b.id) })
				if last := cands[window-1].id; bytes.Compare(src.first[:], last[:]) > 0 {
					// This segment and the later ones hold only larger ids
					// than the window's: read if the window grows. Only
					// the candidates before its first id are listed now
					// (should the window's jobs have moved on, the later
					// ones would pass over this segment's).
					exhausted, cut = false, src.first
					break
				}
			}
			if err := s.readListSource(ctx, src, window); err != nil {
				return nil, err
			}
			if !src.whole {
				exhausted = false
			}
			for _, id := range src.ids {
				cands = append(cands, candidate{id, src})
			}
		}
		slices.SortStableFunc(cands, func(a, b candidate) int { return compareIDs(a.id, b.id) })
		cands = slices.CompactFunc(cands, func(a, b candidate) bool { return a.id == b.id })
		if !cut.IsZero() {
			cands = slices.DeleteFunc(cands, func(c candidate) bool { return bytes.Compare(c.id[:], cut[:]) >= 0 })
		}

		var out []model.Job
		for start := 0; start < len(cands) && len(out) < n; start += listLookups {
			chunk := cands[start:min(start+listLookups, len(cands))]
			var ids []bson.ObjectID
			for _, c := range chunk {
				if _, ok := looked[c.id]; !ok {
					ids = append(ids, c.id)
				}
			}
			jobs, errs := s.getJobs(ctx, ids)
			s.listJobReads.Add(int64(len(ids)))
			for i, id := range ids {
				looked[id] = lookup{jobs[i], errs[i]}
			}
			for _, c := range chunk {
				job, err := looked[c.id].job, looked[c.id].err
				if errors.Is(err, model.ErrJobNotFound) {
					if c.src.state != "" {
						_ = s.dropState(ctx, c.src.state, p, c.id, math.MaxInt64)
					}
					continue
				}
				if err != nil {
					return nil, err
				}
				if job.Priority != p || !want[job.State] || (typ != "" && job.Type != typ) {
					if c.src.state != "" && (job.Priority != p || indexedState(job) != c.src.state) {
						// Out of date: the job moved on without its entry
						// (a write that raced, or a writer that died).
						_ = s.dropState(ctx, c.src.state, p, c.id, job.Version)
						if indexedState(job) != "" {
							_ = s.putState(ctx, job)
						}
					}
					continue
				}
				if len(out) < n {
					out = append(out, *job)
				}
			}
		}
		if len(out) >= n || exhausted {
			return out, nil
		}
	}
}
