package examples

import (
	"context"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Convert is the record function of the convert job: each row unchanged.
// The conversion is the upload's: the input format (csv unless the file
// name says psv, tsv or xlsx, or --format says fixed, ...) is read and the
// download writes --output-format (csv, psv, tsv, jsonl or xlsx), the
// header kept:
//
//	rocketjob upload --job convert --output-format jsonl in.csv
func Convert(_ context.Context, _, row []string) ([]string, error) { return row, nil }

// registerConvert adds the convert job type.
func registerConvert(r *rocketjob.Registry) error {
	return sliced.RegisterCSV(r, "convert", Convert, &sliced.Options{SliceSize: 500})
}
