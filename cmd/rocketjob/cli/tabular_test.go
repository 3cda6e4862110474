package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The convert job: CSV to JSONL (one object per row keyed by the header),
// to XLSX and back by the download's file name, fixed width to PSV, and a
// mixed-line-endings copy that comes back byte for byte; bad tabular flags
// are usage errors (exit 2) with nothing stored.
func TestConvertCLI(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upDown := func(out string, flags ...string) string {
		t.Helper()
		id := strings.TrimSpace(mustRun(t, append(append(g, "upload"), flags...)...).stdout)
		mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
		dest := filepath.Join(dir, out)
		mustRun(t, append(g, "download", id, dest)...)
		b, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	csvIn := write("in.csv", "id,name\r\n1,\"Smith, J\"\r\n2,Zoë\r\n")
	if got, want := upDown("out.jsonl", "--job", "convert", "--output-format", "jsonl", csvIn),
		"{\"id\":\"1\",\"name\":\"Smith, J\"}\r\n{\"id\":\"2\",\"name\":\"Zoë\"}\r\n"; got != want {
		t.Errorf("csv -> jsonl: %q, want %q", got, want)
	}
	xlsx := upDown("out.xlsx", "--job", "convert", "--output-format", "xlsx", csvIn)
	if !strings.HasPrefix(xlsx, "PK\x03\x04") {
		t.Fatalf("xlsx output starts %q", xlsx[:min(len(xlsx), 8)])
	}
	xlsxIn := write("back.xlsx", xlsx)
	if got, want := upDown("back.csv", "--job", "convert", xlsxIn), "id,name\n1,\"Smith, J\"\n2,Zoë\n"; got != want {
		t.Errorf("xlsx -> csv by name: %q, want %q", got, want)
	}
	fixed := write("legacy.txt", "0001Alice     \n0002Zoë       \n")
	if got, want := upDown("out.psv", "--job", "convert", "--format", "fixed", "--columns", "id,name", "--widths", "4,10", fixed),
		"id|name\n0001|Alice\n0002|Zoë\n"; got != want {
		t.Errorf("fixed -> psv: %q, want %q", got, want)
	}
	mixed := "a\r\nb\nc\r\nd\n"
	if got := upDown("mixed.txt", "--job", "copy", write("mixed.txt", mixed)); got != mixed {
		t.Errorf("mixed line endings: %q, want %q", got, mixed)
	}
	if got := upDown("pipe.csv", "--job", "convert", "--lenient-quotes", write("pipe.csv", "item,size\npipe,12\" pipe\n")); got != "item,size\npipe,\"12\"\" pipe\"\n" {
		t.Errorf("lenient: %q", got)
	}

	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--job", "convert", "--output-format", "yaml", csvIn}, "--output-format: unknown format"},
		{[]string{"--job", "convert", "--format", "fixed", "--columns", "a,b", "--widths", "4", fixed}, "2 names"},
		{[]string{"--job", "convert", "--format", "fixed", fixed}, "needs a layout"},
		{[]string{"--job", "copy", "--output-format", "csv", csvIn}, "only tabular input"},
		{[]string{"--job", "convert", write("bad.csv", "item,size\npipe,12\" pipe\n")}, `line 2: bare " in non-quoted-field (column 8) (nothing was uploaded)`},
		{[]string{"--job", "convert", "--sheet", "Nope", xlsxIn}, `no sheet "Nope"`},
	} {
		r := run(t, context.Background(), append(append(g, "upload"), tc.flags...)...)
		if r.code == 0 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", tc.flags, r.code, r.stdout)
		}
		oneErrorLine(t, r, tc.want)
	}
}
