package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Report is the outcome of verifying a log or an export.
type Report struct {
	// OK is true when nothing was found wrong.
	OK bool `json:"ok"`
	// Partial is true for a filtered export, which holds a selection of the
	// log's events: each event's hash and the links between consecutive
	// events are checked, but not that no event is missing.
	Partial bool `json:"partial,omitempty"`
	// Events is the number of events checked.
	Events int64 `json:"events"`
	// First and Last are the seqs of the first and last event checked.
	First int64 `json:"first,omitempty"`
	Last  int64 `json:"last,omitempty"`
	// Runs is the number of runs of consecutive events in a partial export.
	Runs int `json:"runs,omitempty"`
	// Head is the last event checked.
	Head Head `json:"head"`
	// SignaturesChecked is false when no public key was available, so
	// checkpoints were compared with the chain but their signatures not
	// checked.
	SignaturesChecked bool `json:"signaturesChecked"`
	// KeyIDs are the IDs of the trusted public keys.
	KeyIDs []string `json:"keyIds,omitempty"`
	// Checkpoints is the number of checkpoints that matched the chain (and
	// whose signatures verified, when SignaturesChecked).
	Checkpoints int `json:"checkpoints"`
	// Signed is the newest checkpoint that matched.
	Signed *Checkpoint `json:"signed,omitempty"`
	// Unsigned is the number of events after Signed (all of them when there
	// is none): a signature does not cover them yet.
	Unsigned int64 `json:"unsigned"`
	// Anchored is the number of events of a partial export that a matching
	// checkpoint covers through a run of consecutive events.
	Anchored int64 `json:"anchored,omitempty"`
	// Break is the first problem found.
	Break *Break `json:"break,omitempty"`
}

// Summary says in one line what the report found.
func (r *Report) Summary() string {
	if r.Break != nil {
		return fmt.Sprintf("BROKEN at seq %d: %s", r.Break.Seq, r.Break.Reason)
	}
	var s string
	switch {
	case r.Partial:
		s = fmt.Sprintf("OK (partial export): %d events in %d runs of consecutive seqs, each hash matches its event and consecutive events link; "+
			"a filtered export cannot show that no event is missing", r.Events, r.Runs)
	case r.Events == 0:
		s = "OK: the log is empty"
	default:
		s = fmt.Sprintf("OK: %d events, seq %d to %d, chain intact", r.Events, r.First, r.Last)
	}
	switch {
	case !r.SignaturesChecked:
		s += fmt.Sprintf("; %d checkpoints match the chain, signatures NOT checked (no public key)", r.Checkpoints)
	case r.Partial:
		s += fmt.Sprintf("; %d events covered by %d signed checkpoints", r.Anchored, r.Checkpoints)
	case r.Signed != nil:
		s += fmt.Sprintf("; signed up to seq %d at %s (%d checkpoints verified)", r.Signed.Seq, formatTime(r.Signed.Time), r.Checkpoints)
	default:
		s += "; no signed checkpoint"
	}
	if !r.Partial && r.Unsigned > 0 && r.SignaturesChecked {
		if r.Unsigned == 1 {
			s += "; 1 event after it is not covered by a signature yet"
		} else {
			s += fmt.Sprintf("; %d events after it are not covered by a signature yet", r.Unsigned)
		}
	}
	return s
}

// verifier checks a stream of events, in seq order, with the checkpoints
// that cover them.
type verifier struct {
	chain *Chain
	keys  []PublicKey
	// cps are the checkpoints not yet reached, by seq.
	cps []Checkpoint
	rep Report
	// runs and unanchored track the current run of a partial chain.
	runs       int
	unanchored int64
}

// newVerifier returns a verifier of a whole log (partial false) or of a
// selection; keys nil means signatures are not checked.
func newVerifier(partial bool, keys []PublicKey) *verifier {
	v := &verifier{keys: keys}
	if partial {
		v.chain = NewPartialChain()
	} else {
		v.chain = NewChain()
	}
	v.rep.Partial = partial
	v.rep.SignaturesChecked = keys != nil
	for _, k := range keys {
		v.rep.KeyIDs = append(v.rep.KeyIDs, k.ID())
	}
	return v
}

