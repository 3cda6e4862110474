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
	// An upload's own checks: require_columns and allow_columns.
	for _, tc := range []struct {
		fields [][2]string
		status int
		code   string
		want   string
	}{
		{[][2]string{{"type", "csv_upcase"}, {"require_columns", "ID,currency"}}, 400, "bad_input", `missing required column \"currency\"`},
		{[][2]string{{"type", "csv_upcase"}, {"allow_columns", "id"}}, 400, "bad_input", `unknown column \"amount\"`},
		{[][2]string{{"type", "csv_upcase"}, {"require_columns", "id,,x"}}, 400, "bad_parameter", "empty column name"},
		{[][2]string{{"type", "copy"}, {"require_columns", "id"}}, 400, "bad_parameter", "column checks need csv input"},
		// The type's checks cannot be skipped by reading the file as lines.
		{[][2]string{{"type", "csv_checked"}, {"format", "lines"}}, 400, "bad_parameter", "column checks need csv input"},
	} {
		body, ct := multipartBody(t, tc.fields, "in.csv", []byte("id,amount\n1,2\n"))
		r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
		if r.status != tc.status || r.errCode(t) != tc.code || !strings.Contains(string(r.body), tc.want) {
			t.Fatalf("%v: %d %s", tc.fields, r.status, r.body)
		}
	}
	r = b.do(t, req{method: "POST", path: "/api/jobs", token: testToken, ctype: "application/json",
		body: strings.NewReader(`{"type":"csv_upcase","require_columns":"name","records":[["id"],["1"]]}`)})
	if r.status != http.StatusBadRequest || r.errCode(t) != "bad_input" || !strings.Contains(string(r.body), `missing required column \"name\"`) {
		t.Fatalf("JSON require_columns: %d %s", r.status, r.body)
	}
	if n := countJobs(t, b); n != before {
		t.Fatalf("refused uploads left %d jobs", n-before)
	}
	if id := b.upload(t, [][2]string{{"type", "csv_checked"}}, "in.csv", []byte("ID,Amount\n1,2\n")); id == "" {
		t.Fatal("no job id")
	}
	if id := b.upload(t, [][2]string{{"type", "csv_upcase"}, {"require_columns", " Name "}, {"allow_columns", "id"}}, "in.csv", []byte("id,NAME\n1,2\n")); id == "" {
		t.Fatal("no job id")
	}
}
