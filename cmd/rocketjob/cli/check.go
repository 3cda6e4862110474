package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Finding statuses of `rocketjob check`.
const (
	checkOK   = "OK"
	checkWarn = "WARN"
	checkFail = "FAIL"
)

// finding is one line of `rocketjob check`.
type finding struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Thresholds of the checks.
const (
	clockSkewWarn = time.Second
	diskFreeWarn  = 1 << 30 // bytes free in the embedded database's folder
	diskShareWarn = 0.05    // share of the disk free
)

func checkCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check a deployment: database kind and version, replication, claim strategy, indexes, clocks, keys, disk",
		UsageText: usageText("rocketjob check [--json]",
			"rocketjob check",
			"rocketjob --uri mongodb://db1,db2,db3/?replicaSet=rs0 --work-uri mongodb://work/ check",
			"ROCKETJOB_KEY_FILE=/etc/rocketjob/keys rocketjob check --json"),
		Description: "Each line is OK, WARN or FAIL; the exit code is 1 when any line is FAIL.",
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			var fs []finding
			client, err := st.connect(c)
			if err != nil {
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				what := "database"
				if errors.Is(err, rocketjob.ErrClaimStrategyMismatch) || errors.Is(err, rocketjob.ErrClaimStrategyUnsafe) {
					what = "claim strategy"
				}
				fs = append(fs, finding{what, checkFail, oneLine(err.Error())})
			} else {
				defer closeClient(client)
				fs = runChecks(c.Context, client)
			}
			if err := printFindings(c, fs); err != nil {
				return err
			}
			if n := countStatus(fs, checkFail); n > 0 {
				return fmt.Errorf("check: %d of %d checks failed", n, len(fs))
			}
			return nil
		},
	}
}

// runChecks runs every check on a connected client.
func runChecks(ctx context.Context, client *rocketjob.Client) []finding {
	st := clientstore.Of(client)
	jobs, work, err := st.Databases(ctx)
	if err != nil {
		return []finding{{"database", checkFail, oneLine(err.Error())}}
	}
	fs := []finding{checkDatabases(jobs, work), checkReplication(jobs), checkClaimStrategy(ctx, st), checkIndexes(ctx, st)}
	fs = append(fs, checkClocks(ctx, client, jobs)...)
	fs = append(fs, checkKeys(ctx, client)...)
	fs = append(fs, checkDisk(work))
	return fs
}

func describeDB(d store.DBInfo) string {
	s := fmt.Sprintf("%s on %s %s", d.Name, d.Kind, d.Version)
	if d.Kind == "FerretDB" {
		s = fmt.Sprintf("%s on FerretDB (MongoDB %s compatible)", d.Name, d.Version)
	}
	if d.Embedded != nil {
		s += ", embedded on " + embeddedBackend(d.Embedded)
		if d.Embedded.Host != "" {
			s += " at host " + d.Embedded.Host
		}
	}
	return s
}

// embeddedBackend is "sqlite" or "postgresql" (databases started before the
// info document named its backend are SQLite).
func embeddedBackend(e *store.EmbeddedInfo) string {
	if e.Backend == "" {
		return "sqlite"
	}
	return e.Backend
}

func checkDatabases(jobs, work store.DBInfo) finding {
	msg := "jobs: " + describeDB(jobs) + "; work: " + describeDB(work)
	if jobs.RunQueue != "" {
		msg += "; run queue: " + jobs.RunQueue + " (bulk enqueues' queued jobs; back it up with the jobs database)"
	}
	return finding{"database", checkOK, msg}
}

// checkReplication says what protects the jobs database from losing a
// node: a replica set (majority writes, see internal/store), or nothing.
func checkReplication(jobs store.DBInfo) finding {
	switch {
	case jobs.Kind == "MongoDB" && jobs.ReplicaSet != "":
		return finding{"replication", checkOK, fmt.Sprintf("replica set %s, %d members; writes w:majority with journal, reads majority, retryable writes", jobs.ReplicaSet, jobs.Members)}
	case jobs.Kind == "MongoDB":
		return finding{"replication", checkWarn, "standalone mongod: no failover, majority is the one node; run a replica set in production"}
	case jobs.Embedded != nil && embeddedBackend(jobs.Embedded) == "postgresql":
		return finding{"replication", checkOK, "FerretDB on PostgreSQL: replication and backups are PostgreSQL's"}
	default:
		return finding{"replication", checkWarn, "FerretDB on SQLite: one node, no replication; back up the data folder (or use a MongoDB replica set)"}
	}
}

func checkClaimStrategy(ctx context.Context, st *store.Store) finding {
	using, recorded, err := st.ClaimStrategy(ctx)
	switch {
	case err != nil:
		return finding{"claim strategy", checkFail, oneLine(err.Error())}
	case recorded == "":
		return finding{"claim strategy", checkWarn, using + " (not recorded in the work database yet)"}
	case recorded != using:
		return finding{"claim strategy", checkFail, fmt.Sprintf("this process would use %s but the work database uses %s", using, recorded)}
	default:
		return finding{"claim strategy", checkOK, using + " (recorded in the work database; every process must use it)"}
	}
}

func checkIndexes(ctx context.Context, st *store.Store) finding {
	missing, err := st.MissingJobIndexes(ctx)
	switch {
	case err != nil:
		return finding{"indexes", checkFail, oneLine(err.Error())}
	case len(missing) > 0:
		return finding{"indexes", checkFail, "jobs collection lacks " + strings.Join(missing, ", ")}
	default:
		return finding{"indexes", checkOK, "jobs collection indexes present"}
	}
}

