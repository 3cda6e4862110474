package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
)

// The reference values come from running BENCH.md's definition with the
// usual JavaScript mulberry32 (Math.imul, ">>> 0" output) under Node.
func TestLinesFirstLines(t *testing.T) {
	want := []string{
		"rec0000000-2 lm tu7s1thi27puhtzzja6co;208d0146au 5gppc0hw4wq8o3d",
		"rec0000001-ashqd0rhlu0bpq64b7 v ",
		"rec0000002-ivj3nt,n3v0t6jui4pc4h,88bhwrvkl",
	}
	got, err := io.ReadAll(Lines(3))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != strings.Join(want, "\n")+"\n" {
		t.Fatalf("first lines:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestLinesDigest(t *testing.T) {
	cases := []struct {
		n    int
		want string
	}{
		{1000, "9caaaac8f0a58f09207f0e0fed249369093fcca7e29804a31c77e8cc96910ef2"},
		{100_000, "aea62800eac07f132c5f90f7c90ec158b794ccfeacb24057ab7dad8bb3e217d0"},
	}
	for _, c := range cases {
		h := sha256.New()
		// An odd buffer size, so lines straddle Read calls.
		if _, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{Lines(c.n)}, make([]byte, 997)); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("sha256 of Lines(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestLinesShape(t *testing.T) {
	const n = 50_000
	seen := map[int]int{}
	sc := bufio.NewScanner(Lines(n))
	i := 0
	for sc.Scan() {
		line := sc.Text()
		prefix := fmt.Sprintf("rec%07d-", i)
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("line %d = %q, want prefix %q", i, line, prefix)
		}
		body := line[len(prefix):]
		if len(body) < MinBody || len(body) > MaxBody {
			t.Fatalf("line %d has a body of %d characters, want %d..%d", i, len(body), MinBody, MaxBody)
		}
		if s := strings.Trim(body, alphabet); s != "" {
			t.Fatalf("line %d has characters %q outside the alphabet", i, s)
		}
		seen[len(body)]++
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("got %d lines, want %d", i, n)
	}
	// Every length occurs, about n/41 times each.
	for l := MinBody; l <= MaxBody; l++ {
		if c := seen[l]; c < n/41/2 || c > n/41*2 {
			t.Errorf("body length %d occurs %d times, want about %d", l, c, n/41)
		}
	}
}

func TestLinesStreams(t *testing.T) {
	// Reading 10M lines a few bytes at a time must not build them up front:
	// the first Read of a huge reader is instant and returns a prefix.
	r := Lines(10_000_000)
	p := make([]byte, 5)
	k, err := r.Read(p)
	if err != nil || string(p[:k]) != "rec00" {
		t.Fatalf("Read = %q, %v", p[:k], err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Read(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.1 {
		t.Errorf("Read allocates %.2f times per call, want none (steady state)", allocs)
	}
	// Beyond 9,999,999 the number just gets wider.
	g := newGenerator()
	g.i = 12_345_678
	if line := g.next(); !bytes.HasPrefix(line, []byte("rec12345678-")) {
		t.Errorf("line 12345678 = %q", line)
	}
}

func TestExpectedAndVerifier(t *testing.T) {
	const n = 3000
	in, err := io.ReadAll(Lines(n))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
	i := 0
	var out bytes.Buffer
	for rec := range Expected(n) {
		want := []byte(lines[i])
		if !bytes.Equal(rec, reverse(want)) {
			t.Fatalf("Expected line %d = %q, want %q", i, rec, want)
		}
		out.Write(rec)
		out.WriteByte('\n')
		i++
	}
	if i != n {
		t.Fatalf("Expected yielded %d lines, want %d", i, n)
	}

	// The verifier takes the output in any chunking.
	for _, chunk := range []int{1, 7, 64, 1 << 20} {
		v := newVerifier(n)
		data := out.Bytes()
		for len(data) > 0 {
			k := min(chunk, len(data))
			if _, err := v.Write(data[:k]); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			data = data[k:]
		}
		if err := v.done(); err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
	}

	// And rejects a wrong record, a missing one, an extra one.
	bad := bytes.Replace(out.Bytes(), []byte(strings.SplitN(out.String(), "\n", 3)[1]), []byte("x"), 1)
	if _, err := newVerifier(n).Write(bad); err == nil || !strings.Contains(err.Error(), "record 2 ") {
		t.Errorf("a wrong record 2: err = %v", err)
	}
	short := newVerifier(n + 1)
	_, _ = short.Write(out.Bytes())
	if err := short.done(); err == nil {
		t.Error("a missing record went unnoticed")
	}
	long := newVerifier(n - 1)
	if _, err := long.Write(out.Bytes()); err == nil {
		t.Error("an extra record went unnoticed")
	}
}
