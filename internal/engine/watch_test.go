package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// watchPipeline watches prod for 2 s after its check; the watch check fails
// once the file $WORK/broken exists. Alerts with team=shop roll back.
const watchPipeline = `name: shop
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/deployed"'}}]
    verify: [{name: smoke, exec: {run: "true"}}]
    watch:
      for: 2s
      every: 100ms
      checks:
        - name: errors
          exec: {run: 'test ! -e "$WORK/broken"'}
    alerts:
      matchers: ['team="shop"', 'severity=~"page|critical"']
      rollback: true
`

func TestWatchWindowPassesAndRecordsTheDeploymentAtItsStart(t *testing.T) {
	b := setup(t)
	b.apply(t, watchPipeline)
	b.release(t, "shop", "1.0.0")
	id := b.promote(t, "shop", "1.0.0", "prod").ID
	w := b.waitState(t, id, promotion.Watching)
	if w.State != promotion.Watching || w.Watch == nil || !w.Watch.Open {
		t.Fatalf("after the checks: %s %q, watch %+v", w.State, w.Message, w.Watch)
	}
	if got := w.Watch.Until.Sub(w.Watch.StartedAt); got != 2*time.Second {
		t.Errorf("window %s long, want 2s", got)
	}
	// The release runs there while it is watched.
	deps := b.deployments(t, "shop", "prod")
	if len(deps) != 1 || deps[0].ReleaseVersion != "1.0.0" || deps[0].PromotionID != id {
		t.Fatalf("deployments while watching: %+v", deps)
	}
	done := b.wait(t, id)
	if done.State != promotion.Succeeded || !strings.Contains(done.Message, "watch window passed") {
		t.Fatalf("end: %s %q", done.State, done.Message)
	}
	if took := done.FinishedAt.Sub(w.Watch.StartedAt); took < 2*time.Second {
		t.Errorf("succeeded %s after the window opened, before it ended", took)
	}
	if deps := b.deployments(t, "shop", "prod"); len(deps) != 1 {
		t.Errorf("the end of the window recorded another deployment: %+v", deps)
	}
}

func TestWatchFailureRollsBack(t *testing.T) {
	b := setup(t)
	b.apply(t, watchPipeline)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	if p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID); p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %q", p.State, p.Message)
	}
	id := b.promote(t, "shop", "2.0.0", "prod").ID
	b.waitState(t, id, promotion.Watching)
	if err := os.WriteFile(b.dir+"/broken", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := b.wait(t, id)
	if done.State != promotion.RolledBack || !strings.Contains(done.Message, "rolled back to 1.0.0") {
		t.Fatalf("2.0.0: %s %q", done.State, done.Message)
	}
	var why string
	for _, tr := range done.Transitions {
		if tr.From == promotion.Watching {
			why = tr.Reason
		}
	}
	if !strings.Contains(why, "watch failed: check errors failed") {
		t.Errorf("the transition out of watching says %q, want the failing check named", why)
	}
	if got := readFile(t, b.dir+"/deployed"); got != "1.0.0\n" {
		t.Errorf("deployed = %q after the rollback", got)
	}
}

func TestWatchEndsEarlyOnResume(t *testing.T) {
	b := setup(t)
	b.apply(t, strings.Replace(watchPipeline, "for: 2s", "for: 1h", 1))
	b.release(t, "shop", "1.0.0")
	id := b.promote(t, "shop", "1.0.0", "prod").ID
	b.waitState(t, id, promotion.Watching)
	if _, err := b.eng.Resume(context.Background(), "ana", id, "looks fine"); err != nil {
		t.Fatal(err)
	}
	done := b.wait(t, id)
	if done.State != promotion.Succeeded || !strings.Contains(done.Message, "ended early by ana: looks fine") {
		t.Fatalf("%s %q", done.State, done.Message)
	}
}

func firing(groupKey string, labels ...map[string]string) *alert.Message {
	m := &alert.Message{Version: "4", GroupKey: groupKey, Status: alert.StatusFiring, Receiver: "ferry"}
	for i, l := range labels {
		m.Alerts = append(m.Alerts, alert.Alert{Status: alert.StatusFiring, Labels: l,
			Fingerprint: strings.Repeat(string(rune('a'+i)), 16), StartsAt: time.Now()})
	}
	return m
}

// alertPipeline has prod rolling back on alerts that match its matchers,
// and staging only recording the alerts labelled for it.
const alertPipeline = `name: shop
environments:
  - name: staging
    steps: [{name: deploy, exec: {run: "true"}}]
    watch: {for: 1h, checks: [{name: up, exec: {run: "true"}}]}
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/deployed"'}}]
    watch: {for: 1h, every: 1s, checks: [{name: up, exec: {run: "true"}}]}
    alerts:
      matchers: ['team="shop"', 'severity=~"page|critical"']
      rollback: true
`

