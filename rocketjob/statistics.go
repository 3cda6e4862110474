package rocketjob

import (
	"context"
	"strings"

	"github.com/rocketjob-go/rocketjob/internal/scope"
)

// Inc adds n to the job's statistic name (a named counter, like RocketJob's
// statistics_inc): from a sliced job's record function, one of its hooks, or
// a simple job's work function. The totals show in `rocketjob job show`
// ("statistics"), the REST API, the web UI and /metrics.
//
// A record function's increments are stored with its slice's output, so a
// slice that runs twice (after a crash) counts once; a hook's or a simple
// job's are stored when it returns (a run cut short by a crash counts
// nothing). Outside a job's code Inc does nothing.
//
// Names are stored as document keys: a '.' becomes '_', and so does a
// leading '$'; an empty name is ignored.
func Inc(ctx context.Context, name string, n int64) {
	if s := scope.From(ctx); s != nil && name != "" {
		s.Inc(StatisticName(name), n)
	}
}

// StatisticName is name as Inc stores it: '.' and a leading '$' become '_'.
func StatisticName(name string) string {
	name = strings.ReplaceAll(name, ".", "_")
	if strings.HasPrefix(name, "$") {
		name = "_" + name[1:]
	}
	return name
}
