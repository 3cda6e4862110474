package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// What a window keeps, and the marks that say what it lost (see recent.go).
//
// A cut keeps every entry of the window's recentKeep newest jobs (the head)
// and, below them, the newest entries of each type that has fewer than
// recentTypeKeep jobs in the head (its tail), so that a listing of a type
// rare among the newest jobs finds its newest jobs in the window too. The
// marks, markers in the state index's marker collection, written before
// anything goes:
//
//   - lwm_<state>_<id>: the cut; entries of jobs at or below id may be
//     missing. The highest bounds a listing of every type. A cut that kept
//     tails says so ("tails": true); one that did not (a failed window write,
//     entries without a type, builds before tails) bounds typed listings too.
//   - lwmt_<state>_<id>_<type>: entries of that type at or below id may be
//     missing (a tail's cut). A listing of one type starts above the highest
//     of these and of the cuts that kept no tails.
//
// Builds of this version's development before tails pruned every cut but
// the highest: one running beside this build could remove a cut without
// tails below one with them (no release has windows without tails).

const (
	// recentTypeKeep is how many of a type's newest jobs a window keeps.
	recentTypeKeep = 50
	// recentTailMax bounds the entries a window keeps below its head, so
	// that many rare types do not make every listing read a big window.
	recentTailMax = 500
	// lwmTypeMarker + state + "_" + id + "_" + type is a tail's mark.
	lwmTypeMarker = "lwmt_"
)

// windowMarks says which jobs a window may lack.
type windowMarks struct {
	all       bson.ObjectID            // of any type, at or below it (the highest cut)
	everyType bson.ObjectID            // of any type, for typed listings too (the highest cut that kept no tails)
	types     map[string]bson.ObjectID // per type, at or below it
}

// floor returns the id above which the window has every job of type typ
// ("": of any type).
func (m windowMarks) floor(typ string) bson.ObjectID {
	if typ == "" {
		return m.all
	}
	return maxID(m.everyType, m.types[typ])
}

func maxID(a, b bson.ObjectID) bson.ObjectID {
	if bytes.Compare(a[:], b[:]) > 0 {
		return a
	}
	return b
}

// windowPlan is what a cut of a window's entries keeps.
type windowPlan struct {
	cut   bson.ObjectID            // the newest job of the head's cut; nil: all stay
	keep  []recentEntry            // newest job first
	drop  []recentEntry            // newest job first
	types map[string]bson.ObjectID // per type, the newest job whose entry goes ("": entries without a type)
}

// planWindow decides what a window of entries keeps: the head, every entry
// of the recentKeep newest jobs, and below it each type's entries up to its
// recentTypeKeep newest jobs (while the tails hold fewer than recentTailMax
// entries). Entries without a type (earlier builds) keep no tail.
func planWindow(entries []recentEntry) windowPlan {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b recentEntry) int {
		return cmp.Or(bytes.Compare(b.Job[:], a.Job[:]), cmp.Compare(b.Version, a.Version))
	})
	plan := windowPlan{types: map[string]bson.ObjectID{}}
	jobs := 0                                // distinct jobs so far
	perType := map[string]int{}              // distinct jobs kept, per type
	lastOfType := map[string]bson.ObjectID{} // the last job counted, per type
	tail := 0
	for i, e := range entries {
		if i == 0 || e.Job != entries[i-1].Job {
			jobs++
			if jobs == recentKeep+1 {
				plan.cut = e.Job
			}
		}
		head := jobs <= recentKeep
		sameJob := perType[e.Type] > 0 && lastOfType[e.Type] == e.Job
		keep := head || sameJob ||
			(e.Type != "" && perType[e.Type] < recentTypeKeep && tail < recentTailMax)
		if !keep {
			plan.drop = append(plan.drop, e)
			if _, ok := plan.types[e.Type]; !ok {
				plan.types[e.Type] = e.Job // the first dropped is the newest
			}
			continue
		}
		plan.keep = append(plan.keep, e)
		if !head {
			tail++
		}
		if !sameJob {
			perType[e.Type]++
			lastOfType[e.Type] = e.Job
		}
	}
	return plan
}

// markPlan records what plan drops from state's window before anything
// goes: each type's tail mark, then the cut.
func (s *Store) markPlan(ctx context.Context, state model.State, plan windowPlan) error {
	if plan.cut.IsZero() {
		return nil
	}
	for typ, id := range plan.types {
		var err error
		if typ == "" {
			// Entries without a type may be of any: a cut of every type.
			err = s.markEveryType(ctx, state, id)
		} else {
			err = s.putMarker(ctx, lwmTypeMarker+string(state)+"_"+id.Hex()+"_"+typ, nil)
		}
		if err != nil {
			return err
		}
	}
	return s.putMarker(ctx, lwmMarker+string(state)+"_"+plan.cut.Hex(), bson.D{{Key: "tails", Value: true}})
}

// markEveryType records that state's window may lack jobs of any type at or
// below id (a failed window write, entries without a type): a cut that
// bounds typed listings too. A cut of the same name written with tails
// loses them.
func (s *Store) markEveryType(ctx context.Context, state model.State, id bson.ObjectID) error {
	name := lwmMarker + string(state) + "_" + id.Hex()
	if err := s.putMarker(ctx, name, nil); err != nil {
		return err
	}
	return retry(ctx, func() error {
		_, err := s.jobsDB.Collection(stateIndexColl).UpdateOne(ctx, bson.D{{Key: "_id", Value: name}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: "tails", Value: ""}}}})
		return err
	})
}

