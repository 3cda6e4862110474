package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// encBundle is a pair of databases with clients and servers that may hold
// different keyrings.
type encBundle struct {
	jobs, work string
	reg        *rocketjob.Registry
}

func newEncBundle(t *testing.T) *encBundle {
	t.Helper()
	b := &encBundle{reg: rocketjob.NewRegistry()}
	must(t, examples.Register(b.reg))
	must(t, sliced.RegisterCSV(b.reg, "csv_upper", func(ctx context.Context, header, row []string) ([]string, error) {
		if len(header) != 2 {
			return nil, fmt.Errorf("header %q", header)
		}
		return []string{row[0], strings.ToUpper(row[1])}, nil
	}, &sliced.Options{Encrypt: true, Compress: true, SliceSize: 10}))
	b.jobs, b.work = dbtest.DBNames(t)
	return b
}

func keys(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		k, err := encryption.GenerateKey()
		must(t, err)
		out = append(out, k)
	}
	return out
}

func (b *encBundle) client(t *testing.T, keyring string) *rocketjob.Client {
	t.Helper()
	cfg := rocketjob.Config{URI: dbtest.URI(), DB: b.jobs, WorkDB: b.work, Registry: b.reg}
	if keyring != "" {
		kr, err := encryption.ParseKeyring(keyring)
		must(t, err)
		cfg.Keyring = kr
	}
	c, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func (b *encBundle) server(t *testing.T, name, keyring string) {
	t.Helper()
	srv, err := server.New(b.client(t, keyring), &server.Config{Name: name, Workers: 2, PollInterval: 20 * time.Millisecond,
		ReCheck: 100 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); must(t, <-done) })
}

func wait(t *testing.T, c *rocketjob.Client, job *rocketjob.Job) *rocketjob.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := c.Wait(ctx, job.ID.Hex(), 20*time.Millisecond)
	must(t, err)
	return got
}

// scanData reports whether any file of the embedded database holds marker.
func scanData(t *testing.T, marker string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dbtest.Dir(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(marker)) {
			t.Logf("%s found in %s", marker, filepath.Base(path))
			found = true
		}
		return nil
	})
	must(t, err)
	return found
}

func csvWithMarker(marker string, rows int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "id,%s_header\n", marker)
	for i := range rows {
		fmt.Fprintf(&sb, "%d,card %s %04d\n", i, marker, i)
	}
	return sb.String()
}

func TestEncryptedJobLeavesNoPlaintextAtRest(t *testing.T) {
	b := newEncBundle(t)
	k := keys(t, 1)[0]
	c := b.client(t, k)
	b.server(t, "s1", k)
	ctx := context.Background()

	for _, encrypt := range []bool{true, false} {
		marker := fmt.Sprintf("PANMARKER%d%t", time.Now().UnixNano(), encrypt)
		enc := encrypt
		job, err := sliced.Upload(ctx, c, "csv_upper", strings.NewReader(csvWithMarker(marker, 300)),
			&sliced.UploadOptions{Encrypt: &enc, Compress: &enc})
		must(t, err)
		got := wait(t, c, job)
		if got.State != rocketjob.StateCompleted {
			t.Fatalf("encrypt=%v: job %s %+v", encrypt, got.State, got.Failure)
		}
		var out bytes.Buffer
		_, err = sliced.Download(ctx, c, job.ID.Hex(), &out)
		must(t, err)
		if !strings.HasPrefix(out.String(), "id,"+marker+"_header\n0,CARD "+strings.ToUpper(marker)+" 0000\n") {
			t.Fatalf("encrypt=%v: output starts %q", encrypt, out.String()[:60])
		}
		// Output is kept; input was dropped at completion. Checkpoint-free
		// SQLite keeps recent pages in the WAL file, which the scan reads too.
		if found := scanData(t, marker); found == encrypt {
			t.Fatalf("encrypt=%v: marker found at rest = %v", encrypt, found)
		}
		if encrypt && (got.RawBytes <= got.StoredBytes || got.KeyID == "") {
			t.Fatalf("raw %d stored %d key %q: compression or key id missing", got.RawBytes, got.StoredBytes, got.KeyID)
		}
	}
}

