package expr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

var (
	envOnce sync.Once
	testEnv *Env
	envErr  error
)

// env returns one Env shared by all tests; building it is the slow part.
func env(t *testing.T) *Env {
	t.Helper()
	envOnce.Do(func() { testEnv, envErr = NewEnv() })
	if envErr != nil {
		t.Fatalf("NewEnv: %v", envErr)
	}
	return testEnv
}

// input returns a release of shop 1.4.2 on its way to production, already
// promoted to staging. Now is 14:30 in Berlin.
func input() Input {
	finished := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	return Input{
		Release: release.Release{
			ID:       "rel-1",
			Pipeline: "shop",
			Version:  "1.4.2",
			Artifacts: []release.Artifact{
				{Name: "api", URI: "registry.example.com/shop/api", Digest: digest},
				{Name: "web", URI: "registry.example.com/shop/web", Digest: digest},
			},
			Commit:    "9fceb02",
			Source:    "https://git.example.com/shop",
			BuildURL:  "https://ci.example.com/builds/7",
			Labels:    map[string]string{"risk": "low", "team": "checkout", "a": "1", "z": "2"},
			CreatedAt: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC),
			CreatedBy: "ci",
		},
		Pipeline:    Pipeline{Name: "shop", Revision: 3},
		Environment: Environment{Name: "production", After: []string{"staging"}},
		Promotion: promotion.Promotion{
			ID:     "pro-9",
			Actor:  "alice",
			Reason: "weekly release",
			Kind:   promotion.KindPromote,
		},
		Now: time.Date(2025, 3, 10, 13, 30, 0, 0, time.UTC), // 14:30 CET
		History: []HistoryItem{
			{Environment: "dev", State: promotion.Succeeded, Kind: promotion.KindPromote, FinishedAt: &finished, Actor: "system"},
			{Environment: "staging", State: promotion.Succeeded, Kind: promotion.KindPromote, FinishedAt: &finished, Actor: "bob"},
			{Environment: "qa", State: promotion.Deploying, Kind: promotion.KindPromote, Actor: "carol"},
		},
	}
}

func evalBool(t *testing.T, src string, in Input) bool {
	t.Helper()
	p, err := env(t).Compile(src, Bool)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	got, err := p.EvalBool(context.Background(), in)
	if err != nil {
		t.Fatalf("EvalBool(%q): %v", src, err)
	}
	return got
}

