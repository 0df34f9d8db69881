package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/promtest"
	"github.com/ferry-dev/ferry/internal/traceid"
	"github.com/ferry-dev/ferry/internal/view"
)

// observedPipeline deploys with a secret (the harness's DEPLOY_TOKEN) that
// its deploy step prints, fails the smoke check of 2.0.0-bad in staging, and
// holds prod for one approval.
const observedPipeline = `name: obs
environments:
  - name: staging
    steps:
      - name: deploy
        secretEnv: [DEPLOY_TOKEN]
        exec: {run: 'echo "deploying $FERRY_RELEASE with $DEPLOY_TOKEN"; echo "$FERRY_RELEASE" > "$WORK/staging"'}
    verify:
      - name: smoke
        exec: {run: 'test "$(cat "$WORK/staging")" != 2.0.0-bad'}
  - name: prod
    after: [staging]
    gates:
      approvals: {required: 1, from: ["role:approver"]}
    steps: [{name: deploy, exec: {run: 'true'}}]
`

// scrape GETs /metrics with token, fails the test unless it answers 200,
// runs the real promtool over the text, and returns the parsed families.
func (s *server) scrape(token string) map[string]*dto.MetricFamily {
	s.t.Helper()
	status, body := s.getMetrics(token)
	if status != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d %s", status, body)
	}
	promtest.CheckMetrics(s.t, body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		s.t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func (s *server) getMetrics(token string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, body
}

// metricValue returns the value of the series of family name with exactly
// labels ("k=v"), or -1 when there is none. For a histogram it returns the
// observation count.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sort.Strings(labels)
	want := strings.Join(labels, ",")
	for _, m := range f.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(got)
		if strings.Join(got, ",") != want {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// expectMetrics checks each "name{labels} = value" expectation.
func expectMetrics(t *testing.T, fams map[string]*dto.MetricFamily, want []metricWant) {
	t.Helper()
	for _, w := range want {
		if got := metricValue(fams, w.name, w.labels...); got != w.value {
			t.Errorf("%s{%s} = %v, want %v", w.name, strings.Join(w.labels, ","), got, w.value)
		}
	}
}

type metricWant struct {
	name   string
	labels []string
	value  float64
}

// TestServerMetricsAndLogs runs promotions through a real server — one that
// succeeds, one whose check fails and is rolled back, one waiting for an
// approval across a restart — and checks what /metrics reports (parsed, and
// passed through the real promtool) and what the server logs.
func TestServerMetricsAndLogs(t *testing.T) {
	eachStore(t, func(t *testing.T, b backend) {
		s := startServer(t, b)
		s.must("apply", "-f", s.writeFile("obs.yaml", observedPipeline))
		for _, v := range []string{"1.0.0", "2.0.0-bad"} {
			s.must("release", "create", "--pipeline", "obs", "--version", v, "--artifact", "app=x/app@"+digest(v))
		}
		if r := s.ferry("promote", "--pipeline", "obs", "--release", "1.0.0", "--to", "staging", "--wait"); r.code != 0 {
			t.Fatalf("1.0.0 to staging: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := s.ferry("promote", "--pipeline", "obs", "--release", "2.0.0-bad", "--to", "staging", "--wait"); r.code != 3 {
			t.Fatalf("2.0.0-bad to staging: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
		}
		staging := s.promotions("--pipeline", "obs", "--env", "staging")
		if len(staging) != 2 || staging[0].State != promotion.RolledBack || staging[1].State != promotion.Succeeded {
			t.Fatalf("staging promotions: %+v", staging)
		}
		if out := s.must("logs", staging[0].ID); !strings.Contains(out, "deploying 2.0.0-bad with ***") {
			t.Fatalf("the deploy step did not print the (redacted) secret:\n%s", out)
		}
		var held view.Promotion
		if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "obs", "--release", "1.0.0", "--to", "prod", "-o", "json")), &held); err != nil {
			t.Fatal(err)
		}
		if p := s.waitState(held.ID, promotion.AwaitingApproval); p.State != promotion.AwaitingApproval {
			t.Fatalf("prod: %s %q", p.State, p.Message)
		}

		// Prometheus scrapes with a viewer token on the global scope; other tokens are refused.
		prom := createToken(s, "prometheus", "viewer", "*")
		if status, _ := s.getMetrics(""); status != http.StatusUnauthorized {
			t.Errorf("GET /metrics without a token: %d, want 401", status)
		}
		if status, _ := s.getMetrics(createToken(s, "scoped", "viewer", "obs")); status != http.StatusForbidden {
			t.Errorf("GET /metrics with a token scoped to one pipeline: %d, want 403", status)
		}
		pe := func(env string, more ...string) []string {
			return append([]string{"pipeline=obs", "environment=" + env}, more...)
		}
		fams := s.scrape(prom)
		expectMetrics(t, fams, []metricWant{
			{"ferry_promotions_total", pe("staging", "kind=promote", "result=succeeded"), 1},
			{"ferry_promotions_total", pe("staging", "kind=promote", "result=rolled_back"), 1},
			{"ferry_promotion_duration_seconds", pe("staging", "kind=promote", "result=rolled_back"), 1},
			{"ferry_rollbacks_total", pe("staging", "trigger=automatic"), 1},
			// 1.0.0's smoke check, 2.0.0-bad's, and 1.0.0's again in the rollback.
			{"ferry_checks_total", []string{"kind=exec", "result=passed"}, 2},
			{"ferry_checks_total", []string{"kind=exec", "result=failed"}, 1},
			{"ferry_step_duration_seconds", []string{"kind=exec", "phase=deploy", "result=succeeded"}, 2},
			{"ferry_step_duration_seconds", []string{"kind=exec", "phase=rollback", "result=succeeded"}, 2},
			{"ferry_gate_evaluations_total", []string{"gate=upstream", "result=pass"}, 3},
			{"ferry_gate_evaluations_total", []string{"gate=approvals", "result=pending"}, 1},
			{"ferry_promotions_in_flight", pe("prod", "state=awaiting_approval"), 1},
			{"ferry_promotions_in_flight", pe("staging", "state=deploying"), 0},
			{"ferry_promotion_queue_depth", pe("prod"), 0},
			{"ferry_steps_running", nil, 0},
		})
		if n := metricValue(fams, "ferry_store_transaction_duration_seconds", "op=update", "result=ok"); n < 10 {
			t.Errorf("%v committed store updates timed, want the dozens the promotions made", n)
		}
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					for _, id := range []string{held.ID, staging[0].ID, staging[1].ID} {
						if strings.Contains(l.GetValue(), id) {
							t.Errorf("%s has a label holding promotion ID %s", name, id)
						}
					}
				}
			}
		}
		checkPromotionLogs(t, s.logs.String(), held.ID, staging[0].ID, staging[1].ID)

		// After a restart the gauges still say what waits; counters start over.
		s.term()
		s.start()
		fams = s.scrape(prom)
		expectMetrics(t, fams, []metricWant{
			{"ferry_promotions_in_flight", pe("prod", "state=awaiting_approval"), 1},
			{"ferry_promotions_total", pe("staging", "kind=promote", "result=succeeded"), -1},
		})
		approver := createToken(s, "alice", "approver", "obs/prod")
		s.as(approver).must("approve", held.ID, "--comment", "ok")
		if p := s.waitEnded(held.ID); p.State != promotion.Succeeded {
			t.Fatalf("prod after the approval: %s %q", p.State, p.Message)
		}
		expectMetrics(t, s.scrape(prom), []metricWant{
			{"ferry_promotions_in_flight", pe("prod", "state=awaiting_approval"), 0},
			{"ferry_promotions_in_flight", pe("prod", "state=deploying"), 0},
			{"ferry_promotions_total", pe("prod", "kind=promote", "result=succeeded"), 1},
			{"ferry_approval_wait_seconds", pe("prod", "result=approved"), 1},
			{"ferry_gate_evaluations_total", []string{"gate=approvals", "result=pass"}, 1},
		})
		checkPromotionLogs(t, s.logs.String(), held.ID)
	})
}

