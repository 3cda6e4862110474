package server

import (
	"context"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// Command bookkeeping of the heartbeat.
const (
	commandWindow    = 10        // heartbeats over which commands are read
	pruneEvery       = 100       // heartbeats between deletions of old commands
	commandRetention = time.Hour // how long a command is kept
)

// heartbeatConfig configures the heartbeat service.
type heartbeatConfig struct {
	// Name is the server's name: the _id of its document.
	Name string
	// Interval is how often the document is written and commands are read
	// (default DefaultHeartbeatInterval).
	Interval time.Duration
}

func (c *heartbeatConfig) defaults() {
	if c.Interval == 0 {
		c.Interval = DefaultHeartbeatInterval
	}
}

// heartbeat writes the server's document every interval (what status
// returns), applies the remote commands sent to it since its last beat,
// calls declaredDead when it finds its document gone (another server declared
// it dead and requeued its work) and afterBeat after every beat that reached
// the database.
type heartbeat struct {
	ticker
	cfg   heartbeatConfig
	store *store.Store
	log   *slog.Logger

	status       func() *model.Server
	command      func(string)
	declaredDead func()
	afterBeat    func(context.Context)

	started time.Time                   // commands sent before are not ours
	seen    map[bson.ObjectID]time.Time // commands applied, by send time
	beats   int
	written bool // a beat reached the database
}

func newHeartbeat(cfg heartbeatConfig, st *store.Store, log *slog.Logger) *heartbeat {
	cfg.defaults()
	h := &heartbeat{cfg: cfg, store: st, log: log, seen: map[bson.ObjectID]time.Time{},
		started: time.Now().UTC().Truncate(time.Millisecond),
		status:  func() *model.Server { return &model.Server{Name: cfg.Name} },
		command: func(string) {}, declaredDead: func() {}, afterBeat: func(context.Context) {}}
	h.ticker = ticker{interval: cfg.Interval, pass: h.pass}
	return h
}

// beat writes the server document once. It reports whether the document
// still existed: false when a rescuer removed it since the last beat.
// beatWriteTimeout bounds a heartbeat write that a stop does not abandon.
const beatWriteTimeout = 2 * time.Second

func (h *heartbeat) beat(ctx context.Context) (bool, error) {
	doc := h.status()
	doc.Name = h.cfg.Name
	doc.HeartbeatAt = time.Now().UTC().Truncate(time.Millisecond)
	doc.HeartbeatInterval = h.cfg.Interval
	// The write is not abandoned when the server stops mid-beat: a write
	// whose client gave up may still land in the database after the
	// stopping server removed its document, and bring it back as running.
	// Stop waits for it instead (bounded).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(h.cfg.Interval, beatWriteTimeout))
	defer cancel()
	existed, err := h.store.Heartbeat(wctx, doc)
	if err == nil && !h.written {
		h.written, existed = true, true // the first beat creates the document
	}
	return existed, err
}

func (h *heartbeat) pass(ctx context.Context) {
	h.beats++
	existed, err := h.beat(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("heartbeat", "err", err)
		}
		return
	}
	if !existed {
		h.log.Warn("this server had been declared dead by another server, which requeued its work: leaving that work to others")
		h.declaredDead()
	}
	h.afterBeat(ctx)
	// Commands are read over a window of recent send times (clocks of other
	// hosts may lag) and applied once each, in the order sent.
	since := time.Now().Add(-commandWindow * h.cfg.Interval)
	if since.Before(h.started) {
		since = h.started
	}
	cmds, err := h.store.CommandsSince(ctx, h.cfg.Name, since)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("reading commands", "err", err)
		}
		return
	}
	for _, c := range cmds {
		if _, done := h.seen[c.ID]; !done {
			h.seen[c.ID] = c.At
			h.log.Info("command received", "command", c.Command)
			h.command(c.Command)
		}
	}
	for id, at := range h.seen {
		if at.Before(since) {
			delete(h.seen, id)
		}
	}
	if h.beats%pruneEvery == 0 {
		_ = h.store.PruneCommands(ctx, time.Now().Add(-commandRetention))
	}
}
