package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// maxArgsLine is the longest line `job enqueue --from-file` reads.
const maxArgsLine = 16 << 20

// argsFile is the arguments of a bulk enqueue, read from a JSON-lines file:
// one job per non-blank line.
type argsFile struct {
	name  string // the file as given ("stdin" for -), for messages
	args  []any  // a bson.Raw per job
	lines []int  // the line number of each
}

// readArgsFile reads path ("-": stdin) whole: every non-blank line must be
// a JSON object (the job's arguments, MongoDB extended JSON accepted). A
// line that is not is a usage error naming it.
func readArgsFile(stdin io.Reader, path string) (*argsFile, error) {
	f := &argsFile{name: path}
	in := stdin
	if path == "-" {
		f.name = "stdin"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		in = file
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxArgsLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			return nil, usagef("%s line %d: not a JSON object of job arguments", f.name, n)
		}
		var doc bson.D
		if err := bson.UnmarshalExtJSON(line, false, &doc); err != nil {
			return nil, usagef("%s line %d: %v", f.name, n, err)
		}
		raw, err := bson.Marshal(doc)
		if err != nil {
			return nil, usagef("%s line %d: %v", f.name, n, err)
		}
		f.args = append(f.args, bson.Raw(raw))
		f.lines = append(f.lines, n)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, usagef("%s line %d: longer than %d MB", f.name, len(f.lines)+1, maxArgsLine>>20)
		}
		return nil, fmt.Errorf("reading %s: %w", f.name, err)
	}
	if len(f.args) == 0 {
		return nil, usagef("%s has no job arguments (one JSON object a line)", f.name)
	}
	return f, nil
}

// enqueue enqueues one job per line with EnqueueMany and prints the ids,
// one a line or (--json) as a JSON array. Arguments that do not fit the
// job type are a usage error naming the line; then nothing is enqueued.
func (f *argsFile) enqueue(c *cli.Context, client *rocketjob.Client, typ string, opts *rocketjob.EnqueueOptions) error {
	jobs, err := client.EnqueueMany(c.Context, typ, f.args, opts)
	var ae *rocketjob.ArgsError
	if errors.As(err, &ae) {
		return usagef("%s line %d: %v", f.name, f.lines[ae.Index], ae.Err)
	}
	// A database failure part way leaves the jobs of the batches written
	// before it: print their ids too, so none is lost from sight.
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID.Hex()
	}
	var werr error
	if c.Bool("json") {
		werr = writeJSON(out(c), ids)
	} else {
		w := bufio.NewWriter(out(c))
		for _, id := range ids {
			fmt.Fprintln(w, id)
		}
		werr = w.Flush()
	}
	return errors.Join(err, werr)
}
