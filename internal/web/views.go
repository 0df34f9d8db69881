package web

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/gate/window"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// ranges are the periods the executive view offers, in days.
var ranges = []int{7, 30, 90}

// figureChart is one figure of the executive view.
type figureChart struct {
	Title   string
	Explain string
	Total   string
	SVG     chartSVG
}

// executiveData is what the executive view shows.
type executiveData struct {
	Pipelines []string
	Pipeline  string
	Days      int
	Ranges    []int
	Report    *stats.Report
	Figures   []figureChart
	DORA      []figureChart
}

func (d *Dashboard) executive(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	all, err := d.svc.Pipelines(ctx)
	if err != nil {
		return err
	}
	data := executiveData{Ranges: ranges, Days: 30}
	for _, pl := range all {
		if v.Can(auth.ActionView, pl.Name, "") {
			data.Pipelines = append(data.Pipelines, pl.Name)
		}
	}
	q := r.URL.Query()
	if s := q.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(ranges, n) {
			return errorStatus(http.StatusBadRequest, "days %q: choose one of 7, 30 or 90", s)
		}
		data.Days = n
	}
	data.Pipeline = q.Get("pipeline")
	if data.Pipeline == "" && len(data.Pipelines) > 0 {
		data.Pipeline = data.Pipelines[0]
	}
	if data.Pipeline != "" {
		if err := forbidden(v.Principal.Can(auth.ActionView, data.Pipeline, "")); err != nil {
			return err
		}
		if !slices.Contains(data.Pipelines, data.Pipeline) {
			return errorStatus(http.StatusNotFound, "pipeline %q does not exist", data.Pipeline)
		}
		until := d.now().UTC().Truncate(day).Add(day)
		rep, err := d.cfg.Stats.Stats(ctx, StatsQuery{Pipeline: data.Pipeline, Since: until.Add(-time.Duration(data.Days) * day), Until: until})
		if err != nil {
			return err
		}
		data.Report = rep
		data.Figures, data.DORA = figureCharts(rep)
	}
	d.render(w, r, v, http.StatusOK, "executive", page{Title: "Delivery", Nav: "executive", Watch: "", Data: data})
	return nil
}

// figureCharts draws the report's figures, one chart each.
func figureCharts(rep *stats.Report) (figures, dora []figureChart) {
	dayList := make([]time.Time, len(rep.Series))
	for i, b := range rep.Series {
		dayList[i] = b.From
	}
	rate := func(get func(stats.Figures) *float64) []*float64 {
		out := make([]*float64, len(rep.Series))
		for i, b := range rep.Series {
			out[i] = get(b.Figures)
		}
		return out
	}
	// minutes charts a figure in seconds in minutes.
	minutes := func(get func(stats.Figures) *float64) []*float64 {
		out := make([]*float64, len(rep.Series))
		for i, b := range rep.Series {
			if v := get(b.Figures); v != nil {
				m := *v / 60
				out[i] = &m
			}
		}
		return out
	}
	pct := func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
	mins := func(f float64) string { return formatDuration(time.Duration(f * float64(time.Minute))) }
	perDay := func(f float64) string { return strconv.FormatFloat(f, 'g', 3, 64) + "/day" }
	pctTotal := func(f *float64) string {
		if f == nil {
			return "no data"
		}
		return pct(*f)
	}
	durTotal := func(seconds *float64) string {
		if seconds == nil {
			return "no data"
		}
		return formatDuration(time.Duration(math.Round(*seconds * float64(time.Second))))
	}
	t := rep.Figures
	// The descriptions say what docs/stats.md defines.
	figures = []figureChart{
		{"Promotion success rate", "share of attempts (promotions that deployed) that succeeded", pctTotal(t.SuccessRate),
			dailyChart("fig-success", "Promotion success rate per day", dayList, rate(func(f stats.Figures) *float64 { return f.SuccessRate }), true, pct)},
		{"Mean time to promote", "from release creation to success in production", durTotal(t.MeanTimeToPromoteSeconds),
			dailyChart("fig-mttp", "Mean time to promote per day", dayList, minutes(func(f stats.Figures) *float64 { return f.MeanTimeToPromoteSeconds }), false, mins)},
		{"Rollback rate", "share of attempts rolled back, automatically or by a person", pctTotal(t.RollbackRate),
			dailyChart("fig-rollback", "Rollback rate per day", dayList, rate(func(f stats.Figures) *float64 { return f.RollbackRate }), true, pct)},
		{"Approval latency", "mean time spent waiting for approvals", durTotal(t.ApprovalLatencySeconds),
			dailyChart("fig-approval", "Approval latency per day", dayList, minutes(func(f stats.Figures) *float64 { return f.ApprovalLatencySeconds }), false, mins)},
	}
	freq := "no data"
	if t.DeploymentFrequencyPerDay != nil {
		freq = perDay(*t.DeploymentFrequencyPerDay)
	}
	dora = []figureChart{
		{"Deployment frequency", "successful production deployments per day", freq,
			dailyChart("dora-freq", "Deployment frequency per day", dayList, rate(func(f stats.Figures) *float64 { return f.DeploymentFrequencyPerDay }), false, perDay)},
		{"Lead time for changes", "median from the release's commit to production", durTotal(t.LeadTimeForChangesSeconds),
			dailyChart("dora-lead", "Lead time for changes per day", dayList, minutes(func(f stats.Figures) *float64 { return f.LeadTimeForChangesSeconds }), false, mins)},
		{"Change failure rate", "share of production deployments that failed, were rolled back or drew an alert", pctTotal(t.ChangeFailureRate),
			dailyChart("dora-cfr", "Change failure rate per day", dayList, rate(func(f stats.Figures) *float64 { return f.ChangeFailureRate }), true, pct)},
		{"Time to restore", "median from detecting a failed production deployment to a good release running again", durTotal(t.TimeToRestoreSeconds),
			dailyChart("dora-mttr", "Time to restore per day", dayList, minutes(func(f stats.Figures) *float64 { return f.TimeToRestoreSeconds }), false, mins)},
	}
	return figures, dora
}

