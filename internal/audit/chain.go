package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// GenesisHash is the PrevHash of the first event: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Head is the end of the chain: the Seq and Hash of the last event, or 0 and
// GenesisHash when the log is empty.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Genesis returns the head of an empty log.
func Genesis() Head { return Head{Seq: 0, Hash: GenesisHash} }

// ComputeHash returns the hash of e: the lowercase hex SHA-256 of e.PrevHash
// (its 64 hex characters) followed by Canonical(e).
func ComputeHash(e *Event) (string, error) {
	c, err := Canonical(e)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(c)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Parts is the canonical form of an event split around the two values the
// store assigns when it links the event: for a PrevHash of hex digits,
// Canonical = A ‖ PrevHash ‖ B ‖ decimal Seq ‖ C. A store that assigns them in
// the database computes the hash there, as Hash does.
type Parts struct {
	A, B, C []byte
}

// CanonicalParts returns the parts of e's canonical form; e.Seq and
// e.PrevHash are not read.
func CanonicalParts(e *Event) (Parts, error) {
	a, err := appendHead(nil, e)
	if err != nil {
		return Parts{}, err
	}
	a = append(a, '"')
	b := appendMiddle([]byte{'"'}, e)
	return Parts{A: a, B: b, C: appendTail(nil, e)}, nil
}

// Hash returns the hash of the event with these parts, seq and prevHash.
func (p Parts) Hash(seq int64, prevHash string) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(p.A)
	h.Write([]byte(prevHash))
	h.Write(p.B)
	h.Write(strconv.AppendInt(nil, seq, 10))
	h.Write(p.C)
	return hex.EncodeToString(h.Sum(nil))
}

// Link makes e the event after head: it sets e.Seq, e.PrevHash and e.Hash,
// and returns the new head. It fails only when e's details have no
// canonical form, which Validate rules out.
func Link(head Head, e *Event) (Head, error) {
	e.Seq = head.Seq + 1
	e.PrevHash = head.Hash
	h, err := ComputeHash(e)
	if err != nil {
		e.Hash = ""
		return head, fmt.Errorf("link audit event %s on %s: %w", e.Action, e.Subject, err)
	}
	e.Hash = h
	return Head{Seq: e.Seq, Hash: h}, nil
}

// Break says where a chain stops verifying and why.
type Break struct {
	// Seq is the first sequence number at which the log is not what the
	// chain says it was: the event changed, missing, out of place, or not
	// matching its checkpoint.
	Seq int64 `json:"seq"`
	// Reason says what was found, for a person.
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", b.Seq, b.Reason)
}

func breakf(seq int64, format string, args ...any) *Break {
	return &Break{Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// Chain checks events one at a time, in the order they are stored or
// exported, against the chain they should form.
type Chain struct {
	head Head
	// partial allows gaps: see NewPartialChain.
	partial bool
	// runs counts the runs of consecutive events seen (partial chains).
	runs int
	// events counts the events added.
	events int64
}

// NewChain returns a Chain that expects a whole log: seq 1 first, chained to
// GenesisHash, then every seq in turn.
func NewChain() *Chain { return &Chain{head: Genesis()} }

// NewPartialChain returns a Chain for a selection of the log's events, in
// seq order with gaps: each event's hash is checked against its content,
// and consecutive events (seq n and n+1) must link. An event after a gap
// starts a new run, taken on trust as far as its PrevHash goes.
func NewPartialChain() *Chain { return &Chain{partial: true} }

// Head returns the last event checked: its seq and hash.
func (c *Chain) Head() Head { return c.head }

// Events returns the number of events added.
func (c *Chain) Events() int64 { return c.events }

// Runs returns the number of runs of consecutive events added: 1 for a
// whole log that is not empty.
func (c *Chain) Runs() int { return c.runs }

// Add checks that e follows the events added before and that its hash is
// the hash of its content. It returns the first problem found, naming the
// sequence number where the chain breaks.
func (c *Chain) Add(e *Event) *Break {
	want := c.head.Seq + 1
	switch {
	case e.Seq < want:
		return breakf(e.Seq, "seq %d follows seq %d: events out of order, duplicated or inserted", e.Seq, c.head.Seq)
	case e.Seq > want && !c.partial:
		return breakf(want, "event missing: seq %d follows seq %d (deleted?)", e.Seq, c.head.Seq)
	case e.Seq > want || c.events == 0 && c.partial:
		c.runs++ // a new run, whose first PrevHash is taken as it is
	case e.PrevHash != c.head.Hash:
		if c.head.Seq == 0 {
			return breakf(e.Seq, "prevHash %s is not the genesis hash", short(e.PrevHash))
		}
		return breakf(e.Seq, "prevHash %s is not the hash %s of seq %d: an event was changed, inserted or reordered",
			short(e.PrevHash), short(c.head.Hash), c.head.Seq)
	case c.events == 0:
		c.runs++
	}
	// The fields every event has; not the rules of the version that wrote
	// it (a reason required later), which are checked when it is written.
	if err := e.checkFields(); err != nil {
		return breakf(e.Seq, "%v", err)
	}
	h, err := ComputeHash(e)
	if err != nil {
		return breakf(e.Seq, "%v", err)
	}
	if h != e.Hash {
		return breakf(e.Seq, "hash %s does not match the event's content (%s): the event was changed", short(e.Hash), short(h))
	}
	c.head = Head{Seq: e.Seq, Hash: e.Hash}
	c.events++
	return nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
