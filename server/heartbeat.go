package server

import (
	"context"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// heartbeatLoop writes the server's heartbeat every interval and applies the
// commands sent to it since the last beat.
func (s *Server) heartbeatLoop(ctx context.Context) {
	started := time.Now().UTC().Truncate(time.Millisecond)
	seen := map[bson.ObjectID]time.Time{} // commands applied, by send time
	window := commandWindow * s.cfg.HeartbeatInterval
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for beats := 1; ; beats++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.pruneFeeders(ctx)
		existed, err := s.beat(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("heartbeat", "err", err)
			}
			continue
		}
		if !existed {
			s.log.Warn("this server had been declared dead by another server, which requeued its work: leaving that work to others")
			s.declaredDead()
		}
		s.giveBack.retry(ctx, s.store)
		// Commands are read over a window of recent send times (clocks of
		// other hosts may lag) and applied once each, in the order sent.
		since := time.Now().Add(-window)
		if since.Before(started) {
			since = started
		}
		cmds, err := s.store.CommandsSince(ctx, s.cfg.Name, since)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reading commands", "err", err)
			}
			continue
		}
		for _, c := range cmds {
			if _, done := seen[c.ID]; !done {
				seen[c.ID] = c.At
				s.apply(c.Command)
			}
		}
		for id, at := range seen {
			if at.Before(since) {
				delete(seen, id)
			}
		}
		if beats%pruneEvery == 0 {
			_ = s.store.PruneCommands(ctx, time.Now().Add(-commandRetention))
		}
	}
}

// Command bookkeeping.
const (
	commandWindow    = 10        // heartbeats over which commands are read
	pruneEvery       = 100       // heartbeats between deletions of old commands
	commandRetention = time.Hour // how long a command is kept
)

func (s *Server) apply(command string) {
	s.log.Info("command received", "command", command)
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

// beat writes the server document.
func (s *Server) beat(ctx context.Context) (bool, error) {
	state := model.ServerRunning
	switch {
	case s.stopping.Load():
		state = model.ServerStopping
	case s.paused.Load():
		state = model.ServerPaused
	}
	host, _ := os.Hostname()
	return s.store.Heartbeat(ctx, &model.Server{
		Name:        s.cfg.Name,
		State:       state,
		PID:         os.Getpid(),
		Host:        host,
		Workers:     s.cfg.Workers,
		Busy:        int(s.busy.Load()),
		StartedAt:   s.started(),
		HeartbeatAt: time.Now().UTC().Truncate(time.Millisecond),
		Version:     Version,

		HeartbeatInterval: s.cfg.HeartbeatInterval,
		DeadAfter:         s.cfg.DeadAfter,

		Processing:    s.processing(),
		WaitingForKey: s.waitingForKey(),
	})
}

func (s *Server) started() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.startedAt.IsZero() {
		s.startedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	return s.startedAt
}
