package store

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// How a window's entries are stored (recent.go).
//
// FerretDB decodes every value of every document it reads (a find of a
// thousand entries of four fields took 30 ms), and runs a deleteMany by
// reading every document of the collection: a window of an entry per
// document cost each trim two reads of a thousand documents, a third of a
// busy server's database time on short jobs. So a window document holds
// the entries of one write, packed in one binary value, {_id, p: BSON
// {e: [entry, ...]}} (up to windowDocEntries): a thousand entries are a few
// dozen values for FerretDB to decode.
//
// The documents live in window_<state>. Builds before them wrote an entry
// per document into recent_<state> (the legacy window): it is read with
// the new one and its entries are removed by _id as before, but nothing is
// written to it any more. (A build of that kind running beside this one
// reads and trims only its own collection: it does not see the jobs this
// build ends, as it does not see end records.)
//
// Entries are removed by rewriting: the entries of a document that stay
// are written in a new document before the old one is deleted, so that an
// entry never goes missing. Two processes rewriting the same document keep
// its entries twice, which readers take as one.

const (
	windowPrefix = "window_"
	// windowDocEntries bounds the entries of one window document.
	windowDocEntries = 100
)

// windowDoc is a document of a window: entries written together.
type windowDoc struct {
	ID     string `bson:"_id"`
	Packed []byte `bson:"p"` // a packedEntries document
}

// packedEntries is the content of a window document.
type packedEntries struct {
	Entries []recentEntry `bson:"e"`
}

// windowColl holds state's window documents.
func (s *Store) windowColl(state model.State) *mongo.Collection {
	return s.jobsDB.Collection(windowPrefix + string(state))
}

// legacyWindow is state's window as builds before window documents wrote
// it: an entry per document.
func (s *Store) legacyWindow(state model.State) *mongo.Collection {
	return s.jobsDB.Collection(recentPrefix + string(state))
}

// readWindow returns every entry of state's window, each with the
// document that holds it ("" for the legacy window's).
func (s *Store) readWindow(ctx context.Context, state model.State) ([]recentEntry, error) {
	docs, err := findAll[windowDoc](ctx, s.windowColl(state), bson.D{}, options.Find().SetBatchSize(entryBatch))
	if err != nil {
		return nil, err
	}
	var out []recentEntry
	for _, d := range docs {
		var p packedEntries
		if err := bson.Unmarshal(d.Packed, &p); err != nil {
			return nil, fmt.Errorf("reading window document %s: %w", d.ID, err)
		}
		for _, e := range p.Entries {
			e.doc = d.ID
			out = append(out, e)
		}
	}
	legacy, err := findAll[recentEntry](ctx, s.legacyWindow(state), bson.D{}, options.Find().SetBatchSize(entryBatch))
	if err != nil {
		return nil, err
	}
	return append(out, legacy...), nil
}

// writeWindow adds entries to state's window: one insertMany of
// documents of up to windowDocEntries entries.
func (s *Store) writeWindow(ctx context.Context, state model.State, entries []recentEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var docs []any
	for chunk := range slices.Chunk(entries, windowDocEntries) {
		packed, err := bson.Marshal(packedEntries{Entries: chunk})
		if err != nil {
			return err
		}
		docs = append(docs, windowDoc{ID: bson.NewObjectID().Hex(), Packed: packed})
	}
	_, _, err := s.insert(ctx, s.windowColl(state), docs) // a duplicate is the same document, written
	return err
}

// removeEntries removes gone, entries read from state's window (all is
// everything that read returned), from the window: the documents holding
// them are written again without them, then deleted; the legacy window's
// are deleted by _id.
func (s *Store) removeEntries(ctx context.Context, state model.State, gone, all []recentEntry) error {
	goneIDs := map[string]bool{}
	docs := map[string]bool{}
	var legacy bson.A
	for _, e := range gone {
		goneIDs[e.ID] = true
		if e.doc == "" {
			legacy = append(legacy, e.ID)
		} else {
			docs[e.doc] = true
		}
	}
	var rest []recentEntry
	for _, e := range all {
		if e.doc != "" && docs[e.doc] && !goneIDs[e.ID] {
			rest = append(rest, e)
		}
	}
	if err := s.writeWindow(ctx, state, rest); err != nil {
		return err
	}
	deleteIn := func(coll *mongo.Collection, ids bson.A) error {
		for chunk := range slices.Chunk(ids, InsertBatch) {
			err := retry(ctx, func() error {
				_, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chunk}}}})
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	ids := make(bson.A, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	if err := deleteIn(s.windowColl(state), ids); err != nil {
		return err
	}
	return deleteIn(s.legacyWindow(state), legacy)
}
