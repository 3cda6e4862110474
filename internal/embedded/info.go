package embedded

import (
	"context"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A client only knows the address of the database. So that its errors can
// say where a full disk is, the embedded database describes itself in one
// document: database InfoDB, collection InfoCollection, _id InfoID, with the
// fields data_folder, host and pid (internal/store reads it by these names).
// On PostgreSQL there is no data folder: the document has backend
// "postgresql" and postgresql, the database's URL without its password,
// instead of data_folder (whose disk is PostgreSQL's to manage).
const (
	InfoDB         = "rocketjob_embedded"
	InfoCollection = "info"
	InfoID         = "server"
)

// writeInfo stores the description document, best effort (a full disk or a
// TLS listener, which needs a client certificate, leave it unwritten).
func writeInfo(ctx context.Context, uri string, b backend) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	host, _ := os.Hostname()
	doc := bson.D{{Key: "_id", Value: InfoID}}
	if b.pgDSN != "" {
		doc = append(doc, bson.E{Key: "backend", Value: "postgresql"}, bson.E{Key: "postgresql", Value: RedactDSN(b.pgDSN)})
	} else {
		doc = append(doc, bson.E{Key: "backend", Value: "sqlite"}, bson.E{Key: "data_folder", Value: b.dir})
	}
	doc = append(doc, bson.D{
		{Key: "host", Value: host},
		{Key: "pid", Value: os.Getpid()},
		{Key: "started_at", Value: time.Now().UTC()},
	}...)
	_, err = c.Database(InfoDB).Collection(InfoCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: InfoID}}, doc, options.Replace().SetUpsert(true))
	return err
}
