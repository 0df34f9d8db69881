package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExportFormat names the format of an export in its header line.
const ExportFormat = "ferry-audit-export/1"

// Line types of an export: one JSON object per line, with a "type" member.
const (
	LineHeader     = "header"
	LineEvent      = "event"
	LineCheckpoint = "checkpoint"
	LineEnd        = "end"
)

// ExportHeader is the first line of an export.
type ExportHeader struct {
	Format     string    `json:"format"`
	ExportedAt time.Time `json:"exportedAt"`
	// Partial is true when a filter selected the events: the export then
	// holds a selection of the log, which verifies event by event but
	// cannot show that none is missing.
	Partial bool `json:"partial"`
	// Since and PromotionID are the filter, when there is one.
	Since       *time.Time `json:"since,omitempty"`
	PromotionID string     `json:"promotionId,omitempty"`
}

// ExportEnd is the last line of an export: what it holds, so that an export
// cut short is noticed.
type ExportEnd struct {
	Events int64 `json:"events"`
	Head   Head  `json:"head"`
}

// Exporter writes an export: a header line, event lines in seq order, each
// followed by the lines of the checkpoints of its seq, and an end line.
type Exporter struct {
	w    *bufio.Writer
	enc  *json.Encoder
	n    int64
	last Head
}

// NewExporter writes h's line to w and returns an Exporter that writes the
// rest.
func NewExporter(w io.Writer, h ExportHeader) (*Exporter, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	x := &Exporter{w: bw, enc: enc}
	h.Format = ExportFormat
	h.ExportedAt = h.ExportedAt.UTC()
	return x, x.line(struct {
		Type string `json:"type"`
		ExportHeader
	}{LineHeader, h})
}

func (x *Exporter) line(v any) error {
	if err := x.enc.Encode(v); err != nil {
		return fmt.Errorf("write audit export: %w", err)
	}
	return nil
}

// Event writes an event line.
func (x *Exporter) Event(e *Event) error {
	x.n++
	x.last = Head{Seq: e.Seq, Hash: e.Hash}
	c := *e
	c.Time = c.Time.UTC()
	return x.line(struct {
		Type string `json:"type"`
		Event
	}{LineEvent, c})
}

// Checkpoint writes a checkpoint line; its seq is the last event's.
func (x *Exporter) Checkpoint(c *Checkpoint) error {
	return x.line(struct {
		Type string `json:"type"`
		Checkpoint
	}{LineCheckpoint, *c})
}

// Close writes the end line and flushes.
func (x *Exporter) Close() error {
	if err := x.line(struct {
		Type string `json:"type"`
		ExportEnd
	}{LineEnd, ExportEnd{Events: x.n, Head: x.last}}); err != nil {
		return err
	}
	if err := x.w.Flush(); err != nil {
		return fmt.Errorf("write audit export: %w", err)
	}
	return nil
}

// ErrNotExport is wrapped by the error of VerifyExport on input that is not
// an export.
var ErrNotExport = errors.New("not a Ferry audit export")

// maxLine bounds one line of an export.
const maxLine = 16 << 20

