package examples

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Triage routes a line holding an integer to the output category "even" or
// "odd" and increments the statistic of the same name; an empty line gives
// no output (it is dropped); anything else is a failed record.
func Triage(ctx context.Context, _ struct{}, rec []byte) ([]rocketjob.Output, error) {
	if err := logRun(ctx, "triage", string(rec)); err != nil {
		return nil, err
	}
	if len(rec) == 0 {
		return nil, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(rec)), 10, 64)
	if err != nil {
		return nil, errors.New("not an integer: " + strconv.Quote(string(rec)))
	}
	cat := "odd"
	if n%2 == 0 {
		cat = "even"
	}
	rocketjob.Inc(ctx, cat, 1)
	return sliced.To(cat, rec), nil
}

// PrefixParams are the parameters of the prefix job.
type PrefixParams struct {
	// Text is put in front of every line.
	Text string `bson:"text"`
}

// Validate requires Text.
func (p PrefixParams) Validate() error {
	if p.Text == "" {
		return errors.New("parameter text is required (--param text=...)")
	}
	return nil
}

// Prefix outputs params.Text followed by the line.
func Prefix(ctx context.Context, p PrefixParams, rec []byte) ([]rocketjob.Output, error) {
	if err := logRun(ctx, "prefix", string(rec)); err != nil {
		return nil, err
	}
	return sliced.To("", append([]byte(p.Text), rec...)), nil
}

// registerBatch registers the batch examples triage and prefix.
func registerBatch(r *rocketjob.Registry) error {
	return errors.Join(
		sliced.Register(r, "triage", sliced.Type[struct{}]{Categories: []string{"even", "odd"}, Perform: Triage}),
		sliced.Register(r, "prefix", sliced.Type[PrefixParams]{Perform: Prefix}),
	)
}
