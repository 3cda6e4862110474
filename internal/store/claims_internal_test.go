package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestOwnClaimsAfterALostAnswer: an insert of transition claims that goes
// again after a transient error finds the claims it wrote the first time
// as duplicates; those are its own (the same claimer, time and update),
// not another process's. Before, they were reported taken: a false
// conflict, and the job held by its own claim until rolled forward.
func TestOwnClaimsAfterALostAnswer(t *testing.T) {
	ctx := context.Background()
	s := openInternal(t)
	at := time.Now()
	update := bson.Binary{Data: []byte{1, 2, 3}}
	claim := func(id, by string, at time.Time, update bson.Binary) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "by", Value: by}, {Key: "at", Value: at}, {Key: "update", Value: update}}
	}
	ours := []bson.D{
		claim("j1:1", "srv", at, update),                       // written by the first try
		claim("j2:1", "srv", at, update),                       // another server's
		claim("j3:1", "srv", at, update),                       // this server's, another transition
		claim("j4:1", "srv", at, update),                       // gone since
		claim("j5:1", "srv", at.Add(time.Millisecond), update), // not a duplicate
	}
	stored := []any{
		claim("j1:1", "srv", at, update),
		claim("j2:1", "other", at, update),
		claim("j3:1", "srv", at.Add(-time.Second), bson.Binary{Data: []byte{9}}),
	}
	if _, err := s.jobClaims().InsertMany(ctx, stored); err != nil {
		t.Fatal(err)
	}
	dup := []bool{true, true, true, true, false}
	if err := s.ownClaims(ctx, ours, dup); err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, true, true, false}; !slices.Equal(dup, want) {
		t.Fatalf("duplicates after reading back: %v, want %v (only the first is this insert's own)", dup, want)
	}
}

// TestDeepSweepClaimsArePruned: the hourly deep sweep's winner removes the
// claim of two hours ago, as the minute's sweep does, so that job_claims
// does not gain a document an hour for ever.
func TestDeepSweepClaimsArePruned(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	start := time.Now().Truncate(time.Hour)
	for h := range 4 {
		if won, err := s.ClaimDeepSweep(ctx, start.Add(time.Duration(h)*time.Hour)); err != nil || !won {
			t.Fatalf("hour %d: won %v, %v", h, won, err)
		}
	}
	var claims []struct {
		ID string `bson:"_id"`
	}
	cur, err := s.jobClaims().Find(ctx, bson.D{})
	if err == nil {
		err = cur.All(ctx, &claims)
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claims {
		got = append(got, c.ID)
	}
	slices.Sort(got)
	hour := start.Unix() / 3600
	want := []string{fmt.Sprintf("deepsweep:%d", hour+2), fmt.Sprintf("deepsweep:%d", hour+3)}
	if !slices.Equal(got, want) {
		t.Fatalf("claims after four hours: %v, want %v", got, want)
	}
}