func TestAlerts(t *testing.T) {
	b := setup(t)
	b.apply(t, alertPipeline)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	ctx := context.Background()

	first := b.promote(t, "shop", "1.0.0", "prod").ID
	b.waitState(t, first, promotion.Watching)
	if _, err := b.eng.Resume(ctx, "ana", first, "first release"); err != nil {
		t.Fatal(err)
	}
	b.wait(t, first)
	id := b.promote(t, "shop", "2.0.0", "prod").ID
	b.waitState(t, id, promotion.Watching)
	staging := b.promote(t, "shop", "2.0.0", "staging").ID
	b.waitState(t, staging, promotion.Watching)

	// An alert no route matches concerns nothing.
	rep, err := b.eng.ReceiveAlerts(ctx, "alertmanager", firing("{}:{alertname=\"Other\"}",
		map[string]string{"alertname": "Other", "team": "payments", "severity": "page"}))
	if err != nil || len(rep.Targets) != 0 {
		t.Fatalf("unrelated alert: %+v, %v", rep, err)
	}

	// Staging only records its alerts, once per group however often they repeat.
	stagingAlert := firing("{}:{alertname=\"Slow\"}", map[string]string{"alertname": "Slow",
		"ferry_pipeline": "shop", "ferry_environment": "staging", "severity": "warning"})
	for i, want := range []string{view.AlertRecorded, view.AlertDuplicate, view.AlertDuplicate} {
		rep, err := b.eng.ReceiveAlerts(ctx, "alertmanager", stagingAlert)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Targets) != 1 || rep.Targets[0].Outcome != want || rep.Targets[0].PromotionID != staging {
			t.Fatalf("staging alert, delivery %d: %+v, want %s on %s", i+1, rep.Targets, want, staging)
		}
	}
	sp, err := b.eng.Promotion(ctx, staging)
	if err != nil {
		t.Fatal(err)
	}
	if sp.State != promotion.Watching || len(sp.Alerts) != 1 || sp.Alerts[0].RolledBack || !strings.Contains(sp.Alerts[0].Summary, "Slow") {
		t.Fatalf("staging after its alert: %s, alerts %+v", sp.State, sp.Alerts)
	}

	// Prod rolls back on the first delivery of a matching alert.
	page := firing("{}:{alertname=\"HighErrorRate\"}",
		map[string]string{"alertname": "HighErrorRate", "team": "shop", "severity": "page"},
		map[string]string{"alertname": "HighErrorRate", "team": "shop", "severity": "info"})
	rep, err = b.eng.ReceiveAlerts(ctx, "alertmanager", page)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Outcome != view.AlertRolledBack || rep.Targets[0].Alerts != 1 {
		t.Fatalf("prod alert: %+v, want one matching alert rolling back", rep.Targets)
	}
	done := b.wait(t, id)
	if done.State != promotion.RolledBack || !strings.Contains(done.Message, "rolled back to 1.0.0") {
		t.Fatalf("prod: %s %q", done.State, done.Message)
	}
	if len(done.Alerts) != 1 || !done.Alerts[0].RolledBack {
		t.Fatalf("prod alerts: %+v", done.Alerts)
	}
	var why string
	for _, tr := range done.Transitions {
		if tr.From == promotion.Watching {
			why = tr.Reason
		}
	}
	if !strings.Contains(why, "alert firing: 1 firing: HighErrorRate") {
		t.Errorf("the transition out of watching says %q", why)
	}
	if got := readFile(t, b.dir+"/deployed"); got != "1.0.0\n" {
		t.Errorf("deployed = %q after the rollback", got)
	}
	// A repeat after the rollback finds nothing watching: nothing changes.
	rep, err = b.eng.ReceiveAlerts(ctx, "alertmanager", page)
	if err != nil || len(rep.Targets) != 1 || rep.Targets[0].Outcome != view.AlertIgnored {
		t.Fatalf("repeat after the rollback: %+v, %v", rep, err)
	}
	events, err := b.eng.Audit(ctx, store.AuditFilter{Action: "promotion.alert"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Errorf("%d alert entries in the audit log, want 2 (one per group and promotion)", len(events))
	}
}

func (b *testBundle) deployments(t *testing.T, pipelineName, env string) []store.Deployment {
	t.Helper()
	var deps []store.Deployment
	err := b.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		deps, err = tx.Deployments(context.Background(), pipelineName, env, 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return deps
}
