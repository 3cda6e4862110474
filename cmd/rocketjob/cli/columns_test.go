package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// --require-columns and --allow-columns: a CSV file without the columns is
// refused with exit 2 and one line, and nothing is stored.
func TestUploadColumnChecks(t *testing.T) {
	g := db(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "partner.csv")
	if err := os.WriteFile(in, []byte(" ID ,Amount,colour\n1,2,red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upload := func(flags ...string) result {
		return run(t, context.Background(), append(append(append(g, "upload", "--job", "copy", "--format", "csv"), flags...), in)...)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--require-columns", "id,amount,currency"}, `partner.csv: line 1: missing required column "currency" (nothing was uploaded)`},
		{[]string{"--require-columns", "id", "--allow-columns", "amount"}, `partner.csv: line 1: unknown column "colour" (nothing was uploaded)`},
	} {
		r := upload(tc.flags...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want exit %d and no job id", tc.flags, r.code, r.stdout, ExitUsage)
		}
		oneErrorLine(t, r, tc.want)
	}
	// Flags that cannot work are usage errors before the file is read.
	for _, flags := range [][]string{
		{"--require-columns", "id,,amount"},
		{"--allow-columns", " "},
	} {
		if r := upload(flags...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", flags, r.code, ExitUsage)
		} else {
			oneErrorLine(t, r, "empty column name")
		}
	}
	r := run(t, context.Background(), append(g, "upload", "--job", "copy", "--require-columns", "id", in)...)
	if r.code != ExitUsage {
		t.Errorf("--require-columns on lines input: exit %d", r.code)
	}
	oneErrorLine(t, r, "add --format csv")

	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: g[1], DB: g[3], WorkDB: g[5], Registry: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	jobs, err := client.List(context.Background(), nil)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("refused uploads left %d jobs (%v)", len(jobs), err)
	}
	names, err := clientstore.Of(client).WorkCollections(context.Background())
	if err != nil || len(names) != 0 {
		t.Fatalf("refused uploads left collections %v (%v)", names, err)
	}

	// A file with the columns (names trimmed, case-insensitive) is uploaded.
	id := strings.TrimSpace(upload("--require-columns", "id,AMOUNT", "--allow-columns", "colour").stdout)
	job, err := client.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("accepted upload %q: %v", id, err)
	}
	if job.RecordCount != 1 || strings.Join(job.Header, ",") != " ID ,Amount,colour" {
		t.Errorf("job has %d records, header %q", job.RecordCount, job.Header)
	}
}

func TestUploadHelpShowsColumnFlags(t *testing.T) {
	r := run(t, context.Background(), "upload", "--help")
	for _, want := range []string{"--require-columns NAMES", "--allow-columns NAMES"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("upload --help lacks %q:\n%s", want, r.stdout)
		}
	}
}
