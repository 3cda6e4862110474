package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBatchCommands: prefix refuses an upload without its required
// parameter (exit 2, one line, nothing stored) and takes --param text=...;
// triage's categories download on their own (--category) in input order,
// and job show prints parameters, statistics and categories.
func TestBatchCommands(t *testing.T) {
	g := db(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("1\n2\n\nx\n3\n4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, context.Background(), append(g, "upload", "--job", "prefix", in)...)
	if r.code != ExitUsage || r.stdout != "" {
		t.Fatalf("upload without text: exit %d, stdout %q", r.code, r.stdout)
	}
	oneErrorLine(t, r, "text is required")
	r = run(t, context.Background(), append(g, "upload", "--job", "prefix", "--param", "colour=red", in)...)
	if r.code != ExitUsage {
		t.Fatalf("upload with an unknown parameter: exit %d", r.code)
	}
	oneErrorLine(t, r, `no parameter "colour"`)
	if r := mustRun(t, append(g, "job", "list", "--json")...); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("refused uploads stored jobs: %s", r.stdout)
	}
	r = run(t, context.Background(), append(g, "upload", "--job", "triage", "--notify", "ftp://x", in)...)
	if r.code != ExitUsage {
		t.Fatalf("upload with a bad --notify: exit %d", r.code)
	}

	startServer(t, g)
	pid := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "prefix", "--param", "text=>>", in)...).stdout)
	tid := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "triage", "--notify", "http://127.0.0.1:1/hook", in)...).stdout)
	mustRun(t, append(g, "job", "wait", pid, "--timeout", "60s")...)
	if r := run(t, context.Background(), append(g, "job", "wait", tid, "--timeout", "60s")...); r.code != ExitFailure {
		t.Fatalf("triage with a bad line: wait exit %d, want 1 (failed)", r.code)
	}
	out := filepath.Join(dir, "out.txt")
	mustRun(t, append(g, "download", pid, out)...)
	if got, _ := os.ReadFile(out); string(got) != ">>1\n>>2\n>>\n>>x\n>>3\n>>4\n" {
		t.Errorf("prefix output %q", got)
	}
	for cat, want := range map[string]string{"even": "2\n4\n", "odd": "1\n3\n"} {
		mustRun(t, append(g, "download", "--category", cat, tid, out)...)
		if got, _ := os.ReadFile(out); string(got) != want {
			t.Errorf("category %s: %q, want %q", cat, got, want)
		}
	}
	r = run(t, context.Background(), append(g, "download", tid, out)...)
	if r.code != ExitUsage {
		t.Errorf("download of a job with categories without --category: exit %d", r.code)
	}
	oneErrorLine(t, r, "even, odd")

	var v jobView
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "show", tid, "--json")...).stdout), &v); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{"even": 2, "odd": 2}
	if !reflect.DeepEqual(v.Statistics, counts) || !reflect.DeepEqual(v.Categories, counts) || v.DroppedCount != 1 || v.FailedRecordCount != 1 || v.NotifyURL == "" {
		t.Errorf("show --json: statistics %v, categories %v, dropped %d, failed %d, notify %q", v.Statistics, v.Categories, v.DroppedCount, v.FailedRecordCount, v.NotifyURL)
	}
	human := mustRun(t, append(g, "job", "show", pid)...).stdout
	if !strings.Contains(human, "params:") || !strings.Contains(human, "text=>>") {
		t.Errorf("job show lacks the parameters:\n%s", human)
	}
	human = mustRun(t, append(g, "job", "show", tid)...).stdout
	for _, want := range []string{"statistics:", "even=2, odd=2", "categories:", "dropped_count:"} {
		if !strings.Contains(human, want) {
			t.Errorf("job show lacks %q:\n%s", want, human)
		}
	}
}
