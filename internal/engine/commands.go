package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// Apply validates a pipeline written in YAML and stores it as a new
// revision, unless it equals the latest one.
func (e *Engine) Apply(ctx context.Context, actor, filename string, source []byte) (view.ApplyResult, error) {
	if filename == "" {
		filename = "pipeline.yaml"
	}
	spec, err := pipeline.Parse(filename, source)
	if err != nil {
		var ve *pipeline.ValidationError
		if errors.As(err, &ve) {
			return view.ApplyResult{}, &Error{Code: CodeInvalid, Message: err.Error(), Details: ve.Problems}
		}
		return view.ApplyResult{}, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	rev := pipeline.NewRevision(spec, source)
	rev.CreatedBy = actor
	var created bool
	err = e.commit(ctx, func(t *txn) error {
		rev.CreatedAt = t.now
		var err error
		if created, err = t.tx.PutRevision(ctx, rev); err != nil {
			return fmt.Errorf("store pipeline %s: %w", spec.Name, err)
		}
		if !created {
			return nil
		}
		envs := make([]string, len(spec.Environments))
		for i, env := range spec.Environments {
			envs[i] = env.Name
		}
		return t.audit(actor, "pipeline.apply", "pipeline/"+spec.Name, "", "",
			map[string]any{"revision": rev.Number, "digest": rev.Digest, "environments": envs, "file": filename})
	})
	if err != nil {
		return view.ApplyResult{}, err
	}
	return view.ApplyResult{Pipeline: rev.Pipeline, Revision: rev.Number, Digest: rev.Digest, Created: created}, nil
}

// CreateRelease stores an immutable release. Creating the same version with
// the same content again returns the stored release and false; with other
// content it is a conflict naming the difference.
func (e *Engine) CreateRelease(ctx context.Context, actor string, r release.Release) (*release.Release, bool, error) {
	if err := r.Validate(); err != nil {
		return nil, false, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	var out *release.Release
	var created bool
	err := e.commit(ctx, func(t *txn) error {
		if _, err := t.tx.Revision(ctx, r.Pipeline, 0); err != nil {
			return notFound(err, "pipeline %q", r.Pipeline)
		}
		existing, err := t.tx.Release(ctx, r.Pipeline, r.Version)
		switch {
		case err == nil:
			if diff := release.Difference(existing, &r); diff != "" {
				return errorf(CodeConflict, "release %s of pipeline %s already exists with different content: %s", r.Version, r.Pipeline, diff)
			}
			out, created = existing, false
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("load release %s: %w", r.Version, err)
		}
		if err := r.CheckCommitTime(t.now); err != nil {
			return &Error{Code: CodeInvalid, Message: err.Error()}
		}
		nr := r
		nr.ID, nr.CreatedAt, nr.CreatedBy = uuid.NewString(), t.now, actor
		if nr.CommitTime != nil {
			ct := nr.CommitTime.UTC()
			nr.CommitTime = &ct
		}
		if err := t.tx.InsertRelease(ctx, &nr); err != nil {
			return fmt.Errorf("store release %s: %w", r.Version, err)
		}
		arts := make([]string, len(nr.Artifacts))
		for i, a := range nr.Artifacts {
			arts[i] = a.String()
		}
		if err := t.audit(actor, "release.create", "release/"+nr.Pipeline+"/"+nr.Version, "", "",
			map[string]any{"id": nr.ID, "artifacts": arts, "commit": nr.Commit, "commitTime": nr.CommitTime,
				"source": nr.Source, "buildUrl": nr.BuildURL, "labels": nr.Labels}); err != nil {
			return err
		}
		out, created = &nr, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// Promote queues a release for an environment. The release must have
// succeeded in every upstream environment unless Force is set with a Reason.
func (e *Engine) Promote(ctx context.Context, actor string, req PromoteRequest) (*view.Promotion, error) {
	switch {
	case req.Pipeline == "":
		return nil, errorf(CodeInvalid, "pipeline is required")
	case req.Release == "":
		return nil, errorf(CodeInvalid, "release is required")
	case req.Environment == "":
		return nil, errorf(CodeInvalid, "environment is required")
	case req.Force && strings.TrimSpace(req.Reason) == "":
		return nil, errorf(CodeInvalid, "force needs a reason: it is recorded in the audit log")
	case req.Expedite && strings.TrimSpace(req.Reason) == "":
		return nil, errorf(CodeInvalid, "expedite needs a reason: it is recorded and reviewed")
	case req.OverrideWindow && strings.TrimSpace(req.Reason) == "":
		return nil, errorf(CodeInvalid, "override-window (break-glass) needs a reason: it is recorded and reviewed")
	}
	var id string
	err := e.commit(ctx, func(t *txn) error {
		rev, err := t.tx.Revision(ctx, req.Pipeline, 0)
		if err != nil {
			return notFound(err, "pipeline %q", req.Pipeline)
		}
		env, ok := rev.Spec.Environment(req.Environment)
		if !ok {
			return errorf(CodeNotFound, "environment %q is not in pipeline %s (environments: %s)", req.Environment, req.Pipeline, envNames(rev.Spec))
		}
		rel, err := t.tx.Release(ctx, req.Pipeline, req.Release)
		if err != nil {
			return notFound(err, "release %q of pipeline %s", req.Release, req.Pipeline)
		}
		if err := checkPrivileges(req, env); err != nil {
			return err
		}
		missing, err := e.missingUpstream(ctx, t.tx, req.Pipeline, rel.ID, env.After)
		if err != nil {
			return err
		}
		if len(missing) > 0 && !req.Force {
			return &Error{Code: CodePrecondition, Details: map[string]any{"missing": missing},
				Message: fmt.Sprintf("release %s has not succeeded in %s, which %s requires (after: %s); promote it there first, or use force with a reason",
					rel.Version, strings.Join(missing, ", "), env.Name, strings.Join(env.After, ", "))}
		}
		p, err := e.enqueue(t, newPromotion{
			pipeline: req.Pipeline, environment: env.Name, kind: promotion.KindPromote,
			releaseID: rel.ID, version: rel.Version, revision: rev.Number,
			actor: actor, reason: req.Reason, forced: req.Force && len(missing) > 0,
			expedited: req.Expedite, overrideWindow: req.OverrideWindow,
		})
		if err != nil {
			return err
		}
		id = p.ID
		if req.OverrideWindow {
			if err := t.audit(actor, "promotion.break-glass", "promotion/"+id, id, req.Reason,
				map[string]any{"environment": env.Name, "release": rel.Version}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}

// Rollback queues a promotion of kind rollback that redeploys an earlier
// release of an environment: To, or the one deployed before the current one.
func (e *Engine) Rollback(ctx context.Context, actor string, req RollbackRequest) (*view.Promotion, error) {
	switch {
	case req.Pipeline == "":
		return nil, errorf(CodeInvalid, "pipeline is required")
	case req.Environment == "":
		return nil, errorf(CodeInvalid, "environment is required")
	case strings.TrimSpace(req.Reason) == "":
		return nil, errorf(CodeInvalid, "a rollback needs a reason: it is recorded in the audit log")
	}
	var id string
	err := e.commit(ctx, func(t *txn) error {
		rev, err := t.tx.Revision(ctx, req.Pipeline, 0)
		if err != nil {
			return notFound(err, "pipeline %q", req.Pipeline)
		}
		if _, ok := rev.Spec.Environment(req.Environment); !ok {
			return errorf(CodeNotFound, "environment %q is not in pipeline %s (environments: %s)", req.Environment, req.Pipeline, envNames(rev.Spec))
		}
		deps, err := t.tx.Deployments(ctx, req.Pipeline, req.Environment, 0)
		if err != nil {
			return fmt.Errorf("load deployments: %w", err)
		}
		if len(deps) == 0 {
			return errorf(CodePrecondition, "nothing has been deployed to %s/%s: there is nothing to roll back to", req.Pipeline, req.Environment)
		}
		var target *store.Deployment
		if req.To != "" {
			for i := range deps {
				if deps[i].ReleaseVersion == req.To {
					target = &deps[i]
					break
				}
			}
			if target == nil {
				if _, err := t.tx.Release(ctx, req.Pipeline, req.To); err != nil {
					return notFound(err, "release %q of pipeline %s", req.To, req.Pipeline)
				}
				return errorf(CodePrecondition, "release %s was never deployed successfully to %s: a rollback restores a release that ran there", req.To, req.Environment)
			}
		} else {
			for i := range deps {
				if deps[i].ReleaseID != deps[0].ReleaseID {
					target = &deps[i]
					break
				}
			}
			if target == nil {
				return errorf(CodePrecondition, "%s/%s has run only release %s: there is no earlier release to roll back to", req.Pipeline, req.Environment, deps[0].ReleaseVersion)
			}
		}
		p, err := e.enqueue(t, newPromotion{
			pipeline: req.Pipeline, environment: req.Environment, kind: promotion.KindRollback,
			releaseID: target.ReleaseID, version: target.ReleaseVersion, revision: rev.Number,
			actor: actor, reason: req.Reason,
		})
		if err != nil {
			return err
		}
		id = p.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}

// Abort stops a promotion that has not ended; a running step is terminated.
func (e *Engine) Abort(ctx context.Context, actor, id, reason string) (*view.Promotion, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errorf(CodeInvalid, "an abort needs a reason: it is recorded in the audit log")
	}
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		if p.State.Terminal() {
			return errorf(CodeConflict, "promotion %s already ended %s", id, p.State)
		}
		if err := t.tx.LockEnvironment(ctx, p.Pipeline, p.Environment); err != nil {
			return err
		}
		return e.fire(t, actor, p, promotion.Event{Type: promotion.EvAbort, Reason: "aborted by " + actor + ": " + reason})
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}

// notFound turns a store.ErrNotFound into a CodeNotFound error naming what was missing.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(CodeNotFound, format+" does not exist", args...)
	}
	return fmt.Errorf("load "+format+": %w", append(args, err)...)
}

func envNames(s pipeline.Spec) string {
	names := make([]string, len(s.Environments))
	for i, env := range s.Environments {
		names[i] = env.Name
	}
	return strings.Join(names, ", ")
}

// checkPrivileges refuses expedite and break-glass to those the environment
// does not allow them.
func checkPrivileges(req PromoteRequest, env pipeline.Environment) error {
	var g pipeline.Gates
	if env.Gates != nil {
		g = *env.Gates
	}
	if req.Expedite {
		roles := g.ExpediteRoles
		if len(roles) == 0 {
			roles = []string{string(auth.RoleAdmin)}
		}
		if !holdsRole(req.Principal, req.Pipeline, env.Name, roles...) {
			return errorf(CodeForbidden, "expediting into %s/%s needs one of the roles %s on it", req.Pipeline, env.Name, strings.Join(roles, ", "))
		}
	}
	if req.OverrideWindow {
		roles := []string{string(auth.RoleAdmin)}
		if g.OverrideRole != "" {
			roles = append(roles, g.OverrideRole)
		}
		if !holdsRole(req.Principal, req.Pipeline, env.Name, roles...) {
			return errorf(CodeForbidden, "overriding the deployment windows of %s/%s (break-glass) needs one of the roles %s on it", req.Pipeline, env.Name, strings.Join(roles, ", "))
		}
	}
	return nil
}

// Resume continues a promotion paused by an inconclusive check, counting
// the check as passed: a person looked and decided.
func (e *Engine) Resume(ctx context.Context, actor, id, reason string) (*view.Promotion, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errorf(CodeInvalid, "resuming needs a reason: it is recorded in the audit log")
	}
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		switch p.State {
		case promotion.Paused:
			return e.fire(t, actor, p, promotion.Event{Type: promotion.EvResume, Reason: "resumed by " + actor + ": " + reason})
		case promotion.Watching:
			return e.fire(t, actor, p, promotion.Event{Type: promotion.EvResume, Reason: "watch window ended early by " + actor + ": " + reason})
		}
		return errorf(CodeConflict, "promotion %s is %s: only a paused or watching promotion resumes", id, p.State)
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}
