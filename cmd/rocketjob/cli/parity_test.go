package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJobShowEveryOption (issue 18): job show, as text and JSON, shows
// every option a job was given: window, max workers, expiry, stop on
// error, slice size, format; and for a simple job its cron and retries.
func TestJobShowEveryOption(t *testing.T) {
	g := db(t)
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "reverse", "--max-workers", "2", "--window", "22:00,2h,Europe/London",
		"--expires-at", "1h", "--slice-size", "7", "--stop-on-error", in)...).stdout)
	var v map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "show", id, "--json")...).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v["window"] != "22:00,2h0m0s,Europe/London" || v["max_workers"] != float64(2) || v["slice_size"] != float64(7) ||
		v["format"] != "lines" || v["expires_at"] == nil || v["stop_on_error"] != true {
		t.Errorf("job show --json: %v", v)
	}
	text := mustRun(t, append(g, "job", "show", id)...).stdout
	for _, want := range []string{"window:", "22:00,2h0m0s,Europe/London", "max_workers=2", "slice_size=7", "expires_at:"} {
		if !strings.Contains(text, want) {
			t.Errorf("job show lacks %q:\n%s", want, text)
		}
	}
	nap := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--cron", "0 5 * * *", "--retry-limit", "3")...).stdout)
	text = mustRun(t, append(g, "job", "show", nap)...).stdout
	if !strings.Contains(text, "cron:") || !strings.Contains(text, "retry limit 3") {
		t.Errorf("job show of a cron job:\n%s", text)
	}
}
