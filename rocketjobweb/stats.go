package rocketjobweb

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Sampling limits.
const (
	// maxSampledJobs bounds the running jobs whose progress one sample
	// counts (Progress reads their slice collections); the others keep
	// their last known counts until they finish.
	maxSampledJobs = 16
	// ringSize is how many samples of records/s are kept.
	ringSize = 360
	// rateWindow is the window of the "records/s now" figure.
	rateWindow = time.Minute
	// historyWindow is how far back the dashboard's chart goes.
	historyWindow = 10 * time.Minute
)

// allStates lists the job states in lifecycle order.
var allStates = []rocketjob.State{rocketjob.StateQueued, rocketjob.StateRunning, rocketjob.StatePaused,
	rocketjob.StateCompleted, rocketjob.StateFailed, rocketjob.StateAborted}

// counts are a job's processed and failed records.
type counts struct {
	processed, failed int64
}

// snapshot is what the UI process knows about all jobs and servers at one
// moment: the source of the dashboard, /api/stats and /metrics.
type snapshot struct {
	At           time.Time
	Jobs         []rocketjob.Job // every job, most urgent first
	Servers      []rocketjob.Server
	Counts       map[rocketjob.State]int64
	ByType       map[string]map[rocketjob.State]int64
	OldestQueued *rocketjob.Job // the due queued job that has waited longest
	Queue        []queueLevel   // queued and running jobs by priority
	Sampled      map[bson.ObjectID]counts
}

// queueLevel is the work waiting at one priority.
type queueLevel struct {
	Priority         int   `json:"priority"`
	Jobs             int64 `json:"jobs"`
	RecordsRemaining int64 `json:"records_remaining"`
}

// statsCache computes snapshots, at most one at a time, and keeps the
// latest; it also feeds the records/s history.
type statsCache struct {
	client   *rocketjob.Client
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex // one refresh at a time
	cur   atomic.Pointer[snapshot]
	stale atomic.Bool
	tp    throughput
}

func newStatsCache(client *rocketjob.Client, interval time.Duration, log *slog.Logger) *statsCache {
	return &statsCache{client: client, interval: interval, log: log}
}

// maxAge is how old a snapshot may be before a request computes a new one.
func (c *statsCache) maxAge() time.Duration { return max(2*c.interval, time.Second) }

// get returns a recent snapshot, computing one when the last is too old or
// an action made it stale.
func (c *statsCache) get(ctx context.Context) (*snapshot, error) {
	if s := c.cur.Load(); s != nil && !c.stale.Load() && time.Since(s.At) < c.maxAge() {
		return s, nil
	}
	return c.refresh(ctx)
}

// latest returns the last snapshot without computing one (nil before the first).
func (c *statsCache) latest() *snapshot { return c.cur.Load() }

// invalidate makes the next get compute a fresh snapshot (after an action).
func (c *statsCache) invalidate() { c.stale.Store(true) }

// sampledCounts returns the last sampled counts of running jobs.
func (c *statsCache) sampledCounts() map[bson.ObjectID]counts {
	if s := c.cur.Load(); s != nil {
		return s.Sampled
	}
	return nil
}

// refresh computes a snapshot now: one listing of the jobs and servers,
// plus the progress of up to maxSampledJobs running jobs.
func (c *statsCache) refresh(ctx context.Context) (*snapshot, error) {
	asked := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.cur.Load(); s != nil && s.At.After(asked) {
		return s, nil // computed while this caller waited
	}
	c.stale.Store(false)
	jobs, err := c.client.List(ctx, nil)
	if err != nil {
		c.stale.Store(true)
		return nil, err
	}
	servers, err := c.client.Servers(ctx)
	if err != nil {
		c.stale.Store(true)
		return nil, err
	}
	now := time.Now()
	s := &snapshot{
		At: now, Jobs: jobs, Servers: servers,
		Counts: map[rocketjob.State]int64{}, ByType: map[string]map[rocketjob.State]int64{},
		Sampled: map[bson.ObjectID]counts{},
	}
	queue := map[int]*queueLevel{}
	current := make(map[bson.ObjectID]counts, len(jobs))
	sampled := 0
	for i := range jobs {
		j := &jobs[i]
		s.Counts[j.State]++
		if s.ByType[j.Type] == nil {
			s.ByType[j.Type] = map[rocketjob.State]int64{}
		}
		s.ByType[j.Type][j.State]++
		if j.State == rocketjob.StateQueued && !j.RunAt.After(now) {
			if s.OldestQueued == nil || waitingSince(j).Before(waitingSince(s.OldestQueued)) {
				s.OldestQueued = j
			}
		}
		if j.Kind != rocketjob.KindSliced {
			if j.State == rocketjob.StateQueued || j.State == rocketjob.StateRunning {
				addQueue(queue, j.Priority, 1)
			}
			continue
		}
		cnt := counts{processed: j.ProcessedCount, failed: j.FailedRecordCount}
		if j.State == rocketjob.StateRunning && sampled < maxSampledJobs {
			sampled++
			if p, err := c.client.Progress(ctx, j); err == nil {
				cnt = counts{processed: p.Processed, failed: p.Failed}
				s.Sampled[j.ID] = cnt
			} else if ctx.Err() == nil {
				c.log.Debug("sampling job progress", "job", j.ID.Hex(), "err", err)
			}
		}
		cnt = c.tp.atLeastLast(j.ID, cnt)
		if _, ok := s.Sampled[j.ID]; !ok && (j.State == rocketjob.StateRunning || j.State == rocketjob.StatePaused) {
			s.Sampled[j.ID] = cnt // the last known counts of a job not sampled this time
		}
		current[j.ID] = cnt
		if j.State == rocketjob.StateQueued || j.State == rocketjob.StateRunning {
			q := addQueue(queue, j.Priority, 1)
			q.RecordsRemaining += max(0, j.RecordCount-cnt.processed)
		}
	}
	for _, q := range queue {
		s.Queue = append(s.Queue, *q)
	}
	sort.Slice(s.Queue, func(a, b int) bool { return s.Queue[a].Priority < s.Queue[b].Priority })
	c.tp.observe(now, current)
	c.cur.Store(s)
	return s, nil
}