// trimRecent cuts state's window when it holds more than recentTrimAt
// entries besides its tails: it marks what goes, deletes those entries
// (only those read: an entry written meanwhile stays), then prunes the
// marks, which would otherwise pile up until a listing.
func (s *Store) trimRecent(ctx context.Context, state model.State) error {
	entries, err := s.readWindow(ctx, state)
	if err != nil {
		return err
	}
	if len(entries) <= recentTrimAt {
		return nil
	}
	plan := planWindow(entries)
	if len(plan.drop) < recentTrimAt-recentKeep {
		return nil // most of it is tails: not yet
	}
	if err := s.markPlan(ctx, state, plan); err != nil {
		return err
	}
	if err := s.removeEntries(ctx, state, plan.drop, entries); err != nil {
		return err
	}
	marks, read, _, err := s.readMarks(ctx)
	if err == nil {
		s.pruneMarks(ctx, marks, read)
	}
	return err
}

// putMarker writes a marker of the windows once (a duplicate is the same).
func (s *Store) putMarker(ctx context.Context, id string, fields bson.D) error {
	doc := append(bson.D{{Key: "_id", Value: id}}, fields...)
	return retry(ctx, func() error {
		_, err := s.jobsDB.Collection(stateIndexColl).InsertOne(ctx, doc)
		if isDup(err) {
			return nil
		}
		return err
	})
}

// markWindowsWhole records that the windows have every job above their
// marks: on a new database, or once fillWindows has filled them.
func (s *Store) markWindowsWhole(ctx context.Context) error {
	return s.putMarker(ctx, recentMarker, nil)
}

// windowMarker is a mark read back.
type windowMarker struct {
	name  string
	state model.State
	id    bson.ObjectID
	typ   string // lwmt_ markers only
	tails bool   // lwm_ markers only
}

// parseMarker reads a marker's name; ok is false for other markers.
func parseMarker(name string, tails bool) (m windowMarker, ok bool) {
	typed := strings.HasPrefix(name, lwmTypeMarker)
	rest, found := strings.CutPrefix(name, lwmMarker)
	if typed {
		rest, found = strings.CutPrefix(name, lwmTypeMarker)
	}
	if !found {
		return m, false
	}
	st, rest, _ := strings.Cut(rest, "_")
	hex, typ := rest, ""
	if typed {
		hex, typ, found = strings.Cut(rest, "_")
	}
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil || !found || !windowed(model.State(st)) {
		return m, false
	}
	return windowMarker{name: name, state: model.State(st), id: id, typ: typ, tails: tails && !typed}, true
}

// readMarks reads the windows' marks; whole reports the marker that says
// the windows have every job above them.
func (s *Store) readMarks(ctx context.Context) (marks map[model.State]windowMarks, read []windowMarker, whole bool, err error) {
	markers, err := findAll[struct {
		ID    any  `bson:"_id"`
		Tails bool `bson:"tails"`
	}](ctx, s.jobsDB.Collection(stateIndexColl), bson.D{})
	if err != nil {
		return nil, nil, false, err
	}
	marks = map[model.State]windowMarks{}
	for _, doc := range markers {
		name, _ := doc.ID.(string)
		if name == recentMarker {
			whole = true
		}
		m, ok := parseMarker(name, doc.Tails)
		if !ok {
			continue
		}
		read = append(read, m)
		w := marks[m.state]
		switch {
		case m.typ != "":
			if w.types == nil {
				w.types = map[string]bson.ObjectID{}
			}
			w.types[m.typ] = maxID(w.types[m.typ], m.id)
		case m.tails:
			w.all = maxID(w.all, m.id)
		default:
			w.all, w.everyType = maxID(w.all, m.id), maxID(w.everyType, m.id)
		}
		marks[m.state] = w
	}
	return marks, read, whole, nil
}

// recentMarks returns each windowed state's marks. On a database written
// before windows existed it fills them first (fillWindows).
func (s *Store) recentMarks(ctx context.Context) (map[model.State]windowMarks, error) {
	for range 2 {
		marks, read, whole, err := s.readMarks(ctx)
		if err != nil {
			return nil, err
		}
		if whole {
			s.pruneMarks(ctx, marks, read)
			return marks, nil
		}
		if err := s.fillWindows(ctx); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("the windows' marker cannot be read back")
}

// pruneMarks removes the markers that change no bound: every cut adds
// some, and every listing reads them all. It keeps each state's highest
// cut, its highest cut without tails, and each type's highest tail mark
// above that.
func (s *Store) pruneMarks(ctx context.Context, marks map[model.State]windowMarks, read []windowMarker) {
	var low []string
	for _, m := range read {
		w := marks[m.state]
		switch {
		case m.typ != "" && m.id == w.types[m.typ] && bytes.Compare(m.id[:], w.everyType[:]) > 0:
		case m.typ == "" && m.id == w.all:
		case m.typ == "" && !m.tails && m.id == w.everyType:
		default:
			low = append(low, m.name)
		}
	}
	if len(low) > 0 {
		_ = retry(ctx, func() error {
			_, err := s.jobsDB.Collection(stateIndexColl).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: low}}}})
			return err
		})
	}
}
