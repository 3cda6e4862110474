package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestInsertFerret: the insert command reports duplicates by index as the
// driver's InsertMany does, inserts the rest, refuses a document the
// database refuses with a write error, and takes a batch with a document
// without an _id through InsertMany.
func TestInsertFerret(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	coll := s.jobsDB.Collection("insert_test")
	count := func() int64 {
		t.Helper()
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	doc := func(id string) any {
		return bson.D{{Key: "_id", Value: id}, {Key: "v", Value: bson.Binary{Data: []byte(id)}}}
	}

	dup, retried, err := insertFerret(ctx, coll, []any{doc("a"), doc("b")})
	if err != nil || retried || slices.Contains(dup, true) {
		t.Fatalf("first insert: dup %v, retried %v, %v", dup, retried, err)
	}
	dup, _, err = insertFerret(ctx, coll, []any{doc("c"), doc("a"), doc("d"), doc("b")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, false, true}; !slices.Equal(dup, want) {
		t.Errorf("duplicates %v, want %v", dup, want)
	}
	if n := count(); n != 4 {
		t.Errorf("%d documents after the second insert, want 4", n)
	}

	// A document the database refuses (a key it rejects) fails the insert.
	_, _, err = insertFerret(ctx, coll, []any{doc("e"), bson.D{{Key: "_id", Value: "f"}, {Key: "$bad", Value: 1}}})
	var bwe mongo.BulkWriteException
	var ce mongo.CommandError
	if err == nil || !errors.As(err, &bwe) && !errors.As(err, &ce) {
		t.Errorf("a document with a $ key: %v (%T), want a write or command error", err, err)
	}

	// Without an _id: the driver's InsertMany gives it one.
	if _, _, err := insertFerret(ctx, coll, []any{bson.D{{Key: "v", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{{Key: "v", Value: 1}}); err != nil || n != 1 {
		t.Errorf("documents without an _id inserted: %d (%v), want 1", n, err)
	}
}
