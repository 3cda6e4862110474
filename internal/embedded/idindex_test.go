package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// TestIDIndex checks that the tables of a jobs database get an index SQLite
// uses for FerretDB's _id lookups (and that lookups still find the right
// documents), while a database without a jobs collection gets none.
func TestIDIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := start(t, embedded.Options{Dir: dir})
	c := connect(t, db.URI())
	defer c.Disconnect(ctx)

	ids := make([]any, 500)
	for i := range ids {
		ids[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "n", Value: i}}
	}
	// The work database first: the pass that indexes the jobs database has
	// seen it too.
	if _, err := c.Database("work").Collection("slices").InsertMany(ctx, ids); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jobs", "queue_p050"} {
		if _, err := c.Database("rj").Collection(name).InsertMany(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}

	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "rj.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	plan := func(coll string) string {
		var table string
		if err := sdb.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table); err != nil {
			t.Fatal(err)
		}
		var id, parent, unused int
		var detail string
		q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
		if err := sdb.QueryRow(q, "x").Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		return detail
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, coll := range []string{"jobs", "queue_p050"} {
		for p := plan(coll); p[:4] != "SEAR"; p = plan(coll) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the _id lookup still scans: %s", coll, p)
			}
			time.Sleep(50 * time.Millisecond) // polling the indexer's result
		}
	}

	var got struct {
		N int `bson:"n"`
	}
	want := ids[321].(bson.D)
	if err := c.Database("rj").Collection("jobs").FindOne(ctx, bson.D{want[0]}).Decode(&got); err != nil || got.N != 321 {
		t.Fatalf("find by _id with the index: %+v, %v", got, err)
	}

	work, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "work.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer work.Close()
	var n int
	if err := work.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'rocketjob_id_%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("work database: %d rocketjob indexes, %v; want none", n, err)
	}
}