// VerifyExport reads an export and checks it: the chain of its events (the
// whole chain from the genesis, or, for a partial export, event by event),
// its checkpoints' signatures with keys (not checked when keys is nil), and
// that it was not cut short. An error means the input could not be read as
// an export; what is wrong with the log is in the report.
func VerifyExport(r io.Reader, keys []PublicKey) (Report, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		v      *verifier
		end    *ExportEnd
		lineNo int
	)
	for {
		b, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it.
			more := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) && len(more) <= maxLine {
				b, err = br.ReadSlice('\n')
				more = append(more, b...)
			}
			if len(more) > maxLine {
				return Report{}, fmt.Errorf("line %d: longer than %d bytes", lineNo+1, maxLine)
			}
			b = more
		}
		if len(bytes.TrimSpace(b)) > 0 {
			lineNo++
			if end != nil {
				return Report{}, fmt.Errorf("line %d: a line after the end line", lineNo)
			}
			var typ struct {
				Type string `json:"type"`
			}
			if jerr := json.Unmarshal(b, &typ); jerr != nil {
				return Report{}, fmt.Errorf("line %d: %w", lineNo, jerr)
			}
			if v == nil {
				var h struct {
					Type string `json:"type"`
					ExportHeader
				}
				if typ.Type != LineHeader || strictJSON(b, &h) != nil || h.Format != ExportFormat {
					return Report{}, fmt.Errorf("%w: line 1 is not a %s header", ErrNotExport, ExportFormat)
				}
				v = newVerifier(h.Partial, keys)
				continue
			}
			switch typ.Type {
			case LineEvent:
				var e struct {
					Type string `json:"type"`
					Event
				}
				if err := strictJSON(b, &e); err != nil {
					return Report{}, fmt.Errorf("line %d: event: %w", lineNo, err)
				}
				v.event(&e.Event)
			case LineCheckpoint:
				var c struct {
					Type string `json:"type"`
					Checkpoint
				}
				if err := strictJSON(b, &c); err != nil {
					return Report{}, fmt.Errorf("line %d: checkpoint: %w", lineNo, err)
				}
				v.checkpointAfter(c.Checkpoint)
			case LineEnd:
				var e struct {
					Type string `json:"type"`
					ExportEnd
				}
				if err := strictJSON(b, &e); err != nil {
					return Report{}, fmt.Errorf("line %d: end: %w", lineNo, err)
				}
				end = &e.ExportEnd
			default:
				return Report{}, fmt.Errorf("line %d: unknown line type %q (want %s, %s or %s)", lineNo, typ.Type,
					LineEvent, LineCheckpoint, LineEnd)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("read audit export: %w", err)
		}
	}
	if v == nil {
		return Report{}, fmt.Errorf("%w: it is empty", ErrNotExport)
	}
	// Checkpoints past the last event tell first; then the end line.
	rep := v.finish(nil)
	last := rep.Head
	switch {
	case rep.Break != nil:
	case end == nil:
		rep.Break = breakf(last.Seq+1, "the export has no end line: it was cut short after seq %d", last.Seq)
	case end.Events != rep.Events || end.Head.Seq != last.Seq || rep.Events > 0 && end.Head.Hash != last.Hash:
		rep.Break = breakf(last.Seq+1, "the end line counts %d events up to seq %d, the export holds %d up to seq %d: lines were removed or added",
			end.Events, end.Head.Seq, rep.Events, last.Seq)
	}
	rep.OK = rep.Break == nil
	return rep, nil
}

// strictJSON decodes b into v, refusing unknown members.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// ExportOptions says what Export writes.
type ExportOptions struct {
	// Header is the export's first line; its Partial field says whether
	// src holds a selection of the log (see NewPartialChain).
	Header ExportHeader
	// Signer, when set, checks the stored checkpoints with its public key
	// and, when the whole log verified, signs its last event in a final
	// checkpoint line (not stored), so that the export is covered to its
	// end.
	Signer *Signer
	// Now is the time of that final checkpoint.
	Now time.Time
}

// Export writes the events of src, each followed by the stored checkpoints of
// its seq, verifying them as it goes, and returns the report of that
// verification. src's Head is read only for a whole log.
func Export(ctx context.Context, src Source, w io.Writer, o ExportOptions) (Report, error) {
	var keys []PublicKey
	if o.Signer != nil {
		keys = []PublicKey{o.Signer.PublicKey()}
	}
	partial := o.Header.Partial
	v := newVerifier(partial, keys)
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("export audit log: %w", err)
	}
	v.checkpoints(cps...)
	bySeq := map[int64][]Checkpoint{}
	for _, c := range cps {
		bySeq[c.Seq] = append(bySeq[c.Seq], c)
	}
	var head Head
	if !partial {
		if head, err = src.Head(ctx); err != nil {
			return Report{}, fmt.Errorf("export audit log: %w", err)
		}
	}
	x, err := NewExporter(w, o.Header)
	if err != nil {
		return Report{}, err
	}
	after := int64(0)
	for {
		events, err := src.Events(ctx, after, verifyPage)
		if err != nil {
			return Report{}, fmt.Errorf("export audit log: %w", err)
		}
		for i := range events {
			e := &events[i]
			v.event(e)
			if err := x.Event(e); err != nil {
				return Report{}, err
			}
			for _, c := range bySeq[e.Seq] {
				if err := x.Checkpoint(&c); err != nil {
					return Report{}, err
				}
			}
		}
		if len(events) < verifyPage {
			break
		}
		after = events[len(events)-1].Seq
	}
	var rep Report
	if partial {
		rep = v.finish(nil)
	} else {
		rep = v.finish(&head)
	}
	if rep.OK && !partial && o.Signer != nil && rep.Events > 0 && len(bySeq[rep.Head.Seq]) == 0 {
		c := o.Signer.Sign(rep.Head, o.Now)
		if err := x.Checkpoint(&c); err != nil {
			return Report{}, err
		}
		rep.Checkpoints++
		rep.Signed = &c
		rep.Unsigned = 0
	}
	return rep, x.Close()
}
