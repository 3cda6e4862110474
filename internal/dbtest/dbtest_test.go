package dbtest_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var validName = regexp.MustCompile(`^[a-z0-9_]+$`)

// runPrefix is what DBNames puts before the test's name on a server of
// $ROCKETJOB_TEST_MONGODB_URI, which other runs may share.
var runPrefix = regexp.MustCompile(`^r[0-9a-f]{6}_`)

// testPart returns the part of a database name derived from the test: all
// of it on the embedded database, what follows the run's prefix on an
// external server (where the prefix must be there).
func testPart(t *testing.T, name string) string {
	t.Helper()
	if dbtest.MongoDB() == "" {
		return name
	}
	p := runPrefix.FindString(name)
	if p == "" {
		t.Errorf("name %q on a shared server lacks the run's prefix", name)
	}
	return name[len(p):]
}

func TestDBNames(t *testing.T) {
	ctx := context.Background()
	if ext := dbtest.MongoDB(); ext != "" && dbtest.URI() != ext {
		t.Errorf("URI() = %q, want $%s", dbtest.URI(), dbtest.MongoDBEnv)
	} else if ext == "" && !strings.HasPrefix(dbtest.URI(), "mongodb://127.0.0.1:") {
		t.Errorf("URI() = %q", dbtest.URI())
	}
	jobs, work := dbtest.DBNames(t)
	jobs2, work2 := dbtest.DBNames(t)
	names := []string{jobs, work, jobs2, work2}
	for i, n := range names {
		if !validName.MatchString(n) || !strings.HasPrefix(testPart(t, n), "testdbnames_") {
			t.Errorf("name %q is not a sanitised test name", n)
		}
		if slices.Contains(names[:i], n) {
			t.Errorf("name %q returned twice: %v", n, names)
		}
	}

	c := dbtest.Client(t)
	if dbtest.Client(t) != c {
		t.Error("Client returned two different clients")
	}
	for _, db := range []string{jobs, work} {
		if _, err := c.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatalf("insert into %s: %v", db, err)
		}
		n, err := c.Database(db).Collection("c").CountDocuments(ctx, bson.D{})
		if err != nil || n != 1 {
			t.Fatalf("count in %s = %d, %v; want 1", db, n, err)
		}
	}
}

func TestLongAndOddNames(t *testing.T) {
	t.Run("Sub Test/With-ODD.chars and a very long name that goes on and on", func(t *testing.T) {
		jobs, work := dbtest.DBNames(t)
		for _, n := range []string{jobs, work} {
			if !validName.MatchString(n) {
				t.Errorf("name %q has invalid characters", n)
			}
			n = testPart(t, n)
			if prefix, _, _ := strings.Cut(n, "_"); len(n) > 40+len("_999_jobs") || prefix != "testlongandoddnames" {
				t.Errorf("name %q too long or not derived from the test name", n)
			}
		}
	})
}

// TestDropped checks that databases from DBNames are dropped after the test.
func TestDropped(t *testing.T) {
	ctx := context.Background()
	var jobs string
	t.Run("inner", func(t *testing.T) {
		jobs, _ = dbtest.DBNames(t)
		if _, err := dbtest.Client(t).Database(jobs).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	})
	dbs, err := dbtest.Client(t).ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(dbs, jobs) {
		t.Errorf("database %s still exists after its test: %v", jobs, dbs)
	}
}
