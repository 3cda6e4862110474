package server

import (
	"context"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// The feeders: each job this server works on has one slice claimer (a
// store.Feeder) shared by its workers, created on first use and dropped when
// the job is no longer runnable here.

// feeder returns this server's claimer of job's slices, with the codec and
// CSV header its slices need. It fails when the job is encrypted with a key
// this server lacks: the server then leaves the job to others and says so in
// its heartbeat.
func (s *Server) feeder(job *model.Job) (*jobFeeder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.feeders[job.ID]; ok {
		return f, nil
	}
	codec, err := clientjob.Codec(s.client, public(job))
	if err == nil {
		job.Header, err = sliced.Header(s.client, public(job))
	}
	if err != nil {
		s.noKey[job.ID] = true
		return nil, err
	}
	delete(s.noKey, job.ID)
	f := &jobFeeder{Feeder: s.store.Slices().NewFeeder(job.ID, s.cfg.Name, job.SliceCount), codec: codec, header: job.Header}
	s.feeders[job.ID] = f
	return f, nil
}

// processing counts, by job, the slices this server's workers are on now.
func (s *Server) processing() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]int
	for id, f := range s.feeders {
		if n := f.processing.Load(); n > 0 {
			if m == nil {
				m = map[string]int{}
			}
			m[id.Hex()] = int(n)
		}
	}
	return m
}

// waitingForKey lists the jobs skipped for want of their key.
func (s *Server) waitingForKey() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.noKey {
		if _, ok := s.sel.current(id); ok {
			ids = append(ids, id.Hex())
		} else {
			delete(s.noKey, id)
		}
	}
	return ids
}

func (s *Server) dropFeeder(ctx context.Context, id bson.ObjectID) {
	s.mu.Lock()
	f, ok := s.feeders[id]
	delete(s.feeders, id)
	s.mu.Unlock()
	if ok {
		if err := f.Close(ctx); err != nil {
			s.giveBack.feeder(id, f.Feeder, err)
		}
	}
}

// dropStaleFeeder removes f from the feeders if it is still the job's.
func (s *Server) dropStaleFeeder(id bson.ObjectID, f *jobFeeder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feeders[id] == f {
		delete(s.feeders, id)
	}
}

// pruneFeeders closes the feeders of jobs that are no longer runnable (they
// completed, failed or were destroyed, possibly on another server) and have
// no slice in flight here, so their cursors do not linger.
func (s *Server) pruneFeeders(ctx context.Context) {
	s.mu.Lock()
	var stale []bson.ObjectID
	for id, f := range s.feeders {
		if _, ok := s.sel.current(id); !ok && f.inFlight.Load() == 0 && f.workers.Load() == 0 {
			stale = append(stale, id)
		}
	}
	s.mu.Unlock()
	for _, id := range stale {
		s.dropFeeder(ctx, id)
	}
}

// declaredDead is called when this server finds that another declared it
// dead and requeued its work: its workers leave the jobs whose slices they
// claimed (a fresh feeder claims anew), and the watcher cancels its simple
// jobs and hooks at its next pass (they no longer name this server).
func (s *Server) declaredDead() {
	s.mu.Lock()
	for _, f := range s.feeders {
		f.stale.Store(true)
	}
	s.mu.Unlock()
	s.sel.invalidate()
}

func (s *Server) closeFeeders(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.feeders {
		if err := f.Close(ctx); err != nil {
			s.log.Warn("giving back claimed slices at shutdown", "job", id.Hex(), "err", err)
		}
		delete(s.feeders, id)
	}
}

// jobFeeder is a job's slice claimer shared by this server's workers, with
// the count of slices in flight here.
type jobFeeder struct {
	store.Feeder
	codec      *encryption.Codec
	header     []string
	inFlight   atomic.Int32 // slices processing or waiting to be written
	processing atomic.Int32 // slices a worker is on now
	workers    atomic.Int32 // workers on the job here
	exhausted  atomic.Bool
	gone       atomic.Bool // the job was destroyed: results are dropped
	stale      atomic.Bool // this server was declared dead: its claims were requeued
	dropped    atomic.Bool // its slice collections were dropped after that
	// failedAt is the job version at which a slice of a stop_on_error job
	// had failed records here: this server's workers take no more of its
	// slices at that version (a retry runs at a later one).
	failedAt atomic.Int64
}
