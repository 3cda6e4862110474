package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

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
	if _, err := openWith(store.StrategyFindAndModify); err != nil {
		t.Fatalf("first open (findandmodify): %v", err)
	}
	if _, err := openWith(store.StrategyFindAndModify); err != nil {
		t.Fatalf("second open with the same strategy: %v", err)
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
	if _, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs2, WorkDB: work2, ClaimStrategy: store.StrategyFindAndModify}); !errors.Is(err, store.ErrClaimStrategyMismatch) {
		t.Fatalf("findandmodify on a work database first opened with auto on FerretDB (insert): %v", err)
	}
}
