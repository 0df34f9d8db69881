package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/promtest"
	"github.com/ferry-dev/ferry/internal/view"
)

// TestPrometheusChecks runs releases through a pipeline whose verify has a
// Prometheus check, against a real Prometheus scraping a target whose error
// ratio follows the release deployed: a good release passes, a bad one
// fails its check and is rolled back, and a check without data pauses the
// promotion until a person resumes it.
func TestPrometheusChecks(t *testing.T) {
	work := t.TempDir()
	target := promtest.NewTarget(t)
	target.OnScrape(func() {
		b, _ := os.ReadFile(filepath.Join(work, "prod"))
		ratio := 0.001
		if strings.TrimSpace(string(b)) == "2.0.0-bad" {
			ratio = 0.2
		}
		target.SetGauge("error_ratio", map[string]string{"env": "prod"}, ratio)
	})
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: 500 * time.Millisecond})
	prom.Await(t, `error_ratio`, 30*time.Second)

	eachStore(t, func(t *testing.T, b backend) {
		s := startServer(t, b)
		s.work = work
		_ = os.Remove(filepath.Join(work, "prod"))
		check := `
        prometheus:
          address: ` + prom.URL() + `
          query: 'scalar(max(error_ratio{env="${environment}"}))'
          interval: 1s
          count: 3
          successCondition: result < 0.01
          failureCondition: result > 0.05
          noData: inconclusive`
		s.must("apply", "-f", s.writeFile("m.yaml", `name: metrics
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "`+work+`/prod"; sleep 1.2'}}]
    verify:
      - name: error-rate`+check+`
  - name: eu
    steps: [{name: deploy, exec: {run: 'true'}}]
    verify:
      - name: error-rate`+check+`
`))
		for _, v := range []string{"1.0.0", "2.0.0-bad"} {
			s.must("release", "create", "--pipeline", "metrics", "--version", v, "--artifact", "app=x/app@"+digest(v))
		}
		if r := s.ferry("promote", "--pipeline", "metrics", "--release", "1.0.0", "--to", "prod", "--wait"); r.code != 0 {
			t.Fatalf("good release: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		good := s.promotions("--pipeline", "metrics", "--env", "prod", "--limit", "1")[0]
		if logs := s.must("logs", good.ID); strings.Count(logs, "measurement ") < 3 {
			t.Fatalf("the check's measurements are not in its output:\n%s", logs)
		}

		r := s.ferry("promote", "--pipeline", "metrics", "--release", "2.0.0-bad", "--to", "prod", "--wait")
		bad := s.promotions("--pipeline", "metrics", "--env", "prod", "--limit", "1")[0]
		if r.code != 3 || bad.State != promotion.RolledBack {
			t.Fatalf("bad release: exit %d state %s: %s\n%s", r.code, bad.State, bad.Message, r.stdout)
		}
		if got := strings.TrimSpace(s.readWork("prod")); got != "1.0.0" {
			t.Fatalf("prod runs %q after the rollback", got)
		}

		// eu has no data: the check is inconclusive and the promotion pauses.
		var p view.Promotion
		_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "metrics", "--release", "1.0.0", "--to", "eu", "-o", "json")), &p)
		p = s.waitState(p.ID, promotion.Paused)
		if p.State != promotion.Paused || !strings.Contains(p.Message, "inconclusive") {
			t.Fatalf("no data: %s %q", p.State, p.Message)
		}
		if r := s.ferry("resume", p.ID); r.code != 2 {
			t.Fatalf("resume without --reason: exit %d", r.code)
		}
		s.must("resume", p.ID, "--reason", "eu has no traffic yet")
		if done := s.waitEnded(p.ID); done.State != promotion.Succeeded {
			t.Fatalf("after resume: %s %q", done.State, done.Message)
		}
	})
}

