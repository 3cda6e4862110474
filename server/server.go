package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Defaults for Config.
const (
	DefaultWorkers           = 4
	DefaultReCheck           = 5 * time.Second
	DefaultPollInterval      = time.Second
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultDeadAfter         = 4 * DefaultHeartbeatInterval
	DefaultShutdownTimeout   = 30 * time.Second
)

// Version is reported in the servers collection.
const Version = "0.1.0"

// Config configures a server. Zero fields take the defaults above.
type Config struct {
	// Name identifies the server; default "host:pid". Two live servers cannot
	// share a name.
	Name string
	// Workers is the number of concurrent workers.
	Workers int
	// ReCheck is how often a busy worker looks for a more urgent job, besides
	// after every slice.
	ReCheck time.Duration
	// PollInterval is how long an idle worker waits before looking for work again.
	PollInterval time.Duration
	// HeartbeatInterval is how often the server writes its heartbeat and reads
	// its commands; the rescuer runs at the same pace.
	HeartbeatInterval time.Duration
	// DeadAfter is how old another server's heartbeat may be before it is a
	// zombie whose work is requeued. Keep it several heartbeat intervals.
	DeadAfter time.Duration
	// ShutdownTimeout bounds how long a stopping server waits for work in
	// flight before it gives that work back to the queue.
	ShutdownTimeout time.Duration
	// Logger receives the server's structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for processing windows and for the age of finished
	// jobs (retention); nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Include, when not empty, limits the server to these job types (each
	// must be registered); Exclude keeps it away from these. A server only
	// ever looks at jobs of the types it runs, so jobs it does not run never
	// crowd out those it does, however many and however urgent they are.
	Include, Exclude []string
	// Drain makes the server process what is due and then stop: Run returns
	// once every worker is idle and no due job it could run is left (jobs
	// outside their processing window or whose key it lacks do not count;
	// running sliced jobs do). Bound it with Run's context.
	Drain bool
	// Retention is how long finished jobs are kept before they are deleted
	// with their slices: zero fields take DefaultRetention (completed 7
	// days, failed and aborted 30 days), rocketjob.KeepForever keeps them;
	// a job type's own Retention (or DestroyOnComplete) overrides it. One
	// server of the cluster at a time deletes them, with its own settings:
	// give every server the same.
	Retention rocketjob.Retention
	// RetentionInterval is how often the cluster looks for expired jobs
	// (default DefaultRetentionInterval); RetentionBatch bounds the jobs one
	// look deletes (default DefaultRetentionBatch), so that a backlog drains
	// over several.
	RetentionInterval time.Duration
	RetentionBatch    int
	// DirmonRoots are the folders under which this server scans Dirmon
	// entries (sliced.DirmonEntry): an entry whose folder, archive or failed
	// folder is not under one of them (symbolic links resolved) is left to
	// other servers, so the entries stored in the database (by anyone who
	// may add one) reach only the files the operator chose. Empty: this
	// server runs no Dirmon. Each must be an existing absolute folder.
	DirmonRoots []string
	// DirmonInterval is the time between scans of an entry, by one server
	// at a time, and the least time a file stays unchanged before it is
	// taken (default DefaultDirmonInterval).
	DirmonInterval time.Duration
	// WebhookSecret, when set, signs the webhook POST of every job with a
	// NotifyURL: SignatureHeader holds the HMAC-SHA256 of the body under it
	// (see Sign). Give every server the same; it never appears in logs.
	WebhookSecret string
	// PublicURL is the web UI's address as webhook receivers reach it
	// (e.g. "https://jobs.example.com/rocketjob"): the base of the result
	// URLs in a notification. Empty gives paths without a host.
	PublicURL string
	// WebhookRetries is how many times a failed webhook POST is sent again
	// (default DefaultWebhookRetries); WebhookBackoff is the first retry's
	// delay, doubled for each next one (default DefaultWebhookBackoff).
	WebhookRetries int
	WebhookBackoff time.Duration
}

func (c *Config) withDefaults() Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Name == "" {
		host, _ := os.Hostname()
		out.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if out.Workers == 0 {
		out.Workers = DefaultWorkers
	}
	def(&out.ReCheck, DefaultReCheck)
	def(&out.PollInterval, DefaultPollInterval)
	def(&out.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&out.DeadAfter, 4*out.HeartbeatInterval)
	def(&out.ShutdownTimeout, DefaultShutdownTimeout)
	def(&out.RetentionInterval, DefaultRetentionInterval)
	if out.RetentionBatch == 0 {
		out.RetentionBatch = DefaultRetentionBatch
	}
	out.Retention = out.Retention.Or(DefaultRetention)
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}

