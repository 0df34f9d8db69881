package step

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of a Capture.
const (
	// DefaultOutputLimit is how many bytes of output one attempt stores: 1 MiB.
	DefaultOutputLimit = 1 << 20
	// DefaultFlushInterval is how often buffered output is handed to the sink: 250ms.
	DefaultFlushInterval = 250 * time.Millisecond
	// FlushSize is how much buffered output makes a Capture hand it to the
	// sink at once, without waiting for the interval: 64 KiB.
	FlushSize = 64 << 10
)

// Redacted replaces every secret value in captured output.
const Redacted = "***"

// Capture is the writer a step's output goes to. It replaces secret values
// with "***", stores at most a limit of bytes, and hands the output to a sink
// in chunks while the step runs. It is safe for concurrent use, so a process's
// stdout and stderr may write to it at the same time.
//
// A secret split across two writes is still replaced: output that could be the
// beginning of a secret is held back until the following write decides it, or
// until Close. Output past the limit is dropped and counted; Close then
// appends exactly one line saying so:
//
//	[ferry: output truncated after 1048576 bytes; 5120 more bytes dropped]
//
// The limit applies to output after redaction and does not count that line.
// When the output is valid UTF-8, chunks and the truncation point never split
// a character.
type Capture struct {
	// sinkMu orders the chunks handed to sink; it is taken before mu.
	sinkMu sync.Mutex
	sink   func([]byte)

	mu        sync.Mutex
	secrets   [][]byte  // longest first
	maxLen    int       // length of the longest secret
	first     [256]bool // first bytes of secrets
	limit     int
	pending   []byte // written bytes that may start a secret, not yet redacted
	out       []byte // redacted output not yet handed to sink
	stored    int    // bytes kept under the limit
	dropped   int64  // bytes dropped past the limit
	truncated bool
	closed    bool

	stop chan struct{} // closed by Close to stop the flusher
	done chan struct{} // closed by the flusher when it returns
}

// NewCapture returns a Capture that keeps at most limit bytes of output
// (DefaultOutputLimit when limit <= 0), replaces every non-empty value of
// secrets, and hands output to sink at most every interval
// (DefaultFlushInterval when interval <= 0), as soon as FlushSize bytes are
// buffered, and on Close.
//
// sink is called from one goroutine at a time, in output order; it owns the
// chunk it receives and must not call back into the Capture. A nil sink
// discards the output. Close must be called to stop the Capture's flusher.
func NewCapture(limit int, secrets []string, interval time.Duration, sink func([]byte)) *Capture {
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	c := &Capture{limit: limit, sink: sink}
	for _, s := range secrets {
		if s == "" || slices.ContainsFunc(c.secrets, func(b []byte) bool { return string(b) == s }) {
			continue
		}
		c.secrets = append(c.secrets, []byte(s))
		c.first[s[0]] = true
		c.maxLen = max(c.maxLen, len(s))
	}
	slices.SortStableFunc(c.secrets, func(a, b []byte) int { return cmp.Compare(len(b), len(a)) })
	if sink != nil {
		c.stop = make(chan struct{})
		c.done = make(chan struct{})
		go c.flusher(interval)
	}
	return c
}

// Write redacts and stores p. It returns io.ErrClosedPipe after Close.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	if len(c.secrets) == 0 {
		c.emit(p)
	} else {
		c.pending = append(c.pending, p...)
		c.redact(false)
	}
	full := len(c.out) >= FlushSize
	c.mu.Unlock()
	if full {
		c.flush(false)
	}
	return len(p), nil
}

// Flush hands the output buffered so far to the sink, except bytes held back
// because they may be the beginning of a secret.
func (c *Capture) Flush() { c.flush(false) }

// Close hands all remaining output to the sink, followed by the truncation
// line if output was dropped, and stops the flusher. No sink call happens
// after Close returns. Close is idempotent and always returns nil.
func (c *Capture) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.redact(true)
	if c.truncated {
		c.out = fmt.Appendf(c.out, "\n[ferry: output truncated after %d bytes; %d more bytes dropped]\n", c.stored, c.dropped)
	}
	c.mu.Unlock()
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
	c.flush(true)
	return nil
}

func (c *Capture) flusher(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.flush(false)
		}
	}
}

// flush hands the buffered output to the sink. Unless final, it keeps an
// incomplete UTF-8 sequence at the end for the next chunk.
func (c *Capture) flush(final bool) {
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	c.mu.Lock()
	chunk := c.out
	c.out = nil
	if !final {
		if n := incompleteTail(chunk); n > 0 {
			c.out = append([]byte(nil), chunk[len(chunk)-n:]...)
			chunk = chunk[:len(chunk)-n]
		}
	}
	c.mu.Unlock()
	if len(chunk) > 0 && c.sink != nil {
		c.sink(chunk)
	}
}

// redact moves c.pending to c.out, replacing secrets. Unless final, it stops
// at a position where the rest of pending is a proper prefix of a secret and
// keeps that rest pending. c.mu is held.
func (c *Capture) redact(final bool) {
	buf := c.pending
	i, start := 0, 0 // start begins the literal run not yet emitted
	for i < len(buf) {
		if !c.first[buf[i]] {
			i++
			continue
		}
		rest := buf[i:]
		if !final && len(rest) < c.maxLen && c.mayStartSecret(rest) {
			break
		}
		if n := c.match(rest); n > 0 {
			c.emit(buf[start:i])
			c.emit([]byte(Redacted))
			i += n
			start = i
			continue
		}
		i++
	}
	c.emit(buf[start:i])
	c.pending = append(c.pending[:0], buf[i:]...)
}

// mayStartSecret reports whether b is a proper prefix of a secret.
func (c *Capture) mayStartSecret(b []byte) bool {
	for _, s := range c.secrets {
		if len(b) < len(s) && bytes.HasPrefix(s, b) {
			return true
		}
	}
	return false
}

// match returns the length of the longest secret b begins with, or 0.
func (c *Capture) match(b []byte) int {
	for _, s := range c.secrets {
		if bytes.HasPrefix(b, s) {
			return len(s)
		}
	}
	return 0
}

// emit appends redacted output to c.out within the limit and counts the
// rest as dropped. c.mu is held.
func (c *Capture) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	room := c.limit - c.stored
	if c.truncated || room <= 0 {
		c.truncated = true
		c.dropped += int64(len(b))
		return
	}
	if len(b) <= room {
		c.out = append(c.out, b...)
		c.stored += len(b)
		return
	}
	cut := room
	if !utf8.RuneStart(b[cut]) {
		// Do not keep half of a character that straddles the limit.
		for k := cut - 1; k >= 0 && k > cut-utf8.UTFMax; k-- {
			if utf8.RuneStart(b[k]) {
				if _, size := utf8.DecodeRune(b[k:]); size > 1 && k+size > cut {
					cut = k
				}
				break
			}
		}
	}
	c.out = append(c.out, b[:cut]...)
	c.stored += cut
	c.dropped += int64(len(b) - cut)
	c.truncated = true
}

// incompleteTail returns the length of an incomplete but so far valid UTF-8
// sequence at the end of b, or 0.
func incompleteTail(b []byte) int {
	for n := 1; n < utf8.UTFMax && n <= len(b); n++ {
		if utf8.RuneStart(b[len(b)-n]) {
			if utf8.FullRune(b[len(b)-n:]) {
				return 0
			}
			return n
		}
	}
	return 0
}
