package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// Following a promotion.
const (
	// followPoll is the long-poll timeout of each request.
	followPoll = 30 * time.Second
	// followRetries is how many failed polls in a row follow tolerates while
	// the server restarts or is unreachable.
	followRetries = 8
	// followBackoff is the wait after the first failed poll; it doubles up to followMaxBackoff.
	followBackoff    = 500 * time.Millisecond
	followMaxBackoff = 10 * time.Second
)

// follow prints a promotion's progress to w until it ends and returns the
// final promotion. The error is an *endedError when it ended in any state
// but succeeded.
func follow(ctx context.Context, c *client.Client, p *view.Promotion, w io.Writer) (*view.Promotion, error) {
	t := newTracker(w, p)
	failures := 0
	backoff := followBackoff
	for !p.State.Terminal() {
		next, err := c.WaitPromotion(ctx, p.ID, p.Version, followPoll)
		if err != nil {
			if !transient(ctx, err) || failures >= followRetries {
				return p, fmt.Errorf("follow promotion %s: %w", p.ID, err)
			}
			failures++
			fmt.Fprintf(w, "(lost contact with the server: %v; retrying in %s)\n", err, backoff)
			timer := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				timer.Stop()
				return p, fmt.Errorf("follow promotion %s: %w", p.ID, ctx.Err())
			case <-timer.C:
			}
			backoff = min(2*backoff, followMaxBackoff)
			continue
		}
		failures, backoff = 0, followBackoff
		t.update(next)
		p = next
	}
	if p.State != promotion.Succeeded {
		return p, &endedError{id: p.ID, state: p.State, message: p.Message}
	}
	return p, nil
}

// transient reports whether a failed poll is worth repeating: the server
// could not be reached or was briefly unavailable.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return true
}

// tracker prints what changed between two views of a promotion: one line per
// state change and per step start and finish, in the order they happened.
type tracker struct {
	w           io.Writer
	state       promotion.State
	transitions int
	steps       map[string]stepSeen
}

// stepSeen is what was last printed about a step.
type stepSeen struct {
	attempts int
	state    string
}

// event is one line to print and when it happened.
type event struct {
	at   time.Time
	line string
}

func newTracker(w io.Writer, p *view.Promotion) *tracker {
	t := &tracker{w: w, state: p.State, transitions: len(p.Transitions), steps: map[string]stepSeen{}}
	t.print(t.stepEvents(p), p)
	return t
}

// update prints the changes from the last view to p.
func (t *tracker) update(p *view.Promotion) {
	events := t.stepEvents(p)
	if len(p.Transitions) > t.transitions {
		for _, tr := range p.Transitions[t.transitions:] {
			events = append(events, event{tr.At, stateLine(tr.From, tr.To, tr.Reason)})
		}
		t.transitions = len(p.Transitions)
	} else if p.State != t.state {
		events = append(events, event{p.UpdatedAt, stateLine(t.state, p.State, p.Message)})
	}
	t.state = p.State
	t.print(events, p)
}

// print prints events oldest first, then the outcome once p has ended.
func (t *tracker) print(events []event, p *view.Promotion) {
	for i := range events {
		if events[i].at.IsZero() {
			events[i].at = p.UpdatedAt
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	for _, e := range events {
		fmt.Fprintln(t.w, e.line)
	}
	if p.State.Terminal() {
		t.end(p)
	}
}

func stateLine(from, to promotion.State, reason string) string {
	line := fmt.Sprintf("%s → %s", from, to)
	if reason != "" {
		line += ": " + reason
	}
	return line
}

// stepEvents returns a line for each step attempt that started or finished
// since the last view. A step that started and finished in between gets both.
func (t *tracker) stepEvents(p *view.Promotion) []event {
	var events []event
	for _, s := range p.Steps {
		key := fmt.Sprintf("%s/%d", s.Phase, s.Index)
		name := fmt.Sprintf("%s/%s", s.Phase, s.Name)
		seen := t.steps[key]
		if s.Attempts == 0 || (s.Attempts == seen.attempts && s.State == seen.state) {
			continue
		}
		if s.Attempts != seen.attempts {
			events = append(events, event{timeOf(s.StartedAt), fmt.Sprintf("%s attempt %d running", name, s.Attempts)})
		}
		if s.State != "running" && s.State != "pending" {
			events = append(events, event{timeOf(s.FinishedAt), stepOutcome(name, s)})
		}
		t.steps[key] = stepSeen{attempts: s.Attempts, state: s.State}
	}
	return events
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// stepOutcome describes how a step attempt ended.
func stepOutcome(name string, s view.Step) string {
	if s.State == "succeeded" {
		return name + " succeeded"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s attempt %d %s", name, s.Attempts, s.State)
	if s.ExitCode != nil {
		fmt.Fprintf(&b, " (exit code %d)", *s.ExitCode)
	}
	if s.Error != "" {
		b.WriteString(": " + s.Error)
	}
	return b.String()
}

func (t *tracker) end(p *view.Promotion) {
	if p.State == promotion.Succeeded {
		fmt.Fprintf(t.w, "promotion %s succeeded: %s %s is in %s\n", p.ID, p.Pipeline, p.Release.Version, p.Environment)
		return
	}
	line := fmt.Sprintf("promotion %s ended %s", p.ID, p.State)
	if p.Message != "" {
		line += ": " + p.Message
	}
	fmt.Fprintln(t.w, line)
}