func (c Config) validate() error {
	switch {
	case c.Workers < 1:
		return fmt.Errorf("workers must be at least 1 (got %d)", c.Workers)
	case c.ReCheck < 0 || c.PollInterval < 0 || c.HeartbeatInterval < 0 || c.ShutdownTimeout < 0 || c.RetentionInterval < 0:
		return errors.New("durations must not be negative")
	case c.RetentionBatch < 0:
		return fmt.Errorf("retention batch must not be negative (got %d)", c.RetentionBatch)
	case c.DeadAfter < 2*c.HeartbeatInterval:
		return fmt.Errorf("dead-after (%s) must be at least twice the heartbeat interval (%s)", c.DeadAfter, c.HeartbeatInterval)
	}
	return nil
}

// Server is one server process: a set of services (heartbeat, rescuer,
// housekeeper, watcher, completer, worker pool) that Run wires together.
type Server struct {
	cfg    Config
	client *rocketjob.Client
	store  *store.Store
	reg    *rocketjob.Registry
	log    *slog.Logger

	paused   atomic.Bool
	stopping atomic.Bool
	// owned holds the runs and steps under way here (see auditOwnJobs).
	owned ownedJobs
	// failedJobs counts the jobs this server moved to failed (FailedJobs).
	failedJobs atomic.Int64
	stopCh     chan struct{} // closed by a stop command
	stopOnce   sync.Once
	busy       atomic.Int32

	sel *selector

	// The services, in the order Run starts them.
	heartbeat   *heartbeat
	rescuer     *rescuer
	housekeeper *housekeeper
	retainer    *retainer
	watch       *watcher
	waker       *waker
	completer   *completer
	ender       *ender
	pool        *workerPool
	drainer     *drainer // nil unless Config.Drain
	dirmon      *dirmon  // nil without Config.DirmonRoots

	sliceSeconds *prometheus.HistogramVec // time to process one slice, by job type

	followUps sync.WaitGroup // finishing work started by the completer, and simple jobs' ends (endLater)
	// holdSlots bounds the simple jobs a server holds (holdSlot):
	// heldPerWorker per worker.
	holdSlots chan struct{}
	// runTimes is how long simple runs of each type take (blockSize).
	runTimes runTimes

	mu        sync.Mutex
	giveBack  giveBack // what could not be given back during an outage
	feeders   map[bson.ObjectID]*jobFeeder
	noKey     map[bson.ObjectID]bool // encrypted jobs whose key this server lacks
	startedAt time.Time
}

