package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Newest-first listings (FerretDB only).
//
// The run queue and the state index give a listing the jobs of a state in
// the order they entered it, oldest first: a find with a limit reads the
// first rows of a collection and stops. Nothing reads the last rows that
// cheaply (FerretDB v1.24.2 sorts in Go, even by $natural, after reading
// every row). A newest-first listing (by _id, that is by creation) of the
// states whose jobs stay few, queued, running and paused, reads the ids
// of all their entries (the run queue's copies, the state index's
// running and paused entries): its cost follows the jobs in those states,
// not the jobs stored.
//
// The end states, completed, failed and aborted, gather jobs without
// bound, so each keeps a window of its newest jobs, window_<state>: an
// entry {_id: "<job>:<version>", j: job id, t: type, v: version} written
// wherever the job's state index entry is written (the same batches, the
// same repairs; the entries of a batch in one document: recent_docs.go), and
// trimmed by job id back to the recentKeep newest (the head), and each
// type's recentTypeKeep newest (its tail), once it holds more than
// recentTrimAt entries besides its tails. Before a trim deletes, it records
// low-water marks: the window has every job of the state created after the
// cut, and every job of a type created after that type's mark
// (recent_marks.go), once the "recent" marker says that the windows have
// every job (from a database's first job, or filled once from the state
// index on an older database). A listing reads the windows, then the marks, orders the entries above the
// highest mark of the states it lists (for its type, if it names one) by
// id, newest first, and reads each job by _id, skipping (and, a few at a
// time, removing) entries out of date. When those cannot fill the listing
// (a page past the windows, a type with more jobs than its tail keeps), it
// reads the ids and types of every entry of the states listed in the state
// index: slower, its cost following the jobs in those states, never short.
//
// Window entries are written with the state index entries, before the
// entries of the jobs' former states are removed, and a window write that
// fails raises the window's mark above the jobs it left out. What stays:
// a writer that dies between a job's write and its entries leaves the job
// out of both (most-urgent-first listings miss it the same way).

const (
	recentPrefix = "recent_"
	// recentKeep is how many jobs' entries a trim leaves in a window's
	// head (each type's tail comes on top).
	recentKeep = 400
	// recentTrimAt is how many entries a window holds, its tails left
	// out, before a trim: a trim removes at least recentTrimAt-recentKeep.
	recentTrimAt = 1000
	// recentTrimEvery is how many entries a process adds to a window
	// between its looks at the window's size.
	recentTrimEvery = 300
	// recentMarker, in the state index's marker collection, says that the
	// windows have every job above their marks.
	recentMarker = "recent"
	// lwmMarker + state + "_" + id is a trim's low-water mark.
	lwmMarker = "lwm_"
	// recentDropsPerListing bounds the out-of-date entries a listing
	// removes (a read should not become a big write).
	recentDropsPerListing = 100
	// entryBatch is the batch size of reads of every entry of a state
	// (about 60 bytes each). The driver's default, a round trip per 101
	// entries, read 42,000 entries 16% slower on a quiet machine and
	// up to 60% slower on a busy one.
	entryBatch = 10_000
)

// windowed reports whether a state keeps a window of its newest jobs.
func windowed(st model.State) bool {
	return st == model.StateCompleted || st == model.StateFailed || st == model.StateAborted
}

// recentEntry is a job's entry in a window: one per version at which the
// job entered the state.
type recentEntry struct {
	ID      string        `bson:"_id"` // job id ":" version
	Job     bson.ObjectID `bson:"j"`
	Version int64         `bson:"v"`
	Type    string        `bson:"t,omitempty"` // the job's type (entries of earlier builds have none)
	doc     string        // the window document it was read from ("": the legacy window)
}

func newRecentEntry(id bson.ObjectID, version int64, typ string) recentEntry {
	return recentEntry{ID: fmt.Sprintf("%s:%d", id.Hex(), version), Job: id, Version: version, Type: typ}
}

// recentAdded counts, per Store and state, the entries added since the
// Store last looked at the window's size (weakly keyed, like the state
// batchers).
var recentAdded sync.Map // recentKey -> *atomic.Int64

