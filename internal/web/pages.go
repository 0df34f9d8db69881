package web

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// maxReleasesOffered is how many recent releases a promote form offers.
const maxReleasesOffered = 20

// pipelineView is one pipeline on the overview.
type pipelineView struct {
	Name     string
	Revision int
	Graph    chartSVG
	Columns  [][]envCard
	Releases []release.Release
}

// envCard is one environment on the overview, with the actions the
// visitor may take on it.
type envCard struct {
	view.Environment
	Pipeline string
	Anchor   string
	Shown    *view.PromotionRef
	// Hidden is set when the visitor may not see the environment: its
	// releases and promotions are left out.
	Hidden      bool
	CanPromote  bool
	CanRollback bool
	CanAbort    bool
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	all, err := d.svc.Pipelines(ctx)
	if err != nil {
		return err
	}
	var out []pipelineView
	for _, pl := range all {
		st, ok, err := d.visibleStatus(r, v, pl.Name, pl.Environments)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		hidden := map[string]bool{}
		for _, e := range st.Environments {
			hidden[e.Name] = !v.Can(auth.ActionView, pl.Name, e.Name)
		}
		pv := pipelineView{Name: pl.Name, Revision: st.Revision, Graph: dagSVG(pl.Name, st.Environments, hidden)}
		for _, col := range columns(st.Environments) {
			var cards []envCard
			for _, e := range col {
				c := envCard{Environment: e, Pipeline: pl.Name, Anchor: envAnchor(pl.Name, e.Name), Shown: shown(e),
					Hidden:      hidden[e.Name],
					CanPromote:  v.Can(auth.ActionPromote, pl.Name, e.Name),
					CanRollback: e.Current != nil && v.Can(auth.ActionRollback, pl.Name, e.Name),
					CanAbort:    e.Active != nil && v.Can(auth.ActionAbort, pl.Name, e.Name)}
				cards = append(cards, c)
			}
			pv.Columns = append(pv.Columns, cards)
		}
		if anyPromote(pv.Columns) {
			if pv.Releases, err = d.svc.Releases(ctx, pl.Name, maxReleasesOffered); err != nil {
				return err
			}
		}
		out = append(out, pv)
	}
	d.render(w, r, v, http.StatusOK, "overview", page{Title: "Pipelines", Nav: "overview", Watch: "*", Data: out})
	return nil
}

// visibleStatus returns a pipeline's status as the visitor may see it: the
// whole of it with view on the pipeline; with view on some environments
// only, those environments' releases and promotions, the others reduced to
// their names and order. ok is false when the visitor may see nothing of it.
func (d *Dashboard) visibleStatus(r *http.Request, v *visitor, pipelineName string, envs []string) (*view.Status, bool, error) {
	whole := v.Can(auth.ActionView, pipelineName, "")
	some := whole
	for _, e := range envs {
		some = some || v.Can(auth.ActionView, pipelineName, e)
	}
	if !some {
		return nil, false, nil
	}
	st, err := d.svc.Status(r.Context(), pipelineName)
	if err != nil {
		return nil, false, err
	}
	if whole {
		return st, true, nil
	}
	for i, e := range st.Environments {
		if !v.Can(auth.ActionView, pipelineName, e.Name) {
			st.Environments[i] = view.Environment{Name: e.Name, After: e.After, AutoPromote: e.AutoPromote, Queued: []view.PromotionRef{}}
		}
	}
	return st, true, nil
}

func anyPromote(cols [][]envCard) bool {
	for _, col := range cols {
		for _, c := range col {
			if c.CanPromote {
				return true
			}
		}
	}
	return false
}

// timelineItem is one entry of a promotion's timeline.
type timelineItem struct {
	At     time.Time
	Kind   string
	Look   look
	Title  string
	Detail string
	Actor  string
}

// stepView is a step with its output.
type stepView struct {
	view.Step
	LogID string
	Log   string
}

// phaseView is the steps of one phase.
type phaseView struct {
	Name  string
	Steps []stepView
}

