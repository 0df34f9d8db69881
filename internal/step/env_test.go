package step_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func testRequest() step.Request {
	return step.Request{
		PromotionID: "prm_123",
		Pipeline:    "shop",
		Environment: "staging",
		Release: release.Release{
			Version: "1.4.2",
			Artifacts: []release.Artifact{
				{Name: "api-server.v2", URI: "registry.example.com/shop/api", Digest: digestA},
				{Name: "web", URI: "registry.example.com/shop/web", Digest: digestB},
			},
		},
		Phase: promotion.PhaseDeploy,
		Step: pipeline.Step{
			Name: "deploy",
			Exec: &pipeline.Exec{Run: "true", Env: map[string]string{"REGION": "eu", "HOME": "/step-home"}},
		},
		Attempt:        3,
		IdempotencyKey: "key-1",
	}
}

// envMap turns env into a map, failing the test if a name appears twice.
func envMap(t *testing.T, env []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("entry %q has no '='", kv)
		}
		if _, dup := m[name]; dup {
			t.Fatalf("%s appears twice in %q", name, env)
		}
		m[name] = value
	}
	return m
}

func TestEnvironFerryVariables(t *testing.T) {
	req := testRequest()
	req.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	env, err := step.Environ(req, []string{"PATH=/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	m := envMap(t, env)
	want := map[string]string{
		"PATH":                                "/usr/bin:/bin",
		"REGION":                              "eu",
		"FERRY_PROMOTION_ID":                  "prm_123",
		"FERRY_PIPELINE":                      "shop",
		"FERRY_ENVIRONMENT":                   "staging",
		"FERRY_RELEASE":                       "1.4.2",
		"FERRY_ROLLBACK":                      "0",
		"FERRY_STEP":                          "deploy",
		"FERRY_PHASE":                         "deploy",
		"FERRY_ATTEMPT":                       "3",
		"FERRY_IDEMPOTENCY_KEY":               "key-1",
		"FERRY_ARTIFACT_API_SERVER_V2_URI":    "registry.example.com/shop/api",
		"FERRY_ARTIFACT_API_SERVER_V2_DIGEST": digestA,
		"FERRY_ARTIFACT_WEB_URI":              "registry.example.com/shop/web",
		"FERRY_ARTIFACT_WEB_DIGEST":           digestB,
		"TRACEPARENT":                         req.TraceParent,
	}
	for name, v := range want {
		if m[name] != v {
			t.Errorf("%s = %q, want %q", name, m[name], v)
		}
	}
	var arts []release.Artifact
	if err := json.Unmarshal([]byte(m["FERRY_ARTIFACTS"]), &arts); err != nil {
		t.Fatalf("FERRY_ARTIFACTS %q: %v", m["FERRY_ARTIFACTS"], err)
	}
	if !slices.Equal(arts, req.Release.Artifacts) {
		t.Errorf("FERRY_ARTIFACTS = %+v, want %+v", arts, req.Release.Artifacts)
	}
	if !strings.Contains(m["FERRY_ARTIFACTS"], `"name":"api-server.v2","uri":"registry.example.com/shop/api","digest":"sha256:`) {
		t.Errorf("FERRY_ARTIFACTS = %s, want name, uri and digest fields", m["FERRY_ARTIFACTS"])
	}
}

func TestEnvironRollbackAndNoTrace(t *testing.T) {
	req := testRequest()
	req.Rollback = true
	req.Phase = promotion.PhaseRollback
	req.Release.Artifacts = nil
	env, err := step.Environ(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := envMap(t, env)
	if m["FERRY_ROLLBACK"] != "1" || m["FERRY_PHASE"] != "rollback" {
		t.Errorf("FERRY_ROLLBACK=%q FERRY_PHASE=%q, want 1 and rollback", m["FERRY_ROLLBACK"], m["FERRY_PHASE"])
	}
	if m["FERRY_ARTIFACTS"] != "[]" {
		t.Errorf("FERRY_ARTIFACTS = %q, want []", m["FERRY_ARTIFACTS"])
	}
	if _, ok := m["TRACEPARENT"]; ok {
		t.Error("TRACEPARENT set without a trace parent")
	}
}

func TestEnvironOverrideOrder(t *testing.T) {
	req := testRequest()
	req.Step.SecretEnv = []string{"DB_PASSWORD", "REGION"}
	req.Step.Exec.Env["FERRY_STEP"] = "spoofed"
	base := []string{
		"HOME=/root",
		"DB_PASSWORD=old",
		"DB_PASSWORD=hunter2", // the last entry of a name is its value
		"REGION=us",
		"FERRY_PIPELINE=from-server",
		"not-a-variable",
	}
	env, err := step.Environ(req, base)
	if err != nil {
		t.Fatal(err)
	}
	m := envMap(t, env)
	for name, want := range map[string]string{
		"HOME":           "/step-home", // exec.env overrides the server's environment
		"DB_PASSWORD":    "hunter2",
		"REGION":         "us",     // secretEnv overrides exec.env
		"FERRY_STEP":     "deploy", // FERRY_* override everything
		"FERRY_PIPELINE": "shop",
	} {
		if m[name] != want {
			t.Errorf("%s = %q, want %q", name, m[name], want)
		}
	}
	if slices.Contains(env, "not-a-variable") {
		t.Error("an entry without '=' was kept")
	}
}

func TestEnvironMissingSecret(t *testing.T) {
	req := testRequest()
	req.Step.SecretEnv = []string{"PRESENT", "DEPLOY_TOKEN"}
	_, err := step.Environ(req, []string{"PRESENT=x", "DEPLOY_TOKEN_OTHER=y"})
	var missing *step.MissingSecretError
	if !errors.As(err, &missing) || missing.Name != "DEPLOY_TOKEN" || missing.Step != "deploy" {
		t.Fatalf("err = %v, want a MissingSecretError for DEPLOY_TOKEN", err)
	}
	if !strings.Contains(err.Error(), "DEPLOY_TOKEN") {
		t.Errorf("error %q does not name the variable", err)
	}
	// Set but empty is set.
	if _, err := step.Environ(req, []string{"PRESENT=x", "DEPLOY_TOKEN="}); err != nil {
		t.Errorf("empty secret: %v", err)
	}
}

func TestArtifactEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"api":           "API",
		"api-server.v2": "API_SERVER_V2",
		"my_lib":        "MY_LIB",
		"2fa":           "2FA",
		"Web.Ui":        "WEB_UI",
	} {
		if got := step.ArtifactEnvName(name); got != want {
			t.Errorf("ArtifactEnvName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestSecretValues(t *testing.T) {
	s := pipeline.Step{SecretEnv: []string{"A", "B", "C", "D", "MISSING"}}
	got := step.SecretValues(s, []string{"A=one", "B=", "C=one", "D=two"})
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("SecretValues = %q, want [one two]", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := step.IdempotencyKey("prm_1", promotion.PhaseDeploy, 0, "deploy")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(k) {
		t.Fatalf("key %q is not 64 hex digits", k)
	}
	if again := step.IdempotencyKey("prm_1", promotion.PhaseDeploy, 0, "deploy"); again != k {
		t.Errorf("key changed between calls: %q, %q", k, again)
	}
	// Pinned, so that a change of the derivation (which would re-run steps
	// after an upgrade with new keys) is deliberate.
	if want := "41a01468bf6e4ccdf4c9b70b64dd3a8425783391503360eda156301ca9b3f361"; k != want {
		t.Errorf("key = %s, want %s", k, want)
	}
	seen := map[string]string{k: "base"}
	for what, other := range map[string]string{
		"promotion": step.IdempotencyKey("prm_2", promotion.PhaseDeploy, 0, "deploy"),
		"phase":     step.IdempotencyKey("prm_1", promotion.PhaseRollback, 0, "deploy"),
		"index":     step.IdempotencyKey("prm_1", promotion.PhaseDeploy, 1, "deploy"),
		"name":      step.IdempotencyKey("prm_1", promotion.PhaseDeploy, 0, "migrate"),
		"boundary":  step.IdempotencyKey("prm_1d", promotion.Phase("eploy"), 0, "deploy"),
	} {
		if prev, dup := seen[other]; dup {
			t.Errorf("changing %s gives the same key as %s", what, prev)
		}
		seen[other] = what
	}
}
