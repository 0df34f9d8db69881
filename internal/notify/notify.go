// Package notify delivers the notifications the engine writes to the
// store's outbox. A Worker claims the threads that are due — the pending
// messages of one promotion to one endpoint — POSTs each thread's messages
// as one batch, and records the outcome: delivered, retried later with
// exponential backoff and jitter, or given up on once too old or refused
// for good. Messages survive restarts in the store; delivery is at least
// once, with IDs that let a receiver drop the rare duplicate.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// Defaults for Config.
const (
	DefaultPollInterval = time.Second
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultMaxAge       = 24 * time.Hour
	DefaultTimeout      = 10 * time.Second
	DefaultBatchSize    = 20
	DefaultThreads      = 8
)

// Headers sent with every message.
const (
	// HeaderDelivery identifies the batch (see DeliveryID).
	HeaderDelivery = "X-Ferry-Delivery"
	// HeaderThread is the ID of the promotion the batch is about.
	HeaderThread = "X-Ferry-Thread"
	// HeaderIdempotencyKey carries the same value as HeaderDelivery.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// maxErrorBody is how much of a refusal's body is kept in the error.
const maxErrorBody = 200

// Config configures a Worker.
type Config struct {
	// Store holds the outbox. Required.
	Store store.Store
	// Owner names this worker in the claims it takes on threads. Required.
	Owner string
	// Client sends the messages. Defaults to a client without a timeout of
	// its own: each request gets Timeout.
	Client *http.Client
	// Logger receives a line per failed attempt. Defaults to slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// LookupEnv reads the server's environment variables that secret
	// headers name. Defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Jitter returns a number in [0, 1) that spreads retries out. Defaults
	// to a random number.
	Jitter func() float64
	// PollInterval is how often Run looks for due threads when nothing
	// wakes it. Defaults to 1 second.
	PollInterval time.Duration
	// Backoff is the wait before the first retry; it doubles with each
	// further attempt, up to MaxBackoff, and each wait is drawn between
	// half of it and all of it. Defaults to 5 seconds.
	Backoff time.Duration
	// MaxBackoff caps the wait between attempts. Defaults to 10 minutes.
	MaxBackoff time.Duration
	// MaxAge is how long a message is retried before it is given up on and
	// recorded as failed. Defaults to 24 hours.
	MaxAge time.Duration
	// Timeout bounds each POST. Defaults to 10 seconds.
	Timeout time.Duration
	// Lease is how long a claim on a thread lasts; a worker that dies while
	// delivering leaves the thread to others once it ends. Defaults to three
	// times Timeout; it must be longer than Timeout.
	Lease time.Duration
	// BatchSize caps the messages sent in one POST. Defaults to 20.
	BatchSize int
	// Threads is how many threads one round claims and delivers at once.
	// Defaults to 8.
	Threads int
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("notify: Store is required")
	}
	if c.Owner == "" {
		return errors.New("notify: Owner is required")
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LookupEnv == nil {
		c.LookupEnv = os.LookupEnv
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.Backoff, DefaultBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.MaxAge, DefaultMaxAge)
	def(&c.Timeout, DefaultTimeout)
	def(&c.Lease, 3*c.Timeout)
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Threads == 0 {
		c.Threads = DefaultThreads
	}
	switch {
	case c.PollInterval < 0 || c.Backoff < 0 || c.MaxBackoff < 0 || c.MaxAge < 0 || c.Timeout < 0:
		return errors.New("notify: durations must not be negative")
	case c.MaxBackoff < c.Backoff:
		return fmt.Errorf("notify: MaxBackoff %s is shorter than Backoff %s", c.MaxBackoff, c.Backoff)
	case c.Lease <= c.Timeout:
		return fmt.Errorf("notify: Lease %s must be longer than Timeout %s", c.Lease, c.Timeout)
	case c.BatchSize < 0 || c.Threads < 0:
		return errors.New("notify: BatchSize and Threads must not be negative")
	}
	return nil
}

// Worker delivers notifications from the outbox.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	kick chan struct{}
}

// New returns a worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1)}, nil
}

// Kick makes Run look for due threads now, for instance after a
// transaction enqueued notifications. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers due notifications until ctx ends, then returns once the
// deliveries under way are recorded.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := w.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("deliver notifications", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if n == w.cfg.Threads && err == nil {
			continue // there may be more
		}
		t.Reset(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
		}
	}
}