// promotionData is what the promotion page shows.
type promotionData struct {
	P            *view.Promotion
	Release      *release.Release
	Timeline     []timelineItem
	Phases       []phaseView
	Measurements []series
	// Audit is the promotion's audit trail, for visitors who may review it.
	Audit      []audit.Event
	CanReview  bool
	LogCount   int
	CanAbort   bool
	CanResume  bool
	CanApprove bool
}

// Running reports whether the promotion's output may still grow.
func (p promotionData) Running() bool { return !p.P.State.Terminal() }

func (d *Dashboard) promotionPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	p, err := d.svc.Promotion(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := forbidden(v.Principal.Can(auth.ActionView, p.Pipeline, p.Environment)); err != nil {
		return err
	}
	data := promotionData{P: p,
		CanAbort:   !p.State.Terminal() && v.Can(auth.ActionAbort, p.Pipeline, p.Environment),
		CanResume:  p.State == promotion.Paused && v.Can(auth.ActionPromote, p.Pipeline, p.Environment),
		CanApprove: p.State == promotion.AwaitingApproval && v.Can(auth.ActionApprove, p.Pipeline, p.Environment),
		CanReview:  v.Can(auth.ActionReview, p.Pipeline, p.Environment),
	}
	if data.Release, err = d.svc.Release(ctx, p.Pipeline, p.Release.Version); err != nil {
		return err
	}
	chunks, err := d.svc.Logs(ctx, p.ID)
	if err != nil {
		return err
	}
	data.LogCount = len(chunks)
	rev, err := d.svc.Pipeline(ctx, p.Pipeline, p.Revision)
	if err != nil {
		return err
	}
	env, _ := rev.Spec.Environment(p.Environment)
	data.Measurements = measurements(chunks, env)
	data.Phases = phases(p, chunks)
	if data.CanReview {
		if data.Audit, err = d.svc.Audit(ctx, auditFilter(p.ID)); err != nil {
			return err
		}
	}
	data.Timeline = timeline(p, data.Audit)
	follow := ""
	if data.Running() {
		follow = p.ID
	}
	d.render(w, r, v, http.StatusOK, "promotion", page{
		Title: fmt.Sprintf("%s %s → %s/%s", p.Kind, p.Release.Version, p.Pipeline, p.Environment),
		Watch: p.ID, Follow: follow, Data: data})
	return nil
}

// phases groups a promotion's steps by phase, each with its output; every
// attempt's output starts with a header line.
func phases(p *view.Promotion, chunks []view.LogChunk) []phaseView {
	logs := map[string]*strings.Builder{}
	last := map[string]int{}
	for _, c := range chunks {
		k := logKey(c)
		b := logs[k]
		if b == nil {
			b = &strings.Builder{}
			logs[k] = b
		}
		if a, ok := last[k]; !ok || a != c.Attempt {
			b.WriteString(attemptHeader(c.Attempt))
		}
		last[k] = c.Attempt
		b.WriteString(c.Text)
	}
	var out []phaseView
	for _, s := range p.Steps {
		k := logKey(view.LogChunk{Phase: s.Phase, Index: s.Index})
		sv := stepView{Step: s, LogID: k}
		if b := logs[k]; b != nil {
			sv.Log = b.String()
		}
		if len(out) == 0 || out[len(out)-1].Name != string(s.Phase) {
			out = append(out, phaseView{Name: string(s.Phase)})
		}
		out[len(out)-1].Steps = append(out[len(out)-1].Steps, sv)
	}
	return out
}

