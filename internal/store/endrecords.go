package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// End records (FerretDB).
//
// An update of a job costs FerretDB a write transaction of its own, even in
// a batch, where an insertMany writes a batch in one: the update that ends
// a short simple job (its held start merged with its end, Held starts in
// jobs_batch.go) was the largest cost of its run. So that end is written
// as an insert instead: an end record, the whole job as it ended, which
// supersedes the stored job document. The job document keeps the version
// and state it had before the run (queued); it catches up with the record
// (fold) only when the job's next transition (a rerun, an edit, rare) is
// claimed.
//
// A record's _id is "<job>:<version>", the version of the stored job it
// supersedes: the version the run's start claim moved the job from (that
// claim, this process's and young, is what lets it write the record: no
// other process moves the job from that version meanwhile). A reader of a
// simple job stored queued or running (GetJob) reads the record
// of the stored version (and, for a job stored running, of the version
// before it: a start claim rolled forward by another process while its
// holder was writing the record) and takes the record's job when its
// version is ahead. Readers that read jobs other than by _id read the
// records' heads too: an unlimited listing (queryJobsMerged), the hourly
// reconcile of the run queue. Limited listings read the state index, which
// the ender writes after the record as for any end.
//
// Only ends to a final state (completed, failed, aborted) are records: a
// job made runnable again would be stored at the version a later run's
// record must name. A record stays until its job is deleted (deleteStored
// removes it): a folded record is behind its job and no longer read.

// endRecordsCollection holds the end records.
const endRecordsCollection = "job_end_records"

func (s *Store) endRecords() *mongo.Collection { return s.jobsDB.Collection(endRecordsCollection) }

// endRecord is a job's end written as an insert.
type endRecord struct {
	ID      string        `bson:"_id"`     // "<job>:<stored version>"
	Job     bson.ObjectID `bson:"job"`     // the job
	Version int64         `bson:"version"` // the version of the job it holds
	// Doc is the job as it ended, a BSON document packed in a binary
	// value: FerretDB encodes and decodes every value of a document it
	// writes or reads, and a job has dozens; a binary is one. (Records of
	// the first builds that wrote them hold an embedded document.)
	Doc bson.RawValue `bson:"doc"`
}

// job returns the job a record holds.
func (r *endRecord) job() (*model.Job, error) {
	var raw bson.Raw
	switch r.Doc.Type {
	case bson.TypeBinary:
		_, raw = r.Doc.Binary()
	case bson.TypeEmbeddedDocument:
		raw = r.Doc.Document()
	default:
		return nil, fmt.Errorf("end record %s holds a %s, not a job", r.ID, r.Doc.Type)
	}
	var job model.Job
	if err := bson.Unmarshal(raw, &job); err != nil {
		return nil, fmt.Errorf("end record %s: %w", r.ID, err)
	}
	return &job, nil
}

// endRecordID names the record that supersedes job id stored at version.
func endRecordID(id bson.ObjectID, version int64) string {
	return claimID(&model.Job{ID: id, Version: version})
}

// endsByRecord reports whether a run's end that leaves its job as after
// may be written as a record.
func endsByRecord(s *Store, after *model.Job) bool { return s.ferret && finished(after) }

// finished reports whether job is a simple job in a final state: one that
// may have ended by an end record.
func finished(job *model.Job) bool {
	if job.Kind != model.KindSimple {
		return false
	}
	switch job.State {
	case model.StateCompleted, model.StateFailed, model.StateAborted:
		return true
	}
	return false
}

// supersedable reports whether a stored job may have an end record ahead
// of it: a simple job stored queued or running.
func supersedable(stored *model.Job) bool {
	return stored.Kind == model.KindSimple && (stored.State == model.StateQueued || stored.State == model.StateRunning)
}

// recordCandidates are the _ids of the records that may supersede stored.
func recordCandidates(stored *model.Job) []string {
	ids := []string{endRecordID(stored.ID, stored.Version)}
	if stored.State == model.StateRunning && stored.Version > 0 {
		ids = append(ids, endRecordID(stored.ID, stored.Version-1))
	}
	return ids
}

// superseding returns the job of the end record that supersedes stored,
// or nil when there is none.
func (s *Store) superseding(ctx context.Context, stored *model.Job) (*model.Job, error) {
	if !s.ferret || !supersedable(stored) {
		return nil, nil
	}
	for _, id := range recordCandidates(stored) {
		var rec endRecord
		err := retry(ctx, func() error {
			return s.endRecords().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&rec)
		})
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the end record of job %s: %w", stored.ID.Hex(), err)
		}
		if rec.Version <= stored.Version {
			continue
		}
		job, err := rec.job()
		if err != nil {
			return nil, fmt.Errorf("reading the end record of job %s: %w", stored.ID.Hex(), err)
		}
		return job, nil
	}
	return nil, nil
}

// endRecordOf is the record of a run's end: after, the job as it ended,
// superseding the job stored at version stored.
func endRecordOf(stored int64, after *model.Job) (bson.D, error) {
	raw, err := bson.Marshal(after)
	if err != nil {
		return nil, err
	}
	return bson.D{
		{Key: "_id", Value: endRecordID(after.ID, stored)},
		{Key: "job", Value: after.ID},
		{Key: "version", Value: after.Version},
		{Key: "doc", Value: bson.Binary{Data: raw}},
	}, nil
}

