package rocketjobtest_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestBatchTypesInlineAndRoundTrip: Records runs a type with output
// categories and statistics inline and gives what a server run gives:
// category outputs in input order, statistics, dropped records, failed
// records.
func TestBatchTypesInlineAndRoundTrip(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, examples.Register(reg))
	must(t, sliced.Register(reg, "twice", sliced.Type[struct{}]{
		Categories: []string{"a", "b"},
		Perform: func(ctx context.Context, _ struct{}, rec []byte) ([]rocketjob.Output, error) {
			return []rocketjob.Output{{Category: "a", Record: rec}, {Category: "b", Record: rec}, {Category: "b", Record: rec}}, nil
		},
		Options: &sliced.Options{SliceSize: 2},
	}))
	ctx := context.Background()
	client := rocketjobtest.Start(t, reg, nil)
	for _, tc := range []struct {
		typ  string
		in   []string
		cats map[string][]string
	}{
		{"triage", []string{"1", "2", "", "x", "4"}, map[string][]string{"even": {"2", "4"}, "odd": {"1"}}},
		{"twice", []string{"p", "q"}, map[string][]string{"a": {"p", "q"}, "b": {"p", "p", "q", "q"}}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			inline, err := rocketjobtest.Records(ctx, reg, tc.typ, tc.in)
			must(t, err)
			server, err := rocketjobtest.RoundTrip(ctx, client, tc.typ, strings.NewReader(strings.Join(tc.in, "\n")+"\n"), nil)
			must(t, err)
			for name, res := range map[string]*rocketjobtest.Result{"inline": inline, "server": server} {
				if !reflect.DeepEqual(res.Categories, tc.cats) || res.Output != nil {
					t.Errorf("%s: categories %q, output %q; want %q", name, res.Categories, res.Output, tc.cats)
				}
			}
			if !reflect.DeepEqual(inline.Statistics, server.Statistics) || inline.Dropped != server.Dropped ||
				!reflect.DeepEqual(failedText(inline.Failed), failedText(server.Failed)) || inline.Job.State != server.Job.State {
				t.Errorf("inline %v %d %q %s, server %v %d %q %s", inline.Statistics, inline.Dropped, failedText(inline.Failed), inline.Job.State,
					server.Statistics, server.Dropped, failedText(server.Failed), server.Job.State)
			}
		})
	}
	res, err := rocketjobtest.Records(ctx, reg, "triage", []string{"3", "", "8"})
	must(t, err)
	if want := map[string]int64{"even": 1, "odd": 1}; !reflect.DeepEqual(res.Statistics, want) || res.Dropped != 1 || !reflect.DeepEqual(res.Job.Categories, want) {
		t.Errorf("triage inline: statistics %v, dropped %d, categories %v", res.Statistics, res.Dropped, res.Job.Categories)
	}
}
