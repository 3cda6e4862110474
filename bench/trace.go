package main

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// CallStat sums the database calls of one kind seen during one phase.
type CallStat struct {
	// Command is the command name and the collection, with job ids replaced
	// by "*" ("insert slices_*_claims").
	Command string
	// Count is the number of calls; Errors how many answered ok:0 or with
	// write errors (a lost claim is a duplicate-key write error).
	Count, Errors int
	// Total is the summed latency seen between the client and the server;
	// Max the longest call.
	Total, Max time.Duration
	// BytesOut and BytesIn are the request and response sizes.
	BytesOut, BytesIn int64
	// First and Last are when the first and the last of these calls
	// started, counted from the start of the phase.
	First, Last time.Duration
}

// Wire protocol op codes the tracer understands.
const (
	opReply = 1
	opQuery = 2004
	opMsg   = 2013
)

// maxMessage bounds a wire message (MongoDB's is 48 MB).
const maxMessage = 64 << 20

// tracer is a TCP proxy in front of one database server that parses the wire
// protocol just enough to time every command, by name and collection.
type tracer struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	since time.Time // start of the current phase
	stats map[string]*CallStat
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startTracer proxies the single-host uri and returns the URI to use instead.
func startTracer(uri string) (*tracer, string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, "", fmt.Errorf("trace: %w", err)
	}
	if u.Scheme != "mongodb" || u.Host == "" || strings.Contains(u.Host, ",") {
		return nil, "", errors.New("trace: needs a single-host mongodb:// URI")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("trace: %w", err)
	}
	t := &tracer{ln: ln, target: u.Host, since: time.Now(), stats: map[string]*CallStat{}, conns: map[net.Conn]struct{}{}}
	t.wg.Go(t.accept)
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("directConnection", "true")
	u.RawQuery = q.Encode()
	return t, u.String(), nil
}

func (t *tracer) accept() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", t.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		t.mu.Lock()
		t.conns[c], t.conns[s] = struct{}{}, struct{}{}
		t.mu.Unlock()
		p := &proxyConn{t: t, pending: map[int32]pendingCall{}}
		t.wg.Go(func() { p.pipe(c, s, true); t.closePair(c, s) })
		t.wg.Go(func() { p.pipe(s, c, false); t.closePair(c, s) })
	}
}

func (t *tracer) closePair(a, b net.Conn) {
	_ = a.Close()
	_ = b.Close()
	t.mu.Lock()
	delete(t.conns, a)
	delete(t.conns, b)
	t.mu.Unlock()
}

// close stops the proxy and every connection through it.
func (t *tracer) close() {
	_ = t.ln.Close()
	t.mu.Lock()
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// take returns the calls seen since the last take, most expensive first,
// and starts counting afresh.
func (t *tracer) take() []CallStat {
	t.mu.Lock()
	stats := t.stats
	t.stats, t.since = map[string]*CallStat{}, time.Now()
	t.mu.Unlock()
	out := make([]CallStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b CallStat) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Command, b.Command))
	})
	return out
}

func (t *tracer) record(c pendingCall, d time.Duration, bytesIn int, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := max(0, c.start.Sub(t.since))
	s := t.stats[c.command]
	if s == nil {
		s = &CallStat{Command: c.command, First: at}
		t.stats[c.command] = s
	}
	s.Last = max(s.Last, at)
	s.Count++
	s.Total += d
	s.Max = max(s.Max, d)
	s.BytesOut += int64(c.bytes)
	s.BytesIn += int64(bytesIn)
	if failed {
		s.Errors++
	}
}

type pendingCall struct {
	command string
	start   time.Time
	bytes   int
}

// proxyConn is one client connection; pending maps request ids to calls
// awaiting their reply.
type proxyConn struct {
	t       *tracer
	mu      sync.Mutex
	pending map[int32]pendingCall
}

// pipe copies whole wire messages from src to dst, noting requests (toServer)
// or matching replies to them.
func (p *proxyConn) pipe(src io.Reader, dst io.Writer, toServer bool) {
	br := bufio.NewReaderSize(src, 64<<10)
	var buf []byte
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		size := int(binary.LittleEndian.Uint32(hdr[0:]))
		if size < 16 || size > maxMessage {
			return
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		msg := buf[:size]
		copy(msg, hdr[:])
		if _, err := io.ReadFull(br, msg[16:]); err != nil {
			return
		}
		reqID := int32(binary.LittleEndian.Uint32(hdr[4:]))
		respTo := int32(binary.LittleEndian.Uint32(hdr[8:]))
		op := int32(binary.LittleEndian.Uint32(hdr[12:]))
		now := time.Now()
		if toServer {
			name := commandName(op, msg[16:])
			p.mu.Lock()
			p.pending[reqID] = pendingCall{command: name, start: now, bytes: size}
			p.mu.Unlock()
		} else {
			p.mu.Lock()
			c, ok := p.pending[respTo]
			delete(p.pending, respTo)
			p.mu.Unlock()
			if ok {
				p.t.record(c, now.Sub(c.start), size, replyFailed(op, msg[16:]))
			}
		}
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// jobIDs matches the ObjectID hex in per-job collection names.
var jobIDs = regexp.MustCompile(`[0-9a-f]{24}`)

// commandName names a request "command collection".
func commandName(op int32, body []byte) string {
	var doc bson.Raw
	switch op {
	case opMsg:
		doc = msgBody(body)
	case opQuery:
		// flags, full collection name, skip, return, query
		if len(body) < 4 {
			break
		}
		rest := body[4:]
		i := strings.IndexByte(string(rest), 0)
		if i < 0 || len(rest) < i+1+8 {
			break
		}
		doc = rawDoc(rest[i+1+8:])
	}
	if doc == nil {
		return fmt.Sprintf("op%d", op)
	}
	first, err := doc.IndexErr(0)
	if err != nil {
		return fmt.Sprintf("op%d", op)
	}
	name := first.Key()
	coll, ok := first.Value().StringValueOK()
	if !ok {
		coll, _ = doc.Lookup("collection").StringValueOK()
	}
	if coll == "" {
		return name
	}
	return name + " " + jobIDs.ReplaceAllString(coll, "*")
}

// replyFailed reports a reply with ok:0 or write errors.
func replyFailed(op int32, body []byte) bool {
	var doc bson.Raw
	switch op {
	case opMsg:
		doc = msgBody(body)
	case opReply:
		if len(body) >= 20 {
			doc = rawDoc(body[20:])
		}
	}
	if doc == nil {
		return false
	}
	if ok, err := doc.LookupErr("ok"); err == nil {
		if f, isNum := ok.AsFloat64OK(); isNum && f != 1 {
			return true
		}
	}
	_, err := doc.LookupErr("writeErrors")
	return err == nil
}

// msgBody returns the kind-0 section (the command document) of an OP_MSG.
func msgBody(body []byte) bson.Raw {
	if len(body) < 5 {
		return nil
	}
	rest := body[4:] // flag bits
	for len(rest) > 0 {
		kind := rest[0]
		rest = rest[1:]
		if len(rest) < 4 {
			return nil
		}
		n := int(binary.LittleEndian.Uint32(rest))
		if n < 5 || n > len(rest) {
			return nil
		}
		if kind == 0 {
			return bson.Raw(rest[:n])
		}
		rest = rest[n:] // a kind-1 document sequence: its size covers it
	}
	return nil
}

func rawDoc(b []byte) bson.Raw {
	if len(b) < 5 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 5 || n > len(b) {
		return nil
	}
	return bson.Raw(b[:n])
}
