package engine

import (
	"context"
	"errors"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// Engine drives promotions. (Temporary stubs while the engine is written.)
type Engine struct{}

var errTODO = errors.New("not implemented yet")

func (e *Engine) Apply(ctx context.Context, actor, filename string, source []byte) (view.ApplyResult, error) {
	return view.ApplyResult{}, errTODO
}
func (e *Engine) Pipelines(ctx context.Context) ([]view.Pipeline, error) { return nil, errTODO }
func (e *Engine) Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error) {
	return nil, errTODO
}
func (e *Engine) CreateRelease(ctx context.Context, actor string, r release.Release) (*release.Release, bool, error) {
	return nil, false, errTODO
}
func (e *Engine) Releases(ctx context.Context, pipeline string, limit int) ([]release.Release, error) {
	return nil, errTODO
}
func (e *Engine) Release(ctx context.Context, pipeline, version string) (*release.Release, error) {
	return nil, errTODO
}
func (e *Engine) Promote(ctx context.Context, actor string, req PromoteRequest) (*view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) Rollback(ctx context.Context, actor string, req RollbackRequest) (*view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) Abort(ctx context.Context, actor, id, reason string) (*view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) Promotion(ctx context.Context, id string) (*view.Promotion, error) { return nil, errTODO }
func (e *Engine) Promotions(ctx context.Context, f store.PromotionFilter) ([]view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) WaitPromotion(ctx context.Context, id string, afterVersion int64) (*view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) Logs(ctx context.Context, id string) ([]view.LogChunk, error) { return nil, errTODO }
func (e *Engine) Status(ctx context.Context, pipeline string) (*view.Status, error) {
	return nil, errTODO
}
func (e *Engine) History(ctx context.Context, pipeline, env string, limit int) ([]view.Promotion, error) {
	return nil, errTODO
}
func (e *Engine) Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	return nil, errTODO
}
