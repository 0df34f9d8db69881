package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/notify"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is one POST the receiver got.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP endpoint that answers with the statuses it is
// given, in turn, then 200.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []request
	accepted []request
	// ok is signalled each time a request is answered 2xx.
	ok chan struct{}
}

// newReceiver starts a receiver; retryAfter, when set, is the Retry-After
// of its 503 answers.
func newReceiver(t *testing.T, retryAfter string, statuses ...int) *receiver {
	r := &receiver{statuses: statuses, ok: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		rq := request{header: req.Header.Clone(), body: body}
		r.got = append(r.got, rq)
		if status < 300 {
			r.accepted = append(r.accepted, rq)
		}
		r.mu.Unlock()
		if status == http.StatusServiceUnavailable && retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		if status >= 300 {
			io.WriteString(w, "endpoint down\n")
		} else {
			r.ok <- struct{}{}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() (got, accepted []request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...), append([]request(nil), r.accepted...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bundle struct {
	store store.Store
	clock *clock
	start time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	return &bundle{store: s, clock: &clock{t: start}, start: start}
}

func (b *bundle) worker(t *testing.T, change func(c *notify.Config)) *notify.Worker {
	t.Helper()
	cfg := notify.Config{Store: b.store, Owner: "test:1", Now: b.clock.Now, Jitter: func() float64 { return 0.5 },
		Logger:  slog.New(slog.DiscardHandler),
		Backoff: time.Second, MaxBackoff: 8 * time.Second, MaxAge: time.Hour, Timeout: 5 * time.Second,
		LookupEnv: func(string) (string, bool) { return "", false }}
	if change != nil {
		change(&cfg)
	}
	w, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// enqueue stores a promotion (once) and notifications of it to ep, one per event.
func (b *bundle) enqueue(t *testing.T, promotionID string, ep pipeline.Notification, events ...string) []store.Notification {
	t.Helper()
	var out []store.Notification
	err := b.store.Update(t.Context(), func(tx store.Tx) error {
		if _, err := tx.Promotion(t.Context(), promotionID); err != nil {
			p := &promotion.Promotion{ID: promotionID, Pipeline: "shop", Environment: "prod", Kind: promotion.KindPromote,
				ReleaseID: "r1", ReleaseVersion: "1.4.2", Revision: 1, State: promotion.Gating, Actor: "ann",
				CreatedAt: b.clock.Now(), UpdatedAt: b.clock.Now()}
			if err := tx.InsertPromotion(t.Context(), p); err != nil {
				return err
			}
		}
		for i, ev := range events {
			payload, _ := json.Marshal(notify.Event{Event: ev, At: b.clock.Now(), State: promotion.Succeeded,
				Reason: "reason " + ev, Promotion: notify.Promotion{ID: promotionID, Pipeline: "shop", Environment: "prod",
					Kind: promotion.KindPromote, Release: "1.4.2", Actor: "ann"}})
			n := &store.Notification{PromotionID: promotionID, Endpoint: ep, Event: ev, Key: ev + string(rune('a'+i)),
				Payload: payload, CreatedAt: b.clock.Now()}
			if _, err := tx.EnqueueNotification(t.Context(), n); err != nil {
				return err
			}
			out = append(out, *n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *bundle) notifications(t *testing.T, promotionID string) []store.Notification {
	t.Helper()
	var out []store.Notification
	if err := b.store.View(t.Context(), func(tx store.Tx) error {
		var err error
		out, err = tx.Notifications(t.Context(), promotionID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func deliverDue(t *testing.T, w *notify.Worker, want int) {
	t.Helper()
	n, err := w.DeliverDue(t.Context())
	if err != nil {
		t.Fatalf("DeliverDue: %v", err)
	}
	if n != want {
		t.Fatalf("DeliverDue tried %d threads, want %d", n, want)
	}
}

func decodeBatch(t *testing.T, r request) notify.Batch {
	t.Helper()
	var b notify.Batch
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("body is not a batch: %v\n%s", err, r.body)
	}
	return b
}

func jsonEndpoint(url string) pipeline.Notification {
	return pipeline.Notification{Name: "ops", URL: url, Events: pipeline.NotificationEvents,
		Headers: map[string]string{"X-Team": "payments"}}
}

// TestRetriesUntilAccepted: an endpoint that answers 503 twice gets the
// same batch three times, the waits between the attempts grow, and once it
// answered 200 nothing is sent again.
func TestRetriesUntilAccepted(t *testing.T) {
	b := setup(t)
	rcv := newReceiver(t, "1", http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	w := b.worker(t, nil)
	ns := b.enqueue(t, "p1", jsonEndpoint(rcv.srv.URL+"/hook"), pipeline.EventGateBlocked, pipeline.EventPromotionSucceeded)

	deliverDue(t, w, 1)
	got := b.notifications(t, "p1")
	for _, n := range got {
		if n.State != store.NotificationPending || n.Attempts != 1 || n.LastError != "status 503: endpoint down" {
			t.Fatalf("after a 503: %+v, want pending after 1 attempt with the status and body", n)
		}
	}
	// Not due before the backoff (1s drawn at half-way: 0.75s; Retry-After 1s wins).
	deliverDue(t, w, 0)
	b.clock.Add(999 * time.Millisecond)
	deliverDue(t, w, 0)
	b.clock.Add(time.Millisecond)
	deliverDue(t, w, 1) // 503 again; now 2s at half-way: 1.5s
	b.clock.Add(1499 * time.Millisecond)
	deliverDue(t, w, 0)
	b.clock.Add(time.Millisecond)
	deliverDue(t, w, 1) // 200
	for i := 0; i < 3; i++ {
		b.clock.Add(time.Minute)
		deliverDue(t, w, 0)
	}

	all, accepted := rcv.requests()
	if len(all) != 3 || len(accepted) != 1 {
		t.Fatalf("the endpoint got %d requests and accepted %d; want 3 and 1", len(all), len(accepted))
	}
	id := all[0].header.Get(notify.HeaderDelivery)
	if want := "p1/ops/1-2"; id != want {
		t.Errorf("delivery ID = %q, want %q", id, want)
	}
	for i, r := range all {
		if r.header.Get(notify.HeaderDelivery) != id || r.header.Get(notify.HeaderIdempotencyKey) != id {
			t.Errorf("request %d: delivery %q, idempotency key %q; want %q for every retry of the batch", i,
				r.header.Get(notify.HeaderDelivery), r.header.Get(notify.HeaderIdempotencyKey), id)
		}
		if r.header.Get("X-Team") != "payments" || r.header.Get(notify.HeaderThread) != "p1" ||
			r.header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d headers: %v", i, r.header)
		}
	}
	batch := decodeBatch(t, accepted[0])
	if batch.Thread != "p1" || batch.Endpoint != "ops" || batch.Delivery != id || batch.Promotion.Release != "1.4.2" {
		t.Errorf("batch = %+v", batch)
	}
	if len(batch.Messages) != 2 || batch.Messages[0].ID != notify.MessageID(ns[0]) || batch.Messages[0].Seq != 1 ||
		batch.Messages[0].Event != pipeline.EventGateBlocked || batch.Messages[1].Seq != 2 ||
		batch.Messages[1].Event != pipeline.EventPromotionSucceeded || batch.Messages[1].Reason != "reason promotion.succeeded" {
		t.Errorf("messages = %+v", batch.Messages)
	}
	for _, n := range b.notifications(t, "p1") {
		if n.State != store.NotificationDelivered || n.Attempts != 3 || n.FinishedAt == nil {
			t.Errorf("after the 200: %+v, want delivered after 3 attempts", n)
		}
	}
}

// TestBackoffGrowsToTheCap: the waits double up to MaxBackoff.
func TestBackoffGrowsToTheCap(t *testing.T) {
	b := setup(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	w := b.worker(t, func(c *notify.Config) { c.Jitter = func() float64 { return 0.999999 } })
	b.enqueue(t, "p1", jsonEndpoint(down.URL), pipeline.EventPromotionFailed)
	deliverDue(t, w, 1)
	var waits []time.Duration
	for range 6 {
		wait := time.Duration(0)
		for {
			b.clock.Add(100 * time.Millisecond)
			wait += 100 * time.Millisecond
			if n, _ := w.DeliverDue(t.Context()); n == 1 {
				break
			}
		}
		waits = append(waits, wait)
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
}

// TestGivesUp: a message is failed once it is older than MaxAge, and at
// once when the endpoint refuses it for good.
func TestGivesUp(t *testing.T) {
	b := setup(t)
	gone := newReceiver(t, "", http.StatusGone)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer down.Close()
	w := b.worker(t, func(c *notify.Config) { c.MaxAge = 10 * time.Second })
	b.enqueue(t, "refused", jsonEndpoint(gone.srv.URL), pipeline.EventPromotionFailed)
	b.enqueue(t, "aging", jsonEndpoint(down.URL), pipeline.EventPromotionFailed)

	deliverDue(t, w, 2)
	if n := b.notifications(t, "refused")[0]; n.State != store.NotificationFailed || n.Attempts != 1 || !strings.HasPrefix(n.LastError, "status 410") {
		t.Errorf("refused for good: %+v, want failed after 1 attempt", n)
	}
	for b.notifications(t, "aging")[0].State == store.NotificationPending {
		b.clock.Add(time.Second)
		if _, err := w.DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if b.clock.Now().Sub(b.start) > time.Minute {
			t.Fatal("still pending after a minute")
		}
	}
	n := b.notifications(t, "aging")[0]
	if n.State != store.NotificationFailed || n.LastError != "status 500" || n.FinishedAt.Sub(b.start) < 10*time.Second {
		t.Errorf("aged out: %+v, want failed after 10s with the last error", n)
	}
}

// TestBatchesInThreadOrder: a thread's pending messages go out together, in
// order, at most BatchSize at a time; other threads go out separately.
func TestBatchesInThreadOrder(t *testing.T) {
	b := setup(t)
	rcv := newReceiver(t, "")
	w := b.worker(t, func(c *notify.Config) { c.BatchSize = 2 })
	ep := jsonEndpoint(rcv.srv.URL)
	b.enqueue(t, "p1", ep, pipeline.EventGateBlocked, pipeline.EventApprovalRequested, pipeline.EventPromotionSucceeded)
	b.enqueue(t, "p2", ep, pipeline.EventPromotionFailed)
	deliverDue(t, w, 2)
	deliverDue(t, w, 1)
	deliverDue(t, w, 0)
	_, accepted := rcv.requests()
	var p1 []string
	for _, r := range accepted {
		batch := decodeBatch(t, r)
		if batch.Thread == "p1" {
			for _, m := range batch.Messages {
				p1 = append(p1, m.ID)
			}
			if len(p1) == 2 && r.header.Get(notify.HeaderDelivery) != "p1/ops/1-2" {
				t.Errorf("first batch of p1 has delivery %q", r.header.Get(notify.HeaderDelivery))
			}
		}
	}
	if want := []string{"p1/ops/1", "p1/ops/2", "p1/ops/3"}; strings.Join(p1, ",") != strings.Join(want, ",") {
		t.Errorf("p1's messages arrived as %v, want %v", p1, want)
	}
	if len(accepted) != 3 {
		t.Errorf("%d requests, want 3 (two for p1, one for p2)", len(accepted))
	}
}

// TestSlackFormatAndSecretHeaders: a slack endpoint gets one Slack message
// per batch, and secret headers come from the environment at delivery; a
// missing one is an error retried later.
func TestSlackFormatAndSecretHeaders(t *testing.T) {
	b := setup(t)
	rcv := newReceiver(t, "")
	env := map[string]string{}
	var mu sync.Mutex
	w := b.worker(t, func(c *notify.Config) {
		c.LookupEnv = func(k string) (string, bool) { mu.Lock(); defer mu.Unlock(); v, ok := env[k]; return v, ok }
	})
	ep := pipeline.Notification{Name: "chat", URL: rcv.srv.URL, Events: pipeline.NotificationEvents, Format: pipeline.FormatSlack,
		SecretHeaders: map[string]string{"Authorization": "HOOK_AUTH"}}
	b.enqueue(t, "p1", ep, pipeline.EventPromotionRolledBack)

	deliverDue(t, w, 1)
	if n := b.notifications(t, "p1")[0]; n.State != store.NotificationPending ||
		n.LastError != "secret header Authorization: variable HOOK_AUTH is not set in the server's environment" {
		t.Fatalf("without the variable: %+v", n)
	}
	if all, _ := rcv.requests(); len(all) != 0 {
		t.Fatalf("a request was sent without its secret header")
	}
	mu.Lock()
	env["HOOK_AUTH"] = "Bearer s3cret"
	mu.Unlock()
	b.clock.Add(time.Minute)
	deliverDue(t, w, 1)
	_, accepted := rcv.requests()
	if len(accepted) != 1 || accepted[0].header.Get("Authorization") != "Bearer s3cret" {
		t.Fatalf("accepted %d requests, headers %v", len(accepted), accepted)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string                  `json:"type"`
			Text     struct{ Text string }   `json:"text"`
			Elements []struct{ Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(accepted[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text != "shop/prod 1.4.2 was rolled back" || len(msg.Blocks) != 2 || msg.Blocks[0].Type != "context" ||
		!strings.Contains(msg.Blocks[0].Elements[0].Text, "promotion `p1`") ||
		!strings.Contains(msg.Blocks[1].Text.Text, "reason promotion.rolled_back") {
		t.Errorf("slack message = %s", accepted[0].body)
	}
	if strings.Contains(string(accepted[0].body), "s3cret") {
		t.Error("the secret is in the body")
	}
	for _, n := range b.notifications(t, "p1") {
		if strings.Contains(string(n.Payload), "s3cret") || strings.Contains(n.LastError, "s3cret") {
			t.Error("the secret was stored")
		}
	}
}

// TestRunDeliversAfterOutage runs the worker on a real clock with short
// waits: messages enqueued while the endpoint refuses arrive once it
// accepts, each once; Run returns when its context ends.
func TestRunDeliversAfterOutage(t *testing.T) {
	b := setup(t)
	rcv := newReceiver(t, "", http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	b.clock.t = time.Now()
	w := b.worker(t, func(c *notify.Config) {
		c.Now, c.Backoff, c.MaxBackoff, c.PollInterval = time.Now, 10*time.Millisecond, 40*time.Millisecond, 20*time.Millisecond
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	b.enqueue(t, "p1", jsonEndpoint(rcv.srv.URL), pipeline.EventGateBlocked)
	w.Kick()
	select {
	case <-rcv.ok:
	case <-time.After(30 * time.Second):
		t.Fatal("not delivered within 30s")
	}
	b.enqueue(t, "p1", jsonEndpoint(rcv.srv.URL), pipeline.EventApprovalRequested)
	w.Kick()
	select {
	case <-rcv.ok:
	case <-time.After(30 * time.Second):
		t.Fatal("the second message was not delivered within 30s")
	}
	cancel()
	<-done
	all, accepted := rcv.requests()
	if len(all) != 5 || len(accepted) != 2 {
		t.Fatalf("%d requests, %d accepted; want 5 and 2", len(all), len(accepted))
	}
	seen := map[string]int{}
	for _, r := range accepted {
		for _, m := range decodeBatch(t, r).Messages {
			seen[m.ID]++
		}
	}
	if seen["p1/ops/1"] != 1 || seen["p1/ops/2"] != 1 || len(seen) != 2 {
		t.Errorf("accepted messages %v, want p1/ops/1 and p1/ops/2 once each", seen)
	}
}

func TestConfigErrors(t *testing.T) {
	b := setup(t)
	for name, c := range map[string]notify.Config{
		"no store":        {Owner: "x"},
		"no owner":        {Store: b.store},
		"short lease":     {Store: b.store, Owner: "x", Timeout: time.Minute, Lease: time.Second},
		"cap below first": {Store: b.store, Owner: "x", Backoff: time.Minute, MaxBackoff: time.Second},
	} {
		if _, err := notify.New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}
