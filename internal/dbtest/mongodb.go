package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoDBEnv names the environment variable that runs a package's tests
// against a database the test does not start: the URI of a MongoDB replica
// set (or of any server that speaks the MongoDB protocol), e.g.
//
//	ROCKETJOB_TEST_MONGODB_URI='mongodb://127.0.0.1:27017/?replicaSet=rs0'
//
// With it, Main starts no embedded database: every test gets databases
// named after it and this run (see DBNames) on that server, dropped at the
// end. Tests that look at the embedded database's files (Dir) or need
// FerretDB's own collections (RequireFerretDB) skip there with one line;
// tests of MongoDB-only paths (RequireMongoDB) run only there.
const MongoDBEnv = "ROCKETJOB_TEST_MONGODB_URI"

var (
	external   bool   // set by Main: the tests run on $ROCKETJOB_TEST_MONGODB_URI
	onMongoDB  bool   // set by Main: that server is MongoDB, not FerretDB
	runID      string // set by Main on an external server: keeps runs apart
	mongoProbe = 30 * time.Second
)

// MongoDB returns the URI in $ROCKETJOB_TEST_MONGODB_URI, or "".
func MongoDB() string { return os.Getenv(MongoDBEnv) }

// OnMongoDB reports whether the package's tests run on MongoDB (rather
// than FerretDB, embedded or external).
func OnMongoDB() bool {
	URI()
	return onMongoDB
}

// RequireMongoDB skips a test of a MongoDB-only path, with one line saying
// how to run it, unless the tests run on MongoDB. It skips under CI=true
// too: no MongoDB server can be installed on the CI machines.
func RequireMongoDB(t testing.TB) {
	t.Helper()
	if OnMongoDB() {
		return
	}
	t.Skip("SKIP MongoDB: needs a MongoDB replica set: set " + MongoDBEnv + "='mongodb://HOST:PORT/?replicaSet=NAME'")
}

// RequireFerretDB skips, with one line, a test of what only exists on
// FerretDB (the run queue, the state index, transition claims, the
// embedded database's own behaviour) when the tests run on MongoDB.
func RequireFerretDB(t testing.TB) {
	t.Helper()
	if OnMongoDB() {
		t.Skip("tests FerretDB's own paths; the tests run on MongoDB (" + MongoDBEnv + ")")
	}
}

// runExternal runs the tests on the server of $ROCKETJOB_TEST_MONGODB_URI.
func runExternal(m *testing.M, check func() error) int {
	ctx, cancel := context.WithTimeout(context.Background(), mongoProbe)
	defer cancel()
	isMongo, err := probe(ctx, MongoDB())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %s: %v\n", MongoDBEnv, err)
		return 1
	}
	var id [3]byte
	_, _ = rand.Read(id[:])
	uri, external, onMongoDB, runID = MongoDB(), true, isMongo, "r"+hex.EncodeToString(id[:])

	code := m.Run()
	disconnect()
	if code == 0 && check != nil {
		if err := check(); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			code = 1
		}
	}
	return code
}

// probe connects to uri and reports whether it is MongoDB (FerretDB
// answers buildInfo with a ferretdbVersion).
func probe(ctx context.Context, uri string) (bool, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(mongoProbe))
	if err != nil {
		return false, err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	var info bson.M
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("buildInfo: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	return !ferret, nil
}
