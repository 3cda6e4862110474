package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestFailedRecordCommands: failed list, show, edit, delete and history on
// a failed job, usage errors for bad arguments, then job retry runs the
// fixed records and the job completes with its output in input order.
func TestFailedRecordCommands(t *testing.T) {
	g := db(t)
	startServer(t, g)
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte("1\nx\n3\n4\ny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "square", "--slice-size", "3", in)...).stdout)
	if r := run(t, t.Context(), append(g, "job", "wait", id, "--timeout", "60s")...); r.code != ExitFailure {
		t.Fatalf("job wait: exit %d, want 1 (failed); %s", r.code, r.stderr)
	}
	var list []sliced.FailedRecord
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "failed", "list", id, "--json")...).stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Number != 2 || list[0].Input != "x" || list[1].Number != 5 || list[0].Fix != nil {
		t.Fatalf("failed list: %+v", list)
	}
	if r := mustRun(t, append(g, "failed", "list", id)...); !strings.Contains(r.stdout, "RECORD") || !strings.Contains(r.stdout, "x") {
		t.Errorf("failed list table:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"failed", "edit", id, "2"}, ExitUsage, "missing argument"},
		{[]string{"failed", "edit", id, "0", "1"}, ExitUsage, "record NUMBER"},
		{[]string{"failed", "edit", "nope", "2", "1"}, ExitFailure, "not a job id"},
		{[]string{"failed", "edit", id, "3", "9"}, ExitFailure, "no failed record 3"},
		{[]string{"failed", "show", id, "4"}, ExitFailure, "no failed record 4"},
	} {
		r := run(t, t.Context(), append(g, tc.args...)...)
		if r.code != tc.code {
			t.Errorf("%v: exit %d, want %d; %s", tc.args, r.code, tc.code, r.stderr)
		}
		if tc.want != "" {
			oneErrorLine(t, r, tc.want)
		}
	}
	mustRun(t, append(g, "failed", "edit", id, "2", "2")...)
	mustRun(t, append(g, "failed", "delete", id, "5")...)
	var f sliced.FailedRecord
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "failed", "show", id, "2", "--json")...).stdout), &f); err != nil {
		t.Fatal(err)
	}
	if f.Input != "x" || f.Fix == nil || f.Fix.Input != "2" || f.Fix.User != operator() {
		t.Errorf("failed show: %+v", f)
	}
	if r := mustRun(t, append(g, "failed", "show", id, "5")...); !strings.Contains(r.stdout, "delete") {
		t.Errorf("failed show of a deleted record:\n%s", r.stdout)
	}
	mustRun(t, append(g, "job", "retry", id)...)
	mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
	if r := mustRun(t, append(g, "download", id, "-")...); r.stdout != "1\n4\n9\n16\n" {
		t.Errorf("output after the retry: %q", r.stdout)
	}
	var hist []rocketjob.HistoryEntry
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "failed", "history", id, "--json")...).stdout), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Action != "edit failed record" || hist[0].Record != 2 || hist[1].Action != "delete failed record" ||
		hist[2].Action != "retry" || hist[2].User != operator() {
		t.Errorf("history: %+v", hist)
	}
	r := run(t, t.Context(), append(g, "failed", "edit", id, "2", "2")...)
	if r.code != ExitFailure {
		t.Errorf("editing a completed job: exit %d", r.code)
	}
}
