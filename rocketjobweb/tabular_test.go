package rocketjobweb_test

import (
	"net/http"
	"strings"
	"testing"
)

// REST uploads take the tabular options of the command line: a PSV file by
// its name converted to JSONL, a headerless fixed-width file with its
// layout, lenient quotes; bad values are 400 bad_parameter.
func TestUploadTabularOptions(t *testing.T) {
	b := setup(t, options{auth: true, server: true})
	download := func(id string) (string, string) {
		t.Helper()
		if job := b.waitJob(t, id); job.State != "completed" {
			t.Fatalf("job %s %s: %+v", id, job.State, job.Failure)
		}
		r := b.do(t, req{method: "GET", path: "/api/jobs/" + id + "/output", token: testToken})
		if r.status != http.StatusOK {
			t.Fatalf("output: %d %s", r.status, r.body)
		}
		return string(r.body), r.header.Get("Content-Disposition")
	}
	id := b.upload(t, [][2]string{{"type", "csv_upcase"}, {"output_format", "jsonl"}}, "in.psv", []byte("id|name\n1|zoë\n"))
	if got, disp := download(id); got != "{\"id\":\"1\",\"name\":\"ZOË\"}\n" || !strings.Contains(disp, ".jsonl") {
		t.Errorf("psv -> jsonl: %q (%s)", got, disp)
	}
	id = b.upload(t, [][2]string{{"type", "csv_upcase"}, {"format", "fixed"}, {"columns", "id,name"}, {"widths", "2,4"}, {"output_format", "tsv"}},
		"legacy.txt", []byte("1 ab  \n22cd  \n"))
	if got, _ := download(id); got != "id\tname\n1\tAB\n22\tCD\n" {
		t.Errorf("fixed -> tsv: %q", got)
	}
	id = b.upload(t, [][2]string{{"type", "csv_upcase"}, {"lenient_quotes", "on"}}, "in.csv", []byte("item\n12\" pipe\n"))
	if got, _ := download(id); got != "item\n\"12\"\" PIPE\"\n" {
		t.Errorf("lenient: %q", got)
	}
	for _, tc := range []struct {
		fields [][2]string
		want   string
	}{
		{[][2]string{{"type", "csv_upcase"}, {"output_format", "yaml"}}, "output_format: unknown format"},
		{[][2]string{{"type", "csv_upcase"}, {"widths", "4,x"}}, "widths"},
		{[][2]string{{"type", "copy"}, {"output_format", "csv"}}, "only tabular input"},
		{[][2]string{{"type", "csv_upcase"}, {"format", "fixed"}}, "needs a layout"},
	} {
		body, ct := multipartBody(t, tc.fields, "in.csv", []byte("id\n1\n"))
		r := b.do(t, req{method: "POST", path: "/api/jobs", body: body, ctype: ct, token: testToken})
		if r.status != http.StatusBadRequest || r.errCode(t) != "bad_parameter" || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%v: %d %s", tc.fields, r.status, r.body)
		}
	}
}
