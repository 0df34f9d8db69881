package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/view"
)

// heartbeat is how often an idle event stream sends a comment, so that
// proxies keep it open and a dead client is noticed.
const heartbeat = 15 * time.Second

// hub fans the engine's change notifications out to the open event
// streams. A slow stream never blocks the engine: each one collects the
// IDs that changed since it last wrote.
type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  chan struct{}
	done    bool
}

// client is one open event stream.
type client struct {
	mu      sync.Mutex
	pending map[string]bool
	ready   chan struct{} // has a value while pending is not empty
}

func newHub() *hub {
	return &hub{clients: map[*client]struct{}{}, closed: make(chan struct{})}
}

// publish records that promotions changed; it never blocks.
func (h *hub) publish(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.mu.Lock()
		for _, id := range ids {
			c.pending[id] = true
		}
		c.mu.Unlock()
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

func (h *hub) join() *client {
	c := &client{pending: map[string]bool{}, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	return c
}

func (h *hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		h.done = true
		close(h.closed)
	}
}

// take returns the IDs that changed since the last take, sorted.
func (c *client) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	clear(c.pending)
	sort.Strings(ids)
	return ids
}

// events streams server-sent events to a page: "change" with the
// comma-separated IDs of promotions that changed, and, when the query names
// a promotion to follow (follow=ID&from=N), "log" events with its step
// output from chunk N on while it runs.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, v *visitor) error {
	rc := http.NewResponseController(w)
	follow := r.URL.Query().Get("follow")
	from := 0
	if follow != "" {
		p, err := d.svc.Promotion(r.Context(), follow)
		if err != nil {
			return err
		}
		if err := forbidden(v.Principal.Can(auth.ActionView, p.Pipeline, p.Environment)); err != nil {
			return err
		}
		if s := r.URL.Query().Get("from"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return errorStatus(http.StatusBadRequest, "query parameter from: %q is not a chunk number", s)
			}
			from = n
		}
	}
	c := d.hub.join()
	defer d.hub.leave(c)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: connected\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	var poll <-chan time.Time
	if follow != "" {
		t := time.NewTicker(d.cfg.LogPoll)
		defer t.Stop()
		poll = t.C
	}
	following := follow != ""
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-d.hub.closed:
			return nil
		case <-c.ready:
			if ids := c.take(); len(ids) > 0 {
				_, err = fmt.Fprintf(w, "event: change\ndata: %s\n\n", strings.Join(ids, ","))
			}
		case <-beat.C:
			_, err = fmt.Fprint(w, ": ping\n\n")
		case <-poll:
			if !following {
				continue
			}
			var ended bool
			from, ended, err = d.sendLogs(w, r, follow, from)
			if ended {
				following = false
			}
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return nil // the client went away
		}
	}
}

// logEvent is the data of a "log" event: output of one step attempt.
type logEvent struct {
	// Step is the ID of the element that shows the step's output.
	Step string `json:"step"`
	// N is the number of chunks sent so far, this one included.
	N    int    `json:"n"`
	Text string `json:"text"`
}

// sendLogs writes the chunks of a promotion's output from chunk from on, and
// returns the next chunk number and whether the promotion has ended (after
// which its output no longer grows).
func (d *Dashboard) sendLogs(w http.ResponseWriter, r *http.Request, id string, from int) (int, bool, error) {
	p, err := d.svc.Promotion(r.Context(), id)
	if err != nil {
		return from, true, nil
	}
	chunks, err := d.svc.Logs(r.Context(), id)
	if err != nil {
		d.log.Warn("dashboard: read logs", "promotion_id", id, "err", err)
		return from, false, nil
	}
	prev := map[string]int{}
	for i, c := range chunks {
		key := logKey(c)
		if i < from {
			prev[key] = c.Attempt
			continue
		}
		text := c.Text
		if a, seen := prev[key]; !seen || a != c.Attempt {
			text = attemptHeader(c.Attempt) + text
		}
		prev[key] = c.Attempt
		b, _ := json.Marshal(logEvent{Step: key, N: i + 1, Text: text})
		if _, err := fmt.Fprintf(w, "event: log\ndata: %s\n\n", b); err != nil {
			return from, false, err
		}
		from = i + 1
	}
	return from, p.State.Terminal(), nil
}

// logKey names the element showing one step's output.
func logKey(c view.LogChunk) string {
	return fmt.Sprintf("log-%s-%d", c.Phase, c.Index)
}

// attemptHeader starts the output of an attempt in a step's log.
func attemptHeader(attempt int) string {
	return fmt.Sprintf("── attempt %d ──\n", attempt)
}
