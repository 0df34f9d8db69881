package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// snapshot is what a server holds, to check that refused input changed nothing.
func snapshot(s *server) string {
	s.t.Helper()
	return s.must("pipelines", "-o", "json") + s.must("promotions", "-o", "json") + s.must("audit", "-o", "json")
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	eachStore(t, testBadInputIsRefusedAndChangesNothing)
}

func testBadInputIsRefusedAndChangesNothing(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("shop.yaml", shopPipeline))
	createRelease(s, "1.0.0")
	before := snapshot(s)

	cases := []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"malformed YAML", []string{"apply", "-f", s.writeFile("bad1.yaml", "name: shop\nenvironments: [\n")}, 1, "bad1.yaml:"},
		{"unknown field", []string{"apply", "-f", s.writeFile("bad2.yaml", "name: shop\nenvironments:\n  - name: dev\n    stepz: []\n")}, 1, "bad2.yaml:4:5"},
		{"bad duration", []string{"apply", "-f", s.writeFile("bad3.yaml", "name: shop\nenvironments:\n  - name: dev\n    steps:\n      - name: d\n        exec: {run: x, timeout: 5 minutes}\n")}, 1, "environments[0].steps[0].exec.timeout"},
		{"cycle", []string{"apply", "-f", s.writeFile("bad4.yaml", "name: shop\nenvironments:\n  - {name: a, after: [b]}\n  - {name: b, after: [a]}\n")}, 1, "cycle"},
		{"unknown upstream", []string{"apply", "-f", s.writeFile("bad5.yaml", "name: shop\nenvironments:\n  - {name: a, after: [nope]}\n")}, 1, "nope"},
		{"duplicate environment", []string{"apply", "-f", s.writeFile("bad6.yaml", "name: shop\nenvironments:\n  - {name: a}\n  - {name: a}\n")}, 1, "bad6.yaml:4"},
		{"malformed digest", []string{"release", "create", "--pipeline", "shop", "--version", "9", "--artifact", "api=x/api@sha256:abc"}, 2, "digest"},
		{"missing digest", []string{"release", "create", "--pipeline", "shop", "--version", "9", "--artifact", "api=x/api"}, 2, "digest"},
		{"unknown pipeline", []string{"promote", "--pipeline", "nope", "--release", "1.0.0", "--to", "dev"}, 1, "nope"},
		{"unknown environment", []string{"promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "qa"}, 1, "qa"},
		{"unknown release", []string{"promote", "--pipeline", "shop", "--release", "7.7.7", "--to", "dev"}, 1, "7.7.7"},
		{"unknown promotion", []string{"promotion", "show", "no-such-id"}, 1, "no-such-id"},
		{"force without reason", []string{"promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--force"}, 2, "reason"},
		{"unknown flag", []string{"promote", "--pipeline", "shop", "--bogus"}, 2, "bogus"},
	}
	for _, c := range cases {
		r := s.ferry(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.message) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and a message containing %q", c.name, r.code, r.stderr, c.code, c.message)
		}
	}

	// Straight to the API: malformed JSON, unknown fields, oversized bodies.
	api := []struct {
		name   string
		path   string
		body   []byte
		status int
	}{
		{"malformed JSON", "/api/v1/promotions", []byte(`{"pipeline": "shop",`), http.StatusBadRequest},
		{"unknown JSON field", "/api/v1/promotions", []byte(`{"pipeline":"shop","release":"1.0.0","environment":"dev","bogus":1}`), http.StatusBadRequest},
		{"oversized body", "/api/v1/pipelines", []byte(`{"filename":"x.yaml","source":"` + strings.Repeat("a", 2<<20) + `"}`), http.StatusRequestEntityTooLarge},
		{"unknown pipeline", "/api/v1/pipelines/nope/releases", []byte(`{"version":"1","artifacts":[{"name":"a","uri":"x","digest":"` + digest("x") + `"}]}`), http.StatusNotFound},
	}
	for _, c := range api {
		status, body := s.post(c.path, c.body, nil)
		var prob map[string]any
		if status != c.status || json.Unmarshal(body, &prob) != nil || prob["detail"] == nil {
			t.Errorf("%s: status %d body %.200s; want %d with a problem+json detail", c.name, status, body, c.status)
		}
	}

	if after := snapshot(s); after != before {
		t.Fatalf("refused input changed the store:\nbefore: %.500s\nafter: %.500s", before, after)
	}
}

func TestIdempotencyKeyReplaysPost(t *testing.T) { eachStore(t, testIdempotencyKeyReplaysPost) }

func testIdempotencyKeyReplaysPost(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("shop.yaml", shopPipeline))
	createRelease(s, "1.0.0")
	req := map[string]any{"pipeline": "shop", "release": "1.0.0", "environment": "dev"}
	h := map[string]string{"Idempotency-Key": "7d3c2a1e-promote-once"}
	st1, b1 := s.post("/api/v1/promotions", req, h)
	st2, b2 := s.post("/api/v1/promotions", req, h)
	var p1, p2 struct{ ID string }
	_ = json.Unmarshal(b1, &p1)
	_ = json.Unmarshal(b2, &p2)
	if st1 != http.StatusCreated || st2 != st1 || p1.ID == "" || p1.ID != p2.ID {
		t.Fatalf("repeated POST with one Idempotency-Key: %d %s / %d %s", st1, p1.ID, st2, p2.ID)
	}
	if n := len(s.promotions("--pipeline", "shop", "--env", "dev")); n != 1 {
		t.Fatalf("%d promotions after a replayed POST, want 1", n)
	}
	req["environment"] = "staging"
	if st, _ := s.post("/api/v1/promotions", req, h); st != http.StatusUnprocessableEntity {
		t.Fatalf("same key, different request: status %d, want 422", st)
	}
}
