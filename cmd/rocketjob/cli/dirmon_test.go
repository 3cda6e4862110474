package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestDirmonCommands: dirmon add, list, enable, disable, files and remove,
// with usage errors (exit 2) for entries that cannot work, and a server
// started with --dirmon turning a dropped file into a job whose output
// downloads.
func TestDirmonCommands(t *testing.T) {
	g := db(t)
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(root, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	add := func(extra ...string) result {
		return run(t, context.Background(), append(append(append([]string{}, g...), "dirmon", "add"), extra...)...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bad/name", "--folder", in, "--job", "reverse"}, "name"},
		{[]string{"x", "--folder", in, "--job", "reverse", "--pattern", "../*"}, "without any '/'"},
		{[]string{"x", "--folder", in, "--job", "nap"}, "simple job"},
		{[]string{"x", "--folder", in, "--job", "nope"}, "nope"},
		{[]string{"x", "--folder", in, "--job", "reverse", "--window", "25:00,1h"}, "window"},
		{[]string{"x", "--job", "reverse"}, "missing --folder"},
		{[]string{"x", "--folder", in, "--job", "prefix"}, "parameter text is required"},
		{[]string{"x", "--folder", in, "--job", "prefix", "--param", "nope=1"}, "nope"},
	} {
		r := add(tc.args...)
		if r.code != ExitUsage {
			t.Errorf("dirmon add %v: exit %d, want 2; stderr %q", tc.args, r.code, r.stderr)
		}
		oneErrorLine(t, r, tc.want)
	}
	if r := add("drop", "--folder", in, "--pattern", "*.txt", "--job", "reverse", "--priority", "9", "--disabled"); r.code != 0 {
		t.Fatalf("dirmon add: exit %d, %s", r.code, r.stderr)
	}
	if r := add("drop", "--folder", in, "--job", "reverse"); r.code != ExitFailure {
		t.Errorf("adding a name twice: exit %d, want 1", r.code)
	} else {
		oneErrorLine(t, r, "already exists")
	}
	list := func() []sliced.DirmonEntry {
		var out []sliced.DirmonEntry
		if err := json.Unmarshal([]byte(mustRun(t, append(g, "dirmon", "list", "--json")...).stdout), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if l := list(); len(l) != 1 || l[0].Name != "drop" || l[0].Enabled || l[0].Options.Priority != 9 ||
		l[0].Archive != filepath.Join(in, "archive") || l[0].Pattern != "*.txt" {
		t.Fatalf("dirmon list: %+v", l)
	}
	if r := mustRun(t, append(g, "dirmon", "list")...); !strings.Contains(r.stdout, "drop") || !strings.Contains(r.stdout, "disabled") {
		t.Errorf("dirmon list table:\n%s", r.stdout)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- run(t, ctx, append(g, "server", "--name", "dirmon-test", "--workers", "1", "--poll", "50ms", "--heartbeat", "200ms",
			"--dirmon", root, "--dirmon-interval", "100ms")...)
	}()
	t.Cleanup(func() {
		cancel()
		if r := <-done; r.code != 0 {
			t.Errorf("server: exit %d, %s", r.code, r.stderr)
		}
	})
	if err := os.WriteFile(filepath.Join(in, "a.txt"), []byte("abc\nxyz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, append(g, "dirmon", "enable", "drop")...)
	pre := filepath.Join(root, "pre")
	if err := os.Mkdir(pre, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := add("pre", "--folder", pre, "--job", "prefix", "--param", "text=>> "); r.code != 0 {
		t.Fatalf("dirmon add with a parameter: exit %d, %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(pre, "p.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []sliced.DirmonFile
	deadline := time.Now().Add(60 * time.Second)
	for {
		files = nil
		if err := json.Unmarshal([]byte(mustRun(t, append(g, "dirmon", "files", "drop", "--json")...).stdout), &files); err != nil {
			t.Fatal(err)
		}
		if len(files) == 1 && files[0].State == "archived" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file was not archived: %+v", files)
		}
		time.Sleep(50 * time.Millisecond)
	}
	id := files[0].JobID
	mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
	if r := mustRun(t, append(g, "download", id, "-")...); r.stdout != "cba\nzyx\n" {
		t.Errorf("download: %q", r.stdout)
	}
	var preFiles []sliced.DirmonFile
	for deadline := time.Now().Add(60 * time.Second); len(preFiles) == 0 || preFiles[0].State != "archived"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the parameter entry's file was not archived: %+v", preFiles)
		}
		preFiles = nil
		if err := json.Unmarshal([]byte(mustRun(t, append(g, "dirmon", "files", "pre", "--json")...).stdout), &preFiles); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, append(g, "job", "wait", preFiles[0].JobID, "--timeout", "60s")...)
	if r := mustRun(t, append(g, "download", preFiles[0].JobID, "-")...); r.stdout != ">> x\n" {
		t.Errorf("download of the parameter entry's job: %q", r.stdout)
	}
	mustRun(t, append(g, "dirmon", "remove", "pre")...)
	if r := mustRun(t, append(g, "dirmon", "files")...); !strings.Contains(r.stdout, "a.txt") || !strings.Contains(r.stdout, id) {
		t.Errorf("dirmon files table:\n%s", r.stdout)
	}
	if l := list(); l[0].Status == nil || l[0].Status.Server != "dirmon-test" {
		t.Errorf("status after a scan: %+v", l[0].Status)
	}
	mustRun(t, append(g, "dirmon", "disable", "drop")...)
	if l := list(); l[0].Enabled {
		t.Error("disable left the entry enabled")
	}
	mustRun(t, append(g, "dirmon", "remove", "drop")...)
	if l := list(); len(l) != 0 {
		t.Errorf("after remove: %+v", l)
	}
	if r := run(t, context.Background(), append(g, "dirmon", "remove", "drop")...); r.code != ExitFailure {
		t.Errorf("removing a missing entry: exit %d, want 1", r.code)
	}
}
