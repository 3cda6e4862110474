package store

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// sortedIndexNames lists the names of coll's indexes, sorted.
func sortedIndexNames(t *testing.T, coll *mongo.Collection) []string {
	t.Helper()
	names, err := indexNames(context.Background(), coll)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestFerretJobsKeepOnlyTheIDIndex: on FerretDB nothing but a filter on _id
// alone reaches an index, so the jobs collection keeps only _id's, and Open
// drops the indexes that earlier builds created there (each was written at
// every insert and at every transition of a job, for no query).
func TestFerretJobsKeepOnlyTheIDIndex(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	// A jobs database as builds before 2026-12-03 left it.
	if err := ensureIndexes(ctx, dbtest.Client(t).Database(jobsDB).Collection(jobsCollection), jobIndexes()[:2]); err != nil {
		t.Fatal(err)
	}
	if names := sortedIndexNames(t, dbtest.Client(t).Database(jobsDB).Collection(jobsCollection)); len(names) != 3 {
		t.Fatalf("indexes before Open: %v, want _id_ and the two of earlier builds", names)
	}
	for range 2 { // a second Open finds nothing to drop
		s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
		if err != nil {
			t.Fatal(err)
		}
		if names := sortedIndexNames(t, s.jobs()); !slices.Equal(names, []string{"_id_"}) {
			t.Errorf("indexes of jobs after Open on FerretDB: %v, want [_id_]", names)
		}
		if missing, err := s.MissingJobIndexes(ctx); err != nil || len(missing) > 0 {
			t.Errorf("MissingJobIndexes on FerretDB: %v (%v), want none", missing, err)
		}
		_ = s.Close(ctx)
	}
}
