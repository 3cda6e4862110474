package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// rateAndETA describes a transfer that moved done of total units (unit
// names them, e.g. "lines") since start: the rate per second and the time
// left at that rate ("" until there is a rate to go by).
func rateAndETA(start time.Time, done, total int64, unit string, human func(int64) string) string {
	secs := time.Since(start).Seconds()
	if secs < 0.5 || done <= 0 {
		return ""
	}
	rate := float64(done) / secs
	text := human(int64(rate))
	if unit != "" {
		text += " " + unit
	}
	text += "/s"
	if left := total - done; total > 0 && left > 0 {
		text += ", " + humanDuration(time.Duration(float64(left)/rate*float64(time.Second))) + " left"
	}
	return text
}

// lineCounter counts the bytes and the lines written through it.
type lineCounter struct {
	w            io.Writer
	bytes, lines atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.bytes.Add(int64(n))
	c.lines.Add(int64(bytes.Count(p[:n], []byte{'\n'})))
	return n, err
}

// withProgress wraps a download so that a terminal on p shows the lines
// written against want (the records the job says the download holds: a
// header line makes it one more), the bytes, the rate and the time left.
// Nothing is shown on a pipe or a file.
func withProgress(fn func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error), p *progressLine, want int64) func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error) {
	if p == nil || !p.on {
		return fn
	}
	return func(ctx context.Context, client *rocketjob.Client, id string, w io.Writer) (int64, error) {
		c := &lineCounter{w: w}
		start := time.Now()
		show := func(force bool) {
			lines := c.lines.Load()
			extra := fmt.Sprintf("%s of %s lines, %s", commas(lines), commas(want), humanBytes(c.bytes.Load()))
			if r := rateAndETA(start, lines, want, "lines", commas); r != "" {
				extra += ", " + r
			}
			p.bar(force, "downloading", lines, want, extra)
		}
		stop := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					show(true)
				}
			}
		}()
		n, err := fn(ctx, client, id, c)
		close(stop)
		<-finished
		if err == nil {
			show(true)
		}
		p.done()
		return n, err
	}
}
