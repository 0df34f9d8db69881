package store

import (
	"encoding/json"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
)

// NotificationState is where the delivery of a notification stands. It is
// persisted as a string.
type NotificationState string

// The states of a notification.
const (
	// NotificationPending: not delivered yet; it is tried until it is, or
	// until it is too old.
	NotificationPending NotificationState = "pending"
	// NotificationDelivered: the endpoint accepted it (a 2xx answer).
	NotificationDelivered NotificationState = "delivered"
	// NotificationFailed: given up on, after it grew too old or the
	// endpoint refused it for good.
	NotificationFailed NotificationState = "failed"
)

// Notification is one message owed to a notification endpoint about a
// promotion: a row of the outbox, written in the transaction of the change
// it reports. The notifications of one promotion to one endpoint (by name)
// form a thread, numbered from 1 and delivered in order.
type Notification struct {
	// Seq orders every notification; EnqueueNotification assigns it.
	Seq         int64  `json:"seq"`
	PromotionID string `json:"promotionId"`
	// Endpoint is the endpoint as the promotion's pipeline revision defines
	// it; its Name names the thread.
	Endpoint pipeline.Notification `json:"endpoint"`
	// Event is one of pipeline.NotificationEvents.
	Event string `json:"event"`
	// Key tells notifications of a thread apart: a thread holds at most one
	// notification per key, so that a change reported twice is sent once.
	Key string `json:"key"`
	// ThreadSeq numbers the notifications of the thread from 1, in the order
	// they were enqueued; EnqueueNotification assigns it.
	ThreadSeq int `json:"threadSeq"`
	// Payload is what the notification says, as JSON.
	Payload json.RawMessage   `json:"payload"`
	State   NotificationState `json:"state"`
	// Attempts counts the attempts to deliver it.
	Attempts int `json:"attempts"`
	// LastError is the error of the latest failed attempt, if any.
	LastError     string     `json:"lastError,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	// FinishedAt is when it was delivered or given up on.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Delivery is the outcome of one attempt to deliver notifications of one
// thread, recorded by RecordDelivery. Each notification listed counts one
// more attempt.
type Delivery struct {
	// PromotionID and Name name the thread.
	PromotionID string
	Name        string
	// Owner is the deliverer that claimed the thread.
	Owner string
	// At is when the attempt ended.
	At time.Time
	// Delivered lists the Seqs of the notifications the endpoint accepted.
	Delivered []int64
	// Retry lists those to try again at RetryAt, with Error.
	Retry []int64
	// Failed lists those given up on, with Error.
	Failed []int64
	// Error says why the attempt failed.
	Error string
	// RetryAt is when the thread is due again, when Retry is not empty.
	RetryAt time.Time
}
