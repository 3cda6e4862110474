package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// jobJSON reads `job show ID --json`.
func jobJSON(t *testing.T, g []string, id string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "show", id, "--json")...).stdout), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJobRunNowEditAndPauseAll(t *testing.T) {
	g := db(t)
	later := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--run-at", "24h", "--description", "old")...).stdout)
	mustRun(t, append(g, "job", "run-now", later)...)
	runAt, err := time.Parse(time.RFC3339Nano, jobJSON(t, g, later)["run_at"].(string))
	if err != nil || time.Until(runAt) > time.Minute {
		t.Errorf("run_at after run-now: %v (%v), want now", runAt, err)
	}
	mustRun(t, append(g, "job", "edit", later, "--description", "new")...)
	if d := jobJSON(t, g, later)["description"]; d != "new" {
		t.Errorf("description after edit: %v", d)
	}
	r := run(t, context.Background(), append(g, "job", "edit", later, "--max-workers", "2")...)
	if r.code != ExitFailure {
		t.Errorf("--max-workers on a simple job: exit %d, want 1", r.code)
	}
	oneErrorLine(t, r, "max workers applies to sliced jobs")

	mustRun(t, append(g, "job", "enqueue", "nap")...)
	r = mustRun(t, append(g, "job", "pause", "--all", "--type", "nap")...)
	if !strings.Contains(r.stderr, "2 jobs paused") {
		t.Errorf("pause --all: stderr %q, want 2 jobs paused", r.stderr)
	}
	r = mustRun(t, append(g, "job", "resume", "--all")...)
	if !strings.Contains(r.stderr, "2 jobs resumed") {
		t.Errorf("resume --all: stderr %q, want 2 jobs resumed", r.stderr)
	}
	for _, bad := range [][]string{
		{"job", "pause", "--type", "nap"},
		{"job", "pause", "--all", later},
		{"job", "resume", "--all", "--type", "nosuch"},
		{"job", "edit", later},
	} {
		if r := run(t, context.Background(), append(g, bad...)...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want 2; stderr %q", bad, r.code, r.stderr)
		}
	}
}
