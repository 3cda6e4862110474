package store_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestRateTokensArePrunedApartFromJobClaims: a second's tokens run out,
// pruning frees them, and pruning reads the tokens only: the job claims
// (which grow with the jobs) are neither read nor touched.
func TestRateTokensArePrunedApartFromJobClaims(t *testing.T) {
	s, jobsDB := openNamed(t)
	ctx := context.Background()
	claims := dbtest.Client(t).Database(jobsDB).Collection("job_claims")
	if _, err := claims.InsertOne(ctx, bson.D{{Key: "_id", Value: "some-job:1"}, {Key: "at", Value: time.Now().Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	take := func() bool {
		t.Helper()
		ok, err := s.TakeRateToken(ctx, "typ", 2, now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take() || !take() || take() {
		t.Fatal("2 tokens a second: want two taken, then none")
	}
	if err := s.PruneRateTokens(ctx, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if !take() {
		t.Fatal("the second's tokens were pruned, yet none could be taken again")
	}
	if n, err := claims.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("job claims after pruning rate tokens: %d (%v), want the 1 claim untouched", n, err)
	}
}