func TestTamperedSlicesFailWithTheirReason(t *testing.T) {
	b := newEncBundle(t)
	k := keys(t, 1)[0]
	c := b.client(t, k)
	ctx := context.Background()
	yes := true
	upload := func() *rocketjob.Job {
		job, err := sliced.Upload(ctx, c, "copy", strings.NewReader(strings.Repeat("secret line\n", 50)),
			&sliced.UploadOptions{SliceSize: 10, Encrypt: &yes})
		must(t, err)
		return job
	}
	job, other := upload(), upload()
	input := func(j *rocketjob.Job) string { return "slices_" + j.ID.Hex() + "_input" }
	work := dbtest.Client(t).Database(b.work)
	records := func(coll, id string) []byte {
		var d struct {
			Records []byte `bson:"records"`
		}
		must(t, work.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d))
		return d.Records
	}
	set := func(id string, rec []byte) {
		_, err := work.Collection(input(job)).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "records", Value: bson.Binary{Data: rec}}}}})
		must(t, err)
	}
	flipped := records(input(job), "000000002")
	flipped[len(flipped)-5] ^= 1
	set("000000002", flipped)
	s3, s4 := records(input(job), "000000003"), records(input(job), "000000004")
	set("000000003", s4)
	set("000000004", s3)
	set("000000005", records(input(other), "000000005"))

	b.server(t, "s1", k)
	got := wait(t, c, job)
	if got.State != rocketjob.StateFailed || got.FailedRecordCount != 40 {
		t.Fatalf("job %s with %d failed records (want failed, 40)", got.State, got.FailedRecordCount)
	}
	var failed, out bytes.Buffer
	_, err := sliced.DownloadFailed(ctx, c, job.ID.Hex(), &failed)
	must(t, err)
	for _, slice := range []string{"slice 2 ", "slice 3 ", "slice 4 ", "slice 5 "} {
		if !strings.Contains(failed.String(), slice+"of job "+job.ID.Hex()) || !strings.Contains(failed.String(), "authentication failed") {
			t.Fatalf("failed records do not name %q:\n%s", slice, failed.String())
		}
	}
	_, err = sliced.Download(ctx, c, job.ID.Hex(), &out)
	must(t, err)
	if out.String() != strings.Repeat("secret line\n", 10) {
		t.Fatalf("output of the intact slice: %q", out.String())
	}
}

func TestServerWithoutTheKeyLeavesTheJob(t *testing.T) {
	b := newEncBundle(t)
	ks := keys(t, 2)
	c := b.client(t, ks[0])
	yes := true
	job, err := sliced.Upload(context.Background(), c, "copy", strings.NewReader("a\nb\n"), &sliced.UploadOptions{Encrypt: &yes})
	must(t, err)
	b.server(t, "keyless", ks[1])
	deadline := time.Now().Add(20 * time.Second)
	for {
		servers, err := c.Servers(context.Background())
		must(t, err)
		if len(servers) == 1 && len(servers[0].WaitingForKey) == 1 && servers[0].WaitingForKey[0] == job.ID.Hex() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never reported the job it cannot decrypt: %+v", servers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := c.Progress(context.Background(), job)
	must(t, err)
	if p.Slices.Done != 0 || p.Slices.Running != 0 {
		t.Fatalf("keyless server processed slices: %+v", p.Slices)
	}
	b.server(t, "keyed", ks[0])
	if got := wait(t, c, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", got.State)
	}
}

func TestKeyRotation(t *testing.T) {
	b := newEncBundle(t)
	ks := keys(t, 2)
	old := b.client(t, ks[0])
	b.server(t, "s1", ks[0])
	ctx := context.Background()
	job, err := sliced.Upload(ctx, old, "csv_upper", strings.NewReader("id,name\n1,ann\n"), nil)
	must(t, err)
	wait(t, old, job)
	download := func(c *rocketjob.Client) (string, error) {
		var out bytes.Buffer
		_, err := sliced.Download(ctx, c, job.ID.Hex(), &out)
		return out.String(), err
	}
	rotated := b.client(t, ks[1]+","+ks[0])
	if out, err := download(rotated); err != nil || out != "id,name\n1,ANN\n" {
		t.Fatalf("download with rotated keyring: %q %v", out, err)
	}
	newOnly := b.client(t, ks[1])
	if _, err := download(newOnly); !errors.Is(err, encryption.ErrNoKey) {
		t.Fatalf("download without the old key before rekey: %v", err)
	}
	n, err := sliced.Rekey(ctx, rotated, job.ID.Hex())
	must(t, err)
	if n != 1 {
		t.Fatalf("rekeyed %d slices, want 1 output slice", n)
	}
	if out, err := download(newOnly); err != nil || out != "id,name\n1,ANN\n" {
		t.Fatalf("download with only the new key after rekey: %q %v", out, err)
	}
}
