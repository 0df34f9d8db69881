package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
)

// auditFilter reads the filter of an audit list or export from the query:
// promotion, actor, action, since and until (RFC 3339).
func auditFilter(r *http.Request) (store.AuditFilter, error) {
	q := r.URL.Query()
	f := store.AuditFilter{
		PromotionID: q.Get("promotion"),
		Actor:       q.Get("actor"),
		Action:      q.Get("action"),
	}
	var err error
	if f.Since, err = queryTime(q, "since"); err != nil {
		return f, err
	}
	if f.Until, err = queryTime(q, "until"); err != nil {
		return f, err
	}
	if !f.Until.IsZero() && !f.Since.IsZero() && !f.Until.After(f.Since) {
		return f, invalidf("query parameters since and until: until (%s) must be after since (%s)",
			q.Get("until"), q.Get("since"))
	}
	return f, nil
}

// listAudit lists audit events in sequence order, filtered by the query:
// promotion, actor, action, since and until, after (a sequence number, for
// paging) and limit.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if f.AfterSeq, err = queryInt64(q, "after"); err != nil {
		return err
	}
	if f.Limit, err = queryLimit(q); err != nil {
		return err
	}
	events, err := s.svc.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(events))
}

// auditKeys returns the public keys the server verifies checkpoints with:
// its own, or none when it signs none.
func (s *server) auditKeys() []audit.PublicKey {
	if s.signer == nil {
		return nil
	}
	return []audit.PublicKey{s.signer.PublicKey()}
}

// errNoStore is the problem of a handler that reads the store directly on a
// server configured without one (tests with authentication off).
func errNoStore() *problem {
	return problemf(http.StatusServiceUnavailable, codeUnavailable, "this server has no store to read the audit log from")
}

// verifyAudit verifies the whole stored chain and answers with the report;
// a broken chain is a report with ok false, not an error.
func (s *server) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	if s.store == nil {
		return errNoStore()
	}
	var rep audit.Report
	err := s.store.View(r.Context(), func(tx store.Tx) error {
		var err error
		rep, err = audit.Verify(r.Context(), store.AuditSource(tx, store.AuditFilter{}), s.auditKeys())
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// ndjsonContentType is the media type of an export: JSON lines.
const ndjsonContentType = "application/x-ndjson"

// exportAudit streams an export: the whole log, or, with since or
// promotion, a partial one (see audit.ExportHeader.Partial).
func (s *server) exportAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	if f.Actor != "" || f.Action != "" || !f.Until.IsZero() {
		return invalidf("an export selects events by since and promotion only")
	}
	if s.store == nil {
		return errNoStore()
	}
	h := audit.ExportHeader{ExportedAt: s.now(), PromotionID: f.PromotionID,
		Partial: f.PromotionID != "" || !f.Since.IsZero()}
	if !f.Since.IsZero() {
		since := f.Since.UTC()
		h.Since = &since
	}
	started := false
	err = s.store.View(r.Context(), func(tx store.Tx) error {
		w.Header().Set("Content-Type", ndjsonContentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		started = true
		_, err := audit.Export(r.Context(), store.AuditSource(tx, f), w,
			audit.ExportOptions{Header: h, Signer: s.signer, Now: s.now()})
		return err
	})
	if err != nil && started {
		// The status is sent: the export ends without its end line, which
		// its verification reports.
		if !errors.Is(err, context.Canceled) {
			s.log.Error("export audit log", "err", err)
		}
		return nil
	}
	return err
}

// publicKeyInfo is the answer of GET /api/v1/audit/pubkey.
type publicKeyInfo struct {
	// PublicKey is the key that verifies the server's checkpoints, as
	// ferry audit verify --pubkey takes it.
	PublicKey string `json:"publicKey"`
	// KeyID names the key in checkpoints.
	KeyID string `json:"keyId"`
}

// errNoSigner is the problem of a server that signs no checkpoints.
func errNoSigner() *problem {
	return problemf(http.StatusNotFound, codeNotFound, "this server has no audit key: it signs no checkpoints")
}

func (s *server) auditPublicKey(w http.ResponseWriter, _ *http.Request) error {
	if s.signer == nil {
		return errNoSigner()
	}
	k := s.signer.PublicKey()
	return writeJSON(w, http.StatusOK, publicKeyInfo{PublicKey: k.String(), KeyID: k.ID()})
}

// createCheckpoint signs the chain's head now and stores the checkpoint; when
// the head has one already, it answers with that one.
func (s *server) createCheckpoint(w http.ResponseWriter, r *http.Request) error {
	if s.signer == nil {
		return errNoSigner()
	}
	if s.store == nil {
		return errNoStore()
	}
	var (
		c       audit.Checkpoint
		created bool
	)
	err := s.store.Update(r.Context(), func(tx store.Tx) error {
		created = false
		head, err := tx.AuditHead(r.Context())
		if err != nil {
			return err
		}
		if head.Seq == 0 {
			return problemf(http.StatusConflict, codeConflict, "the audit log is empty: there is no head to sign")
		}
		existing, err := tx.AuditCheckpoints(r.Context(), head.Seq, head.Seq)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			c = existing[0]
			return nil
		}
		c = s.signer.Sign(head, s.now())
		created = true
		return tx.PutAuditCheckpoint(r.Context(), &c)
	})
	if err != nil {
		return fmt.Errorf("checkpoint audit log: %w", err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, c)
}