// checkClocks compares this machine's clock and every server's last
// heartbeat with the database's clock: heartbeats from the future mean a
// server's clock runs ahead, which shortens how long others wait before
// declaring it dead.
func checkClocks(ctx context.Context, client *rocketjob.Client, jobs store.DBInfo) []finding {
	if jobs.LocalTime.IsZero() {
		return []finding{{"clock", checkWarn, "the jobs database does not report its time: clocks not compared"}}
	}
	var fs []finding
	skew := time.Until(jobs.LocalTime)
	if skew.Abs() > clockSkewWarn {
		fs = append(fs, finding{"clock", checkWarn, fmt.Sprintf("this machine's clock is %s off the database's", skew.Round(time.Millisecond))})
	}
	servers, err := client.Servers(ctx)
	if err != nil {
		return append(fs, finding{"servers", checkFail, oneLine(err.Error())})
	}
	live := 0
	for _, s := range servers {
		age := jobs.LocalTime.Sub(s.HeartbeatAt)
		deadAfter := max(s.DeadAfter, 2*s.HeartbeatInterval, time.Second)
		switch {
		case age < -clockSkewWarn:
			fs = append(fs, finding{"clock", checkWarn, fmt.Sprintf("server %s's heartbeat is %s ahead of the database's clock: its clock runs ahead", s.Name, (-age).Round(time.Millisecond))})
		case age > deadAfter:
			fs = append(fs, finding{"servers", checkWarn, fmt.Sprintf("server %s looks dead: last heartbeat %s ago (dead after %s)", s.Name, age.Round(time.Second), deadAfter)})
			continue
		}
		live++
	}
	if len(fs) == 0 {
		fs = append(fs, finding{"clock", checkOK, fmt.Sprintf("this machine and %d live servers agree with the database's clock within %s", live, clockSkewWarn)})
	}
	return fs
}

// checkKeys compares the keys live encrypted jobs were written with to the
// keys loaded here, and reports servers that skip jobs for want of a key.
func checkKeys(ctx context.Context, client *rocketjob.Client) []finding {
	live, err := client.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateQueued, rocketjob.StateRunning, rocketjob.StatePaused}})
	if err != nil {
		return []finding{{"keys", checkFail, oneLine(err.Error())}}
	}
	need := map[string][]string{} // key id -> job ids
	for _, j := range live {
		if j.Encrypt && j.KeyID != "" {
			need[j.KeyID] = append(need[j.KeyID], j.ID.Hex())
		}
	}
	var fs []finding
	kr := client.Keyring()
	var missing []string
	for id := range need {
		if kr == nil || !kr.Has(id) {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		fs = append(fs, finding{"keys", checkWarn, fmt.Sprintf("key %s is not loaded here; %d live jobs need it (e.g. %s)", id, len(need[id]), need[id][0])})
	}
	servers, err := client.Servers(ctx)
	if err != nil {
		return append(fs, finding{"keys", checkFail, oneLine(err.Error())})
	}
	for _, s := range servers {
		if len(s.WaitingForKey) > 0 {
			fs = append(fs, finding{"keys", checkFail, fmt.Sprintf("server %s lacks the key of %d encrypted jobs and skips them (e.g. %s)", s.Name, len(s.WaitingForKey), s.WaitingForKey[0])})
		}
	}
	if len(fs) == 0 {
		loaded := 0
		if kr != nil {
			loaded = len(kr.IDs())
		}
		msg := fmt.Sprintf("%d keys loaded here; the %d keys live encrypted jobs need are among them; no server waits for one", loaded, len(need))
		if len(need) == 0 {
			msg = fmt.Sprintf("%d keys loaded here; no live encrypted job needs one; no server waits for one", loaded)
		}
		fs = append(fs, finding{"keys", checkOK, msg})
	}
	return fs
}

// checkDisk reports the free space of the embedded database's data folder
// when it is on this machine.
func checkDisk(work store.DBInfo) finding {
	e := work.Embedded
	host, _ := os.Hostname()
	switch {
	case e == nil:
		return finding{"disk", checkOK, work.Kind + " manages its own disk: not checked here"}
	case embeddedBackend(e) == "postgresql":
		return finding{"disk", checkOK, "FerretDB on PostgreSQL: PostgreSQL's disk, not checked here"}
	case e.Host != host:
		return finding{"disk", checkWarn, fmt.Sprintf("the embedded database's data folder is on host %s: run rocketjob check there to see its free disk", e.Host)}
	}
	free, total, err := diskFree(e.DataFolder)
	if err != nil {
		return finding{"disk", checkWarn, fmt.Sprintf("data folder %s: %v", e.DataFolder, err)}
	}
	msg := fmt.Sprintf("data folder %s: %s free of %s", e.DataFolder, humanBytes(int64(free)), humanBytes(int64(total)))
	if free < diskFreeWarn || float64(free) < diskShareWarn*float64(total) {
		return finding{"disk", checkWarn, msg + ": running low (the database stops taking writes when the disk is full)"}
	}
	return finding{"disk", checkOK, msg}
}

func countStatus(fs []finding, status string) int {
	n := 0
	for _, f := range fs {
		if f.Status == status {
			n++
		}
	}
	return n
}

func printFindings(c *cli.Context, fs []finding) error {
	if c.Bool("json") {
		return writeJSON(out(c), fs)
	}
	tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Status, f.Check, f.Message)
	}
	return tw.Flush()
}
