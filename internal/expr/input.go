package expr

import (
	"sort"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// Input is what an expression is evaluated against: the release being
// promoted, where it is going, the promotion itself and its history.
type Input struct {
	// Release is the release being promoted, seen as release.
	Release release.Release
	// Pipeline is the pipeline and revision the promotion pinned, seen as pipeline.
	Pipeline Pipeline
	// Environment is the target environment, seen as environment.
	Environment Environment
	// Promotion is the promotion being decided, seen as promotion. Only its
	// ID, Actor, Reason, Kind and Forced fields are visible.
	Promotion promotion.Promotion
	// Expedited reports whether the promotion was requested as expedited,
	// seen as promotion.expedited.
	Expedited bool
	// Now is the evaluation time, seen as now. It comes from the caller's
	// clock so that an evaluation can be repeated.
	Now time.Time
	// History lists this release's promotions into other environments, seen
	// as history, in the order given.
	History []HistoryItem
}

// Pipeline names a pipeline at one revision.
type Pipeline struct {
	Name     string
	Revision int
}

// Environment is the target environment of a promotion.
type Environment struct {
	Name string
	// After lists the environments this one is promoted after.
	After []string
}

// HistoryItem is one earlier promotion of the same release.
type HistoryItem struct {
	Environment string
	State       promotion.State
	Kind        promotion.Kind
	// FinishedAt is nil while the promotion runs; expressions see null.
	FinishedAt *time.Time
	Actor      string
}

// HistoryOf converts promotions into history items, keeping their order.
func HistoryOf(ps []promotion.Promotion) []HistoryItem {
	items := make([]HistoryItem, len(ps))
	for i, p := range ps {
		items[i] = HistoryItem{
			Environment: p.Environment,
			State:       p.State,
			Kind:        p.Kind,
			FinishedAt:  p.FinishedAt,
			Actor:       p.Actor,
		}
	}
	return items
}

// activation converts in into the values of the declared variables. The
// field names and types must match schema.
func (in *Input) activation(a types.Adapter) map[string]any {
	r := &in.Release
	artifacts := make([]any, len(r.Artifacts))
	for i, x := range r.Artifacts {
		artifacts[i] = map[string]any{"name": x.Name, "uri": x.URI, "digest": x.Digest}
	}
	history := make([]any, len(in.History))
	for i, h := range in.History {
		var finished any = types.NullValue
		if h.FinishedAt != nil {
			finished = *h.FinishedAt
		}
		history[i] = map[string]any{
			"environment": h.Environment,
			"state":       string(h.State),
			"kind":        string(h.Kind),
			"finishedAt":  finished,
			"actor":       h.Actor,
		}
	}
	after := in.Environment.After
	if after == nil {
		after = []string{}
	}
	return map[string]any{
		"release": map[string]any{
			"id":        r.ID,
			"version":   r.Version,
			"pipeline":  r.Pipeline,
			"artifacts": artifacts,
			"commit":    r.Commit,
			"source":    r.Source,
			"buildUrl":  r.BuildURL,
			"labels":    newSortedMap(a, r.Labels),
			"createdAt": r.CreatedAt,
			"createdBy": r.CreatedBy,
		},
		"pipeline": map[string]any{
			"name":     in.Pipeline.Name,
			"revision": in.Pipeline.Revision,
		},
		"environment": map[string]any{
			"name":  in.Environment.Name,
			"after": after,
		},
		"promotion": map[string]any{
			"id":        in.Promotion.ID,
			"actor":     in.Promotion.Actor,
			"reason":    in.Promotion.Reason,
			"kind":      string(in.Promotion.Kind),
			"forced":    in.Promotion.Forced,
			"expedited": in.Expedited,
		},
		"now":     in.Now,
		"history": history,
	}
}

// sortedMap is a string map whose keys are iterated in sorted order, so
// that an expression such as release.labels.map(k, k) gives the same list on
// every evaluation. CEL maps built from Go maps iterate in random order.
type sortedMap struct {
	traits.Mapper
	keys traits.Lister
}

func newSortedMap(a types.Adapter, m map[string]string) ref.Val {
	if m == nil {
		m = map[string]string{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return sortedMap{
		Mapper: a.NativeToValue(m).(traits.Mapper),
		keys:   types.NewStringList(a, keys),
	}
}

// Iterator implements traits.Iterable.
func (m sortedMap) Iterator() traits.Iterator { return m.keys.Iterator() }
