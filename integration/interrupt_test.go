package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Issue 13: SIGINT or SIGTERM during `rocketjob upload` removes what the
// upload stored (its slices; no job document is written), prints one line
// and exits 128 + the signal number. Both from a pipe that stops sending
// (the upload is waiting for data when the signal comes) and from a file
// (a batch of slices is being written).
func TestInterruptedUploadRemovesItsSlices(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var big bytes.Buffer
	for i := range 1_000_000 {
		fmt.Fprintf(&big, "record %07d of an upload that is interrupted half-way\n", i)
	}
	path := writeFile(t, c.dir, "big.txt", big.Bytes())

	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
		pipe bool
	}{
		{"SIGINT from a pipe", syscall.SIGINT, 130, true},
		{"SIGTERM from a pipe", syscall.SIGTERM, 143, true},
		{"SIGINT from a file", syscall.SIGINT, 130, false},
		{"SIGTERM from a file", syscall.SIGTERM, 143, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arg := path
			if tc.pipe {
				arg = "-"
			}
			cmd := exec.Command(rjBin, "--uri", c.uri, "upload", "--job", "copy", "--slice-size", "50", arg)
			cmd.Env = baseEnv()
			cmd.SysProcAttr = procAttr()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			var stdin io.WriteCloser
			if tc.pipe {
				var err error
				if stdin, err = cmd.StdinPipe(); err != nil {
					t.Fatal(err)
				}
				defer stdin.Close()
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if tc.pipe {
				// A third of the file, then nothing: the pipe stays open,
				// as with a producer that is slow or stuck.
				if _, err := stdin.Write(big.Bytes()[:big.Len()/3]); err != nil {
					t.Fatal(err)
				}
			}

			var coll string
			eventually(t, 60*time.Second, "the upload storing slices", func() (bool, string) {
				select {
				case err := <-done:
					t.Fatalf("the upload ended before the signal: %v; stdout %q, stderr %q", err, stdout.String(), stderr.String())
				default:
				}
				var n int64
				coll, n = inputSlices(t, c.uri)
				return n >= 10, fmt.Sprintf("collection %q holds %d slices", coll, n)
			})
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}

			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("the upload did not exit within 30s of %s; stderr %q", tc.sig, stderr.String())
			}
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit code %d after %s, want %d; stderr %q", got, tc.sig, tc.code, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (no job id)", stdout.String())
			}
			line := strings.TrimSuffix(stderr.String(), "\n")
			want := "rocketjob: upload interrupted by " + map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[tc.sig] + ": the partial upload was removed"
			if line != want {
				t.Errorf("stderr %q, want the one line %q", stderr.String(), want)
			}

			eventually(t, 30*time.Second, "no slices and no job left", func() (bool, string) {
				if colls := sliceCollections(t, c.uri); len(colls) > 0 {
					return false, fmt.Sprintf("slice collections %v", colls)
				}
				if n := c.jobCount(t); n != 0 {
					return false, fmt.Sprintf("%d jobs", n)
				}
				return true, ""
			})
		})
	}
}

// inputSlices returns the name of the first slices_<id>_input collection of
// the work database and how many slices it holds, counting up to 10 ("", 0
// when there is none).
func inputSlices(t *testing.T, uri string) (string, int64) {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	db := mc.Database(workDB(uri))
	names, err := db.ListCollectionNames(ctx(t), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "slices_") && strings.HasSuffix(n, "_input") {
			// Streaming a few documents is cheap on FerretDB; counting
			// them all is not.
			cur, err := db.Collection(n).Find(ctx(t), bson.D{}, options.Find().SetLimit(10).SetProjection(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				return n, 0
			}
			var docs []bson.M
			if err := cur.All(ctx(t), &docs); err != nil {
				return n, 0
			}
			return n, int64(len(docs))
		}
	}
	return "", 0
}