// timeline merges what happened to a promotion in time order: its state
// changes, gate evaluations, approvals, steps and checks, and, for those
// who may review it, the other audit events.
func timeline(p *view.Promotion, events []audit.Event) []timelineItem {
	var out []timelineItem
	out = append(out, timelineItem{At: p.CreatedAt, Kind: "request", Look: stateLook("queued"),
		Title: fmt.Sprintf("%s of %s requested", p.Kind, p.Release.Version), Detail: p.Reason, Actor: p.Actor})
	for _, t := range p.Transitions {
		out = append(out, timelineItem{At: t.At, Kind: "state", Look: stateLook(string(t.To)),
			Title:  fmt.Sprintf("%s → %s", strings.ReplaceAll(string(t.From), "_", " "), strings.ReplaceAll(string(t.To), "_", " ")),
			Detail: t.Reason, Actor: t.Actor})
	}
	for _, g := range p.Gates {
		out = append(out, timelineItem{At: g.At, Kind: "gate", Look: stateLook(string(g.Result)),
			Title: fmt.Sprintf("gate %s: %s", g.Name, g.Result), Detail: g.Reason})
	}
	for _, a := range p.Approvals {
		out = append(out, timelineItem{At: a.At, Kind: "approval", Look: stateLook(string(a.Decision)),
			Title: fmt.Sprintf("%s by %s", pastTense(a.Decision), a.User), Detail: a.Comment, Actor: a.User})
	}
	for _, s := range p.Steps {
		kind := stepKind(s.Phase)
		if s.StartedAt != nil {
			out = append(out, timelineItem{At: *s.StartedAt, Kind: kind, Look: stateLook("running"),
				Title: fmt.Sprintf("%s %s started (attempt %d)", kind, s.Name, s.Attempts)})
		}
		if s.FinishedAt != nil {
			detail := s.Error
			if s.ExitCode != nil && *s.ExitCode != 0 && !strings.Contains(s.Error, "exit") {
				detail = strings.TrimSpace(fmt.Sprintf("exit code %d. %s", *s.ExitCode, s.Error))
			}
			out = append(out, timelineItem{At: *s.FinishedAt, Kind: kind, Look: stateLook(s.State),
				Title: fmt.Sprintf("%s %s %s", kind, s.Name, s.State), Detail: detail})
		}
	}
	for _, ev := range events {
		switch ev.Action {
		case "promotion.create", "promotion.transition", "promotion.approve", "promotion.reject", "step.start", "step.finish":
			continue // shown above, from the promotion itself
		}
		out = append(out, timelineItem{At: ev.Time, Kind: "audit", Look: look{"§", ev.Action, "muted"},
			Title: ev.Action, Detail: ev.Reason, Actor: ev.Actor})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func pastTense(d promotion.Decision) string {
	if d == promotion.Approve {
		return "approved"
	}
	return "rejected"
}

// stepKind names what a step of a phase is on the timeline.
func stepKind(ph promotion.Phase) string {
	switch ph {
	case promotion.PhaseVerify, promotion.PhasePreflight:
		return "check"
	case promotion.PhaseCanary:
		return "canary"
	case promotion.PhaseRollback:
		return "rollback"
	}
	return "step"
}

// artifactDiff is how one artifact differs from what runs in the
// environment now.
type artifactDiff struct {
	Name   string
	Change string
	Old    *release.Artifact
	New    *release.Artifact
}

// inboxItem is one promotion waiting for the visitor's decision.
type inboxItem struct {
	P       view.Promotion
	Release *release.Release
	// Current is the release running in the environment now, if any.
	Current *release.Release
	Diff    []artifactDiff
}

func (d *Dashboard) inbox(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	ps, err := d.svc.PendingApprovals(ctx, v.Principal)
	if err != nil {
		return err
	}
	var items []inboxItem
	for _, p := range ps {
		if !v.Can(auth.ActionApprove, p.Pipeline, p.Environment) {
			continue
		}
		it := inboxItem{P: p}
		if it.Release, err = d.svc.Release(ctx, p.Pipeline, p.Release.Version); err != nil {
			return err
		}
		st, err := d.svc.Status(ctx, p.Pipeline)
		if err != nil {
			return err
		}
		for _, e := range st.Environments {
			if e.Name == p.Environment && e.Current != nil {
				if it.Current, err = d.svc.Release(ctx, p.Pipeline, e.Current.Version); err != nil {
					return err
				}
			}
		}
		it.Diff = diffArtifacts(it.Current, it.Release)
		items = append(items, it)
	}
	d.render(w, r, v, http.StatusOK, "inbox", page{Title: "Approvals", Nav: "inbox", Watch: "*", Data: items})
	return nil
}

// diffArtifacts compares a release's artifacts with those of the release
// running now, by name.
func diffArtifacts(current, next *release.Release) []artifactDiff {
	old := map[string]*release.Artifact{}
	if current != nil {
		for i := range current.Artifacts {
			old[current.Artifacts[i].Name] = &current.Artifacts[i]
		}
	}
	var out []artifactDiff
	seen := map[string]bool{}
	for i := range next.Artifacts {
		a := &next.Artifacts[i]
		seen[a.Name] = true
		o := old[a.Name]
		switch {
		case o == nil:
			out = append(out, artifactDiff{Name: a.Name, Change: "added", New: a})
		case o.Digest != a.Digest || o.URI != a.URI:
			out = append(out, artifactDiff{Name: a.Name, Change: "changed", Old: o, New: a})
		default:
			out = append(out, artifactDiff{Name: a.Name, Change: "unchanged", Old: o, New: a})
		}
	}
	if current != nil {
		for i := range current.Artifacts {
			if a := &current.Artifacts[i]; !seen[a.Name] {
				out = append(out, artifactDiff{Name: a.Name, Change: "removed", Old: a})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// labelList returns a release's labels sorted by key.
func labelList(labels map[string]string) [][2]string {
	out := make([][2]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// auditFilter selects a promotion's audit events.
func auditFilter(id string) store.AuditFilter { return store.AuditFilter{PromotionID: id} }

// do runs an action on a promotion named in the path after checking the
// visitor's role on its environment, then shows the promotion.
func (d *Dashboard) onPromotion(w http.ResponseWriter, r *http.Request, v *visitor, action auth.Action,
	fn func(p *view.Promotion) (*view.Promotion, error)) error {
	p, err := d.svc.Promotion(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := forbidden(v.Principal.Can(action, p.Pipeline, p.Environment)); err != nil {
		return err
	}
	if _, err := fn(p); err != nil {
		return err
	}
	return redirect(w, r, "/promotions/"+p.ID)
}

func (d *Dashboard) abort(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return d.onPromotion(w, r, v, auth.ActionAbort, func(p *view.Promotion) (*view.Promotion, error) {
		return d.svc.Abort(r.Context(), v.User(), p.ID, r.PostForm.Get("reason"))
	})
}

func (d *Dashboard) resume(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return d.onPromotion(w, r, v, auth.ActionPromote, func(p *view.Promotion) (*view.Promotion, error) {
		return d.svc.Resume(r.Context(), v.User(), p.ID, r.PostForm.Get("reason"))
	})
}

func (d *Dashboard) approve(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return d.onPromotion(w, r, v, auth.ActionApprove, func(p *view.Promotion) (*view.Promotion, error) {
		return d.svc.Approve(r.Context(), v.Principal, p.ID, r.PostForm.Get("comment"))
	})
}

func (d *Dashboard) reject(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return d.onPromotion(w, r, v, auth.ActionApprove, func(p *view.Promotion) (*view.Promotion, error) {
		return d.svc.Reject(r.Context(), v.Principal, p.ID, r.PostForm.Get("comment"))
	})
}

func (d *Dashboard) promote(w http.ResponseWriter, r *http.Request, v *visitor) error {
	pl, env := r.PathValue("pipeline"), r.PathValue("env")
	if err := forbidden(v.Principal.Can(auth.ActionPromote, pl, env)); err != nil {
		return err
	}
	p, err := d.svc.Promote(r.Context(), v.User(), engine.PromoteRequest{
		Pipeline: pl, Environment: env, Release: strings.TrimSpace(r.PostForm.Get("release")),
		Reason: r.PostForm.Get("reason"), Principal: &v.Principal})
	if err != nil {
		return err
	}
	return redirect(w, r, "/promotions/"+p.ID)
}

func (d *Dashboard) rollback(w http.ResponseWriter, r *http.Request, v *visitor) error {
	pl, env := r.PathValue("pipeline"), r.PathValue("env")
	if err := forbidden(v.Principal.Can(auth.ActionRollback, pl, env)); err != nil {
		return err
	}
	p, err := d.svc.Rollback(r.Context(), v.User(), engine.RollbackRequest{
		Pipeline: pl, Environment: env, To: strings.TrimSpace(r.PostForm.Get("to")), Reason: r.PostForm.Get("reason")})
	if err != nil {
		return err
	}
	return redirect(w, r, "/promotions/"+p.ID)
}
