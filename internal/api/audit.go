package api

import (
	"net/http"

	"github.com/ferry-dev/ferry/internal/store"
)

// listAudit lists audit events in sequence order, filtered by the query:
// promotion, actor, action, since (RFC 3339), after (a sequence number, for
// paging) and limit.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.AuditFilter{
		PromotionID: q.Get("promotion"),
		Actor:       q.Get("actor"),
		Action:      q.Get("action"),
	}
	var err error
	if f.Since, err = queryTime(q, "since"); err != nil {
		return err
	}
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
