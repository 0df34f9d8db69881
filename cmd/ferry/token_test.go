package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// startAuthAPI serves the API with authentication on, over svc and a real
// SQLite store, points the CLI at it, and returns the admin token.
func startAuthAPI(t *testing.T) string {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	admin, created, err := api.BootstrapAdmin(t.Context(), st, "", time.Now())
	if err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	srv := httptest.NewServer(api.New(api.Config{Service: &fakeService{}, Store: st}))
	t.Cleanup(srv.Close)
	t.Setenv("FERRY_SERVER", srv.URL)
	t.Setenv("FERRY_TOKEN", "")
	return admin
}

func TestTokenCommands(t *testing.T) {
	admin := startAuthAPI(t)

	code, stdout, stderr := runCLI(t, "", "--token", admin, "token", "create", "--user", "ci", "--role", "releaser",
		"--scope", "shop", "--expires", "30d")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	_, secret, ok := strings.Cut(stdout, "token (shown once): ")
	secret, _, _ = strings.Cut(secret, "\n")
	if !ok || auth.CheckTokenFormat(secret) != nil {
		t.Fatalf("create printed no token:\n%s", stdout)
	}
	id := auth.TokenID(secret)
	if !strings.Contains(stdout, "id: "+id) || !strings.Contains(stdout, "releaser on shop") {
		t.Errorf("create printed:\n%s", stdout)
	}

	// FERRY_TOKEN works as --token does.
	t.Setenv("FERRY_TOKEN", admin)
	code, stdout, stderr = runCLI(t, "", "token", "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"ID", "USER", "GRANTS", "CREATED", "EXPIRES", "REVOKED", id, "ci", "releaser on shop",
		"admin", "admin on *", "never"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, secret) || strings.Contains(stdout, auth.HashToken(secret)) {
		t.Errorf("list shows a secret:\n%s", stdout)
	}
	code, stdout, _ = runCLI(t, "", "token", "list", "-o", "json")
	var toks []auth.Token
	if code != 0 || json.Unmarshal([]byte(stdout), &toks) != nil || len(toks) != 2 || toks[1].ID != id {
		t.Fatalf("list -o json: exit %d\n%s", code, stdout)
	}

	// The new token cannot manage tokens: 403 naming the role, exit 1.
	code, _, stderr = runCLI(t, "", "--token", secret, "token", "list")
	if code != 1 || !strings.Contains(stderr, `role "admin" on "*" (global) is required to manage tokens`) ||
		!strings.Contains(stderr, "releaser on shop") {
		t.Errorf("list as ci: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr = runCLI(t, "", "token", "revoke", id)
	if code != 0 || !strings.Contains(stdout, "token "+id+" of ci revoked at") {
		t.Fatalf("revoke: exit %d: %s%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "", "--token", secret, "pipelines")
	if code != 1 || !strings.Contains(stderr, "token revoked at") || !strings.Contains(stderr, "--token or FERRY_TOKEN") {
		t.Errorf("revoked token: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "token", "revoke", "nope1234")
	if code != 1 || !strings.Contains(stderr, "no token has ID") {
		t.Errorf("revoke unknown: exit %d, stderr %q", code, stderr)
	}
}

func TestTokenCommandUsageErrors(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "--role", "viewer"}, `required flag(s) "user" not set`},
		{[]string{"token", "create", "--user", "x"}, `required flag(s) "role" not set`},
		{[]string{"token", "create", "--user", "x", "--role", "boss"}, `--role: unknown role "boss"`},
		{[]string{"token", "create", "--user", "x", "--role", "viewer", "--scope", "Shop"}, "--scope"},
		{[]string{"token", "create", "--user", "x", "--role", "viewer", "--expires", "soon"}, "--expires"},
		{[]string{"token", "revoke"}, "takes 1 argument"},
		{[]string{"token", "bogus"}, `unknown command "bogus"`},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestMissingTokenSaysHowToPassOne(t *testing.T) {
	startAuthAPI(t)
	code, _, stderr := runCLI(t, "", "pipelines")
	if code != 1 || !strings.Contains(stderr, "needs an API token") || !strings.Contains(stderr, "--token or FERRY_TOKEN") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestAuthOffNeedsLoopback(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:7420", "[::1]:7420", "localhost:0"} {
		if err := checkAuthFlag("off", listen); err != nil {
			t.Errorf("--auth=off --listen %s: %v", listen, err)
		}
	}
	for _, listen := range []string{"0.0.0.0:7420", ":7420", "10.0.0.1:7420", "example.com:7420"} {
		err := checkAuthFlag("off", listen)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--auth=off --listen %s: %v, want a usage error about loopback", listen, err)
		}
	}
	if err := checkAuthFlag("maybe", "127.0.0.1:0"); exitCode(err) != 2 {
		t.Errorf("--auth=maybe: %v", err)
	}
	if err := checkAuthFlag("on", "0.0.0.0:7420"); err != nil {
		t.Errorf("--auth=on: %v", err)
	}
}

func TestServerRefusesAuthOffOnAPublicAddress(t *testing.T) {
	t.Setenv("FERRY_DB", "")
	code, _, stderr := runCLI(t, "", "server", "--auth=off", "--listen", "0.0.0.0:0", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "--auth=off needs a loopback --listen address") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestBootstrapAdmin(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	t.Setenv(adminTokenEnv, "ferry_not-a-token")
	if _, err := bootstrapAdmin(t.Context(), st, t.TempDir()); err == nil || !strings.Contains(err.Error(), adminTokenEnv) {
		t.Errorf("malformed %s: %v", adminTokenEnv, err)
	}

	// Without the variable: a new token, written with mode 0600.
	t.Setenv(adminTokenEnv, "")
	dir := filepath.Join(t.TempDir(), "data")
	token, err := bootstrapAdmin(t.Context(), st, dir)
	if err != nil || auth.CheckTokenFormat(token) != nil {
		t.Fatalf("bootstrap: %q, %v", token, err)
	}
	fi, err := os.Stat(filepath.Join(dir, adminTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v %v", fi, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, adminTokenFile))
	if strings.TrimSpace(string(b)) != token {
		t.Errorf("admin-token holds %q", b)
	}
	// A store with tokens gets none, even with the variable set.
	other, _ := auth.NewToken()
	t.Setenv(adminTokenEnv, other)
	if again, err := bootstrapAdmin(t.Context(), st, dir); err != nil || again != "" {
		t.Errorf("second bootstrap: %q, %v", again, err)
	}

	if got := withoutTokens([]string{"A=1", adminTokenEnv + "=x", "FERRY_TOKEN=y", sessionKeyEnv + "=k", "FERRY_SERVER=z"}); strings.Join(got, " ") != "A=1 FERRY_SERVER=z" {
		t.Errorf("withoutTokens = %v", got)
	}
}

func TestDefaultTokenFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("FERRY_TOKEN", "")
	t.Setenv("FERRY_SERVER", "")
	g := &globals{server: defaultServer}
	c, err := g.client()
	if err != nil || c.Token != "" {
		t.Fatalf("without a file: %q, %v", c.Token, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "ferry-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry-data", "admin-token"), []byte("ferry_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = g.client(); err != nil || c.Token != "ferry_x" {
		t.Errorf("default server: %q, %v", c.Token, err)
	}
	g.token = "ferry_given"
	if c, err = g.client(); err != nil || c.Token != "ferry_given" {
		t.Errorf("with --token: %q, %v", c.Token, err)
	}
	g.token, g.server = "", "http://ferry.internal:7420"
	if c, err = g.client(); err != nil || c.Token != "" {
		t.Errorf("another server: %q, %v", c.Token, err)
	}
}
