package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/view"
)

// Gates is the part of the engine that decides on gated promotions.
type Gates interface {
	Approve(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)
	Reject(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)
	PendingApprovals(ctx context.Context, who auth.Principal) ([]view.Promotion, error)
	Plan(ctx context.Context, who auth.Principal, req engine.PlanRequest) (*view.Plan, error)
	Reviews(ctx context.Context) ([]view.Promotion, error)
	Review(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)
}

// commentRequest is the body of approve, reject and review.
type commentRequest struct {
	Comment string `json:"comment"`
}

// principal returns who makes r; authentication put it in the context.
func principal(r *http.Request) (auth.Principal, error) {
	if p, ok := PrincipalFrom(r.Context()); ok {
		return p, nil
	}
	act, err := actor(r)
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{User: act}, nil
}

// decide handles approve, reject and review: a comment on one promotion.
func (s *server) decide(do func(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		who, err := principal(r)
		if err != nil {
			return err
		}
		var req commentRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		p, err := do(r.Context(), who, r.PathValue("id"), req.Comment)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, p)
	}
}

func (s *server) listApprovals(w http.ResponseWriter, r *http.Request) error {
	who, err := principal(r)
	if err != nil {
		return err
	}
	ps, err := s.svc.PendingApprovals(r.Context(), who)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []view.Promotion{}
	}
	return writeJSON(w, http.StatusOK, ps)
}

func (s *server) getPlan(w http.ResponseWriter, r *http.Request) error {
	who, err := principal(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req := engine.PlanRequest{Pipeline: q.Get("pipeline"), Release: q.Get("release"), Environment: q.Get("environment"), Reason: q.Get("reason")}
	for name, dst := range map[string]*bool{"expedite": &req.Expedite, "overrideWindow": &req.OverrideWindow} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return invalidf("query parameter %s: %q is not true or false", name, v)
			}
			*dst = b
		}
	}
	for name, v := range map[string]string{"pipeline": req.Pipeline, "release": req.Release, "environment": req.Environment} {
		if v == "" {
			return invalidf("query parameter %s is required", name)
		}
	}
	plan, err := s.svc.Plan(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, plan)
}

func (s *server) listReviews(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.svc.Reviews(r.Context())
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []view.Promotion{}
	}
	return writeJSON(w, http.StatusOK, ps)
}

// planTarget asks for view on the environment a plan is about.
func planTarget(r *http.Request) (target, error) {
	q := r.URL.Query()
	return target{action: auth.ActionView, pipeline: q.Get("pipeline"), env: q.Get("environment")}, nil
}
