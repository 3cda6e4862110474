package server

import (
	"context"
	"log/slog"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// giveBack holds the work this server could not give back when it should
// have (the database was unreachable past the retry budget, or the disk was
// full): slices claimed and not finished, and feeders holding slices claimed
// ahead. While the server lives no rescuer requeues them, so they are
// retried after every heartbeat that reaches the database, until they are
// back in the queue.
type giveBack struct {
	log *slog.Logger

	mu      sync.Mutex
	slices  []heldSlice
	feeders []heldFeeder
}

type heldSlice struct {
	job bson.ObjectID
	c   *store.Claimed
}

type heldFeeder struct {
	job bson.ObjectID
	f   store.Feeder
}

// slice records a claimed slice whose give-back failed with err.
func (g *giveBack) slice(job bson.ObjectID, c *store.Claimed, err error) {
	g.log.Warn("could not give a slice back: retrying after each heartbeat", "job", job.Hex(), "slice", c.Num, "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.slices = append(g.slices, heldSlice{job, c})
}

// feeder records a feeder whose slices claimed ahead could not be given back.
func (g *giveBack) feeder(job bson.ObjectID, f store.Feeder, err error) {
	g.log.Warn("could not give back slices claimed ahead: retrying after each heartbeat", "job", job.Hex(), "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.feeders {
		if h.f == f {
			return
		}
	}
	g.feeders = append(g.feeders, heldFeeder{job, f})
}

// pending reports how many give-backs wait for a retry.
func (g *giveBack) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.slices) + len(g.feeders)
}

// retry gives back what it can and keeps the rest for the next call.
func (g *giveBack) retry(ctx context.Context, st *store.Store) {
	g.mu.Lock()
	slices, feeders := g.slices, g.feeders
	g.slices, g.feeders = nil, nil
	g.mu.Unlock()
	for _, h := range slices {
		if err := st.Slices().Release(ctx, h.job, h.c); err != nil {
			g.slice(h.job, h.c, err)
			continue
		}
		g.log.Info("slice given back after an outage", "job", h.job.Hex(), "slice", h.c.Num)
	}
	for _, h := range feeders {
		if err := h.f.Release(ctx); err != nil {
			g.feeder(h.job, h.f, err)
			continue
		}
		g.log.Info("slices claimed ahead given back after an outage", "job", h.job.Hex())
	}
}