// New checks cfg and returns a server; Run starts it.
func New(client *rocketjob.Client, cfg *Config) (*Server, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{
		cfg:       c,
		client:    client,
		store:     clientstore.Of(client),
		reg:       client.Registry(),
		log:       c.Logger.With("server", c.Name),
		stopCh:    make(chan struct{}),
		holdSlots: make(chan struct{}, heldPerWorker*c.Workers),
		feeders:   map[bson.ObjectID]*jobFeeder{},
		noKey:     map[bson.ObjectID]bool{},
	}
	s.giveBack.log = s.log
	for _, typ := range slices.Concat(c.Include, c.Exclude) {
		if _, err := s.reg.Lookup(typ); err != nil {
			return nil, fmt.Errorf("server config: include/exclude: %w", err)
		}
	}
	if len(c.Include)+len(c.Exclude) > 0 && len(s.types()) == 0 {
		return nil, errors.New("server config: no job type left to run after include/exclude")
	}
	s.sel = newSelector(s.store, c.ReCheck, c.PollInterval)
	s.sel.reserve = 4 * c.Workers * maxBlock
	s.sel.types = s.types

	s.heartbeat = newHeartbeat(heartbeatConfig{Name: c.Name, Interval: c.HeartbeatInterval}, s.store, s.log)
	s.heartbeat.status = s.status
	s.heartbeat.command = s.apply
	s.heartbeat.declaredDead = s.declaredDead
	s.heartbeat.afterBeat = func(ctx context.Context) {
		s.pruneFeeders(ctx)
		s.giveBack.retry(ctx, s.store)
	}
	s.rescuer = newRescuer(rescuerConfig{Name: c.Name, Interval: c.HeartbeatInterval, DeadAfter: c.DeadAfter}, s.store, s.log)
	s.rescuer.rescued = s.sel.invalidate
	s.housekeeper = newHousekeeper(housekeeperConfig{Name: c.Name, Interval: c.HeartbeatInterval, DeadAfter: c.DeadAfter}, s.store, s.log)
	s.housekeeper.repaired = s.sel.invalidate
	s.retainer = newRetainer(retainerConfig{Interval: c.RetentionInterval, Batch: c.RetentionBatch, Retention: c.Retention, Now: c.Now}, s.store, s.log)
	s.retainer.types = s.specs
	s.retainer.destroy = func(ctx context.Context, job *model.Job) error { return clientjob.DestroyAt(ctx, client, job) }
	if len(c.DirmonRoots) > 0 {
		var err error
		s.dirmon, err = newDirmon(dirmonConfig{Name: c.Name, Roots: c.DirmonRoots, Interval: c.DirmonInterval, DeadAfter: c.DeadAfter}, client, s.store, s.log)
		if err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
	}
	s.watch = newWatcher(s.store, c.ReCheck, s.log)
	s.housekeeper.running = func(id bson.ObjectID) bool { return s.owned.in(id) || s.watch.watching(id) }
	s.waker = newWaker(s.store, s.sel, min(DefaultWakePoll, c.PollInterval))
	s.completer = newCompleter(completerConfig{Queue: 2 * c.Workers}, s.complete)
	s.ender = newEnder(enderConfig{Name: c.Name, Interval: c.ReCheck, Secret: c.WebhookSecret, PublicURL: c.PublicURL,
		Retries: c.WebhookRetries, Backoff: c.WebhookBackoff}, s.store, s.reg.Lookup, s.log)
	if c.Drain {
		s.drainer = newDrainer(s.store, c.PollInterval, c.Workers)
		s.drainer.idle = s.sel.idle.Load
		s.drainer.types = s.types
		s.drainer.usable = func(job *model.Job) bool {
			s.mu.Lock()
			noKey := s.noKey[job.ID]
			s.mu.Unlock()
			return !noKey && s.inWindow(job)
		}
		s.drainer.drained = func() {
			s.log.Info("drained: no due job left that this server runs")
			s.Stop()
		}
	}
	s.pool = newWorkerPool(poolConfig{Workers: c.Workers}, s.workerLoop, func() {
		s.stopping.Store(true)
		s.sel.wake()
	})

	s.sliceSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "rocketjob_slice_duration_seconds",
		Help:        "Time this server took to process one slice (all its records), by job type.",
		Buckets:     prometheus.ExponentialBuckets(0.001, 2, 16),
		ConstLabels: prometheus.Labels{"server": c.Name},
	}, []string{"type"})
	return s, nil
}

// types returns the job types this server runs: those registered, narrowed
// by Config.Include and Config.Exclude.
func (s *Server) types() []string {
	var out []string
	for _, typ := range s.reg.Names() {
		if (len(s.cfg.Include) == 0 || slices.Contains(s.cfg.Include, typ)) && !slices.Contains(s.cfg.Exclude, typ) {
			out = append(out, typ)
		}
	}
	return out
}

// specs returns the specs of the registered job types.
func (s *Server) specs() []*rocketjob.TypeSpec {
	var out []*rocketjob.TypeSpec
	for _, name := range s.reg.Names() {
		if spec, err := s.reg.Lookup(name); err == nil {
			out = append(out, spec)
		}
	}
	return out
}

// Collectors returns the server's Prometheus metrics (slice latency by job
// type), to register wherever the process serves /metrics.
func (s *Server) Collectors() []prometheus.Collector { return []prometheus.Collector{s.sliceSeconds} }

// Name returns the server's name.
func (s *Server) Name() string { return s.cfg.Name }

