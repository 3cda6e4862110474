package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// runStdin is run with stdin.
func runStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	app := App(registry(t))
	var stdout, stderr syncBuffer
	app.Writer, app.ErrWriter, app.Reader = &stdout, &stderr, strings.NewReader(stdin)
	code := Run(context.Background(), app, append([]string{"rocketjob"}, args...))
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// storedNaps returns the nap jobs of the databases named by the global
// flags g, by id.
func storedNaps(t *testing.T, g []string) map[string]rocketjob.Job {
	t.Helper()
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: g[3], WorkDB: g[5], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	jobs, err := c.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rocketjob.Job{}
	for _, j := range jobs {
		out[j.ID.Hex()] = j
	}
	return out
}

func TestEnqueueFromFile(t *testing.T) {
	g := db(t)
	file := filepath.Join(t.TempDir(), "naps.jsonl")
	if err := os.WriteFile(file, []byte("{\"ms\": 1}\n\n  {\"ms\": 2, \"fail\": true}  \n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, append(g, "job", "enqueue", "nap", "--from-file", file, "--priority", "7", "--description", "bulk")...)
	ids := strings.Fields(r.stdout)
	if len(ids) != 3 {
		t.Fatalf("stdout %q: want 3 ids", r.stdout)
	}
	stored := storedNaps(t, g)
	want := []examples.NapArgs{{MS: 1}, {MS: 2, Fail: true}, {}}
	for i, id := range ids {
		j, ok := stored[id]
		if !ok {
			t.Fatalf("id %s printed but not stored", id)
		}
		var a examples.NapArgs
		if err := bson.Unmarshal(j.Params, &a); err != nil {
			t.Fatal(err)
		}
		if a != want[i] || j.Priority != 7 || j.Description != "bulk" || j.State != rocketjob.StateQueued {
			t.Errorf("job %d: args %+v priority %d description %q state %s; want %+v, 7, bulk, queued", i, a, j.Priority, j.Description, j.State, want[i])
		}
	}

	// Standard input, ids as a JSON array.
	r = runStdin(t, "{\"ms\": 3}\n{\"ms\": 4}", append(g, "job", "enqueue", "nap", "--from-file", "-", "--json")...)
	if r.code != 0 {
		t.Fatalf("--from-file - --json: exit %d, stderr %q", r.code, r.stderr)
	}
	var more []string
	if err := json.Unmarshal([]byte(r.stdout), &more); err != nil || len(more) != 2 {
		t.Fatalf("--json stdout %q (%v): want a JSON array of 2 ids", r.stdout, err)
	}
	stored = storedNaps(t, g)
	if len(stored) != 5 {
		t.Fatalf("%d jobs stored, want 5", len(stored))
	}
	for _, id := range append(ids, more...) {
		if _, ok := stored[id]; !ok {
			t.Errorf("id %s printed but not stored", id)
		}
	}
}

// TestEnqueueFromFileBadLine checks that a bad line is a usage error naming
// it and that nothing is enqueued.
func TestEnqueueFromFileBadLine(t *testing.T) {
	g := db(t)
	cases := []struct{ input, want string }{
		{"{\"ms\": 1}\n{\"ms\": 2}\n\nnot json\n", "stdin line 4: not a JSON object"},
		{"{\"ms\": 1}\n{\"ms\": \n", "stdin line 2:"},
		{"{\"ms\": 1}\n{\"ms\": -5}\n", "stdin line 2: invalid job arguments"},       // fails NapArgs.Validate
		{"{\"ms\": 1}\n{\"ms\": \"soon\"}\n", "stdin line 2: invalid job arguments"}, // does not decode
		{"\n\n", "stdin has no job arguments"},
	}
	for _, tc := range cases {
		r := runStdin(t, tc.input, append(g, "job", "enqueue", "nap", "--from-file", "-")...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("input %q: exit %d, stdout %q; want exit %d and no output", tc.input, r.code, r.stdout, ExitUsage)
		}
		oneErrorLine(t, r, tc.want)
	}
	for _, extra := range [][]string{{"--param", "ms=1"}, {"--cron", "@hourly"}} {
		r := runStdin(t, "{}\n", append(append(g, "job", "enqueue", "nap", "--from-file", "-"), extra...)...)
		if r.code != ExitUsage {
			t.Errorf("--from-file with %v: exit %d, want %d", extra, r.code, ExitUsage)
		}
	}
	if r := run(t, context.Background(), append(g, "job", "enqueue", "nap", "--json")...); r.code != ExitUsage {
		t.Errorf("--json without --from-file: exit %d, want %d", r.code, ExitUsage)
	}
	r := run(t, context.Background(), append(g, "job", "enqueue", "nap", "--from-file", "/no/such/file")...)
	if r.code != ExitFailure {
		t.Errorf("missing file: exit %d, want %d", r.code, ExitFailure)
	}
	oneErrorLine(t, r, "no such file")
	if stored := storedNaps(t, g); len(stored) != 0 {
		ids := slices.Collect(func(yield func(string) bool) {
			for id := range stored {
				if !yield(id) {
					return
				}
			}
		})
		t.Fatalf("refused bulk enqueues stored %d jobs: %v", len(stored), ids)
	}
}
