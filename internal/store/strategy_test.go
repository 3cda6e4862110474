package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// The first process to open a work database records its slice claim
// strategy; a process that would use the other one is refused, whether it
// asked for it or the database kind picked it.
func TestClaimStrategyIsRecordedAndEnforced(t *testing.T) {
	ctx := context.Background()
	jobs, work := dbtest.DBNames(t)
	openWith := func(strategy string) (*store.Store, error) {
		s, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, ClaimStrategy: strategy})
		if err == nil {
			t.Cleanup(func() { _ = s.Close(context.Background()) })
		}
		return s, err
	}
	if dbtest.OnMongoDB() {
		if _, err := openWith(store.StrategyFindAndModify); err != nil {
			t.Fatalf("first open (findandmodify): %v", err)
		}
		if _, err := openWith(store.StrategyFindAndModify); err != nil {
			t.Fatalf("second open with the same strategy: %v", err)
		}
	} else {
		// FerretDB refuses findandmodify (TestFindAndModifyRefusedOnFerretDB):
		// the work database of an earlier build that allowed it.
		_, err := dbtest.Client(t).Database(work).Collection("settings").InsertOne(ctx,
			bson.D{{Key: "_id", Value: "claim_strategy"}, {Key: "value", Value: store.StrategyFindAndModify}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, asked := range []string{"", store.StrategyAuto, store.StrategyInsert} {
		_, err := openWith(asked)
		if !errors.Is(err, store.ErrClaimStrategyMismatch) {
			t.Fatalf("open with %q on a findandmodify work database: %v, want ErrClaimStrategyMismatch", asked, err)
		}
		if !strings.Contains(err.Error(), "uses the findandmodify claim strategy") || !strings.Contains(err.Error(), work) {
			t.Errorf("the error does not name the database and its strategy: %v", err)
		}
	}

	// A new work database takes the strategy of its first process.
	jobs2, work2 := dbtest.DBNames(t)
	jobs2, work2 = jobs2+"_2", work2+"_2"
	s, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs2, WorkDB: work2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	_, err = store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs2, WorkDB: work2, ClaimStrategy: store.StrategyFindAndModify})
	if dbtest.OnMongoDB() {
		if err != nil {
			t.Fatalf("findandmodify on a work database first opened with auto on MongoDB (findandmodify): %v", err)
		}
		_, err = store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs2, WorkDB: work2, ClaimStrategy: store.StrategyInsert})
	}
	if !errors.Is(err, store.ErrClaimStrategyMismatch) && !errors.Is(err, store.ErrClaimStrategyUnsafe) {
		t.Fatalf("the other strategy on a work database first opened with auto: %v", err)
	}
}

// FerretDB answers findAndModify with a read and then a write, so two
// workers can claim one slice: Open refuses the findandmodify strategy on
// a FerretDB work database with one error that says what to use instead,
// and records nothing (the database stays open to the insert strategy).
func TestFindAndModifyRefusedOnFerretDB(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	jobs, work := dbtest.DBNames(t)
	_, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, ClaimStrategy: store.StrategyFindAndModify})
	if !errors.Is(err, store.ErrClaimStrategyUnsafe) {
		t.Fatalf("findandmodify on FerretDB: %v, want ErrClaimStrategyUnsafe", err)
	}
	for _, want := range []string{work, "FerretDB", "insert or auto"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	n, err := dbtest.Client(t).Database(work).Collection("settings").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("settings after the refusal: %d documents (%v), want none", n, err)
	}
	s, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
	if err != nil {
		t.Fatalf("auto after the refusal: %v", err)
	}
	defer s.Close(ctx)
	if using, recorded, err := s.ClaimStrategy(ctx); err != nil || using != store.StrategyInsert || recorded != store.StrategyInsert {
		t.Errorf("claim strategy after the refusal: using %q, recorded %q (%v), want insert", using, recorded, err)
	}
}
