package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/promotion"
)

func TestTokensAndRoles(t *testing.T) {
	eachStore(t, testTokensAndRoles)
}

// testTokensAndRoles gives carol a releaser and a promoter token on shop
// and victor a viewer token: carol ships a release to dev, victor's promote
// is refused with a message naming the role, and the audit trail records
// carol, not the X-Ferry-Actor, as the actor.
func testTokensAndRoles(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("shop.yaml", shopPipeline))

	carolRelease := createToken(s, "carol", "releaser", "shop")
	carolPromote := createToken(s, "carol", "promoter", "shop")
	victor := createToken(s, "victor", "viewer", "shop")

	createRelease(s.as(carolRelease), "1.0.0")
	out := s.as(carolPromote).must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev",
		"--reason", "first", "--wait")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("carol's promote: %s", out)
	}

	r := s.as(victor).ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--reason", "try")
	if r.code != 1 || !strings.Contains(r.stderr, `role "promoter"`) || !strings.Contains(r.stderr, "shop/prod") {
		t.Fatalf("victor's promote: exit %d, stderr %q; want 1 and a message naming the promoter role on shop/prod", r.code, r.stderr)
	}
	if got := s.promotions("--pipeline", "shop", "--env", "prod"); len(got) != 0 {
		t.Fatalf("victor's refused promote created %d promotions", len(got))
	}
	// Victor still reads, and a releaser cannot promote.
	s.as(victor).must("status", "--pipeline", "shop")
	if r := s.as(carolRelease).ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev"); r.code != 1 ||
		!strings.Contains(r.stderr, `role "promoter"`) {
		t.Fatalf("promote with a releaser token: exit %d, %q", r.code, r.stderr)
	}
	// Only admins manage tokens.
	if r := s.as(carolPromote).ferry("token", "list"); r.code != 1 || !strings.Contains(r.stderr, `role "admin"`) {
		t.Fatalf("token list as carol: exit %d, %q", r.code, r.stderr)
	}

	var events []audit.Event
	if err := json.Unmarshal([]byte(s.must("audit", "-o", "json", "--limit", "1000")), &events); err != nil {
		t.Fatal(err)
	}
	// Who did what, by action; the CLI's X-Ferry-Actor (e2e-user) is ignored.
	actors := map[string]map[string]bool{}
	for _, e := range events {
		if actors[e.Action] == nil {
			actors[e.Action] = map[string]bool{}
		}
		actors[e.Action][e.Actor] = true
		if e.Actor == "e2e-user" {
			t.Errorf("event %d (%s) records X-Ferry-Actor as its actor", e.Seq, e.Action)
		}
		if e.Action == "token.create" && strings.Contains(string(e.Details), auth.TokenPrefix) {
			t.Errorf("token.create event holds a token: %s", e.Details)
		}
	}
	for action, want := range map[string]string{"release.create": "carol", "promotion.create": "carol", "token.create": "admin"} {
		if !actors[action][want] {
			t.Errorf("no %s event by %q (the token's user); actors: %v", action, want, actors[action])
		}
	}
	p := s.promotions("--pipeline", "shop", "--env", "dev")
	if len(p) != 1 || p[0].Actor != "carol" || p[0].State != promotion.Succeeded {
		t.Fatalf("dev promotions = %+v, want one by carol that succeeded", p)
	}

	// A revoked token stops working at once.
	var list []auth.Token
	if err := json.Unmarshal([]byte(s.must("token", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var victorID string
	for _, tok := range list {
		if tok.User == "victor" {
			victorID = tok.ID
		}
	}
	s.must("token", "revoke", victorID)
	if r := s.as(victor).ferry("status", "--pipeline", "shop"); r.code != 1 || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("status with a revoked token: exit %d, %q", r.code, r.stderr)
	}
	if r := s.as("").ferry("token", "list"); r.code != 0 || !strings.Contains(r.stdout, victorID) || strings.Contains(r.stdout, victor) {
		t.Fatalf("token list: exit %d\n%s", r.code, r.stdout)
	}
}

// createToken creates a token with the admin token and returns it.
func createToken(s *server, user, role, scope string) string {
	s.t.Helper()
	out := s.must("token", "create", "--user", user, "--role", role, "--scope", scope)
	_, token, ok := strings.Cut(out, "token (shown once): ")
	token, _, _ = strings.Cut(token, "\n")
	if !ok || auth.CheckTokenFormat(token) != nil {
		s.t.Fatalf("token create printed no token:\n%s", out)
	}
	return token
}
