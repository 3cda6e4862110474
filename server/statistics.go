package server

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/scope"
)

// withCounters appends to set the field (statistics or hook_statistics)
// holding base plus a run's counters, when the run counted anything: the
// counters are stored with the transition that ends the run, so a run cut
// short stores none.
func withCounters(set bson.D, field string, base, run map[string]int64) bson.D {
	if len(run) == 0 {
		return set
	}
	return append(set, bson.E{Key: field, Value: scope.Add(base, run)})
}
