package cli

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// checkLines runs `rocketjob check --json` and returns its findings by check
// name (a check may report several lines) and the exit code.
func checkLines(t *testing.T, g []string) (map[string][]finding, result) {
	t.Helper()
	r := run(t, context.Background(), append(g, "check", "--json")...)
	var fs []finding
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil {
		t.Fatalf("check --json printed %q (stderr %q): %v", r.stdout, r.stderr, err)
	}
	m := map[string][]finding{}
	for _, f := range fs {
		m[f.Check] = append(m[f.Check], f)
	}
	return m, r
}

// has fails unless one of the findings of check has status and contains want.
func has(t *testing.T, m map[string][]finding, check, status, want string) {
	t.Helper()
	for _, f := range m[check] {
		if f.Status == status && strings.Contains(f.Message, want) {
			return
		}
	}
	t.Errorf("no %s %q finding containing %q in %v", status, check, want, m[check])
}

func TestCheckHealthyEmbedded(t *testing.T) {
	g := db(t)
	m, r := checkLines(t, g)
	if r.code != 0 {
		t.Fatalf("check on a healthy embedded database: exit %d, stderr %q, findings %v", r.code, r.stderr, m)
	}
	has(t, m, "database", checkOK, "on FerretDB")
	if jobsDB := g[3]; store.RunQueueDB(jobsDB) != jobsDB { // --db; a name too long keeps the queue in it
		has(t, m, "database", checkOK, "; run queue: "+store.RunQueueDB(jobsDB)+" (")
	}
	has(t, m, "claim strategy", checkOK, "insert")
	has(t, m, "indexes", checkOK, "present")
	has(t, m, "clock", checkOK, "agree")
	has(t, m, "keys", checkOK, "no live encrypted job needs one")
	if dbtest.PostgreSQL() != "" {
		// The test database is FerretDB over PostgreSQL
		// ($ROCKETJOB_TEST_POSTGRESQL): PostgreSQL replicates and holds
		// the disk.
		has(t, m, "replication", checkOK, "PostgreSQL's")
		has(t, m, "disk", checkOK, "FerretDB on PostgreSQL")
	} else {
		has(t, m, "replication", checkWarn, "no replication")
		has(t, m, "disk", checkOK, "data folder "+dbtest.Dir(t))
	}

	// The text form: one line per finding, status first.
	r = mustRun(t, append(g, "check")...)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if status, _, _ := strings.Cut(line, " "); status != checkOK && status != checkWarn {
			t.Errorf("line %q does not start with OK or WARN", line)
		}
	}
}

func TestCheckClaimStrategyMismatchFails(t *testing.T) {
	g := db(t)
	mustRun(t, append(g, "job", "list")...) // records insert
	m, r := checkLines(t, append(g, "--claim-strategy", "findandmodify"))
	if r.code != ExitFailure {
		t.Errorf("exit %d, want 1", r.code)
	}
	want := "uses the insert claim strategy"
	if !dbtest.OnMongoDB() {
		want = "is on FerretDB, where findAndModify reads a slice and then writes it" // refused before the mismatch
	}
	has(t, m, "claim strategy", checkFail, want)
	oneErrorLine(t, r, "check: 1 of 1 checks failed")
}

// Servers as the servers collection shows them: one whose clock runs 10 s
// ahead, one whose heartbeat stopped an hour ago, one that skips an
// encrypted job for want of its key.
func TestCheckServersClocksAndKeys(t *testing.T) {
	g := db(t)
	jobsDB := g[3] // --db
	now := time.Now().UTC()
	servers := dbtest.Client(t).Database(jobsDB).Collection("servers")
	for _, doc := range []bson.D{
		{{Key: "_id", Value: "ahead"}, {Key: "state", Value: "running"}, {Key: "heartbeat_at", Value: now.Add(10 * time.Second)}, {Key: "heartbeat_interval", Value: time.Second}, {Key: "dead_after", Value: 5 * time.Second}},
		{{Key: "_id", Value: "gone"}, {Key: "state", Value: "running"}, {Key: "heartbeat_at", Value: now.Add(-time.Hour)}, {Key: "heartbeat_interval", Value: time.Second}, {Key: "dead_after", Value: 5 * time.Second}},
		{{Key: "_id", Value: "keyless"}, {Key: "state", Value: "running"}, {Key: "heartbeat_at", Value: now}, {Key: "heartbeat_interval", Value: time.Second}, {Key: "dead_after", Value: 5 * time.Second}, {Key: "waiting_for_key", Value: bson.A{"65a1b2c3d4e5f60718293a4b"}}},
	} {
		if _, err := servers.InsertOne(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
	}
	m, r := checkLines(t, g)
	if r.code != ExitFailure {
		t.Errorf("exit %d, want 1 (a server waits for a key)", r.code)
	}
	has(t, m, "clock", checkWarn, "server ahead's heartbeat is")
	has(t, m, "servers", checkWarn, "server gone looks dead")
	has(t, m, "keys", checkFail, "server keyless lacks the key of 1 encrypted jobs")
}

// A live encrypted job whose key this process lacks is a warning here (the
// servers may have it), with the key's id and never the key.
func TestCheckKeysNeededByLiveJobs(t *testing.T) {
	g := db(t)
	key, err := encryption.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	in := t.TempDir() + "/in.txt"
	if err := os.WriteFile(in, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ROCKETJOB_KEYS", key)
	mustRun(t, append(g, "upload", "--job", "reverse", "--encrypt", in)...)
	m, r := checkLines(t, g)
	if r.code != 0 {
		t.Errorf("with the key loaded: exit %d, findings %v", r.code, m)
	}
	has(t, m, "keys", checkOK, "1 keys loaded here; the 1 keys live encrypted jobs need")

	t.Setenv("ROCKETJOB_KEYS", "")
	m, r = checkLines(t, g)
	if r.code != 0 {
		t.Errorf("without the key: exit %d, want 0 (a warning)", r.code)
	}
	id, _, _ := strings.Cut(key, ":")
	has(t, m, "keys", checkWarn, "key "+id+" is not loaded here; 1 live jobs need it")
	if strings.Contains(r.stdout, key) {
		t.Error("the check printed the key")
	}
}

func TestCheckUnreachableDatabaseFails(t *testing.T) {
	m, r := checkLines(t, []string{"--uri", "mongodb://127.0.0.1:1/"})
	if r.code != ExitFailure {
		t.Errorf("exit %d, want 1", r.code)
	}
	has(t, m, "database", checkFail, "cannot reach database at mongodb://127.0.0.1:1/")
}
