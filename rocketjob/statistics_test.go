package rocketjob

import (
	"context"
	"reflect"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/scope"
)

// TestInc: counts add up per name in the job's scope; names that cannot be
// document keys are made safe; outside a job nothing happens.
func TestInc(t *testing.T) {
	Inc(context.Background(), "ignored", 1) // no scope: no panic, nothing
	ctx, sc := scope.New(context.Background())
	Inc(ctx, "rows", 2)
	Inc(ctx, "rows", 3)
	Inc(ctx, "a.b", 1)
	Inc(ctx, "$x", 1)
	Inc(ctx, "", 9)
	if want := map[string]int64{"rows": 5, "a_b": 1, "_x": 1}; !reflect.DeepEqual(sc.Counters(), want) {
		t.Fatalf("counters %v, want %v", sc.Counters(), want)
	}
}
