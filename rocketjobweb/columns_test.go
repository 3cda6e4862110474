package rocketjobweb_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// A CSV file that fails its type's column checks is a 400 bad_input naming
// the columns, and leaves no job.
func TestUploadColumnChecks(t *testing.T) {
	b := setup(t, options{auth: true})
	must(t, sliced.RegisterCSV(b.reg, "csv_checked", func(_ context.Context, _, row []string) ([]string, error) { return row, nil },
		&sliced.Options{Columns: &sliced.Columns{Required: []string{"id"}, Allowed: []string{"amount"}}}))
	before := countJobs(t, b)
	body, ct := multipartBody(t, [][2]string{{"type", "csv_checked"}}, "in.csv", []byte("name,amount\nx,1\n"))
	r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
	if r.status != http.StatusBadRequest || r.errCode(t) != "bad_input" || !strings.Contains(string(r.body), `missing required column \"id\"; unknown column \"name\"`) {
		t.Fatalf("file: %d %s", r.status, r.body)
	}
	r = b.do(t, req{method: "POST", path: "/api/jobs", body: strings.NewReader(`{"type":"csv_checked","records":[["amount"],["1"]]}`), ctype: "application/json", token: testToken})
	if r.status != http.StatusBadRequest || r.errCode(t) != "bad_input" || !strings.Contains(string(r.body), `missing required column`) {
		t.Fatalf("JSON records: %d %s", r.status, r.body)
	}
	if n := countJobs(t, b); n != before {
		t.Fatalf("refused uploads left %d jobs", n-before)
	}
	if id := b.upload(t, [][2]string{{"type", "csv_checked"}}, "in.csv", []byte("ID,Amount\n1,2\n")); id == "" {
		t.Fatal("no job id")
	}
}
