package main

import (
	"bytes"
	"fmt"
	"io"
	"iter"
	"strconv"
)

// alphabet is the workload's character set (39 characters).
const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ,;"

// Seed is the mulberry32 seed of the workload.
const Seed = 42

// Line lengths of the workload: the "rec%07d-" prefix is followed by
// MinBody..MaxBody characters.
const (
	MinBody = 20
	MaxBody = MinBody + 40
)

// mulberry32 is the 32-bit generator the workload is defined with; next
// returns its successive uint32 outputs (before any scaling to [0, 1)).
type mulberry32 uint32

func (m *mulberry32) next() uint32 {
	*m += 0x6D2B79F5
	t := uint32(*m)
	t = (t ^ t>>15) * (t | 1)
	t ^= t + (t^t>>7)*(t|61)
	return t ^ t>>14
}

// generator produces the workload's lines in order. Lines depend on all
// earlier draws, so they can only be generated one after another.
type generator struct {
	rng  mulberry32
	i    int
	line []byte
}

func newGenerator() *generator {
	return &generator{rng: Seed, line: make([]byte, 0, 16+MaxBody)}
}

// next returns line i (without newline) and advances; the bytes are valid
// until the following call.
func (g *generator) next() []byte {
	b := append(g.line[:0], "rec"...)
	if g.i < 1e7 {
		b = append(b, "0000000"[:7-digits(g.i)]...)
	}
	b = strconv.AppendInt(b, int64(g.i), 10)
	b = append(b, '-')
	n := MinBody + int(g.rng.next()%41)
	for range n {
		b = append(b, alphabet[g.rng.next()%uint32(len(alphabet))])
	}
	g.i++
	g.line = b
	return b
}

// digits is the number of decimal digits of a non-negative i.
func digits(i int) int {
	n := 1
	for i >= 10 {
		i /= 10
		n++
	}
	return n
}

// reverse reverses b in place (the lines are ASCII, so bytes are characters)
// and returns it.
func reverse(b []byte) []byte {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// Lines returns a reader of the workload's first n lines, each ending in
// "\n". It generates them as it is read, so memory stays constant whatever n.
func Lines(n int) io.Reader {
	return &linesReader{g: newGenerator(), n: n}
}

type linesReader struct {
	g       *generator
	n       int
	pending []byte // the rest of the current line, newline included
}

func (r *linesReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(r.pending) == 0 {
			if r.g.i >= r.n {
				break
			}
			r.pending = append(r.g.next(), '\n')
			r.g.line = r.pending[:0] // reuse the grown buffer next time
		}
		k := copy(p, r.pending)
		p, r.pending, total = p[k:], r.pending[k:], total+k
	}
	if total == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return total, nil
}

// Expected yields the expected output of the workload's first n lines: each
// line reversed, without newline, in input order. The yielded bytes are only
// valid until the next iteration. It generates them as it goes.
func Expected(n int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		g := newGenerator()
		for range n {
			if !yield(reverse(g.next())) {
				return
			}
		}
	}
}

// verifier checks output records against Expected(n), in order. As an
// io.Writer it takes newline-terminated lines (a download); record takes one
// decoded record (the baseline).
type verifier struct {
	g       *generator
	n       int
	count   int
	partial []byte // an unterminated line carried between writes
	err     error
}

func newVerifier(n int) *verifier { return &verifier{g: newGenerator(), n: n} }

// record checks the next output record.
func (v *verifier) record(rec []byte) error {
	if v.err != nil {
		return v.err
	}
	if v.count >= v.n {
		v.err = fmt.Errorf("output has more than the %d records of the input", v.n)
		return v.err
	}
	want := reverse(v.g.next())
	if !bytes.Equal(rec, want) {
		v.err = fmt.Errorf("output record %d is %q, want %q", v.count+1, rec, want)
		return v.err
	}
	v.count++
	return nil
}

// Write checks the complete lines of p and keeps a trailing partial line for
// the next call.
func (v *verifier) Write(p []byte) (int, error) {
	n := len(p)
	if len(v.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			v.partial = append(v.partial, p...)
			return n, nil
		}
		v.partial = append(v.partial, p[:i]...)
		if err := v.record(v.partial); err != nil {
			return 0, err
		}
		v.partial, p = v.partial[:0], p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			v.partial = append(v.partial, p...)
			break
		}
		if err := v.record(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

// done reports whether exactly the n expected records were seen.
func (v *verifier) done() error {
	if v.err != nil {
		return v.err
	}
	if len(v.partial) > 0 {
		return fmt.Errorf("output ends with an unterminated line after record %d", v.count)
	}
	if v.count != v.n {
		return fmt.Errorf("output has %d records, want %d", v.count, v.n)
	}
	return nil
}
