package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Collections of the jobs database for server processes.
const (
	serversCollection  = "servers"
	commandsCollection = "server_commands"
)

// AllServers addresses a command to every server.
const AllServers = "*"

func (s *Store) servers() *mongo.Collection  { return s.jobsDB.Collection(serversCollection) }
func (s *Store) commands() *mongo.Collection { return s.jobsDB.Collection(commandsCollection) }

// Heartbeat writes a server's document. Only the server itself writes it (so
// FerretDB's non-atomic updates cannot lose a write); commands to a server go
// through SendCommand instead. It reports whether the document already existed:
// false after a rescuer declared the server dead and removed it.
func (s *Store) Heartbeat(ctx context.Context, srv *model.Server) (existed bool, err error) {
	err = retry(ctx, func() error {
		res, err := s.servers().ReplaceOne(ctx, bson.D{{Key: "_id", Value: srv.Name}}, srv, options.Replace().SetUpsert(true))
		if err == nil {
			existed = res.MatchedCount > 0
		}
		return err
	})
	return existed, err
}

// ListServers returns every registered server, ordered by name.
func (s *Store) ListServers(ctx context.Context) ([]model.Server, error) {
	list, err := findAll[model.Server](ctx, s.servers(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("listing servers: %w", err)
	}
	return list, nil
}

// GetServer reads one server's document.
func (s *Store) GetServer(ctx context.Context, name string) (*model.Server, error) {
	var srv model.Server
	err := s.servers().FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&srv)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("server %q: %w", name, model.ErrServerNotFound)
	}
	return &srv, err
}

// RemoveServer deletes a server's document if its heartbeat is still the one
// the caller saw, so a rescuer never removes a server that just came back.
func (s *Store) RemoveServer(ctx context.Context, name string, heartbeat time.Time) (bool, error) {
	filter := bson.D{{Key: "_id", Value: name}}
	if !heartbeat.IsZero() {
		filter = append(filter, bson.E{Key: "heartbeat_at", Value: heartbeat})
	}
	var n int64
	err := retry(ctx, func() error {
		res, err := s.servers().DeleteOne(ctx, filter)
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	return n > 0, err
}

// Command is a remote command to one server or to all (AllServers).
type Command struct {
	ID      bson.ObjectID `bson:"_id"`
	Server  string        `bson:"server"`
	Command string        `bson:"command"` // pause, resume, stop
	At      time.Time     `bson:"at"`
}

// SendCommand records a command; servers pick it up on their next heartbeat.
func (s *Store) SendCommand(ctx context.Context, server, command string) error {
	c := Command{ID: bson.NewObjectID(), Server: server, Command: command, At: time.Now().UTC().Truncate(time.Millisecond)}
	return retry(ctx, func() error {
		_, err := s.commands().InsertOne(ctx, c)
		if isDup(err) {
			return nil
		}
		return err
	})
}

// CommandsSince returns the commands for server (or all servers) sent at or
// after since, in the order they were sent. ObjectIDs from different
// processes are not ordered within a second, so callers remember which ids
// they applied rather than resuming after the last one.
func (s *Store) CommandsSince(ctx context.Context, server string, since time.Time) ([]Command, error) {
	filter := bson.D{
		{Key: "at", Value: bson.D{{Key: "$gte", Value: since}}},
		{Key: "server", Value: bson.D{{Key: "$in", Value: bson.A{server, AllServers}}}},
	}
	return findAll[Command](ctx, s.commands(), filter, options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}))
}

// PruneCommands deletes commands sent before cutoff.
func (s *Store) PruneCommands(ctx context.Context, cutoff time.Time) error {
	return retry(ctx, func() error {
		_, err := s.commands().DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
		return err
	})
}
