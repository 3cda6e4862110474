package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// roleLog records the roles a front end told OnRole.
type roleLog struct {
	mu    sync.Mutex
	roles []embedded.RoleChange
}

func (r *roleLog) add(rc embedded.RoleChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roles = append(r.roles, rc)
}

func (r *roleLog) all() []embedded.RoleChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]embedded.RoleChange(nil), r.roles...)
}

// startFrontEnd starts a front end on dsn that advertises 127.0.0.1 and
// the port it listens on; it is closed at the end of the test.
func startFrontEnd(t *testing.T, dsn string) (*embedded.FrontEnd, *roleLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log roleLog
	fe, err := embedded.StartFrontEnd(ctx, embedded.Options{PostgreSQL: dsn, Listen: "127.0.0.1:0"},
		embedded.FrontEndOptions{Advertise: "127.0.0.1", OnRole: log.add})
	if err != nil {
		t.Fatalf("StartFrontEnd: %v", err)
	}
	t.Cleanup(func() { _ = fe.Close() })
	if roles := log.all(); len(roles) != 1 || roles[0] != fe.Role() {
		t.Errorf("OnRole before StartFrontEnd returned: %+v, Role() = %+v", roles, fe.Role())
	}
	return fe, &log
}

// hostPort is the host:port of a mongodb:// URI.
func hostPort(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// waitRole waits until fe has role want, and returns it.
func waitRole(t *testing.T, fe *embedded.FrontEnd, want embedded.Role, within time.Duration) embedded.RoleChange {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rc := fe.Role()
		if rc.Role == want {
			return rc
		}
		select {
		case <-fe.Done():
			t.Fatalf("the front end stopped (%v) before becoming %s", fe.Err(), want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the front end is %+v, want %s", within, rc, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// insertN inserts documents _id from..to-1 into app.c, retrying transient
// errors (a connection that ended with the active front end).
func insertN(t *testing.T, c *mongo.Client, from, to int) {
	t.Helper()
	coll := c.Database("app").Collection("c")
	for i := from; i < to; i++ {
		var err error
		for range 50 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: fmt.Sprint("value ", i)}})
			cancel()
			if err == nil || mongo.IsDuplicateKeyError(err) { // a retry of an insert that was done
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
}

// ids returns the sorted _id values of app.c, retrying transient errors.
func ids(t *testing.T, c *mongo.Client) []int {
	t.Helper()
	var err error
	for range 50 {
		var got []int
		if got, err = readIDs(c); err == nil {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("reading app.c: %v", err)
	return nil
}

func readIDs(c *mongo.Client) ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := c.Database("app").Collection("c").Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID int    `bson:"_id"`
		V  string `bson:"v"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	seen := make([]bool, len(docs))
	for _, d := range docs {
		if d.ID < 0 || d.ID >= len(docs) || seen[d.ID] || d.V != fmt.Sprint("value ", d.ID) {
			return nil, fmt.Errorf("unexpected document %+v among %d", d, len(docs))
		}
		seen[d.ID] = true
	}
	out := make([]int, len(docs))
	for i := range out {
		out[i] = i
	}
	return out, nil
}

func wantIDs(t *testing.T, what string, c *mongo.Client, n int) {
	t.Helper()
	if got := ids(t, c); len(got) != n {
		t.Errorf("%s: %d documents (0..%d), want %d", what, len(got), len(got)-1, n)
	}
}

// TestPostgreSQLStandby: front ends on one PostgreSQL database. The first
// serves; the second is a standby that forwards its clients to the first,
// so both see the same documents. When the active front end stops, the
// standby takes over within seconds with the data; a third one started
// later forwards to the new active front end.
func TestPostgreSQLStandby(t *testing.T) {
	dsn := freshPG(t)
	ctx := context.Background()

	a, aRoles := startFrontEnd(t, dsn)
	ra := a.Role()
	if ra.Role != embedded.RoleServing || ra.Address != hostPort(t, a.URI()) || ra.Epoch < 1 {
		t.Fatalf("first front end: %+v, want serving at %s", ra, hostPort(t, a.URI()))
	}
	b, bRoles := startFrontEnd(t, dsn)
	rb := b.Role()
	if rb.Role != embedded.RoleStandby || rb.Address != ra.Address || rb.Epoch != ra.Epoch || !strings.Contains(rb.Active, " pid ") {
		t.Fatalf("second front end: %+v, want a standby forwarding to %s (epoch %d)", rb, ra.Address, ra.Epoch)
	}
	if a.URI() == b.URI() {
		t.Fatalf("both front ends listen on %s", a.URI())
	}

	ca := connect(t, a.URI())
	cb := connect(t, b.URI())
	defer cb.Disconnect(ctx)
	insertN(t, cb, 0, 50)  // through the standby
	insertN(t, ca, 50, 60) // directly
	wantIDs(t, "read through the active front end", ca, 60)
	wantIDs(t, "read through the standby", cb, 60)
	// Both reached the same FerretDB: one collection, one _id index.
	if _, err := cb.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("inserting _id 0 again through the standby: %v, want a duplicate key error", err)
	}
	_ = ca.Disconnect(ctx)

	// The active front end stops: the standby serves within seconds.
	stopped := time.Now()
	if err := a.Close(); err != nil {
		t.Fatalf("closing the active front end: %v", err)
	}
	rb = waitRole(t, b, embedded.RoleServing, 15*time.Second)
	t.Logf("the standby served %s after the active front end closed", time.Since(stopped).Round(time.Millisecond))
	if rb.Epoch != ra.Epoch+1 || rb.Address != hostPort(t, b.URI()) {
		t.Errorf("after the takeover: %+v, want serving at %s, epoch %d", rb, hostPort(t, b.URI()), ra.Epoch+1)
	}
	// The same client, through the same address, now served by b.
	wantIDs(t, "read after the takeover", cb, 60)
	insertN(t, cb, 60, 70)

	// A third front end forwards to the new active one.
	c3, _ := startFrontEnd(t, dsn)
	if r := c3.Role(); r.Role != embedded.RoleStandby || r.Address != rb.Address || r.Epoch != rb.Epoch {
		t.Fatalf("third front end: %+v, want a standby forwarding to %s (epoch %d)", r, rb.Address, rb.Epoch)
	}
	cc := connect(t, c3.URI())
	defer cc.Disconnect(ctx)
	wantIDs(t, "read through the third front end", cc, 70)
	insertN(t, cc, 70, 80)
	wantIDs(t, "read through the new active front end", cb, 80)

	if roles := aRoles.all(); len(roles) != 1 {
		t.Errorf("roles of the first front end: %+v", roles)
	}
	if roles := bRoles.all(); len(roles) < 2 || roles[0].Role != embedded.RoleStandby || roles[len(roles)-1] != rb {
		t.Errorf("roles of the second front end: %+v", roles)
	}
	select {
	case <-b.Done():
		t.Errorf("the new active front end stopped: %v", b.Err())
	default:
	}
}

// TestPostgreSQLStandbyFollowsNewActive: two standbys; when the active
// front end stops, one takes over and the other forwards to it, closing
// the connections it forwarded to the old one.
func TestPostgreSQLStandbyFollowsNewActive(t *testing.T) {
	dsn := freshPG(t)
	a, _ := startFrontEnd(t, dsn)
	b, _ := startFrontEnd(t, dsn)
	c, _ := startFrontEnd(t, dsn)
	cc := connect(t, c.URI())
	defer cc.Disconnect(context.Background())
	insertN(t, cc, 0, 10)

	// A raw connection through c, to the first active front end.
	raw, err := net.Dial("tcp", hostPort(t, c.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	ea := a.Role().Epoch
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var active, standby *embedded.FrontEnd
	deadline := time.Now().Add(15 * time.Second)
	for active == nil {
		switch {
		case b.Role().Role == embedded.RoleServing:
			active, standby = b, c
		case c.Role().Role == embedded.RoleServing:
			active, standby = c, b
		case time.Now().After(deadline):
			t.Fatalf("no standby took over: %+v, %+v", b.Role(), c.Role())
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := active.Role()
	if want.Epoch != ea+1 {
		t.Errorf("new active: %+v, want epoch %d", want, ea+1)
	}
	deadline = time.Now().Add(10 * time.Second)
	for r := standby.Role(); r.Address != want.Address || r.Epoch != want.Epoch; r = standby.Role() {
		if time.Now().After(deadline) {
			t.Fatalf("the other standby: %+v, want forwarding to %s (epoch %d)", r, want.Address, want.Epoch)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The connection forwarded to the old active front end was closed.
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := raw.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("reading the connection forwarded to the old active front end: %v, want it closed", err)
	}
	wantIDs(t, "read through the other standby", cc, 10)
}

// TestPostgreSQLStandbyNeedsAdvertise: an active front end that advertises
// no address (its listen address is loopback and Advertise is empty)
// cannot have standbys: another front end is refused, as with Start.
func TestPostgreSQLStandbyNeedsAdvertise(t *testing.T) {
	dsn := freshPG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var roles roleLog
	a, err := embedded.StartFrontEnd(ctx, embedded.Options{PostgreSQL: dsn}, embedded.FrontEndOptions{OnRole: roles.add})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if r := a.Role(); r.Role != embedded.RoleServing || r.Address != "" {
		t.Errorf("front end on loopback without Advertise: %+v, want serving with no address", r)
	}
	_, err = embedded.StartFrontEnd(ctx, embedded.Options{PostgreSQL: dsn}, embedded.FrontEndOptions{Advertise: "127.0.0.1"})
	if !errors.Is(err, embedded.ErrDatabaseInUse) || !strings.Contains(err.Error(), "advertises no address") || strings.Contains(err.Error(), "\n") {
		t.Errorf("second front end: %v, want ErrDatabaseInUse saying the first advertises no address", err)
	}
	// Start, which knows nothing of standbys, is refused as before.
	if _, err := embedded.Start(ctx, embedded.Options{PostgreSQL: dsn}); !errors.Is(err, embedded.ErrDatabaseInUse) {
		t.Errorf("Start beside a front end: %v, want ErrDatabaseInUse", err)
	}
}

// TestStandbyBadAdvertise needs no PostgreSQL: a bad Advertise is an
// error before connecting.
func TestStandbyBadAdvertise(t *testing.T) {
	ctx := context.Background()
	for _, adv := range []string{"0.0.0.0:27017", ":27017", "[::]", "host:port", "host:70000", "a b:1"} {
		_, err := embedded.StartFrontEnd(ctx, embedded.Options{PostgreSQL: "postgres://rj:Secret-PW1@127.0.0.1:1/x"}, embedded.FrontEndOptions{Advertise: adv})
		if err == nil || !strings.Contains(err.Error(), "advertised address") || strings.Contains(err.Error(), "Secret-PW1") {
			t.Errorf("Advertise %q: %v", adv, err)
		}
	}
	if _, err := embedded.StartFrontEnd(ctx, embedded.Options{Dir: t.TempDir()}, embedded.FrontEndOptions{}); err == nil {
		t.Error("a front end on a data folder started")
	}
}
