package rocketjobweb_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// run-now makes a scheduled job due; pause-all and resume-all change every
// job of a type that can take the change and say how many they changed.
func TestAPIRunNowPauseAllResumeAll(t *testing.T) {
	b := setup(t, options{auth: true})
	ctx := context.Background()
	later, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{}, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(24 * time.Hour)})
	must(t, err)
	_, err = b.client.Enqueue(ctx, "nap", examples.NapArgs{}, nil)
	must(t, err)

	r := b.do(t, req{method: "POST", path: "/api/jobs/" + later.ID.Hex() + "/run-now", token: testToken})
	if r.status != http.StatusOK {
		t.Fatalf("run-now: HTTP %d: %s", r.status, r.body)
	}
	j, err := b.client.Get(ctx, later.ID.Hex())
	must(t, err)
	if time.Until(j.RunAt) > time.Minute {
		t.Fatalf("run_at after run-now: %s, want now", j.RunAt)
	}

	for _, tc := range []struct {
		path   string
		status int
		want   float64
	}{
		{"/api/jobs/pause-all?type=nap", http.StatusOK, 2},
		{"/api/jobs/pause-all", http.StatusOK, 0}, // nothing left to pause
		{"/api/jobs/resume-all?type=nap", http.StatusOK, 2},
	} {
		r := b.do(t, req{method: "POST", path: tc.path, token: testToken})
		if r.status != tc.status || r.json(t)["changed"] != tc.want {
			t.Fatalf("%s: HTTP %d %s, want %d and changed %v", tc.path, r.status, r.body, tc.status, tc.want)
		}
	}
	if r := b.do(t, req{method: "POST", path: "/api/jobs/pause-all?type=nosuch", token: testToken}); r.status != http.StatusBadRequest {
		t.Fatalf("pause-all of an unknown type: HTTP %d, want 400", r.status)
	}
	if r := b.do(t, req{method: "POST", path: "/api/jobs/pause-all?type=nap", basic: [2]string{readUser, readPassword}}); r.status != http.StatusForbidden {
		t.Fatalf("pause-all by a read-only user: HTTP %d, want 403", r.status)
	}
}
