package rocketjobweb

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the handler's Prometheus registry: the job and server gauges
// come from the statistics snapshot (so a scrape reads the database at most
// once per sample interval), the HTTP metrics from the requests served.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
}

func newMetrics(stats *statsCache, extra ...prometheus.Collector) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rocketjob_http_requests_total",
			Help: "HTTP requests served by the web UI and API, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rocketjob_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests of the web UI and API, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.latency, &statsCollector{stats: stats},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(extra...)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// serve answers GET /metrics.
func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Descriptions of the job and server metrics.
var (
	descUp = prometheus.NewDesc("rocketjob_stats_up",
		"1 when the last statistics sample of the jobs database succeeded, else 0.", nil, nil)
	descJobs = prometheus.NewDesc("rocketjob_jobs",
		"Jobs in the jobs database, by state and type.", []string{"state", "type"}, nil)
	descQueueJobs = prometheus.NewDesc("rocketjob_queue_depth_jobs",
		"Queued and running jobs, by priority (1 runs first).", []string{"priority"}, nil)
	descQueueRecords = prometheus.NewDesc("rocketjob_queue_depth_records",
		"Records not yet processed of queued and running sliced jobs, by priority.", []string{"priority"}, nil)
	descOldest = prometheus.NewDesc("rocketjob_oldest_queued_job_age_seconds",
		"How long the due queued job that has waited longest has waited (0 when none waits).", nil, nil)
	descProcessed = prometheus.NewDesc("rocketjob_records_processed_total",
		"Records processed (output or failed) by all servers, as sampled by this UI process since it started.", nil, nil)
	descFailed = prometheus.NewDesc("rocketjob_records_failed_total",
		"Records that failed, as sampled by this UI process since it started.", nil, nil)
	descRate = prometheus.NewDesc("rocketjob_records_per_second",
		"Records processed per second over the last minute, sampled by this UI process.", nil, nil)
	descHeartbeat = prometheus.NewDesc("rocketjob_server_heartbeat_timestamp_seconds",
		"Unix time of each server's last heartbeat.", []string{"server"}, nil)
	descHeartbeatAge = prometheus.NewDesc("rocketjob_server_heartbeat_age_seconds",
		"Seconds since each server's last heartbeat.", []string{"server"}, nil)
	descWorkers = prometheus.NewDesc("rocketjob_server_workers",
		"Workers of each server.", []string{"server"}, nil)
	descBusy = prometheus.NewDesc("rocketjob_server_busy_workers",
		"Workers of each server busy on a job.", []string{"server"}, nil)
	descStatistic = prometheus.NewDesc("rocketjob_job_statistic",
		"Sum of the statistics (rocketjob.Inc) of the jobs kept, by job type and statistic: simple jobs' and ended sliced jobs' totals.", []string{"type", "name"}, nil)
	descCategory = prometheus.NewDesc("rocketjob_job_category_records",
		"Output records of the ended sliced jobs kept, by job type and output category.", []string{"type", "category"}, nil)
	descServerState = prometheus.NewDesc("rocketjob_server_state",
		"1 for each server's current state (running, paused, stopping).", []string{"server", "state"}, nil)
)

// statsCollector reports the statistics snapshot as metrics.
type statsCollector struct {
	stats *statsCache
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descJobs, descQueueJobs, descQueueRecords, descOldest,
		descProcessed, descFailed, descRate, descHeartbeat, descHeartbeatAge, descWorkers, descBusy, descServerState,
		descStatistic, descCategory} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.stats.get(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		s = c.stats.latest()
		if s == nil {
			return
		}
	} else {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for typ, m := range s.ByType {
		for _, st := range allStates {
			gauge(descJobs, float64(m[st]), string(st), typ)
		}
	}
	for _, q := range s.Queue {
		p := strconv.Itoa(q.Priority)
		gauge(descQueueJobs, float64(q.Jobs), p)
		gauge(descQueueRecords, float64(q.RecordsRemaining), p)
	}
	oldest := 0.0
	if j := s.OldestQueued; j != nil {
		oldest = max(0, s.At.Sub(waitingSince(j)).Seconds())
	}
	gauge(descOldest, oldest)
	type key struct{ typ, name string }
	stats, cats := map[key]int64{}, map[key]int64{}
	for i := range s.Jobs {
		j := &s.Jobs[i]
		for name, n := range j.Statistics {
			stats[key{j.Type, name}] += n
		}
		for name, n := range j.Categories {
			cats[key{j.Type, name}] += n
		}
	}
	for k, n := range stats {
		gauge(descStatistic, float64(n), k.typ, k.name)
	}
	for k, n := range cats {
		gauge(descCategory, float64(n), k.typ, k.name)
	}
	tot := c.stats.tp.totals()
	ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(tot.processed))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(tot.failed))
	gauge(descRate, c.stats.tp.rate(rateWindow))
	now := time.Now()
	for _, sv := range s.Servers {
		gauge(descHeartbeat, float64(sv.HeartbeatAt.UnixMilli())/1000, sv.Name)
		gauge(descHeartbeatAge, max(0, now.Sub(sv.HeartbeatAt).Seconds()), sv.Name)
		gauge(descWorkers, float64(sv.Workers), sv.Name)
		gauge(descBusy, float64(sv.Busy), sv.Name)
		gauge(descServerState, 1, sv.Name, sv.State)
	}
}
