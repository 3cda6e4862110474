package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// With $ROCKETJOB_TEST_MONGODB_URI (see internal/dbtest) a cluster starts
// no `rocketjob db`: its processes use that server, with a jobs and a work
// database of the cluster's own. Tests that stop, kill or inspect the
// database process call ownDatabase first and skip there.

// extClusters maps the URI of a cluster on the external server (made
// unique with an appName) to its jobs and work database names.
var extClusters sync.Map

// ownDatabase skips a test, with one line, when clusters run on the server
// of $ROCKETJOB_TEST_MONGODB_URI: the test needs a database process of its
// own (to kill, restart or stop it).
func ownDatabase(t *testing.T) {
	t.Helper()
	if dbtest.MongoDB() != "" {
		t.Skip("needs a `rocketjob db` of its own to stop, kill or restart; clusters run on " + dbtest.MongoDBEnv)
	}
}

// externalCluster gives c a jobs and a work database on the external
// server, dropped when the test ends, and a URI of its own that names them
// (see onExternal).
func externalCluster(t *testing.T, c *cluster) {
	t.Helper()
	u, err := url.Parse(dbtest.MongoDB())
	if err != nil {
		t.Fatalf("%s: %v", dbtest.MongoDBEnv, err)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	name := "it" + hex.EncodeToString(id[:])
	q := u.Query()
	q.Set("appName", name)
	u.RawQuery = q.Encode()
	c.uri = u.String()
	c.names = [2]string{name + "_jobs", name + "_work"}
	extClusters.Store(c.uri, c.names)
	t.Cleanup(func() {
		extClusters.Delete(c.uri)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(dbtest.MongoDB()))
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = client.Disconnect(ctx) }()
		for _, db := range c.names {
			if err := client.Database(db).Drop(ctx); err != nil {
				t.Errorf("drop %s: %v", db, err)
			}
		}
	})
	t.Logf("cluster on %s: databases %s and %s", dbtest.MongoDBEnv, c.names[0], c.names[1])
}

// onExternal adds the databases of an external cluster to the environment
// of a command that names the cluster's URI (--uri or $ROCKETJOB_URI).
func onExternal(args, env []string) []string {
	uri := ""
	for i, a := range args {
		if a == "--uri" && i+1 < len(args) {
			uri = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--uri="); ok {
			uri = v
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ROCKETJOB_URI="); ok {
			uri = v
		}
	}
	names, ok := extClusters.Load(uri)
	if !ok {
		return env
	}
	n := names.([2]string)
	return append(slices.Clone(env), "ROCKETJOB_DB="+n[0], "ROCKETJOB_WORK_DB="+n[1])
}

// dbNames returns the jobs and work database names of the cluster whose URI
// is uri: its own on the external server, else the defaults.
func dbNames(uri string) (jobs, work string) {
	if n, ok := extClusters.Load(uri); ok {
		names := n.([2]string)
		return names[0], names[1]
	}
	return "rocketjob", "rocketjob_work"
}

// workDB is the name of the work database of the cluster whose URI is uri.
func workDB(uri string) string {
	_, w := dbNames(uri)
	return w
}

// jobsDBName is the name of the jobs database of the cluster whose URI is uri.
func jobsDBName(uri string) string {
	j, _ := dbNames(uri)
	return j
}
