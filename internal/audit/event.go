// Package audit defines audit events: who did what, when, why, to what.
// Events are appended in the same transaction as the change they record and
// are never updated or deleted. They form a hash chain: each event carries
// its sequence number, the hash of the event before it and its own hash,
// computed over its canonical form (see Canonical, Link). Checkpoints sign
// the chain's head with an ed25519 key; Chain and Verify check a stored log
// or an export and name the first sequence number where it breaks.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is one audited action or state transition.
type Event struct {
	// Seq is the event's position in the log, assigned by the store from 1.
	Seq int64 `json:"seq"`
	// Time is when the change happened.
	Time time.Time `json:"time"`
	// Actor is who made the change: a user, or "system" for the engine.
	Actor string `json:"actor"`
	// Action names the change ("pipeline.apply", "promotion.transition").
	Action string `json:"action"`
	// Subject is what changed ("pipeline/shop", "promotion/ID").
	Subject string `json:"subject"`
	// PromotionID links the event to a promotion, when there is one.
	PromotionID string `json:"promotionId,omitempty"`
	// Reason is the reason given, when one was.
	Reason string `json:"reason,omitempty"`
	// Details holds action-specific facts as a JSON object.
	Details json.RawMessage `json:"details,omitempty"`
	// PrevHash is the Hash of the event before, GenesisHash for the first.
	// The store sets it when it appends the event.
	PrevHash string `json:"prevHash,omitempty"`
	// Hash is ComputeHash of the event; the store sets it.
	Hash string `json:"hash,omitempty"`
}

// ErrIncomplete marks an event that lacks a required field.
var ErrIncomplete = errors.New("incomplete audit event")

// Validate checks the required fields — actor, action, subject, time, and
// a reason for the actions that need one (NeedsReason) — and that details
// are a JSON value with a canonical form: a change that cannot be audited
// must not happen.
func (e *Event) Validate() error {
	if err := e.checkFields(); err != nil {
		return err
	}
	if NeedsReason(e.Action) && strings.TrimSpace(e.Reason) == "" {
		return fmt.Errorf("%w: reason is required (action %q)", ErrIncomplete, e.Action)
	}
	if len(e.Details) > 0 {
		if _, err := CanonicalJSON(e.Details); err != nil {
			return fmt.Errorf("%w: details of %q: %v", ErrIncomplete, e.Action, err)
		}
	}
	return nil
}

// checkFields checks the fields every event, of any version, has.
func (e *Event) checkFields() error {
	switch {
	case e.Actor == "":
		return fmt.Errorf("%w: actor is required (action %q)", ErrIncomplete, e.Action)
	case e.Action == "":
		return fmt.Errorf("%w: action is required", ErrIncomplete)
	case e.Subject == "":
		return fmt.Errorf("%w: subject is required (action %q)", ErrIncomplete, e.Action)
	case e.Time.IsZero():
		return fmt.Errorf("%w: time is required (action %q)", ErrIncomplete, e.Action)
	}
	return nil
}

// NeedsReason reports whether events of action must carry a reason: the
// decisions a person has to justify — breaking glass (promoting outside a
// window, skipping a soak), rejecting a promotion, reviewing an override.
func NeedsReason(action string) bool {
	switch action {
	case "promotion.break-glass", "promotion.reject", "promotion.review":
		return true
	}
	return false
}

// Details marshals v for Event.Details; it panics on values that cannot be marshalled,
// which would be a programming error.
func Details(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("audit details: %v", err))
	}
	return b
}
