package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/amtest"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// TestAlertmanagerDuringWatch runs a real Alertmanager delivering to Ferry's
// receiver with a promoter token. An alert for prod while 2.0.0 is watching
// there rolls prod back to 1.0.0; an alert for staging, which only records
// alerts, stays one entry on its promotion however often Alertmanager
// repeats the group.
func TestAlertmanagerDuringWatch(t *testing.T) { eachStore(t, testAlertmanagerDuringWatch) }

func testAlertmanagerDuringWatch(t *testing.T, b backend) {
	s := startServer(t, b)
	token := createToken(s, "alertmanager", "promoter", "*")
	am := amtest.Start(t, amtest.Config{
		WebhookURL:     "http://" + s.addr + "/api/v1/alerts/alertmanager",
		BearerToken:    token,
		RepeatInterval: time.Second,
	})
	s.must("apply", "-f", s.writeFile("shop.yaml", `name: shop
environments:
  - name: staging
    steps: [{name: deploy, exec: {run: "true"}}]
    watch: {for: 1h, checks: [{name: up, exec: {run: "true"}}]}
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/prod"'}}]
    watch: {for: 1h, every: 1s, checks: [{name: up, exec: {run: "true"}}]}
    alerts:
      matchers: ['service="shop"', 'severity=~"page|critical"']
      rollback: true
`))
	for _, v := range []string{"1.0.0", "2.0.0"} {
		s.must("release", "create", "--pipeline", "shop", "--version", v, "--artifact", "api=registry.example/api@"+digest(v))
	}
	promote := func(version, env string) string {
		var p view.Promotion
		if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", version, "--to", env, "--reason", "e2e", "-o", "json")), &p); err != nil {
			t.Fatal(err)
		}
		return p.ID
	}

	first := promote("1.0.0", "prod")
	if p := s.waitState(first, promotion.Watching); p.State != promotion.Watching || p.Watch == nil || !p.Watch.Open {
		t.Fatalf("1.0.0 after its checks: %s %q watch %+v", p.State, p.Message, p.Watch)
	}
	s.must("resume", first, "--reason", "first release: nothing to compare with")
	if p := s.waitEnded(first); p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %q", p.State, p.Message)
	}
	id := promote("2.0.0", "prod")
	s.waitState(id, promotion.Watching)
	staging := promote("2.0.0", "staging")
	s.waitState(staging, promotion.Watching)

	// Prometheus would send these: one alert matching prod's matchers, one
	// naming staging by label.
	fired := time.Now()
	am.Fire(t, map[string]string{"alertname": "HighErrorRate", "service": "shop", "severity": "page"},
		map[string]string{"summary": "5xx ratio above 5%"})
	am.Fire(t, map[string]string{"alertname": "SlowRequests", "ferry_pipeline": "shop", "ferry_environment": "staging"}, nil)

	p := s.waitEnded(id)
	if p.State != promotion.RolledBack || !strings.Contains(p.Message, "rolled back to 1.0.0") {
		t.Fatalf("2.0.0 in prod: %s %q\n%s", p.State, p.Message, am.Log())
	}
	t.Logf("rolled back %s after the alert fired", p.FinishedAt.Sub(fired).Round(time.Millisecond))
	if len(p.Alerts) != 1 || !p.Alerts[0].RolledBack || !strings.Contains(p.Alerts[0].Summary, "HighErrorRate") ||
		!strings.Contains(p.Alerts[0].Summary, "5xx ratio above 5%") {
		t.Fatalf("prod's alerts: %+v", p.Alerts)
	}
	if got := s.readWork("prod"); got != "1.0.0\n" {
		t.Errorf("prod runs %q after the rollback", got)
	}

	// Let Alertmanager repeat the groups a few times.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		sent, failed, err := am.Notifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if failed > 0 {
			t.Fatalf("Alertmanager failed %d deliveries:\n%s\n%s", failed, am.Log(), s.logs.String())
		}
		if sent >= 6 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Alertmanager sent %d notifications in 30s, want repeats", sent)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sp := s.promotion(staging)
	if sp.State != promotion.Watching || len(sp.Alerts) != 1 || sp.Alerts[0].RolledBack || !strings.Contains(sp.Alerts[0].Summary, "SlowRequests") {
		t.Fatalf("staging after repeated notifications: %s, alerts %+v", sp.State, sp.Alerts)
	}
	show := s.must("promotion", "show", staging)
	if !strings.Contains(show, "Alerts:") || !strings.Contains(show, "SlowRequests") || !strings.Contains(show, "Watch:") {
		t.Errorf("promotion show does not show the watch and the alert:\n%s", show)
	}
	if p := s.promotion(id); len(p.Alerts) != 1 {
		t.Errorf("prod's promotion has %d alert entries after the repeats, want 1", len(p.Alerts))
	}
}
