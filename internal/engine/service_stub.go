package engine

import (
	"context"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// PromoteRequest asks for a release to be promoted into an environment.
type PromoteRequest struct {
	Pipeline    string `json:"pipeline"`
	Release     string `json:"release"`
	Environment string `json:"environment"`
	Reason      string `json:"reason,omitempty"`
	// Force overrides the upstream requirement; it needs a Reason and is recorded.
	Force bool `json:"force,omitempty"`
	// Expedite skips soak (a hotfix); it needs a Reason and a role the
	// environment allows for it, and the promotion awaits review.
	Expedite bool `json:"expedite,omitempty"`
	// OverrideWindow ignores deployment windows and freezes (break-glass); it
	// needs a Reason and admin or the environment's override role, and the
	// promotion awaits review.
	OverrideWindow bool `json:"overrideWindow,omitempty"`
	// Principal is who asks, with their grants; nil for the server itself.
	Principal *auth.Principal `json:"-"`
}

// RollbackRequest asks for an environment to be rolled back.
type RollbackRequest struct {
	Pipeline    string `json:"pipeline"`
	Environment string `json:"environment"`
	// To is the version to restore; empty means the release deployed before the current one.
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

// Engine methods used by the API (implemented in engine.go):
var _ interface {
	Apply(ctx context.Context, actor, filename string, source []byte) (view.ApplyResult, error)
	Pipelines(ctx context.Context) ([]view.Pipeline, error)
	Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error)
	CreateRelease(ctx context.Context, actor string, r release.Release) (*release.Release, bool, error)
	Releases(ctx context.Context, pipeline string, limit int) ([]release.Release, error)
	Release(ctx context.Context, pipeline, version string) (*release.Release, error)
	Promote(ctx context.Context, actor string, req PromoteRequest) (*view.Promotion, error)
	Rollback(ctx context.Context, actor string, req RollbackRequest) (*view.Promotion, error)
	Abort(ctx context.Context, actor, id, reason string) (*view.Promotion, error)
	Promotion(ctx context.Context, id string) (*view.Promotion, error)
	Promotions(ctx context.Context, f store.PromotionFilter) ([]view.Promotion, error)
	WaitPromotion(ctx context.Context, id string, afterVersion int64) (*view.Promotion, error)
	Logs(ctx context.Context, id string) ([]view.LogChunk, error)
	Status(ctx context.Context, pipeline string) (*view.Status, error)
	History(ctx context.Context, pipeline, env string, limit int) ([]view.Promotion, error)
	Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error)
} = (*Engine)(nil)
