package rocketjobtest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
)

// databases lists the database names on the server at uri.
func databases(t *testing.T, uri string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	must(t, err)
	defer func() { _ = c.Disconnect(ctx) }()
	names, err := c.ListDatabaseNames(ctx, bson.D{})
	must(t, err)
	return names
}

func TestStartGivesEveryTestItsOwnDatabases(t *testing.T) {
	var greeted []string
	reg := greetRegistry(t, &greeted)
	dbs := make([]*rocketjobtest.DB, 2)
	t.Run("group", func(t *testing.T) {
		for i := range dbs {
			t.Run("parallel", func(t *testing.T) {
				t.Parallel()
				db := rocketjobtest.StartDB(t, reg, nil)
				dbs[i] = db
				ctx := context.Background()
				job, err := db.Client.Enqueue(ctx, "greet", greetArgs{Name: "ada"}, nil)
				must(t, err)
				// Each test sees its own job only.
				jobs, err := db.Client.List(ctx, nil)
				must(t, err)
				if len(jobs) != 1 || jobs[0].ID != job.ID {
					t.Fatalf("test %d sees %d jobs, want only its own", i, len(jobs))
				}
				if names := databases(t, db.URI); !slices.Contains(names, db.JobsDB) {
					t.Fatalf("database %s not found in %v", db.JobsDB, names)
				}
			})
		}
	})
	if dbs[0] == nil || dbs[1] == nil {
		t.Fatal("a subtest did not start")
	}
	if dbs[0].URI != dbs[1].URI {
		t.Errorf("the tests used two database servers (%s, %s), want one shared", dbs[0].URI, dbs[1].URI)
	}
	if dbs[0].JobsDB == dbs[1].JobsDB || dbs[0].WorkDB == dbs[1].WorkDB || dbs[0].JobsDB == dbs[0].WorkDB {
		t.Errorf("database names are not unique: %s %s %s %s", dbs[0].JobsDB, dbs[0].WorkDB, dbs[1].JobsDB, dbs[1].WorkDB)
	}
	names := databases(t, dbs[0].URI)
	for _, db := range dbs {
		if slices.Contains(names, db.JobsDB) || slices.Contains(names, db.WorkDB) {
			t.Errorf("databases %s/%s were not dropped when their test ended: %v", db.JobsDB, db.WorkDB, names)
		}
	}
}

func TestOpenAndClose(t *testing.T) {
	ctx := context.Background()
	db, err := rocketjobtest.Open(ctx, nil, nil)
	must(t, err)
	if db.Keyring == nil || len(db.Keyring.IDs()) != 1 {
		t.Fatalf("keyring %v, want one generated key", db.Keyring)
	}
	if db.Client.Registry() == nil || len(db.Client.Registry().Names()) != 0 {
		t.Fatalf("registry %v, want an empty one", db.Client.Registry())
	}
	// A second client on the same databases sees what the first wrote.
	reg := rocketjob.NewRegistry()
	must(t, rocketjob.Register(reg, "noop", func(context.Context, *rocketjob.Job, struct{}) error { return nil }, nil))
	cfg := db.Config()
	cfg.Registry = reg
	other, err := rocketjob.NewClient(ctx, cfg)
	must(t, err)
	job, err := other.Enqueue(ctx, "noop", nil, nil)
	must(t, err)
	must(t, other.Close(ctx))
	if got, err := db.Client.Get(ctx, job.ID.Hex()); err != nil || got.Type != "noop" {
		t.Fatalf("first client reads %v, %v", got, err)
	}

	must(t, db.Close(ctx))
	must(t, db.Close(ctx)) // idempotent
	if names := databases(t, db.URI); slices.Contains(names, db.JobsDB) {
		t.Fatalf("database %s still there after Close: %v", db.JobsDB, names)
	}
}

func TestURIOption(t *testing.T) {
	first := rocketjobtest.StartDB(t, nil, nil)
	// Another server's URI (here the same one, given explicitly) is used as is.
	db := rocketjobtest.StartDB(t, nil, &rocketjobtest.Options{URI: first.URI, ClaimStrategy: "insert"})
	if db.URI != first.URI || db.Config().ClaimStrategy != "insert" {
		t.Fatalf("URI %s, claim strategy %q", db.URI, db.Config().ClaimStrategy)
	}
	t.Setenv(rocketjobtest.EnvURI, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db, err := rocketjobtest.Open(ctx, nil, nil); err == nil {
		_ = db.Close(ctx)
		t.Fatalf("Open ignored $%s and connected to %s", rocketjobtest.EnvURI, db.URI)
	}
}