func TestPolicies(t *testing.T) {
	base := input()

	unsigned := input()
	unsigned.Release.Artifacts[1].Digest = "md5:abc"

	noCommit := input()
	noCommit.Release.Commit = ""

	late := input()
	late.Now = time.Date(2025, 3, 10, 15, 30, 0, 0, time.UTC) // 16:30 CET

	summer := input()
	summer.Now = time.Date(2025, 7, 10, 13, 30, 0, 0, time.UTC) // 15:30 CEST

	noStaging := input()
	noStaging.History = noStaging.History[:1]

	forced := input()
	forced.Promotion.Forced = true
	forced.Expedited = true

	rollback := input()
	rollback.Promotion.Kind = promotion.KindRollback

	tests := []struct {
		name string
		src  string
		in   Input
		want bool
	}{
		{"label matches", `release.labels["risk"] == "low"`, base, true},
		{"label differs", `release.labels["risk"] == "high"`, base, false},
		{"label present", `"team" in release.labels`, base, true},
		{"label absent", `"owner" in release.labels && release.labels["owner"] == "x"`, base, false},
		{"all digests sha256", `release.artifacts.all(a, a.digest.startsWith("sha256:"))`, base, true},
		{"one digest md5", `release.artifacts.all(a, a.digest.startsWith("sha256:"))`, unsigned, false},
		{"artifact by name", `release.artifacts.exists(a, a.name == "api" && a.uri.endsWith("/api"))`, base, true},
		{"has commit", `release.commit != ""`, base, true},
		{"no commit", `release.commit != ""`, noCommit, false},
		{"provenance", `release.source.startsWith("https://") && release.buildUrl != "" && release.createdBy == "ci"`, base, true},
		{"version", `release.version == "1.4.2" && release.id == "rel-1" && release.pipeline == "shop"`, base, true},
		{"before 16 in winter", `now.getHours("Europe/Berlin") < 16`, base, true},
		{"after 16 in winter", `now.getHours("Europe/Berlin") < 16`, late, false},
		{"before 16 in summer", `now.getHours("Europe/Berlin") < 16`, summer, true},
		{"weekday", `now.getDayOfWeek("Europe/Berlin") in [1, 2, 3, 4]`, base, true},
		{"release age", `now - release.createdAt >= duration("4h")`, base, true},
		{"staging succeeded", `history.exists(h, h.environment == "staging" && h.state == "succeeded")`, base, true},
		{"staging missing", `history.exists(h, h.environment == "staging" && h.state == "succeeded")`, noStaging, false},
		{"upstream done", `environment.after.all(e, history.exists(h, h.environment == e && h.state == "succeeded"))`, base, true},
		{"running has no finish", `history.exists(h, h.finishedAt == null && h.environment == "qa")`, base, true},
		{"finished soaked", `history.exists(h, h.environment == "staging" && h.finishedAt != null && now - h.finishedAt > duration("1h"))`, base, true},
		{"not forced", `!promotion.forced && !promotion.expedited`, base, true},
		{"forced and expedited", `promotion.forced && promotion.expedited`, forced, true},
		{"promote kind", `promotion.kind == "promote"`, base, true},
		{"rollback always allowed", `promotion.kind == "rollback" || release.labels["risk"] == "high"`, rollback, true},
		{"promotion fields", `promotion.actor == "alice" && promotion.id == "pro-9" && promotion.reason.contains("weekly")`, base, true},
		{"pipeline", `pipeline.name == "shop" && pipeline.revision >= 3`, base, true},
		{"environment", `environment.name == "production" && "staging" in environment.after`, base, true},
		{"multi-line", "release.labels[\"risk\"] == \"low\" &&\n  release.commit != \"\"", base, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evalBool(t, tt.src, tt.in); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.src, got, tt.want)
			}
		})
	}
}

func TestApprovalCount(t *testing.T) {
	p, err := env(t).Compile(`release.labels["risk"] == "low" ? 0 : 2`, Int)
	if err != nil {
		t.Fatal(err)
	}
	low := input()
	high := input()
	high.Release.Labels["risk"] = "high"
	for _, tt := range []struct {
		in   Input
		want int64
	}{{low, 0}, {high, 2}} {
		got, err := p.EvalInt(context.Background(), tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("risk %s: got %d approvals, want %d", tt.in.Release.Labels["risk"], got, tt.want)
		}
	}
	if _, err := p.EvalBool(context.Background(), low); err == nil {
		t.Error("EvalBool on an Int program succeeded")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		want   Kind
		line   int
		column int
		msg    string
	}{
		{"field typo", `release.versoin == "1.0"`, Bool, 1, 8, "undefined field 'versoin'"},
		{"nested field typo", `release.artifacts.all(a, a.digets != "")`, Bool, 1, 27, "undefined field 'digets'"},
		{"history field typo", `history.exists(h, h.env == "staging")`, Bool, 1, 20, "undefined field 'env'"},
		{"undeclared variable", `relase.version == "1.0"`, Bool, 1, 1, "undeclared reference to 'relase'"},
		{"syntax error on line 2", "release.commit != \"\" &&\n  release.labels[\"risk\"] == = \"low\"", Bool, 2, 29, "Syntax error"},
		{"not a bool", `release.version`, Bool, 1, 8, "expression must evaluate to bool, not string"},
		{"not an int", `release.labels["risk"] == "low"`, Int, 1, 24, "expression must evaluate to int, not bool"},
		{"nullable result", `history[0].finishedAt`, Bool, 1, 11, "expression must evaluate to bool, not timestamp or null"},
		{"wrong operand", `pipeline.revision == "3"`, Bool, 1, 19, "no matching overload for '_==_'"},
		{"no construction", `ferry.Release{id: "x"}.id == "x"`, Bool, 1, 14, "cannot construct ferry.Release values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env(t).Compile(tt.src, tt.want)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) = %v, want *Error", tt.src, err)
			}
			if e.Line != tt.line || e.Column != tt.column || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("Compile(%q) = %q at %d:%d, want %q at %d:%d", tt.src, e.Message, e.Line, e.Column, tt.msg, tt.line, tt.column)
			}
			if strings.Contains(e.Message, "container") {
				t.Errorf("message %q mentions CEL containers", e.Message)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		msg  string
	}{
		{"missing label", `release.labels["owner"] == "alice"`, "no such key: owner"},
		{"unknown time zone", `now.getHours("Mars/Olympus") < 16`, "Mars/Olympus"},
		{"null timestamp", `history.all(h, h.finishedAt < now)`, "no such overload"},
		{"dyn result", `dyn(release.version)`, "expression must evaluate to bool, not string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := env(t).Compile(tt.src, Bool)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.EvalBool(context.Background(), input())
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("EvalBool(%q) error = %v, want one containing %q", tt.src, err, tt.msg)
			}
		})
	}
}