// Run runs the server until ctx is cancelled or a stop command arrives, then
// shuts down gracefully and returns nil. It returns an error only when the
// server cannot start (e.g. its name is taken by a live server).
//
// It starts the services in this order: heartbeat (after a first beat that
// must succeed), rescuer, housekeeper, retainer (retention), watcher, waker,
// completer, worker pool. It stops them in the reverse order: the workers stop claiming and finish
// within Config.ShutdownTimeout (then their work is cancelled and given
// back); the completer writes what they processed; the follow-ups it
// started (a job's after step) finish within the same deadline; the slices
// claimed ahead are given back; then the waker, watcher, retainer,
// housekeeper, rescuer and heartbeat stop and the server's document is removed.
func (s *Server) Run(ctx context.Context) error {
	if err := s.takeName(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	if _, err := s.heartbeat.beat(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("server %s: first heartbeat: %w", s.cfg.Name, err)
	}
	s.log.Info("server started", "workers", s.cfg.Workers)

	bg := context.WithoutCancel(ctx)
	for _, svc := range []interface{ Start(context.Context) error }{
		s.heartbeat, s.rescuer, s.housekeeper, s.retainer, s.watch, s.waker, s.ender, s.completer, s.pool,
	} {
		if err := svc.Start(bg); err != nil {
			return fmt.Errorf("server %s: %w", s.cfg.Name, err)
		}
	}

	if s.dirmon != nil {
		if err := s.dirmon.Start(bg); err != nil {
			return fmt.Errorf("server %s: %w", s.cfg.Name, err)
		}
		defer func() { _ = s.dirmon.Stop(bg) }()
	}

	if s.drainer != nil {
		if err := s.drainer.Start(bg); err != nil {
			return fmt.Errorf("server %s: %w", s.cfg.Name, err)
		}
		defer func() { _ = s.drainer.Stop(bg) }()
	}

	select {
	case <-ctx.Done():
	case <-s.stopCh:
	}
	s.log.Info("server stopping", "timeout", s.cfg.ShutdownTimeout)
	if s.dirmon != nil {
		_ = s.dirmon.Stop(bg) // an upload in flight is dropped; the next scan resumes it
	}
	deadline, cancel := context.WithTimeout(bg, s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.pool.Stop(deadline); err != nil {
		s.log.Warn("shutdown timeout: work in flight was given back")
	}
	_ = s.completer.Stop(bg)
	followUps := make(chan struct{})
	go func() { s.followUps.Wait(); close(followUps) }()
	select {
	case <-followUps:
	case <-deadline.Done():
		s.pool.abort()
		<-followUps
	}
	s.closeFeeders(bg)
	if err := s.store.LeaveSegments(bg); err != nil {
		s.log.Warn("leaving the run-queue segments", "err", err)
	}
	for _, svc := range []interface{ Stop(context.Context) error }{s.ender, s.waker, s.watch, s.retainer, s.housekeeper, s.rescuer, s.heartbeat} {
		_ = svc.Stop(bg)
	}
	rmCtx, cancelRm := context.WithTimeout(bg, 5*time.Second)
	defer cancelRm()
	if _, err := s.store.RemoveServer(rmCtx, s.cfg.Name, time.Time{}); err != nil {
		s.log.Warn("removing server document", "err", err)
	}
	s.log.Info("server stopped")
	return nil
}

// status is the server document the heartbeat writes.
func (s *Server) status() *model.Server {
	state := model.ServerRunning
	switch {
	case s.stopping.Load():
		state = model.ServerStopping
	case s.paused.Load():
		state = model.ServerPaused
	}
	host, _ := os.Hostname()
	return &model.Server{
		Name:      s.cfg.Name,
		State:     state,
		PID:       os.Getpid(),
		Host:      host,
		Workers:   s.cfg.Workers,
		Busy:      int(s.busy.Load()),
		StartedAt: s.started(),
		Version:   Version,
		DeadAfter: s.cfg.DeadAfter,

		Processing:    s.processing(),
		WaitingForKey: s.waitingForKey(),
	}
}

func (s *Server) started() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.startedAt.IsZero() {
		s.startedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	return s.startedAt
}

// apply carries out a remote command read by the heartbeat.
func (s *Server) apply(command string) {
	switch command {
	case rocketjob.CommandPause:
		s.paused.Store(true)
	case rocketjob.CommandResume:
		s.paused.Store(false)
		s.sel.wake()
	case rocketjob.CommandStop:
		s.Stop()
	}
}

// FailedJobs returns how many jobs this server moved to failed (a simple
// job whose retries ran out, a sliced job that failed): with Config.Drain,
// a batch run can exit non-zero when one did.
func (s *Server) FailedJobs() int64 { return s.failedJobs.Load() }

// Stop asks a running server to shut down gracefully, like a stop command.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopCh) })
}

// takeName refuses a name that a live server uses and rescues the work of a
// dead predecessor that had the same name.
func (s *Server) takeName(ctx context.Context) error {
	old, err := s.store.GetServer(ctx, s.cfg.Name)
	if errors.Is(err, model.ErrServerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server %s: %w", s.cfg.Name, err)
	}
	if time.Since(old.HeartbeatAt) < old.DeadAfterOr(s.cfg.DeadAfter) {
		return fmt.Errorf("server name %q is in use by a live server (pid %d on %s, heartbeat %s ago)",
			s.cfg.Name, old.PID, old.Host, time.Since(old.HeartbeatAt).Round(time.Second))
	}
	s.log.Info("taking over the name of a dead server: requeuing its work")
	return s.rescuer.rescue(ctx, old)
}
