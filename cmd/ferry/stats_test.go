package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
)

// statsService answers Stats with a fixed report and records the request,
// and records the release it is asked to create.
type statsService struct {
	api.Service
	req     engine.StatsRequest
	release release.Release
}

func (s *statsService) Stats(_ context.Context, req engine.StatsRequest) (*stats.Report, error) {
	s.req = req
	f := func(v float64) *float64 { return &v }
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	return &stats.Report{Pipeline: req.Pipeline, Production: []string{"shop/prod"}, From: from, To: from.Add(48 * time.Hour),
		Figures: stats.Figures{Promotions: 5, Attempts: 4, Succeeded: 3, SuccessRate: f(0.75),
			PromotedToProduction: 2, MeanTimeToPromoteSeconds: f(3330.4), AuditComplete: 5, AuditCompleteness: f(1),
			Deployments: 2, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: f(1)},
		AuditGaps: []stats.AuditGap{{PromotionID: "p9", Problem: "no promotion.create event"}},
		Series: []stats.Bucket{{From: from, To: from.Add(24 * time.Hour), Figures: stats.Figures{Promotions: 5, SuccessRate: f(0.75)}},
			{From: from.Add(24 * time.Hour), To: from.Add(48 * time.Hour)}},
	}, nil
}

func (s *statsService) CreateRelease(_ context.Context, _ string, r release.Release) (*release.Release, bool, error) {
	s.release = r
	r.ID, r.CreatedAt = "r1", time.Now()
	return &r, true, nil
}

func TestStatsTable(t *testing.T) {
	svc := &statsService{}
	startAPI(t, svc)
	code, out, stderr := runCLI(t, "", "stats", "--pipeline", "shop", "--window", "2d", "--bucket", "1d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if svc.req != (engine.StatsRequest{Pipeline: "shop", Window: 48 * time.Hour, Bucket: 24 * time.Hour}) {
		t.Errorf("request = %+v", svc.req)
	}
	for _, want := range []string{
		"pipeline shop: promotions that ended from 2025-03-01T00:00:00Z to 2025-03-03T00:00:00Z",
		"production: [shop/prod]",
		"M1    promotion success rate        75.0%     3 of 4 attempts",
		"M2    mean time to promote          55m30s    2 reached production",
		"M3    rollback rate                 -         0 of 4 attempts",
		"M10   audit completeness            100.0%    5 of 5 promotions",
		"DORA  deployment frequency          1.00/day  2 successful deployments",
		"DORA  lead time for changes         -         median of 0; 0 without commit time",
		"p9  no promotion.create event",
		"2025-03-01T00:00:00Z  5           75.0%    -",
		"2025-03-02T00:00:00Z  0           -        -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "", "stats", "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if m["successRate"] != 0.75 || m["rollbackRate"] != nil || m["promotions"] != 5.0 {
		t.Errorf("json = %v", m)
	}
	if svc.req != (engine.StatsRequest{Window: 30 * 24 * time.Hour}) {
		t.Errorf("default request = %+v", svc.req)
	}
}

func TestStatsUsageErrors(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	for args, want := range map[string]string{
		"stats --window forever": `--window "forever": want a positive duration`,
		"stats --window 0d":      `--window "0d"`,
		"stats --bucket -1d":     `--bucket "-1d"`,
		"stats extra":            "unknown command",
		"release create --pipeline shop --version 1 --artifact a=r/a@sha256:" + strings.Repeat("a", 64) + " --commit-time yesterday": `--commit-time "yesterday": want an RFC 3339 time`,
	} {
		code, _, stderr := runCLI(t, "", strings.Fields(args)...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("ferry %s: exit %d, stderr %q; want 2 and %q", args, code, stderr, want)
		}
	}
}

func TestReleaseCreateSendsCommitTime(t *testing.T) {
	svc := &statsService{}
	startAPI(t, svc)
	code, _, stderr := runCLI(t, "", "release", "create", "--pipeline", "shop", "--version", "1.0",
		"--artifact", "api=reg/api@sha256:"+strings.Repeat("a", 64), "--commit-time", "2025-03-01T10:00:00+02:00")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if ct := svc.release.CommitTime; ct == nil || !ct.Equal(time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("commit time sent = %v", ct)
	}
}
