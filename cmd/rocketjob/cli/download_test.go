package cli

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/sliced"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]fs.FileMode{"600": 0o600, "0640": 0o640, "0o644": 0o644, "777": 0o777, "1": 0o001} {
		if got, err := parseMode(in); err != nil || got != want {
			t.Errorf("parseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "999", "1777", "rw-------", "-600", "0x1ff", "644 "} {
		_, err := parseMode(in)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseMode(%q): %v, want a usage error", in, err)
		}
	}
}

func TestIncompleteDownloadMessage(t *testing.T) {
	ie := &sliced.IncompleteError{JobID: "65a1b2c3d4e5f60718293a4b", Kind: sliced.FailedKind, Want: 20000, Got: 1234}
	err := error(&incompleteDownload{ie: ie, workDB: "rocketjob_wrk"})
	want := `job 65a1b2c3d4e5f60718293a4b: only 1,234 of its 20,000 failed records are in work database "rocketjob_wrk": check --work-db`
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, sliced.ErrIncomplete) || exitCode(err) != ExitFailure {
		t.Errorf("errors.Is ErrIncomplete %v, exit code %d", errors.Is(err, sliced.ErrIncomplete), exitCode(err))
	}
}

// A work database that lost finished slices is named as the culprit, not
// --work-db.
func TestIncompleteDownloadMessageLostSlices(t *testing.T) {
	ie := &sliced.IncompleteError{JobID: "65a1b2c3d4e5f60718293a4b", Kind: sliced.OutputKind, Want: 20000, Got: 19000, Slice: 3, Slices: 1}
	err := error(&incompleteDownload{ie: ie, workDB: "rocketjob_work"})
	want := `job 65a1b2c3d4e5f60718293a4b: only 19,000 of its 20,000 output records are in work database "rocketjob_work": it lost the output of finished slice 3`
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	ie.Want, ie.Slices = 0, 2
	want = `job 65a1b2c3d4e5f60718293a4b: work database "rocketjob_work" lost the output of 2 finished slices (the first: slice 3); 19,000 output records found`
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, sliced.ErrIncomplete) || exitCode(err) != ExitFailure {
		t.Errorf("errors.Is ErrIncomplete %v, exit code %d", errors.Is(err, sliced.ErrIncomplete), exitCode(err))
	}
}