// checkPromotionLogs checks a server's output: every line but the one
// saying where it listens is JSON; every line about a promotion carries its
// ID, trace ID, pipeline and environment; each of ids has transitions
// logged; and DEPLOY_TOKEN's value appears nowhere.
func checkPromotionLogs(t *testing.T, out string, ids ...string) {
	t.Helper()
	if strings.Contains(out, "tok-3f9a1c") {
		t.Fatalf("the server's output holds DEPLOY_TOKEN's value:\n%s", out)
	}
	transitions := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "ferry server listening on ") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("server output line %d is not JSON: %q", i+1, line)
			continue
		}
		id, _ := rec["promotion_id"].(string)
		if id == "" {
			for _, known := range ids {
				if strings.Contains(line, known) && rec["msg"] != "http request" {
					t.Errorf("line %d names promotion %s without a promotion_id attribute: %s", i+1, known, line)
				}
			}
			continue
		}
		if rec["trace_id"] != traceid.String(id) || rec["pipeline"] != "obs" || rec["environment"] == nil || rec["environment"] == "" {
			t.Errorf("line %d about promotion %s lacks its trace ID, pipeline or environment: %s", i+1, id, line)
		}
		if rec["msg"] == "promotion transition" {
			transitions[id]++
		}
	}
	for _, id := range ids {
		if transitions[id] == 0 {
			t.Errorf("no transition of promotion %s is logged (transitions logged: %v)", id, fmt.Sprint(transitions))
		}
	}
}