type recentKey struct {
	s     weak.Pointer[Store]
	state model.State
}

// noteRecent adds the jobs in end states to their state's window. It is
// called where their state index entries are written, with them, and
// before the entries of their former states are removed (so that a job
// that just ended is never missing from both its old and its new
// sources). A write that fails raises the window's mark above the jobs it
// left out: listings that would need them read the state index.
func (s *Store) noteRecent(ctx context.Context, jobs ...*model.Job) {
	ctx = context.WithoutCancel(ctx) // the jobs are written: their entries follow
	byState := map[model.State][]recentEntry{}
	for _, j := range jobs {
		if j != nil && windowed(j.State) {
			byState[j.State] = append(byState[j.State], newRecentEntry(j.ID, j.Version, j.Type))
		}
	}
	for state, entries := range byState {
		s.writeRecent(ctx, state, entries)
	}
}

// markMissing marks state's window as lacking the jobs of entries whose
// write failed: listings that would need them read the state index.
func (s *Store) markMissing(ctx context.Context, state model.State, entries []recentEntry) {
	newest := bson.NilObjectID
	for _, e := range entries {
		newest = maxID(newest, e.Job)
	}
	_ = s.markEveryType(ctx, state, newest)
}

// writeRecent writes entries into state's window, and trims it now and
// then.
func (s *Store) writeRecent(ctx context.Context, state model.State, entries []recentEntry) {
	if len(entries) > recentKeep {
		// Many at once (a bulk insert): what a trim would keep, marked.
		plan := planWindow(entries)
		if s.markPlan(ctx, state, plan) != nil {
			s.markMissing(ctx, state, entries) // nothing written
			return
		}
		entries = plan.keep
	}
	if err := s.writeWindow(ctx, state, entries); err != nil {
		s.markMissing(ctx, state, entries)
		return
	}
	c, _ := recentAdded.LoadOrStore(recentKey{weak.Make(s), state}, new(atomic.Int64))
	n := c.(*atomic.Int64)
	if n.Add(int64(len(entries))) >= recentTrimEvery {
		n.Store(0)
		_ = s.trimRecent(ctx, state)
	}
}

// fillWindows gives the windows of a database written before they existed
// their entries, once: what a trim would keep of each end state's jobs in
// the state index (one read of its entries; jobs written meanwhile get
// theirs from their writers), its cut and tails marked; then it marks the
// windows whole.
func (s *Store) fillWindows(ctx context.Context) error {
	if err := s.ensureStateIndex(ctx); err != nil {
		return err
	}
	names, err := collectionNames(ctx, s.jobsDB)
	if err != nil {
		return err
	}
	for _, st := range model.States {
		if !windowed(st) {
			continue
		}
		var entries []stateEntry
		for _, name := range names {
			if !strings.HasPrefix(name, statePrefix+string(st)+"_p") {
				continue
			}
			got, err := findAll[stateEntry](ctx, s.jobsDB.Collection(name), bson.D{}, options.Find().SetBatchSize(entryBatch))
			if err != nil {
				return err
			}
			entries = append(entries, got...)
		}
		all := make([]recentEntry, len(entries))
		for i, e := range entries {
			all[i] = newRecentEntry(e.ID, e.Version, e.Type)
		}
		plan := planWindow(all)
		if err := s.markPlan(ctx, st, plan); err != nil {
			return err
		}
		if err := s.writeWindow(ctx, st, plan.keep); err != nil {
			return err
		}
	}
	return s.markWindowsWhole(ctx)
}

// newestEntry is a candidate of a newest-first listing: a job id and, where
// its source has it (window entries of earlier builds do not), the job's
// type.
type newestEntry struct {
	ID   bson.ObjectID `bson:"_id"`
	Type string        `bson:"type"`
}

// mayBe reports whether the entry may be of type typ ("": any): its source
// names that type, or none.
func (e newestEntry) mayBe(typ string) bool { return typ == "" || e.Type == "" || e.Type == typ }

