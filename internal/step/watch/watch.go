// Package watch runs the checks of a post-promotion watch window: all of
// them at once, each again and again, until the window ends or one fails.
package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
)

// Window is one run of a watch window's checks.
type Window struct {
	// Checks run together for the whole window.
	Checks []pipeline.Step
	// Until is when the window ends.
	Until time.Time
	// Every is the wait between two runs of an exec or http check.
	Every time.Duration
	// Drivers run the checks, by step kind.
	Drivers map[string]step.Driver
	// Now tells the time; time.Now when nil.
	Now func() time.Time
}

// Run runs the window's checks for req until Until. A prometheus or web
// check measures at its interval for the rest of the window (its count is
// raised to cover it); an exec or http check runs every Every. The first
// check to fail or to be inconclusive stops the others and decides the
// result; when the window ends with none failing, the result is OK. Each
// line of a check's output is written to req.Output prefixed with the
// check's name in brackets (see SplitLine).
//
// Exec checks run without req.Started: a watch check observes and changes
// nothing, so no process group needs reaping after a crash.
func (w Window) Run(ctx context.Context, req step.Request) step.Result {
	now := w.Now
	if now == nil {
		now = time.Now
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	if !w.Until.After(now()) {
		fmt.Fprintf(out, "watch window ended at %s\n", w.Until.UTC().Format(time.RFC3339))
		return step.Result{OK: true, Message: "watch window ended"}
	}
	fmt.Fprintf(out, "watching %d checks until %s\n", len(w.Checks), w.Until.UTC().Format(time.RFC3339))

	window, stop := context.WithDeadline(ctx, w.Until)
	defer stop()
	checks, cancel := context.WithCancel(window)
	defer cancel()
	var (
		mu     sync.Mutex
		first  *step.Result
		wg     sync.WaitGroup
		shared = &lockedWriter{w: out}
	)
	for _, c := range w.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := w.watch(checks, window, req, c, shared, now)
			if res.OK || res.Interrupted {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = &res
				cancel()
			}
		}()
	}
	wg.Wait()
	switch {
	case first != nil:
		return *first
	case ctx.Err() != nil:
		return step.Result{Interrupted: true, Message: "watch interrupted"}
	}
	fmt.Fprintf(out, "watch window ended at %s: every check passed\n", w.Until.UTC().Format(time.RFC3339))
	return step.Result{OK: true, Message: "watch window passed"}
}

// watch runs one check until the window ends. ctx ends when the window ends
// or another check failed; window ends only with the window.
func (w Window) watch(ctx, window context.Context, req step.Request, c pipeline.Step, out *lockedWriter, now func() time.Time) step.Result {
	driver, ok := w.Drivers[c.Kind()]
	if !ok {
		return step.Result{Message: fmt.Sprintf("%s: no driver for check kind %q", c.Name, c.Kind())}
	}
	lines := &prefixWriter{prefix: "[" + c.Name + "] ", w: out}
	defer lines.flush()
	every := w.Every
	if every <= 0 {
		every = pipeline.DefaultWatchEvery
	}
	for run := 1; ; run++ {
		r := req
		r.Step = stretch(c, w.Until.Sub(now()))
		r.Output = lines
		r.Started = nil
		res := driver.Run(ctx, r)
		switch {
		case res.Interrupted && errors.Is(window.Err(), context.DeadlineExceeded):
			return step.Result{OK: true}
		case res.Interrupted:
			return res
		case !res.OK:
			verdict := "failed"
			if res.Inconclusive {
				verdict = "inconclusive"
			}
			res.Message = fmt.Sprintf("check %s %s (run %d): %s", c.Name, verdict, run, res.Message)
			return res
		}
		// Passed: run again once it is time, unless the window ends first.
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(window.Err(), context.DeadlineExceeded) {
				return step.Result{OK: true}
			}
			return step.Result{Interrupted: true}
		case <-t.C:
		}
	}
}

// stretch returns c with a metric check's count raised so that its
// measurements cover the rest of the window, left.
func stretch(c pipeline.Step, left time.Duration) pipeline.Step {
	cover := func(m pipeline.Measure) pipeline.Measure {
		interval := m.Interval.D()
		if interval <= 0 {
			interval = time.Minute
		}
		n := int(math.Ceil(float64(left)/float64(interval))) + 1
		m.Count = max(m.Count, n)
		return m
	}
	switch {
	case c.Prometheus != nil:
		p := *c.Prometheus
		p.Measure = cover(p.Measure)
		c.Prometheus = &p
	case c.Web != nil:
		wc := *c.Web
		wc.Measure = cover(wc.Measure)
		c.Web = &wc
	}
	return c
}

// SplitLine splits a line of a watch's output into the check that wrote it
// and what it wrote; ok is false for the watch's own lines.
func SplitLine(line string) (check, rest string, ok bool) {
	if !strings.HasPrefix(line, "[") {
		return "", line, false
	}
	end := strings.Index(line, "] ")
	if end < 0 {
		return "", line, false
	}
	return line[1:end], line[end+2:], true
}

// lockedWriter serialises writes from the checks running together.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter writes whole lines, each prefixed, so that the lines of
// checks running together never interleave within a line.
type prefixWriter struct {
	prefix string
	w      io.Writer
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		i := bytes.IndexByte(p.buf.Bytes(), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := append([]byte(p.prefix), p.buf.Next(i+1)...)
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
	}
}

// flush writes a last unterminated line.
func (p *prefixWriter) flush() {
	if p.buf.Len() > 0 {
		_, _ = p.w.Write(append(append([]byte(p.prefix), p.buf.Bytes()...), '\n'))
		p.buf.Reset()
	}
}