// TestErrorBudgetGate holds a promotion while the service burns its error
// budget (measured by a real Prometheus) and lets it through once the burn
// stops; ferry plan shows the burn rates.
func TestErrorBudgetGate(t *testing.T) {
	target := promtest.NewTarget(t)
	var mu sync.Mutex
	errorsPerScrape := 50.0
	target.OnScrape(func() {
		mu.Lock()
		bad := errorsPerScrape
		mu.Unlock()
		target.Add("requests_total", map[string]string{"env": "prod", "code": "200"}, 100)
		target.Add("requests_total", map[string]string{"env": "prod", "code": "500"}, bad)
	})
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: 500 * time.Millisecond})
	prom.Await(t, `rate(requests_total[5s]) > 0`, 30*time.Second)

	s := startServer(t, sqliteStore)
	s.must("apply", "-f", s.writeFile("b.yaml", `name: budget
environments:
  - name: prod
    gates:
      errorBudget:
        prometheus: `+prom.URL()+`
        errors: 'sum(rate(requests_total{env="${environment}",code="500"}[$window]))'
        total: 'sum(rate(requests_total{env="${environment}"}[$window]))'
        objective: 90
        rules: [{long: 10s, short: 5s, factor: 2}]
    steps: [{name: deploy, exec: {run: 'true'}}]
`))
	s.must("release", "create", "--pipeline", "budget", "--version", "1.0.0", "--artifact", "app=x/app@"+digest("b1"))

	p, code := plan(t, s, "--pipeline", "budget", "--release", "1.0.0", "--to", "prod")
	if g := gateOf(p, "error-budget"); code != 3 || g.Result != promotion.GatePending || !strings.Contains(g.Reason, "burning error budget") {
		t.Fatalf("plan while burning: exit %d %+v", code, g)
	}
	var held view.Promotion
	_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "budget", "--release", "1.0.0", "--to", "prod", "-o", "json")), &held)
	deadline := time.Now().Add(30 * time.Second)
	for {
		held = s.promotion(held.ID)
		if strings.Contains(held.Message, "burning error budget") {
			break
		}
		if held.State != promotion.Gating || time.Now().After(deadline) {
			t.Fatalf("while burning: %s %q", held.State, held.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}

	mu.Lock()
	errorsPerScrape = 0
	mu.Unlock()
	if done := s.waitEnded(held.ID); done.State != promotion.Succeeded {
		t.Fatalf("after the burn stopped: %s %q", done.State, done.Message)
	}
}

// TestCanaryPhasesWithPrometheus runs a canary strategy whose phases are
// analysed by a real Prometheus: a healthy release goes to 100%; a release
// whose error rate rises is stopped at its first phase — its first
// measurement fails — and rolled back with the weight set back to 0.
func TestCanaryPhasesWithPrometheus(t *testing.T) {
	work := t.TempDir()
	target := promtest.NewTarget(t)
	target.OnScrape(func() {
		b, _ := os.ReadFile(filepath.Join(work, "canary"))
		v := strings.TrimSpace(string(b))
		if v == "" {
			return
		}
		ratio := 0.001
		if strings.HasSuffix(v, "-bad") {
			ratio = 0.2
		}
		target.SetGauge("error_ratio", map[string]string{"version": v}, ratio)
	})
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: 500 * time.Millisecond})
	prom.Await(t, `up == 1`, 30*time.Second)
	s := startServer(t, sqliteStore)
	s.work = work
	analysis := `
            analysis:
              - name: error-rate
                prometheus:
                  address: ` + prom.URL() + `
                  query: 'scalar(max(error_ratio{version="${release}"}))'
                  interval: 1s
                  count: 2
                  successCondition: result < 0.01
                  failureCondition: result > 0.05`
	s.must("apply", "-f", s.writeFile("c.yaml", `name: shop
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "`+work+`/canary"; sleep 1.2'}}]
    strategy:
      canary:
        setWeight:
          - name: route
            exec: {run: 'echo "$FERRY_RELEASE@$FERRY_CANARY_WEIGHT" >> "`+work+`/weights"'}
        phases:
          - weight: 10`+analysis+`
          - weight: 50`+analysis+`
          - weight: 100
`))
	for _, v := range []string{"1.0.0", "2.0.0-bad"} {
		s.must("release", "create", "--pipeline", "shop", "--version", v, "--artifact", "app=x/app@"+digest("c"+v))
	}
	if r := s.ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--wait"); r.code != 0 {
		t.Fatalf("healthy canary: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := s.readWork("weights"); got != "1.0.0@10\n1.0.0@50\n1.0.0@100\n" {
		t.Fatalf("healthy canary weights = %q, want 10, 50, 100", got)
	}
	good := s.promotions("--pipeline", "shop", "--env", "prod", "--limit", "1")[0]
	if g := s.promotion(good.ID); g.Canary == nil || g.Canary.Weight != 100 || g.Canary.Phase != 3 {
		t.Fatalf("healthy canary status: %+v", g.Canary)
	}

	r := s.ferry("promote", "--pipeline", "shop", "--release", "2.0.0-bad", "--to", "prod", "--wait")
	bad := s.promotion(s.promotions("--pipeline", "shop", "--env", "prod", "--limit", "1")[0].ID)
	if r.code != 3 || bad.State != promotion.RolledBack {
		t.Fatalf("bad canary: exit %d %s %q", r.code, bad.State, bad.Message)
	}
	if got := s.readWork("weights"); got != "1.0.0@10\n1.0.0@50\n1.0.0@100\n2.0.0-bad@10\n1.0.0@0\n" {
		t.Fatalf("bad canary weights = %q: want it stopped at 10%% and the weight set back to 0", got)
	}
	for _, st := range bad.Steps {
		if st.Phase == promotion.PhaseCanary && strings.Contains(st.Name, "error-rate") && st.State == "failed" {
			if took := st.FinishedAt.Sub(*st.StartedAt); took > 1500*time.Millisecond {
				t.Errorf("the failing analysis took %v, more than one analysis interval (1s)", took)
			}
			return
		}
	}
	t.Fatalf("no failed canary analysis step in %+v", bad.Steps)
}