func addQueue(m map[int]*queueLevel, priority int, jobs int64) *queueLevel {
	q := m[priority]
	if q == nil {
		q = &queueLevel{Priority: priority}
		m[priority] = q
	}
	q.Jobs += jobs
	return q
}

// waitingSince is when a queued job became due.
func waitingSince(j *rocketjob.Job) time.Time {
	if j.RunAt.After(j.CreatedAt) {
		return j.RunAt
	}
	return j.CreatedAt
}

// throughput turns successive per-job counts into records/s. It is computed
// by the UI process from its own samples: it starts empty when the UI
// starts, and counts records processed by every server.
type throughput struct {
	mu      sync.Mutex
	last    map[bson.ObjectID]counts
	lastAt  time.Time
	primed  bool
	points  []ratePoint // oldest first, at most ringSize
	total   counts      // records processed and failed since the UI started
	samples int64
}

// ratePoint is what happened between two samples.
type ratePoint struct {
	At        time.Time
	Seconds   float64
	Processed int64
	Failed    int64
}

// atLeastLast keeps a job's counts from going backwards when it was not
// sampled this time (a running job whose document lags).
func (t *throughput) atLeastLast(id bson.ObjectID, c counts) counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.last[id]; ok {
		c.processed = max(c.processed, prev.processed)
		c.failed = max(c.failed, prev.failed)
	}
	return c
}

// observe records one sample: the records processed since the last one
// (new jobs count in full, jobs that went backwards on a retry count
// nothing).
func (t *throughput) observe(at time.Time, cur map[bson.ObjectID]counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.samples++
	if !t.primed {
		t.last, t.lastAt, t.primed = cur, at, true
		return
	}
	var p ratePoint
	for id, c := range cur {
		prev := t.last[id]
		p.Processed += max(0, c.processed-prev.processed)
		p.Failed += max(0, c.failed-prev.failed)
	}
	p.At, p.Seconds = at, at.Sub(t.lastAt).Seconds()
	t.total.processed += p.Processed
	t.total.failed += p.Failed
	t.last, t.lastAt = cur, at
	if p.Seconds <= 0 {
		return
	}
	if len(t.points) == ringSize {
		copy(t.points, t.points[1:])
		t.points = t.points[:ringSize-1]
	}
	t.points = append(t.points, p)
}

// rate returns records/s over the window ending now (0 without samples).
func (t *throughput) rate(window time.Duration) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	cutoff := time.Now().Add(-window)
	var n int64
	var secs float64
	for i := len(t.points) - 1; i >= 0 && t.points[i].At.After(cutoff); i-- {
		n += t.points[i].Processed
		secs += t.points[i].Seconds
	}
	if secs == 0 {
		return 0
	}
	return float64(n) / secs
}

// history returns the samples of the last window.
func (t *throughput) history(window time.Duration) []ratePoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	cutoff := time.Now().Add(-window)
	i := sort.Search(len(t.points), func(i int) bool { return t.points[i].At.After(cutoff) })
	return append([]ratePoint(nil), t.points[i:]...)
}

func (t *throughput) totals() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// statsJSON is GET /api/stats.
func (c *statsCache) statsJSON(s *snapshot) map[string]any {
	byState := map[string]int64{}
	for _, st := range allStates {
		byState[string(st)] = s.Counts[st]
	}
	byType := map[string]map[string]int64{}
	for typ, m := range s.ByType {
		byType[typ] = map[string]int64{}
		for st, n := range m {
			byType[typ][string(st)] = n
		}
	}
	var oldest any
	if j := s.OldestQueued; j != nil {
		since := waitingSince(j)
		oldest = map[string]any{
			"id": j.ID.Hex(), "type": j.Type, "priority": j.Priority, "description": j.Description,
			"waiting_since": since, "age_seconds": max(0, s.At.Sub(since).Seconds()),
		}
	}
	var history []map[string]any
	for _, p := range c.tp.history(historyWindow) {
		history = append(history, map[string]any{"at": p.At, "records_per_second": float64(p.Processed) / p.Seconds, "processed": p.Processed, "failed": p.Failed})
	}
	workers, busy := 0, 0
	for _, sv := range s.Servers {
		workers += sv.Workers
		busy += sv.Busy
	}
	tot := c.tp.totals()
	queue := s.Queue
	if queue == nil {
		queue = []queueLevel{}
	}
	return map[string]any{
		"computed_at":   s.At,
		"jobs":          int64(len(s.Jobs)),
		"counts":        byState,
		"by_type":       byType,
		"oldest_queued": oldest,
		"queue":         queue,
		"servers":       map[string]int{"total": len(s.Servers), "workers": workers, "busy": busy},
		"throughput": map[string]any{
			"records_per_second":    c.tp.rate(rateWindow),
			"window_seconds":        rateWindow.Seconds(),
			"sample_seconds":        c.interval.Seconds(),
			"computed_by":           "this UI process, from its own samples of the jobs' processed counts",
			"processed_since_start": tot.processed,
			"failed_since_start":    tot.failed,
			"history":               history,
		},
	}
}