// writeEndRecords inserts end records with one insertMany. A record that
// is there already is this process's own, written by an insert whose
// answer was lost (only the holder of the start claim it names writes
// it): written too.
func (s *Store) writeEndRecords(ctx context.Context, recs []bson.D) []updateResult {
	out := make([]updateResult, len(recs))
	docs := make([]any, len(recs))
	for i, r := range recs {
		docs[i] = r
	}
	_, _, err := s.insert(ctx, s.endRecords(), docs)
	for i := range out {
		out[i] = updateResult{matched: 1, err: err}
		if err != nil {
			out[i].matched = 0
		}
	}
	return out
}

// fold writes into the job document of id the end record that supersedes
// it, if there is one, so that a transition from the job's version finds
// the job stored at it. The transition's claim decides who folds: its
// holder, by _id alone while the claim is young (nobody else moves the job
// meanwhile); a roll-forward of the claim (its holder may still be
// writing), only while the job is still stored at the version read
// (conditional: FerretDB then reads every job in Go, as the roll-forward's
// own update does), so that a fold landing late never undoes a transition
// made after it.
func (s *Store) fold(ctx context.Context, id bson.ObjectID, conditional bool) error {
	var stored model.Job
	err := retry(ctx, func() error {
		return s.jobs().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&stored)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading job %s: %w", id.Hex(), err)
	}
	job, err := s.superseding(ctx, &stored)
	if err != nil || job == nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: id}}
	if conditional {
		filter = append(filter, bson.E{Key: "version", Value: stored.Version})
	}
	err = retry(ctx, func() error {
		_, err := s.jobs().ReplaceOne(ctx, filter, job)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the end of job %s: %w", id.Hex(), err)
	}
	return nil
}

// dropEndRecords removes the end records of a job being deleted at
// version: one delete command of a statement per version it may have been
// stored at (each by _id; most match nothing).
func (s *Store) dropEndRecords(ctx context.Context, job *model.Job) error {
	if !s.ferret || job.Kind != model.KindSimple {
		return nil
	}
	models := make([]mongo.WriteModel, 0, job.Version+1)
	for v := range job.Version + 1 {
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: endRecordID(job.ID, v)}}))
	}
	err := retry(ctx, func() error {
		_, err := s.endRecords().BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting the end records of job %s: %w", job.ID.Hex(), err)
	}
	return nil
}

// recordHeads returns the version of every end record by _id: the
// readers that read jobs other than by _id look up each simple job stored
// queued or running among them (supersededIn).
func (s *Store) recordHeads(ctx context.Context) (map[string]int64, error) {
	type head struct {
		ID      string `bson:"_id"`
		Version int64  `bson:"version"`
	}
	heads, err := findAll[head](ctx, s.endRecords(), bson.D{},
		options.Find().SetBatchSize(InsertBatch).SetProjection(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading the end records: %w", err)
	}
	out := make(map[string]int64, len(heads))
	for _, h := range heads {
		out[h.ID] = h.Version
	}
	return out, nil
}

// supersededIn returns the _id of the record among heads (recordHeads)
// that supersedes stored, or "".
func supersededIn(heads map[string]int64, stored *model.Job) string {
	if !supersedable(stored) {
		return ""
	}
	for _, id := range recordCandidates(stored) {
		if v, ok := heads[id]; ok && v > stored.Version {
			return id
		}
	}
	return ""
}

// queryJobsMerged is queryJobs on FerretDB, where a simple job that ended
// by an end record is stored as it was before its run: the jobs of the
// type are read in order and the end records whole (one scan each), each
// superseded job replaced by its record's job, then filtered by state and
// skipped here (FerretDB would filter in Go as well).
func (s *Store) queryJobsMerged(ctx context.Context, f JobFilter) ([]model.Job, error) {
	// The records before the jobs: a job deleted in between (its document
	// goes before its records) is not listed, where read the other way it
	// would be listed as it was before its run; a job that ends in between
	// is listed as it was before its end (queued, its start claimed).
	recs, err := findAll[endRecord](ctx, s.endRecords(), bson.D{}, options.Find().SetBatchSize(InsertBatch))
	if err != nil {
		return nil, fmt.Errorf("listing jobs: reading the end records: %w", err)
	}
	all, err := s.queryJobs(ctx, JobFilter{Type: f.Type, Newest: f.Newest})
	if err != nil {
		return nil, err
	}
	heads := make(map[string]int64, len(recs))
	byID := make(map[string]*endRecord, len(recs))
	for i, r := range recs {
		heads[r.ID], byID[r.ID] = r.Version, &recs[i]
	}
	out := all[:0]
	for i := range all {
		j := all[i]
		if rec := supersededIn(heads, &j); rec != "" {
			ended, err := byID[rec].job()
			if err != nil {
				return nil, fmt.Errorf("listing jobs: %w", err)
			}
			j = *ended
		}
		if len(f.States) > 0 && !slices.Contains(f.States, j.State) {
			continue
		}
		out = append(out, j)
	}
	out = out[min(int(f.Skip), len(out)):]
	if f.Limit > 0 && int64(len(out)) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}
