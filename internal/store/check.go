package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// What a deployment check (`rocketjob check`) reads about the databases.

// DBInfo describes the server behind one database.
type DBInfo struct {
	Name       string    // database name
	Kind       string    // "FerretDB" or "MongoDB"
	Version    string    // the server's version
	ReplicaSet string    // replica set name; "" when standalone (or FerretDB)
	Members    int       // replica set members (hosts), 0 when standalone
	LocalTime  time.Time // the server's clock when asked (zero if it did not say)
	Embedded   *EmbeddedInfo
	// RunQueue (jobs database on FerretDB) is the database that holds the
	// run-queue segments of bulk enqueues (RunQueueDB), when it is not the
	// jobs database itself.
	RunQueue string
}

// EmbeddedInfo is the embedded database's description of itself (see
// internal/embedded's info document); nil on other servers.
type EmbeddedInfo struct {
	Backend    string `bson:"backend"`     // "sqlite" or "postgresql"
	DataFolder string `bson:"data_folder"` // SQLite only
	Host       string `bson:"host"`
	PostgreSQL string `bson:"postgresql"` // PostgreSQL only, without password
}

// Databases describes the jobs and the work database's servers.
func (s *Store) Databases(ctx context.Context) (jobs, work DBInfo, err error) {
	if jobs, err = describe(ctx, s.jobsClient, s.jobsDB, s.ferret); err != nil {
		return jobs, work, fmt.Errorf("jobs database: %w", err)
	}
	if s.runqDB.Name() != s.jobsDB.Name() {
		jobs.RunQueue = s.runqDB.Name()
	}
	if work, err = describe(ctx, s.workClient, s.workDB, s.workFerret); err != nil {
		return jobs, work, fmt.Errorf("work database: %w", err)
	}
	return jobs, work, nil
}

func describe(ctx context.Context, c *mongo.Client, db *mongo.Database, ferret bool) (DBInfo, error) {
	info := DBInfo{Name: db.Name(), Kind: "MongoDB"}
	var build struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return info, err
	}
	info.Version = build.Version
	if ferret {
		info.Kind = "FerretDB"
		if build.FerretDBVersion != "" && build.FerretDBVersion != "unknown" {
			info.Version = build.FerretDBVersion
		}
	}
	var hello struct {
		SetName   string    `bson:"setName"`
		Hosts     []string  `bson:"hosts"`
		LocalTime time.Time `bson:"localTime"`
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return info, err
	}
	info.ReplicaSet, info.Members, info.LocalTime = hello.SetName, len(hello.Hosts), hello.LocalTime
	var emb EmbeddedInfo
	err := c.Database(embeddedInfoDB).Collection(embeddedInfoColl).FindOne(ctx, bson.D{{Key: "_id", Value: embeddedInfoID}}).Decode(&emb)
	switch {
	case err == nil:
		info.Embedded = &emb
	case !errors.Is(err, mongo.ErrNoDocuments):
		return info, err
	}
	return info, nil
}

// ClaimStrategy returns the slice claim strategy this store uses and the one
// recorded in the work database ("" if none is, yet).
func (s *Store) ClaimStrategy(ctx context.Context) (using, recorded string, err error) {
	using = StrategyFindAndModify
	if _, ok := s.slices.(*ferretSlices); ok {
		using = StrategyInsert
	}
	var rec struct {
		Value string `bson:"value"`
	}
	err = s.workDB.Collection(settingsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: "claim_strategy"}}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return using, "", nil
	}
	return using, rec.Value, err
}

// MissingJobIndexes returns the names of the jobs collection's indexes
// that do not exist (Open creates them; a missing one means it could not).
func (s *Store) MissingJobIndexes(ctx context.Context) ([]string, error) {
	have, err := indexNames(ctx, s.jobs())
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, m := range s.jobIndexModels() {
		var o options.IndexOptions
		for _, set := range m.Options.List() {
			_ = set(&o)
		}
		if o.Name != nil && !slices.Contains(have, *o.Name) {
			missing = append(missing, *o.Name)
		}
	}
	return missing, nil
}
