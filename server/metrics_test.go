package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketjob-go/rocketjob/sliced"
)

func TestSliceLatencyHistogram(t *testing.T) {
	b := setup(t)
	srv := b.startServer(t, "s1", 2)
	job, err := sliced.Upload(context.Background(), b.client, "copy", strings.NewReader(strings.Repeat("x\n", 250)), &sliced.UploadOptions{SliceSize: 50})
	must(t, err)
	b.wait(t, job.ID.Hex())
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Collectors()...)
	families, err := reg.Gather()
	must(t, err)
	var count uint64
	for _, f := range families {
		if f.GetName() != "rocketjob_slice_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			count += m.GetHistogram().GetSampleCount()
		}
	}
	if count != 5 {
		t.Fatalf("slice latency histogram counted %d slices, want 5", count)
	}
}
