package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// closeTimeout bounds disconnecting from the database at exit.
const closeTimeout = 5 * time.Second

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine is a one-line progress display rewritten with "\r". It prints
// nothing unless its writer is a terminal.
type progressLine struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	last    time.Time
	width   int // length of the last line, to blank it out
	printed bool
}

func newProgress(w io.Writer) *progressLine {
	return &progressLine{w: w, on: isTerminal(w)}
}

// set shows text, at most ten times a second unless force.
func (p *progressLine) set(force bool, text string) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	pad := ""
	if n := len(text); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	p.width = len(text)
	fmt.Fprint(p.w, "\r"+text+pad)
	p.printed = true
}

// bar shows a labelled bar for done of total.
func (p *progressLine) bar(force bool, label string, done, total int64, extra string) {
	if p == nil || !p.on {
		return
	}
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = math.Min(1, float64(done)/float64(total))
	}
	n := int(frac * width)
	text := fmt.Sprintf("%-10s [%s%s] %5.1f%%", label, strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac)
	if extra != "" {
		text += "  " + extra
	}
	p.set(force, text)
}

// done ends the progress line (so the next message starts on a new line).
func (p *progressLine) done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprintln(p.w)
		p.printed, p.width = false, 0
	}
}

// commas formats n with thousands separators: 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanDuration rounds d for display: 1h2m3s, 4.2s, 120ms.
func humanDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// humanBytes formats a byte count: 12.3 MB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// timeString formats a time for tables and show: local time, seconds.
func timeString(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// ago formats the age of t: "3s ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return humanDuration(time.Since(t).Round(time.Second)) + " ago"
}

// truncate shortens s to n runes (with an ellipsis) and keeps it on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
