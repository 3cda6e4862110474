package riverbench

import (
	"context"
	"testing"
)

func TestRunNeedsInputAndRecord(t *testing.T) {
	if _, err := Run(context.Background(), Config{DSN: "postgres://127.0.0.1:1/x"}); err == nil {
		t.Fatal("Run without Input and Record succeeded")
	}
}

func TestRunSimpleNeedsJobs(t *testing.T) {
	if _, err := RunSimple(context.Background(), SimpleConfig{DSN: "postgres://127.0.0.1:1/x"}); err == nil {
		t.Fatal("RunSimple without jobs succeeded")
	}
}