func TestCostLimit(t *testing.T) {
	in := input()
	in.Release.Artifacts = nil
	for i := range 200 {
		in.Release.Artifacts = append(in.Release.Artifacts, release.Artifact{Name: fmt.Sprintf("a%d", i), URI: "u", Digest: digest})
	}
	src := `release.artifacts.all(a, release.artifacts.all(b, release.artifacts.all(c, a.name != "" && b.name != c.name + "x")))`
	p, err := env(t).Compile(src, Bool)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.EvalBool(context.Background(), in)
	if !errors.Is(err, ErrCostLimit) {
		t.Fatalf("err = %v, want ErrCostLimit", err)
	}
	if want := "expression exceeded its cost limit of 100000"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

func TestCancelled(t *testing.T) {
	p, err := env(t).Compile(`release.commit != ""`, Bool)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.EvalBool(ctx, input()); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestDeterministic(t *testing.T) {
	srcs := []string{
		`release.labels.map(k, k) == ["a", "risk", "team", "z"]`,
		`release.labels.filter(k, k != "risk").map(k, release.labels[k]) == ["1", "checkout", "2"]`,
		`history.map(h, h.environment) == ["dev", "staging", "qa"]`,
	}
	for _, src := range srcs {
		p, err := env(t).Compile(src, Bool)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			got, err := p.EvalBool(context.Background(), input())
			if err != nil {
				t.Fatal(err)
			}
			if !got {
				t.Fatalf("%s was false", src)
			}
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	p, err := env(t).Compile(`release.artifacts.all(a, a.digest.startsWith("sha256:")) && history.exists(h, h.environment == "staging")`, Bool)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if got, err := p.EvalBool(context.Background(), input()); err != nil || !got {
					t.Errorf("EvalBool = %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEmptyInput(t *testing.T) {
	// A zero Input still evaluates: lists and maps are empty, not null.
	got := evalBool(t, `size(release.artifacts) == 0 && size(release.labels) == 0 && size(environment.after) == 0 && size(history) == 0`, Input{})
	if !got {
		t.Error("zero input: got false")
	}
}

func TestHistoryOf(t *testing.T) {
	done := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	ps := []promotion.Promotion{
		{Environment: "staging", State: promotion.Succeeded, Kind: promotion.KindPromote, Actor: "bob", FinishedAt: &done},
		{Environment: "qa", State: promotion.Verifying, Kind: promotion.KindRollback, Actor: "carol"},
	}
	in := input()
	in.History = HistoryOf(ps)
	if !evalBool(t, `history[0].finishedAt == timestamp("2025-03-01T00:00:00Z") && history[1].finishedAt == null && history[1].kind == "rollback" && history[1].state == "verifying"`, in) {
		t.Error("history converted wrongly")
	}
}