// checkpoints adds checkpoints to check as their seqs are reached.
func (v *verifier) checkpoints(cps ...Checkpoint) {
	v.cps = append(v.cps, cps...)
	slices.SortStableFunc(v.cps, func(a, b Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
}

// fail records b as the first problem; it returns false.
func (v *verifier) fail(b *Break) bool {
	if v.rep.Break == nil {
		v.rep.Break = b
	}
	return false
}

// event checks e; false means the chain broke (see rep.Break).
func (v *verifier) event(e *Event) bool {
	if v.rep.Break != nil {
		return false
	}
	if b := v.chain.Add(e); b != nil {
		return v.fail(b)
	}
	if v.rep.Events == 0 {
		v.rep.First = e.Seq
	}
	v.rep.Events++
	v.rep.Last = e.Seq
	if r := v.chain.Runs(); r != v.runs {
		v.runs, v.unanchored = r, 0
	}
	v.unanchored++
	for len(v.cps) > 0 && v.cps[0].Seq <= e.Seq {
		c := v.cps[0]
		v.cps = v.cps[1:]
		if c.Seq < e.Seq {
			if !v.rep.Partial {
				// A whole chain has every seq: a checkpoint below the
				// current event names no event.
				return v.fail(breakf(c.Seq, "checkpoint of seq %d names no event", c.Seq))
			}
			continue // its event is not in the selection
		}
		if !v.match(&c, e) {
			return false
		}
	}
	return true
}

// checkpointAfter checks c, read right after the last event added (as an
// export places it), or keeps it for the event it names when that comes
// later; false means the chain broke.
func (v *verifier) checkpointAfter(c Checkpoint) bool {
	if v.rep.Break != nil {
		return false
	}
	last := v.chain.Head()
	switch {
	case v.rep.Events > 0 && c.Seq == last.Seq:
		e := Event{Seq: last.Seq, Hash: last.Hash}
		return v.match(&c, &e)
	case c.Seq > last.Seq:
		v.checkpoints(c)
	case !v.rep.Partial:
		return v.fail(breakf(c.Seq, "checkpoint of seq %d is out of place, after seq %d", c.Seq, last.Seq))
	}
	return true
}

// match checks checkpoint c of event e: its signature, and that it names
// e's hash.
func (v *verifier) match(c *Checkpoint, e *Event) bool {
	if !v.checkpoint(c) {
		return false
	}
	if c.Hash != e.Hash {
		return v.fail(breakf(e.Seq, "hash %s differs from the checkpoint signed at %s (%s): the event or one before it was changed",
			short(e.Hash), formatTime(c.Time), short(c.Hash)))
	}
	v.rep.Checkpoints++
	cc := *c
	v.rep.Signed = &cc
	v.rep.Anchored += v.unanchored
	v.unanchored = 0
	return true
}

// checkpoint checks c's signature when keys were given.
func (v *verifier) checkpoint(c *Checkpoint) bool {
	if v.keys == nil {
		return true
	}
	if err := VerifyCheckpoint(c, v.keys); err != nil {
		return v.fail(&Break{Seq: c.Seq, Reason: err.Error()})
	}
	return true
}

// finish checks the checkpoints past the last event and, when head is not
// nil, that the log ends at the head the store recorded; it returns the
// report.
func (v *verifier) finish(head *Head) Report {
	last := v.chain.Head()
	if v.rep.Break == nil && !v.rep.Partial {
		for _, c := range v.cps {
			if !v.checkpoint(&c) {
				break
			}
			v.fail(breakf(last.Seq+1, "the log ends at seq %d, but a checkpoint signed at %s covers seq %d: events after seq %d were removed",
				last.Seq, formatTime(c.Time), c.Seq, last.Seq))
			break
		}
	}
	if v.rep.Break == nil && head != nil {
		switch {
		case head.Seq > last.Seq:
			v.fail(breakf(last.Seq+1, "the log ends at seq %d, but the store's head records seq %d: events after seq %d were removed",
				last.Seq, head.Seq, last.Seq))
		case head.Seq < last.Seq:
			v.fail(breakf(head.Seq+1, "the store's head records seq %d, but the log goes on to seq %d: events were added outside Ferry",
				head.Seq, last.Seq))
		case head.Hash != last.Hash:
			v.fail(breakf(head.Seq, "the store's head records hash %s for seq %d, the log has %s", short(head.Hash), head.Seq, short(last.Hash)))
		}
	}
	v.rep.Head = last
	v.rep.Runs = v.chain.Runs()
	if v.rep.Partial {
		v.rep.Unsigned = 0
	} else if v.rep.Signed != nil {
		v.rep.Unsigned = last.Seq - v.rep.Signed.Seq
	} else {
		v.rep.Unsigned = last.Seq
	}
	v.rep.OK = v.rep.Break == nil
	return v.rep
}

// Source is a stored audit log, read in one consistent snapshot.
type Source interface {
	// Events returns up to limit events with Seq above after, in Seq order.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	// Checkpoints returns the stored checkpoints in Seq order.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// Head returns the head the store recorded with its last append.
	Head(ctx context.Context) (Head, error)
}

// verifyPage is how many events Verify reads at a time.
const verifyPage = 1000

// Verify checks the whole stored log: the chain from the genesis, every
// stored checkpoint (signatures with keys; not checked when keys is nil), and
// that the log ends at the head the store recorded. An error is returned only
// when the log could not be read; what is wrong with the log is in the
// report.
func Verify(ctx context.Context, src Source, keys []PublicKey) (Report, error) {
	v := newVerifier(false, keys)
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	v.checkpoints(cps...)
	head, err := src.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	after := int64(0)
	for {
		events, err := src.Events(ctx, after, verifyPage)
		if err != nil {
			return Report{}, fmt.Errorf("verify audit log: %w", err)
		}
		for i := range events {
			if !v.event(&events[i]) {
				return v.finish(nil), nil
			}
		}
		if len(events) < verifyPage {
			break
		}
		after = events[len(events)-1].Seq
	}
	return v.finish(&head), nil
}