// blockedItem is a promotion waiting on something, with what.
type blockedItem struct {
	P     view.Promotion
	Gates []promotion.GateEvaluation
}

// freezeItem is an environment where deploying is not allowed now.
type freezeItem struct {
	Pipeline    string
	Environment string
	Reason      string
	Next        time.Time
	Freezes     []window.Freeze
}

// oncallData is what the on-call view shows.
type oncallData struct {
	InFlight  []view.Promotion
	Watching  []view.Promotion
	Blocked   []blockedItem
	Failures  []view.Promotion
	Rollbacks []view.Promotion
	Freezes   []freezeItem
	Now       time.Time
}

// recentLimit is how many recent failures and rollbacks the on-call view lists.
const recentLimit = 15

func (d *Dashboard) oncall(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	now := d.now().UTC()
	data := oncallData{Now: now}
	visible := func(ps []view.Promotion) []view.Promotion {
		var out []view.Promotion
		for _, p := range ps {
			if v.Can(auth.ActionView, p.Pipeline, p.Environment) {
				out = append(out, p)
			}
		}
		return out
	}
	active, err := d.svc.Promotions(ctx, store.PromotionFilter{Active: true, Ascending: true})
	if err != nil {
		return err
	}
	for _, p := range visible(active) {
		switch p.State {
		case promotion.Watching:
			data.Watching = append(data.Watching, p)
		case promotion.Queued, promotion.Gating, promotion.AwaitingApproval, promotion.Paused:
			var waiting []promotion.GateEvaluation
			for _, g := range p.Gates {
				if g.Result != promotion.GatePass {
					waiting = append(waiting, g)
				}
			}
			data.Blocked = append(data.Blocked, blockedItem{P: p, Gates: waiting})
		default:
			data.InFlight = append(data.InFlight, p)
		}
	}
	failed, err := d.svc.Promotions(ctx, store.PromotionFilter{States: []promotion.State{promotion.Failed, promotion.RolledBack, promotion.RollbackFailed}, Limit: recentLimit})
	if err != nil {
		return err
	}
	data.Failures = visible(failed)
	rolls, err := d.svc.Promotions(ctx, store.PromotionFilter{Kind: promotion.KindRollback, Limit: recentLimit})
	if err != nil {
		return err
	}
	data.Rollbacks = visible(rolls)
	pls, err := d.svc.Pipelines(ctx)
	if err != nil {
		return err
	}
	for _, pl := range pls {
		rev, err := d.svc.Pipeline(ctx, pl.Name, 0)
		if err != nil {
			return err
		}
		for _, env := range rev.Spec.Environments {
			if env.Gates == nil || env.Gates.Windows == nil || !v.Can(auth.ActionView, pl.Name, env.Name) {
				continue
			}
			dec := env.Gates.Windows.Evaluate(now)
			var inForce []window.Freeze
			for _, f := range env.Gates.Windows.Freeze {
				if !now.Before(f.From) && now.Before(f.To) {
					inForce = append(inForce, f)
				}
			}
			if !dec.Open || len(inForce) > 0 {
				data.Freezes = append(data.Freezes, freezeItem{Pipeline: pl.Name, Environment: env.Name, Reason: dec.Reason, Next: dec.Next, Freezes: inForce})
			}
		}
	}
	d.render(w, r, v, http.StatusOK, "oncall", page{Title: "On call", Nav: "oncall", Watch: "*", Data: data})
	return nil
}