// newestSource reads the candidates a newest-first listing considers for
// one state: those of all its entries in the run queue and the state
// index (whole, or a state without a window; a window's are read by
// readWindow).
func (s *Store) newestSource(ctx context.Context, st model.State, names []string) ([]newestEntry, error) {
	var out []newestEntry
	for _, name := range names {
		var got []newestEntry
		var err error
		switch {
		case st == model.StateQueued && strings.HasPrefix(name, queuePrefix):
			got, err = s.queuedEntries(ctx, name)
		case strings.HasPrefix(name, statePrefix+string(st)+"_p"):
			// Entries are small: few round trips.
			got, err = findAll[newestEntry](ctx, s.jobsDB.Collection(name), bson.D{}, options.Find().SetBatchSize(entryBatch))
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// queuedEntries reads the ids and types of the queued copies in one run-queue
// collection (copies are whole jobs: fewer bytes projected).
func (s *Store) queuedEntries(ctx context.Context, name string) ([]newestEntry, error) {
	docs, err := s.runQueueCopies(ctx, name, bson.D{{Key: "state", Value: model.StateQueued}}, bson.D{{Key: "_id", Value: 1}, {Key: "type", Value: 1}})
	if err != nil {
		return nil, err
	}
	out := make([]newestEntry, len(docs))
	for i, d := range docs {
		if err := bson.Unmarshal(d, &out[i]); err != nil {
			return nil, fmt.Errorf("reading run-queue collection %s: %w", name, err)
		}
	}
	return out, nil
}

// Newest-first over segments.
//
// A bulk enqueue's copies are in segments (segments.go), and a queue of a
// million jobs is a thousand of them: reading every copy's id would cost a
// newest-first listing seconds to minutes. A segment's name holds its
// largest job id (and its info, for an earlier build's segment); so a
// listing reads the segments by that bound, newest first, and stops once
// it has enough candidates later than every id the segments left unread
// can hold (newestBound), skipping, when it lists one type, those whose
// info shows none of it. A segment with neither (written by an earlier
// build before infos) is bounded by its born time: the ids of its jobs were
// made by the process that wrote it, before it began writing it, and ids
// count whole seconds, so none is later than the second it was born in;
// the listing may then read every segment born in that second.

// newestBound is an id no earlier than every id in segment c: its largest,
// where its name or its info tells, else the second after its born time.
func newestBound(c queueColl) bson.ObjectID {
	switch {
	case !c.last.IsZero():
		return c.last
	case c.info != nil:
		return c.info.Last
	}
	return bson.NewObjectIDFromTimestamp(c.born.Truncate(time.Second).Add(time.Second))
}

// unbounded reports whether name is a segment's whose name does not hold
// its largest job id.
func unbounded(name string) bool {
	_, c, ok := parseQueueName(name)
	return ok && c.segment && c.last.IsZero()
}

// splitSegments returns the queue segments among names, with their info,
// by newestBound, newest first, and the other names.
func splitSegments(names []string, infos map[string]segmentInfo) (segs []queueColl, rest []string) {
	for _, name := range names {
		if _, c, ok := parseQueueName(name); ok && c.segment {
			if info, ok := infos[name]; ok {
				c.info = &info
			}
			segs = append(segs, c)
			continue
		}
		rest = append(rest, name)
	}
	slices.SortFunc(segs, func(a, b queueColl) int {
		x, y := newestBound(a), newestBound(b)
		return bytes.Compare(y[:], x[:])
	})
	return segs, rest
}

// newestMerged is newestJobs over cands and the queued copies of segs
// (newest born first), read lazily: a round reads segments until the
// candidates later than the next unread segment's bound number at least
// its target, and lists those; a round that comes up short (copies taken,
// jobs of another type) doubles its target and reads on. Candidates at or
// below floor are left out, and so are the segments that can hold no
// other.
func (s *Store) newestMerged(ctx context.Context, f JobFilter, states []model.State, cands []bson.ObjectID, windows windowsRead, segs []queueColl, floor bson.ObjectID) ([]model.Job, error) {
	above := func(id, bound bson.ObjectID) bool { return bytes.Compare(id[:], bound[:]) > 0 }
	kept := func(id, bound bson.ObjectID) bool { return above(id, bound) && above(id, floor) }
	keep := func(ids []bson.ObjectID, bound bson.ObjectID) []bson.ObjectID {
		var out []bson.ObjectID
		for _, id := range ids {
			if kept(id, bound) {
				out = append(out, id)
			}
		}
		return out
	}
	enough := func(ids []bson.ObjectID, bound bson.ObjectID, target int) bool {
		n := 0
		for _, id := range ids {
			if kept(id, bound) {
				if n++; n >= target {
					return true
				}
			}
		}
		return false
	}
	need := int(f.Skip + f.Limit)
	read := 0
	// A segment bound at or below the floor, and those after it, hold
	// nothing the listing keeps.
	useful := func() bool { return read < len(segs) && above(newestBound(segs[read]), floor) }
	for target := need; ; target *= 2 {
		for useful() && !enough(cands, newestBound(segs[read]), target) {
			if info := segs[read].info; info != nil && !info.mayHold(f.Type, true) {
				read++ // none of the type listed
				continue
			}
			entries, err := s.queuedEntries(ctx, segs[read].name)
			if err != nil {
				return nil, err
			}
			s.segmentListReads.Add(1)
			for _, e := range entries {
				if e.mayBe(f.Type) {
					cands = append(cands, e.ID)
				}
			}
			read++
		}
		var bound bson.ObjectID // the segments left unread hold nothing above it
		if read < len(segs) {
			bound = newestBound(segs[read])
		}
		out, err := s.newestJobs(ctx, f, states, newestFirst(keep(cands, bound)), windows)
		if err != nil || len(out) >= need || !useful() {
			return out, err
		}
	}
}

// windowsRead are the entries a listing read from the windows, per state.
type windowsRead map[model.State][]recentEntry

// newestCandidates gathers the candidates of the states listed (from the
// windows of those that have one, unless whole), leaves out those of
// another type where the source tells, and returns the windows read.
func (s *Store) newestCandidates(ctx context.Context, f JobFilter, states []model.State, names []string, whole bool) ([]bson.ObjectID, windowsRead, error) {
	var cands []bson.ObjectID
	windows := windowsRead{}
	for _, st := range states {
		var entries []newestEntry
		if windowed(st) && !whole {
			read, err := s.readWindow(ctx, st)
			if err != nil {
				return nil, nil, err
			}
			windows[st] = read
			for _, e := range read {
				entries = append(entries, newestEntry{ID: e.Job, Type: e.Type})
			}
		} else {
			var err error
			if entries, err = s.newestSource(ctx, st, names); err != nil {
				return nil, nil, err
			}
		}
		for _, e := range entries {
			if e.mayBe(f.Type) {
				cands = append(cands, e.ID)
			}
		}
	}
	return cands, windows, nil
}

// newestFirst sorts ids newest first, without repeats.
func newestFirst(ids []bson.ObjectID) []bson.ObjectID {
	slices.SortFunc(ids, func(a, b bson.ObjectID) int { return compareIDs(b, a) })
	return slices.Compact(ids)
}

// listNewest is ListJobs newest first with a limit on FerretDB (see above).
func (s *Store) listNewest(ctx context.Context, f JobFilter) ([]model.Job, error) {
	out, err := s.listNewestFrom(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	if int(f.Skip) >= len(out) {
		return nil, nil
	}
	out = out[f.Skip:]
	return out[:min(len(out), int(f.Limit))], nil
}

// listNewestFrom returns the first Skip+Limit jobs of a newest-first
// listing: from the windows while they hold them, else from every entry of
// the states listed.
func (s *Store) listNewestFrom(ctx context.Context, f JobFilter) ([]model.Job, error) {
	// The windows exist before they are read: an older database's are
	// filled first (recentMarks), and the marks are read again after.
	if _, err := s.recentMarks(ctx); err != nil {
		return nil, err
	}
	states := f.States
	if len(states) == 0 {
		states = model.States
	}
	names, err := s.listNames(ctx, slices.Contains(states, model.StateQueued))
	if err != nil {
		return nil, err
	}
	var segs []queueColl // read lazily (newestMerged)
	if slices.Contains(states, model.StateQueued) && slices.ContainsFunc(names, isSegment) {
		// The infos for their types, or for the bounds of segments whose
		// names do not hold them (an earlier build's): a document per 1,000
		// queued jobs, read whole.
		var infos map[string]segmentInfo
		if f.Type != "" || slices.ContainsFunc(names, unbounded) {
			if infos, err = s.segmentInfos(ctx); err != nil {
				return nil, err
			}
		}
		segs, names = splitSegments(names, infos)
	}
	cands, windows, err := s.newestCandidates(ctx, f, states, names, false)
	if err != nil {
		return nil, err
	}
	// The marks after the windows: a trim marks before it deletes.
	marks, err := s.recentMarks(ctx)
	if err != nil {
		return nil, err
	}
	var floor bson.ObjectID // the listing is exact for the jobs above it
	for _, st := range states {
		floor = maxID(floor, marks[st].floor(f.Type))
	}
	out, err := s.newestMerged(ctx, f, states, cands, windows, segs, floor)
	if err != nil || len(out) == int(f.Skip+f.Limit) || floor.IsZero() {
		return out, err
	}
	// The windows lack what is missing (a page past them, a type rare
	// among their jobs, a window whose jobs mostly moved on): every entry
	// of the states listed, as a most-urgent-first listing reads them. Its
	// cost follows the jobs in those states, not the jobs stored.
	s.newestFallbacks.Add(1)
	if cands, _, err = s.newestCandidates(ctx, f, states, names, true); err != nil {
		return nil, err
	}
	return s.newestMerged(ctx, f, states, cands, nil, segs, bson.NilObjectID)
}

// newestJobs reads the candidates' jobs by id, in order, until it has
// f.Skip+f.Limit of the states and type asked for; it removes (a few) window
// entries found out of date.
func (s *Store) newestJobs(ctx context.Context, f JobFilter, states []model.State, cands []bson.ObjectID, windows windowsRead) ([]model.Job, error) {
	want := map[model.State]bool{}
	for _, st := range states {
		want[st] = true
	}
	need := int(f.Skip + f.Limit)
	var out []model.Job
	byJob := map[model.State]map[bson.ObjectID][]recentEntry{}
	for st, entries := range windows {
		byJob[st] = map[bson.ObjectID][]recentEntry{}
		for _, e := range entries {
			byJob[st][e.Job] = append(byJob[st][e.Job], e)
		}
	}
	stale := map[model.State][]recentEntry{} // per window, entries out of date
	outOfDate := func(id bson.ObjectID, job *model.Job) {
		for st, jobs := range byJob {
			for _, e := range jobs[id] {
				// Gone: every entry; moved on: its entries up to now.
				if job == nil || job.State != st && e.Version <= job.Version {
					stale[st] = append(stale[st], e)
				}
			}
		}
	}
	for start := 0; start < len(cands) && len(out) < need; start += listLookups {
		chunk := cands[start:min(start+listLookups, len(cands))]
		jobs, errs := s.getJobs(ctx, chunk)
		for i, id := range chunk {
			job, err := jobs[i], errs[i]
			if errors.Is(err, model.ErrJobNotFound) {
				job, err = nil, nil
			}
			if err != nil {
				return nil, err
			}
			outOfDate(id, job)
			if job == nil || !want[job.State] {
				continue
			}
			if (f.Type == "" || job.Type == f.Type) && len(out) < need {
				out = append(out, *job)
			}
		}
	}
	for st, gone := range stale {
		_ = s.removeEntries(ctx, st, gone[:min(len(gone), recentDropsPerListing)], windows[st])
	}
	return out, nil
}

// forgetRecent drops the Store's counters of window entries (Close).
func (s *Store) forgetRecent() {
	for _, st := range model.States {
		recentAdded.Delete(recentKey{weak.Make(s), st})
	}
}
