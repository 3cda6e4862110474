package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

// serveEnv, when set, makes this program a bench server process (see
// startServerProcs): its value is the serveSpec, in JSON. It is an
// environment variable rather than a flag so that a test binary, re-executed
// the same way, can recognise it in TestMain, and so that a sealed run's key
// is not on a command line.
const serveEnv = "ROCKETJOB_BENCH_SERVE"

// serveFailEnv=1 makes a server process exit with status 3 right after it
// said it was ready: how the tests check that the bench notices a server
// process that dies.
const serveFailEnv = "ROCKETJOB_BENCH_SERVE_FAIL"

// Server processes: how long one may take to start and to stop.
const (
	procStartTimeout = time.Minute
	procStopTimeout  = time.Minute
	procReady        = "ready"
	procTail         = 4 << 10 // bytes of a process's stderr kept for its error
)

// serveSpec is what a server process runs.
type serveSpec struct {
	URI        string `json:"uri"`
	JobsDB     string `json:"jobs_db"`
	WorkDB     string `json:"work_db"`
	Name       string `json:"name"`
	Workers    int    `json:"workers"`
	SliceSize  int    `json:"slice_size"`
	Key        string `json:"key,omitempty"`        // the sealed run's key
	CPUProfile string `json:"cpuprofile,omitempty"` // the process writes FILE.<name>
}

// serveMain is the main of a server process: spec is serveEnv's value. The
// server runs until ctx ends (SIGINT, SIGTERM) or stdin is closed (the
// bench went away), then stops gracefully; the exit code is 0 when it
// stopped cleanly. It writes "ready" on stdout once the server is built.
func serveMain(ctx context.Context, spec string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench server: %s\n", oneLine(err.Error()))
		return exitFailure
	}
	var s serveSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fail(fmt.Errorf("%s: %w", serveEnv, err))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	ccfg, err := clientConfig(s.URI, s.JobsDB, s.WorkDB, s.SliceSize, s.Key)
	if err != nil {
		return fail(err)
	}
	client, err := rocketjob.NewClient(ctx, ccfg)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = client.Close(context.WithoutCancel(ctx)) }()
	srv, err := server.New(client, &server.Config{
		Name:         s.Name,
		Workers:      s.Workers,
		PollInterval: serverPoll,
		ReCheck:      serverReCheck,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fail(err)
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile + "." + s.Name)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if _, err := fmt.Fprintln(stdout, procReady); err != nil {
		return fail(err)
	}
	if os.Getenv(serveFailEnv) == "1" {
		fmt.Fprintln(stderr, "bench server: exiting with status 3 on purpose ("+serveFailEnv+"=1)")
		return 3
	}
	if err := srv.Run(ctx); err != nil {
		return fail(err)
	}
	return exitOK
}

// startServerProcs starts n server processes sharing workers workers, each
// this program re-executed with serveEnv set to spec (its name and workers
// filled in), and waits until each says it is ready. A process that exits
// before it is told to stop, or with a status other than 0, is an error
// that names it and ends with the tail of its stderr.
func startServerProcs(ctx context.Context, spec serveSpec, n, workers int, logf func(string, ...any)) (*runningServers, error) {
	r := &runningServers{ended: make(chan error, n)}
	var procs []*serverProc
	r.stopAll = func() {
		for _, p := range procs {
			p.stop()
		}
	}
	exe, err := os.Executable()
	if err != nil {
		r.stopAll = func() {}
		return r, fmt.Errorf("server processes: %w", err)
	}
	for i := range n {
		s := spec
		s.Name = serverName(spec.JobsDB, i)
		s.Workers = serverWorkers(workers, n, i)
		p, err := startServerProc(exe, s, r.ended, &r.cpu)
		if err != nil {
			return r, err
		}
		procs = append(procs, p)
		r.count++
	}
	deadline := time.NewTimer(procStartTimeout)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.ready:
		case err := <-r.ended:
			r.noteExit()
			if err == nil {
				err = fmt.Errorf("server process %s exited before it was ready", p.name)
			}
			return r, err
		case <-deadline.C:
			return r, fmt.Errorf("server process %s not ready after %s%s", p.name, procStartTimeout, p.stderr.suffix())
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	logf("bench: %d server processes ready (pids %s)", n, pids(procs))
	return r, nil
}

// serverProc is one running server process.
type serverProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.Closer
	stderr *tailBuffer
	ready  chan struct{}
	asked  atomic.Bool // stop was called
}

func startServerProc(exe string, s serveSpec, ended chan<- error, cpu *atomic.Int64) (*serverProc, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	p := &serverProc{name: s.Name, stderr: &tailBuffer{max: procTail}, ready: make(chan struct{})}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), serveEnv+"="+string(js))
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("server process %s: %w", s.Name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() && sc.Text() == procReady {
			close(p.ready)
		}
		_, _ = io.Copy(io.Discard, stdout)
		err := p.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("server process %s (pid %d): %w%s", p.name, p.cmd.Process.Pid, err, p.stderr.suffix())
		} else if !p.stopping() {
			err = fmt.Errorf("server process %s (pid %d) exited on its own%s", p.name, p.cmd.Process.Pid, p.stderr.suffix())
		}
		if ps := p.cmd.ProcessState; ps != nil {
			cpu.Add(int64(ps.UserTime() + ps.SystemTime()))
		}
		ended <- err
	}()
	return p, nil
}

// stopping tells whether stop was called.
func (p *serverProc) stopping() bool { return p.asked.Load() }

// stop asks the process to stop gracefully (SIGTERM, and stdin closed),
// and kills it if it is still there after procStopTimeout.
func (p *serverProc) stop() {
	if p.asked.Swap(true) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.stdin.Close()
	proc := p.cmd.Process
	time.AfterFunc(procStopTimeout, func() { _ = proc.Kill() })
}

func pids(procs []*serverProc) string {
	var s []string
	for _, p := range procs {
		s = append(s, fmt.Sprint(p.cmd.Process.Pid))
	}
	return strings.Join(s, ", ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// suffix is "; stderr: ..." with what the process wrote last, or "".
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	return "; stderr: " + oneLine(s)
}
