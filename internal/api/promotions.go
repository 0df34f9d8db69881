package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// abortRequest is the body of POST /api/v1/promotions/{id}/abort.
type abortRequest struct {
	Reason string `json:"reason"`
}

// promote asks for a release to be promoted into an environment.
func (s *server) promote(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req engine.PromoteRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if pr, ok := PrincipalFrom(r.Context()); ok {
		req.Principal = &pr
	}
	p, err := s.svc.Promote(r.Context(), act, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

// rollback asks for an environment to be rolled back.
func (s *server) rollback(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req engine.RollbackRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, err := s.svc.Rollback(r.Context(), act, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *server) abort(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req abortRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, err := s.svc.Abort(r.Context(), act, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// resume continues a promotion paused by an inconclusive check.
func (s *server) resume(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req abortRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, err := s.svc.Resume(r.Context(), act, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// listPromotions lists promotions, newest first, filtered by the query:
// pipeline, environment, state (repeatable or comma-separated), active,
// release (a version of the pipeline given) and limit.
func (s *server) listPromotions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.PromotionFilter{
		Pipeline:    q.Get("pipeline"),
		Environment: q.Get("environment"),
	}
	var err error
	if f.Limit, err = queryLimit(q); err != nil {
		return err
	}
	if f.Active, err = queryBool(q, "active"); err != nil {
		return err
	}
	for _, v := range queryList(q, "state") {
		st := promotion.State(v)
		if !st.Valid() {
			return invalidf("query parameter state: %q is not a state; use one of %s", v, stateNames())
		}
		f.States = append(f.States, st)
	}
	if version := q.Get("release"); version != "" {
		if f.Pipeline == "" {
			return invalidf("query parameter release needs pipeline: a release version belongs to a pipeline")
		}
		rel, err := s.svc.Release(r.Context(), f.Pipeline, version)
		if engine.CodeOf(err) == engine.CodeNotFound {
			return writeJSON(w, http.StatusOK, []struct{}{})
		}
		if err != nil {
			return err
		}
		f.ReleaseID = rel.ID
	}
	ps, err := s.svc.Promotions(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

// getPromotion returns a promotion. With ?waitVersion=N it first waits, up to
// ?timeout (default DefaultWaitTimeout, at most MaxWaitTimeout), until the
// promotion's version exceeds N; it returns the current promotion either way.
func (s *server) getPromotion(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	if !q.Has("waitVersion") {
		if q.Has("timeout") {
			return invalidf("query parameter timeout needs waitVersion")
		}
		return s.writePromotion(r.Context(), w, id)
	}
	after, err := queryInt64(q, "waitVersion")
	if err != nil {
		return err
	}
	timeout, err := queryTimeout(q)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	p, err := s.svc.WaitPromotion(ctx, id, after)
	waited := ctx.Err() != nil
	cancel()
	if err == nil {
		return writeJSON(w, http.StatusOK, p)
	}
	if !waited || r.Context().Err() != nil {
		return err
	}
	// The wait timed out: answer with the promotion as it is.
	return s.writePromotion(r.Context(), w, id)
}

func (s *server) writePromotion(ctx context.Context, w http.ResponseWriter, id string) error {
	p, err := s.svc.Promotion(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// getLogs returns a promotion's step output in order.
func (s *server) getLogs(w http.ResponseWriter, r *http.Request) error {
	logs, err := s.svc.Logs(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(logs))
}

func stateNames() string {
	names := make([]string, len(promotion.States))
	for i, st := range promotion.States {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
