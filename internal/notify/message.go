package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// Event is what one notification says. The engine builds it in the
// transaction of the change it reports; the store keeps it as the
// notification's payload.
type Event struct {
	// Event is one of pipeline.NotificationEvents.
	Event     string    `json:"event"`
	At        time.Time `json:"at"`
	Promotion Promotion `json:"promotion"`
	// From and State are the promotion's state before and after the change.
	From  promotion.State `json:"from,omitempty"`
	State promotion.State `json:"state"`
	// Reason explains the change in words.
	Reason string `json:"reason,omitempty"`
	// Gates are the gates that held or refused the promotion (gate.blocked)
	// or the approvals it waits for (approval.requested).
	Gates []promotion.GateEvaluation `json:"gates,omitempty"`
}

// Promotion names the promotion a notification is about.
type Promotion struct {
	ID          string         `json:"id"`
	Pipeline    string         `json:"pipeline"`
	Environment string         `json:"environment"`
	Kind        promotion.Kind `json:"kind"`
	Release     string         `json:"release"`
	Actor       string         `json:"actor"`
}

// Batch is the body of a json-format POST: the pending messages of one
// thread — one promotion, one endpoint — sent together.
type Batch struct {
	// Delivery identifies the batch: the same messages give the same ID; it
	// is also sent as the X-Ferry-Delivery and Idempotency-Key headers.
	Delivery string `json:"delivery"`
	// Thread is the promotion's ID: every message about a promotion is in
	// its thread.
	Thread string `json:"thread"`
	// Endpoint is the endpoint's name.
	Endpoint  string    `json:"endpoint"`
	Promotion Promotion `json:"promotion"`
	// Messages are in thread order.
	Messages []Message `json:"messages"`
}

// Message is one notification in a batch.
type Message struct {
	// ID identifies the message for good, across retries and batches:
	// receivers drop a message whose ID they have seen.
	ID string `json:"id"`
	// Seq numbers the thread's messages from 1.
	Seq    int                        `json:"seq"`
	Event  string                     `json:"event"`
	At     time.Time                  `json:"at"`
	From   promotion.State            `json:"from,omitempty"`
	State  promotion.State            `json:"state"`
	Reason string                     `json:"reason,omitempty"`
	Gates  []promotion.GateEvaluation `json:"gates,omitempty"`
}

// MessageID returns the stable ID of a notification.
func MessageID(n store.Notification) string {
	return fmt.Sprintf("%s/%s/%d", n.PromotionID, n.Endpoint.Name, n.ThreadSeq)
}

// DeliveryID returns the ID of a batch of a thread's notifications, in order.
func DeliveryID(batch []store.Notification) string {
	first, last := batch[0], batch[len(batch)-1]
	if first.ThreadSeq == last.ThreadSeq {
		return MessageID(first)
	}
	return fmt.Sprintf("%s-%d", MessageID(first), last.ThreadSeq)
}

// render returns the body of a POST of batch in the endpoint's format.
func render(batch []store.Notification, ep pipeline.Notification) ([]byte, error) {
	b := Batch{Delivery: DeliveryID(batch), Thread: batch[0].PromotionID, Endpoint: ep.Name}
	for _, n := range batch {
		var ev Event
		if err := json.Unmarshal(n.Payload, &ev); err != nil {
			return nil, fmt.Errorf("notification %s: decode payload: %w", MessageID(n), err)
		}
		b.Promotion = ev.Promotion
		b.Messages = append(b.Messages, Message{ID: MessageID(n), Seq: n.ThreadSeq, Event: ev.Event, At: ev.At,
			From: ev.From, State: ev.State, Reason: ev.Reason, Gates: ev.Gates})
	}
	if ep.MessageFormat() == pipeline.FormatSlack {
		return json.Marshal(slackMessage(b))
	}
	return json.Marshal(b)
}

// slack is a Slack incoming-webhook message.
type slack struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// titles say each event in words.
var titles = map[string]string{
	pipeline.EventPromotionSucceeded:  "succeeded",
	pipeline.EventPromotionFailed:     "failed",
	pipeline.EventPromotionRolledBack: "was rolled back",
	pipeline.EventApprovalRequested:   "awaits approval",
	pipeline.EventGateBlocked:         "is held by a gate",
}

// slackMessage renders a batch as one Slack message: a line naming the
// promotion, which every message of its thread starts with, then one
// section per event.
func slackMessage(b Batch) slack {
	p := b.Promotion
	head := fmt.Sprintf("*%s* → *%s* · release `%s` · promotion `%s`", esc(p.Pipeline), esc(p.Environment), esc(p.Release), esc(p.ID))
	out := slack{Blocks: []slackBlock{{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: head}}}}}
	var lines []string
	for _, m := range b.Messages {
		title := titles[m.Event]
		if title == "" {
			title = m.Event
		}
		line := fmt.Sprintf("%s/%s %s %s", p.Pipeline, p.Environment, p.Release, title)
		lines = append(lines, line)
		text := fmt.Sprintf("*%s* (%s)", esc(line), m.Event)
		if m.Reason != "" {
			text += "\n" + esc(m.Reason)
		}
		for _, g := range m.Gates {
			text += fmt.Sprintf("\n• %s: %s — %s", esc(g.Name), g.Result, esc(g.Reason))
		}
		out.Blocks = append(out.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: text}})
	}
	out.Text = strings.Join(lines, "; ")
	return out
}

// esc escapes the characters Slack's mrkdwn gives a meaning.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
