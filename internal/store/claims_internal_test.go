package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestOwnClaimsAfterALostAnswer: an insert of transition claims that goes
// again after a transient error finds the claims it wrote the first time
// as duplicates; those are its own (the same claimer, time, update and
// token), not another process's. Before, they were reported taken: a false
// conflict, and the job held by its own claim until rolled forward.
func TestOwnClaimsAfterALostAnswer(t *testing.T) {
	ctx := context.Background()
	s := openInternal(t)
	at := time.Now()
	update := bson.Binary{Data: []byte{1, 2, 3}}
	token := bson.NewObjectID()
	claim := func(id, by string, at time.Time, update bson.Binary) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "by", Value: by}, {Key: "at", Value: at}, {Key: "update", Value: update}, {Key: "token", Value: token}}
	}
	ours := []bson.D{ // as writeClaims stores them, with the insert's token
		claim("j1:1", "srv", at, update),                       // written by the first try
		claim("j2:1", "srv", at, update),                       // another server's
		claim("j3:1", "srv", at, update),                       // this server's, another transition
		claim("j4:1", "srv", at, update),                       // gone since
		claim("j5:1", "srv", at.Add(time.Millisecond), update), // not a duplicate
		claim("j6:1", "srv", at, update),                       // another worker's, alike but for the token
	}
	stored := []any{
		claim("j1:1", "srv", at, update),
		claim("j2:1", "other", at, update),
		claim("j3:1", "srv", at.Add(-time.Second), bson.Binary{Data: []byte{9}}),
		append(claim("j6:1", "srv", at, update)[:4], bson.E{Key: "token", Value: bson.NewObjectID()}),
	}
	if _, err := s.jobClaims().InsertMany(ctx, stored); err != nil {
		t.Fatal(err)
	}
	dup := []bool{true, true, true, true, false, true}
	if err := s.ownClaims(ctx, ours, dup); err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, true, true, false, true}; !slices.Equal(dup, want) {
		t.Fatalf("duplicates after reading back: %v, want %v (only the first is this insert's own)", dup, want)
	}
}

// TestDeepSweepClaimsArePruned: the hourly deep sweep's winner removes the
// claim of two hours ago, as the minute's sweep does, so that job_claims
// does not gain a document an hour for ever.
func TestDeepSweepClaimsArePruned(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	start := time.Now().Truncate(time.Hour)
	for h := range 4 {
		if won, err := s.ClaimDeepSweep(ctx, start.Add(time.Duration(h)*time.Hour)); err != nil || !won {
			t.Fatalf("hour %d: won %v, %v", h, won, err)
		}
	}
	var claims []struct {
		ID string `bson:"_id"`
	}
	cur, err := s.jobClaims().Find(ctx, bson.D{})
	if err == nil {
		err = cur.All(ctx, &claims)
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claims {
		got = append(got, c.ID)
	}
	slices.Sort(got)
	hour := start.Unix() / 3600
	want := []string{fmt.Sprintf("deepsweep:%d", hour+2), fmt.Sprintf("deepsweep:%d", hour+3)}
	if !slices.Equal(got, want) {
		t.Fatalf("claims after four hours: %v, want %v", got, want)
	}
}

// lossyDialer makes connections that, once armed, let the next command
// that holds every one of match run, read and drop its answer and break: a
// write whose answer is lost after it was applied.
type lossyDialer struct {
	match [][]byte
	armed atomic.Bool
}

// lossyClient connects to the package's database through d, with retryable
// writes off (the store's own retry is what is tested).
func lossyClient(t *testing.T, d *lossyDialer) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(dbtest.URI()).SetDialer(d).SetRetryWrites(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

type lossyConn struct {
	net.Conn
	d    *lossyDialer
	drop bool
}

func (d *lossyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	return &lossyConn{Conn: c, d: d}, err
}

func (c *lossyConn) Write(b []byte) (int, error) {
	matches := true
	for _, m := range c.d.match {
		matches = matches && bytes.Contains(b, m)
	}
	c.drop = c.drop || matches && c.d.armed.CompareAndSwap(true, false)
	return c.Conn.Write(b)
}

func (c *lossyConn) Read(b []byte) (int, error) {
	if !c.drop {
		return c.Conn.Read(b)
	}
	var h [4]byte // the reply's length
	if _, err := io.ReadFull(c.Conn, h[:]); err == nil {
		_, _ = io.CopyN(io.Discard, c.Conn, int64(binary.LittleEndian.Uint32(h[:]))-4)
	}
	_ = c.Conn.Close()
	return 0, io.ErrUnexpectedEOF
}

// TestWriteClaimsOneWinnerAfterALostAnswer: two workers of one server
// start a job from one version in the same millisecond (claims alike but
// for the insert's token). The first try inserts one and its answer is
// lost; the retry finds both as duplicates, and only the one written by
// this insert is its own: one winner, never two (the job would run twice).
func TestWriteClaimsOneWinnerAfterALostAnswer(t *testing.T) {
	ctx := context.Background()
	s := openInternal(t)
	d := &lossyDialer{match: [][]byte{[]byte("job_claims")}}
	s.jobsDB = lossyClient(t, d).Database(s.jobsDB.Name())
	claim := bson.D{{Key: "_id", Value: "j1:1"}, {Key: "by", Value: "srv"}, {Key: "at", Value: time.Now()}, {Key: "update", Value: bson.Binary{Data: []byte{1}}}}
	d.armed.Store(true)
	out := s.writeClaims(ctx, []bson.D{claim, claim})
	if d.armed.Load() {
		t.Fatal("no answer was lost")
	}
	if out[0] != nil || !errors.Is(out[1], errClaimTaken) {
		t.Fatalf("claims of one transition after a lost answer: %v, want the first won (written by the first try), the second taken", out)
	}
}

// TestWriteClaimsEachDecidedAlone: a claim refused for its own reason
// fails alone; the others of its batch are decided as if it were not there
// (before, every claim got its error, which also read as a duplicate when
// one was: a claim inserted was reported a conflict).
func TestWriteClaimsEachDecidedAlone(t *testing.T) {
	ctx := context.Background()
	s := openInternal(t)
	claim := func(id any) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "by", Value: "srv"}, {Key: "at", Value: time.Now()}}
	}
	if out := s.writeClaims(ctx, []bson.D{claim("a:1")}); out[0] != nil {
		t.Fatal(out[0])
	}
	out := s.writeClaims(ctx, []bson.D{claim("b:1"), claim("a:1"), claim(bson.A{1})}) // an array _id is refused
	if out[0] != nil || !errors.Is(out[1], errClaimTaken) || out[2] == nil || isDup(out[2]) {
		t.Fatalf("got %v, want nil, taken, a refusal", out)
	}
}
