package embedded_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

func start(t *testing.T, opts embedded.Options) *embedded.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := embedded.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

func TestEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")

	db := start(t, embedded.Options{Dir: dir})
	if db.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", db.Dir(), dir)
	}
	if !strings.HasPrefix(db.URI(), "mongodb://127.0.0.1:") || strings.HasSuffix(db.URI(), ":0/") {
		t.Errorf("URI() = %q, want mongodb://127.0.0.1:PORT/ with a real port", db.URI())
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder: %v, %v; want mode 0700", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, embedded.LockFileName)); err != nil ||
		strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file = %q, %v; want our pid %d", b, err, os.Getpid())
	}

	client := connect(t, db.URI())
	coll := client.Database("embedded_test").Collection("docs")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 42}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	var got struct {
		N int `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil || got.N != 42 {
		t.Fatalf("FindOne = %+v, %v; want n=42", got, err)
	}

	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatalf("buildInfo: %v", err)
	}
	if _, ok := info["ferretdbVersion"]; !ok {
		t.Errorf("buildInfo has no ferretdbVersion: %v", info)
	}

	// A second database on the same folder is refused.
	_, err := embedded.Start(ctx, embedded.Options{Dir: dir})
	if !errors.Is(err, embedded.ErrDirInUse) {
		t.Fatalf("second Start: err = %v, want ErrDirInUse", err)
	}
	want := "data folder " + dir + " is in use by another process (pid " + strconv.Itoa(os.Getpid()) + ")"
	if err.Error() != want {
		t.Errorf("second Start: err = %q, want %q", err, want)
	}

	// Close, restart on the same folder: the document survived.
	if err := client.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, embedded.LockFileName)); err != nil || len(b) != 0 {
		t.Errorf("lock file after Close = %q, %v; want empty", b, err)
	}

	db2 := start(t, embedded.Options{Dir: dir})
	client2 := connect(t, db2.URI())
	defer func() { _ = client2.Disconnect(ctx) }()
	got.N = 0
	err = client2.Database("embedded_test").Collection("docs").FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got)
	if err != nil || got.N != 42 {
		t.Fatalf("FindOne after restart = %+v, %v; want n=42", got, err)
	}
}

func TestAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	dir := t.TempDir()

	_, err = embedded.Start(context.Background(), embedded.Options{Dir: dir, Listen: addr})
	if !errors.Is(err, embedded.ErrAddrInUse) {
		t.Fatalf("Start: err = %v, want ErrAddrInUse", err)
	}
	if want := "listen " + addr + ": address already in use"; err.Error() != want {
		t.Errorf("Start: err = %q, want %q", err, want)
	}

	// The folder lock was released: once the port is free, Start works.
	_ = l.Close()
	db := start(t, embedded.Options{Dir: dir, Listen: addr})
	if want := "mongodb://" + addr + "/"; db.URI() != want {
		t.Errorf("URI() = %q, want %q", db.URI(), want)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := embedded.Start(ctx, embedded.Options{}); err == nil {
		t.Error("Start without Dir succeeded")
	}
	if _, err := embedded.Start(ctx, embedded.Options{Dir: t.TempDir(), Listen: "nonsense"}); err == nil {
		t.Error("Start with bad Listen succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.Start(ctx, embedded.Options{Dir: file}); err == nil {
		t.Error("Start on a regular file succeeded")
	} else if strings.Contains(err.Error(), "\n") {
		t.Errorf("multi-line error: %q", err)
	}
}

const holdEnv = "EMBEDDED_TEST_HOLD_DIR"

// TestHelperHold is not a real test: TestLockOtherProcess runs it in a child
// process to hold a data folder until the child is killed.
func TestHelperHold(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := embedded.Start(context.Background(), embedded.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	select {} // hold the lock until killed
}

func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHold$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper process: %q, %v", line, err)
	}

	_, err = embedded.Start(context.Background(), embedded.Options{Dir: dir})
	want := "data folder " + dir + " is in use by another process (pid " + strconv.Itoa(cmd.Process.Pid) + ")"
	if !errors.Is(err, embedded.ErrDirInUse) || err.Error() != want {
		t.Fatalf("Start: err = %v, want %q", err, want)
	}

	// The kernel releases the lock when the owner dies.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	start(t, embedded.Options{Dir: dir})
}

// levelRecorder records the levels of the log records it receives.
type levelRecorder struct {
	mu     *sync.Mutex
	levels *[]slog.Level
}

func (r levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r levelRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r levelRecorder) WithGroup(string) slog.Handler            { return r }
func (r levelRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.levels = append(*r.levels, rec.Level)
	return nil
}

func TestLoggerWarningsOnly(t *testing.T) {
	var (
		mu     sync.Mutex
		levels []slog.Level
	)
	db := start(t, embedded.Options{Dir: t.TempDir(), Logger: slog.New(levelRecorder{&mu, &levels})})
	client := connect(t, db.URI())
	ctx := context.Background()
	if _, err := client.Database("x").Collection("y").InsertOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	// An invalid command makes FerretDB log at least at debug/info level.
	_ = client.Database("x").RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	_ = client.Disconnect(ctx)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range levels {
		if l < slog.LevelWarn {
			t.Errorf("logger got a %v record", l)
		}
	}
}

func TestWildcardListen(t *testing.T) {
	db := start(t, embedded.Options{Dir: t.TempDir(), Listen: ":0", InsecureListen: true})
	if !strings.HasPrefix(db.URI(), "mongodb://127.0.0.1:") || strings.HasSuffix(db.URI(), ":0/") {
		t.Errorf("URI() = %q, want mongodb://127.0.0.1:PORT/", db.URI())
	}
	client := connect(t, db.URI())
	defer func() { _ = client.Disconnect(context.Background()) }()
	if err := client.Ping(context.Background(), nil); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