// DeliverDue claims up to Threads due threads, delivers them at once, and
// returns how many it tried.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	now := w.cfg.Now().UTC()
	var claimed []store.Notification
	err := w.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		claimed, err = tx.ClaimNotifications(ctx, w.cfg.Owner, now, now.Add(w.cfg.Lease), w.cfg.Threads)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("claim notifications: %w", err)
	}
	threads := map[[2]string][]store.Notification{}
	var order [][2]string
	for _, n := range claimed {
		k := [2]string{n.PromotionID, n.Endpoint.Name}
		if _, ok := threads[k]; !ok {
			order = append(order, k)
		}
		threads[k] = append(threads[k], n)
	}
	// A delivery under way is finished and recorded even when ctx ends:
	// its claim would otherwise hold the thread until the lease ends.
	dctx := context.WithoutCancel(ctx)
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, k := range order {
		wg.Go(func() { errs[i] = w.deliver(dctx, threads[k]) })
	}
	wg.Wait()
	return len(order), errors.Join(errs...)
}

// deliver POSTs a thread's first BatchSize pending notifications as one
// message and records the outcome.
func (w *Worker) deliver(ctx context.Context, pending []store.Notification) error {
	batch := pending[:min(len(pending), w.cfg.BatchSize)]
	first := batch[0]
	err := w.post(ctx, batch)
	at := w.cfg.Now().UTC()
	d := &store.Delivery{PromotionID: first.PromotionID, Name: first.Endpoint.Name, Owner: w.cfg.Owner, At: at}
	seqs := func(ns []store.Notification) []int64 {
		out := make([]int64, len(ns))
		for i, n := range ns {
			out[i] = n.Seq
		}
		return out
	}
	var refused *refusal
	switch {
	case err == nil:
		d.Delivered = seqs(batch)
	case errors.As(err, &refused) && refused.permanent():
		d.Failed, d.Error = seqs(batch), err.Error()
	default:
		d.Error = err.Error()
		attempts := 0
		for _, n := range batch {
			if at.Sub(n.CreatedAt) >= w.cfg.MaxAge {
				d.Failed = append(d.Failed, n.Seq)
			} else {
				d.Retry = append(d.Retry, n.Seq)
			}
			attempts = max(attempts, n.Attempts)
		}
		wait := w.backoff(attempts)
		if errors.As(err, &refused) && refused.retryAfter > wait {
			wait = min(refused.retryAfter, w.cfg.MaxBackoff)
		}
		d.RetryAt = at.Add(wait)
	}
	if err != nil {
		w.log.Warn("notification not delivered", "promotion_id", first.PromotionID, "endpoint", first.Endpoint.Name,
			"delivery", DeliveryID(batch), "err", err, "retry_at", d.RetryAt, "given_up", len(d.Failed))
	}
	if rerr := w.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.RecordDelivery(ctx, d) }); rerr != nil {
		return fmt.Errorf("record delivery %s: %w", DeliveryID(batch), rerr)
	}
	return nil
}

// backoff returns the wait after a failed attempt on messages that had
// failed attempts before: Backoff doubled that many times, capped at
// MaxBackoff, then drawn between half of it and all of it.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.Backoff
	for range attempts {
		if d >= w.cfg.MaxBackoff/2 {
			d = w.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d/2 + time.Duration(w.cfg.Jitter()*float64(d/2))
}

// refusal is an answer other than 2xx.
type refusal struct {
	status     int
	body       string
	retryAfter time.Duration
}

func (r *refusal) Error() string {
	if r.body == "" {
		return fmt.Sprintf("status %d", r.status)
	}
	return fmt.Sprintf("status %d: %s", r.status, r.body)
}

// permanent reports whether trying again cannot help: a client error
// other than a timeout, a conflict of timing, or too many requests.
func (r *refusal) permanent() bool {
	switch r.status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return r.status >= 400 && r.status < 500
}

// post sends batch to its endpoint.
func (w *Worker) post(ctx context.Context, batch []store.Notification) error {
	// The latest definition wins: a promotion moved to a newer revision
	// while it waited may have a new URL.
	ep := batch[len(batch)-1].Endpoint
	body, err := render(batch, ep)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(ep.Headers)) {
		req.Header.Set(k, ep.Headers[k])
	}
	for _, k := range slices.Sorted(maps.Keys(ep.SecretHeaders)) {
		v, ok := w.cfg.LookupEnv(ep.SecretHeaders[k])
		if !ok {
			return fmt.Errorf("secret header %s: variable %s is not set in the server's environment", k, ep.SecretHeaders[k])
		}
		req.Header.Set(k, v)
	}
	id := DeliveryID(batch)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry")
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderIdempotencyKey, id)
	req.Header.Set(HeaderThread, batch[0].PromotionID)
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &refusal{status: resp.StatusCode, body: strings.TrimSpace(strings.ToValidUTF8(string(text), "")),
		retryAfter: retryAfter(resp.Header.Get("Retry-After"), w.cfg.Now())}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
