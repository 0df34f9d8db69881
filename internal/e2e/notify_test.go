package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/notify"
	"github.com/ferry-dev/ferry/internal/view"
)

func notifyPipeline(hook string) string {
	return fmt.Sprintf(`name: shop
notifications:
  - name: all
    url: http://%[1]s/all
    events: [promotion.succeeded, promotion.failed, promotion.rolled_back, approval.requested, gate.blocked]
environments:
  - name: dev
    gates:
      policies:
        - name: not-two
          expr: release.version != "2.0.0"
          message: 2.0.0 is withdrawn
    steps:
      - name: deploy
        exec:
          run: test "$FERRY_RELEASE" != 3.0.0
    notifications:
      - name: failures
        url: http://%[1]s/failures
        events: [promotion.failed, promotion.rolled_back]
`, hook)
}

// hookReceiver is a notification endpoint: it answers 503 to its first
// requests, then 200, and keeps what it accepted.
type hookReceiver struct {
	mu       sync.Mutex
	refuse   int
	requests int
	accepted []notify.Batch
	ids      []string // X-Ferry-Delivery of the accepted requests
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.refuse > 0 {
		h.refuse--
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	var b notify.Batch
	if err := json.Unmarshal(body, &b); err != nil || r.Header.Get(notify.HeaderDelivery) != b.Delivery {
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	h.accepted = append(h.accepted, b)
	h.ids = append(h.ids, r.Header.Get(notify.HeaderDelivery))
	w.WriteHeader(http.StatusNoContent)
}

// TestNotificationsSurviveOutageAndRestart promotes three releases while
// the notification endpoint is down (connection refused), crashes the
// server while every message is pending, brings the endpoint back
// answering 503 at first, restarts the server, and checks that the
// endpoint receives each message exactly once, in order per promotion,
// and that every promotion shows its deliveries as delivered.
func TestNotificationsSurviveOutageAndRestart(t *testing.T) {
	eachStore(t, testNotificationsSurviveOutageAndRestart)
}

func testNotificationsSurviveOutageAndRestart(t *testing.T, b backend) {
	hook := freePort(t) // nothing listens there yet
	s := startServer(t, b, "--notify-backoff", "200ms", "--notify-max-backoff", "1s")
	s.must("apply", "-f", s.writeFile("p.yaml", notifyPipeline(hook)))
	want := map[string][]string{} // promotion ID → endpoint/event, in order
	for _, c := range []struct {
		version string
		sent    []string
	}{
		{"1.0.0", []string{"all/promotion.succeeded"}},
		{"2.0.0", []string{"all/gate.blocked", "all/promotion.failed", "failures/promotion.failed"}},
		{"3.0.0", []string{"all/promotion.rolled_back", "failures/promotion.rolled_back"}},
	} {
		s.must("release", "create", "--pipeline", "shop", "--version", c.version, "--artifact", "a=x/a@"+digest(c.version))
		var p view.Promotion
		if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", c.version, "--to", "dev", "-o", "json")), &p); err != nil {
			t.Fatal(err)
		}
		s.waitEnded(p.ID)
		want[p.ID] = c.sent
	}

	// Every message is tried and waits for the endpoint.
	waitNotifications(t, s, want, func(n view.Notification) bool {
		return n.State == "pending" && n.Attempts >= 1 && strings.Contains(n.LastError, "connection refused")
	}, "pending after a refused attempt")
	s.kill9()

	rcv := &hookReceiver{refuse: 2}
	ln, err := net.Listen("tcp", hook)
	if err != nil {
		t.Fatalf("listen on %s: %v", hook, err)
	}
	srv := &http.Server{Handler: rcv, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	s.start()

	shown := waitNotifications(t, s, want, func(n view.Notification) bool {
		return n.State == "delivered" && n.FinishedAt != nil && n.Attempts >= 2
	}, "delivered")

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	got := map[string][]string{} // promotion → endpoint/event as received
	seqs := map[string][]int{}   // thread → seqs as received
	times := map[string]int{}    // message ID → times accepted
	for i, batch := range rcv.accepted {
		if rcv.ids[i] != batch.Delivery {
			t.Errorf("request %d: header %s, body delivery %s", i, rcv.ids[i], batch.Delivery)
		}
		thread := batch.Thread + "/" + batch.Endpoint
		for _, m := range batch.Messages {
			got[batch.Thread] = append(got[batch.Thread], batch.Endpoint+"/"+m.Event)
			seqs[thread] = append(seqs[thread], m.Seq)
			times[m.ID]++
		}
	}
	for id, ns := range shown {
		for _, n := range ns {
			if times[n.ID] != 1 {
				t.Errorf("message %s (%s to %s) was accepted %d times, want once", n.ID, n.Event, n.Endpoint, times[n.ID])
			}
		}
		var received []string
		for _, e := range []string{"all/", "failures/"} {
			for _, g := range got[id] {
				if strings.HasPrefix(g, e) {
					received = append(received, g)
				}
			}
		}
		if !slices.Equal(received, want[id]) {
			t.Errorf("promotion %s: received %v, want %v", id, received, want[id])
		}
	}
	for thread, ss := range seqs {
		for i, seq := range ss {
			if seq != i+1 {
				t.Errorf("thread %s arrived in the order %v, want 1, 2, …", thread, ss)
				break
			}
		}
	}
	if rcv.requests < len(rcv.accepted)+2 {
		t.Errorf("%d requests for %d accepted: the two refusals were not retried", rcv.requests, len(rcv.accepted))
	}
}

// waitNotifications waits until every promotion of want shows exactly the
// notifications want names, each satisfying ok, and returns them.
func waitNotifications(t *testing.T, s *server, want map[string][]string, ok func(view.Notification) bool, what string) map[string][]view.Notification {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out := map[string][]view.Notification{}
		done := true
		for id, sent := range want {
			p := s.promotion(id)
			var have []string
			for _, n := range p.Notifications {
				have = append(have, n.Endpoint+"/"+n.Event)
				done = done && ok(n)
			}
			// The promotion shows them in the order they were enqueued;
			// compare per endpoint, in order.
			done = done && sameEvents(have, sent)
			out[id] = p.Notifications
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications not all %s after 90s: %+v\nserver log:\n%s", what, out, s.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sameEvents reports whether have and want hold the same endpoint/event
// pairs, in the same order for each endpoint.
func sameEvents(have, want []string) bool {
	byEndpoint := func(l []string) map[string][]string {
		m := map[string][]string{}
		for _, x := range l {
			ep, _, _ := strings.Cut(x, "/")
			m[ep] = append(m[ep], x)
		}
		return m
	}
	h, w := byEndpoint(have), byEndpoint(want)
	if len(h) != len(w) {
		return false
	}
	for ep := range w {
		if !slices.Equal(h[ep], w[ep]) {
			return false
		}
	}
	return true
}
