package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/view"
)

// runCLI runs the command line and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// closedServer returns the URL of a server that is no longer listening.
func closedServer(t *testing.T) string {
	srv := httptest.NewServer(nil)
	u := srv.URL
	srv.Close()
	return u
}

func TestUsageErrorsExitWith2(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	digest := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		args []string
		// want is a substring of stderr.
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"promot"}, "did you mean promote"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"pipelines", "--bogus"}, "unknown flag"},
		{[]string{"pipeline", "bogus"}, `unknown command "bogus" for "ferry pipeline"`},
		{[]string{"promote", "--pipeline", "shop"}, `required flag(s) "release", "to" not set`},
		{[]string{"promote", "--pipeline", "shop", "--release", "1.0", "--to", "prod", "--force"}, "--force needs --reason"},
		{[]string{"-o", "xml", "pipelines"}, `-o "xml"`},
		{[]string{"logs"}, "takes 1 argument"},
		{[]string{"logs", "a", "b"}, "takes 1 argument"},
		{[]string{"pipelines", "extra"}, "unknown command"},
		{[]string{"promotions", "--limit", "abc"}, "invalid argument"},
		{[]string{"promotions", "--limit", "-1"}, "--limit -1"},
		{[]string{"promotions", "--state", "running"}, `--state "running"`},
		{[]string{"server", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--notify-backoff", "1m", "--notify-max-backoff", "10s"},
			"--notify-max-backoff 10s is shorter than --notify-backoff 1m0s"},
		{[]string{"server", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--notify-max-age", "-1h"}, "--notify-max-age -1h0m0s: must not be negative"},
		{[]string{"promotions", "--release", "1.0"}, "--release needs --pipeline"},
		{[]string{"apply"}, `required flag(s) "file" not set`},
		{[]string{"abort", "p1"}, `required flag(s) "reason" not set`},
		{[]string{"abort", "p1", "--reason", " "}, "--reason must not be empty"},
		{[]string{"rollback", "--pipeline", "shop", "--env", "prod"}, `"reason" not set`},
		{[]string{"release", "create", "--pipeline", "shop", "--version", "1.0", "--artifact", "api=reg/api"}, `artifact "api=reg/api" has no digest`},
		{[]string{"release", "create", "--pipeline", "shop", "--version", "1.0", "--artifact", "api=reg/api@sha256:abc"}, `digest "sha256:abc"`},
		{[]string{"release", "create", "--pipeline", "shop", "--version", "1.0", "--artifact", "api=reg/api@" + digest, "--label", "nokey"}, `--label "nokey"`},
		{[]string{"release", "create", "--pipeline", "shop", "--version", "1.0", "--artifact", "api=reg/a@" + digest, "--artifact", "api=reg/b@" + digest}, "appears twice"},
		{[]string{"release", "create", "--pipeline", "shop", "--version", "1.0"}, `"artifact" not set`},
		{[]string{"audit", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"pipeline", "show", "shop", "--revision", "-2"}, "--revision -2"},
		{[]string{"--server", "ftp://example.com", "pipelines"}, "--server"},
		{[]string{"server", "extra"}, "unknown command"},
		{[]string{"server", "--otlp-endpoint", "localhost:4318"}, `--otlp-endpoint: "localhost:4318" is not an http:// or https:// URL`},
		{[]string{"up", "--otlp-endpoint", "grpc://collector:4317"}, `--otlp-endpoint: "grpc://collector:4317"`},
		{[]string{"bench", "--otlp-endpoint", "collector"}, `--otlp-endpoint: "collector"`},
		{[]string{"server", "--log-format", "xml"}, `--log-format "xml": want json, text or auto`},
		{[]string{"server", "--log-level", "loud"}, `--log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if !strings.Contains(stderr, "--help' for usage") {
				t.Errorf("stderr %q does not point to --help", stderr)
			}
		})
	}
}

func TestHelpExitsWith0(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"promote", "--help"}, {"pipeline"}, {"help", "release", "create"}, {"--version"}} {
		code, stdout, stderr := runCLI(t, "", args...)
		if code != 0 {
			t.Errorf("%v: exit code = %d; stderr: %s", args, code, stderr)
		}
		if stdout == "" {
			t.Errorf("%v: nothing printed", args)
		}
	}
}

func TestUnreachableServerExitsWith1(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	code, _, stderr := runCLI(t, "", "pipelines")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if !strings.Contains(stderr, "Is a Ferry server running at") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestMissingFileExitsWith1(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	code, _, stderr := runCLI(t, "", "apply", "-f", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != 1 || !strings.Contains(stderr, "nope.yaml") {
		t.Errorf("exit code = %d, stderr %q", code, stderr)
	}
}

func TestExitCodeDecidesInOnePlace(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{os.ErrNotExist, 1},
		{usageErrorf("bad"), 2},
		{&endedError{id: "p", state: promotion.RolledBack}, 3},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// fakeService stands in for the engine so that these tests can check what
// the CLI sends, prints and exits with; the engine itself is tested in
// internal/engine and the whole system by the server tests. Methods not
// set here panic, which the API answers with 500.
type fakeService struct {
	api.Service

	mu     sync.Mutex
	actors []string
	// states are the states WaitPromotion moves the promotion through.
	states []promotion.State
}

func (f *fakeService) Apply(_ context.Context, actor, filename string, _ []byte) (view.ApplyResult, error) {
	return view.ApplyResult{}, &engine.Error{Code: engine.CodeInvalid, Message: filename + ": 2 problems", Details: []pipeline.Problem{
		{File: filename, Line: 3, Column: 5, Field: "environments[0].name", Message: "required"},
		{File: filename, Line: 4, Column: 13, Field: "environments[0].after[0]", Message: `unknown environment "qa"`},
	}}
}

func (f *fakeService) CreateRelease(_ context.Context, actor string, r release.Release) (*release.Release, bool, error) {
	return nil, false, &engine.Error{Code: engine.CodeConflict,
		Message: `release 1.0 of pipeline shop already exists with different content: artifact "api" has digest sha256:b…, the existing release has sha256:a…`}
}

func (f *fakeService) Promote(_ context.Context, actor string, req engine.PromoteRequest) (*view.Promotion, error) {
	f.mu.Lock()
	f.actors = append(f.actors, actor)
	f.mu.Unlock()
	return f.view(1), nil
}

func (f *fakeService) WaitPromotion(_ context.Context, id string, after int64) (*view.Promotion, error) {
	return f.view(after + 1), nil
}

// view returns the promotion at version v: it moves through f.states, and
// its one step starts at version 2 and finishes at version 3.
func (f *fakeService) view(v int64) *view.Promotion {
	at := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	i := min(int(v)-1, len(f.states)-1)
	p := &view.Promotion{ID: "p1", Pipeline: "shop", Environment: "prod", Kind: promotion.KindPromote,
		State: f.states[i], Release: view.ReleaseRef{ID: "r1", Version: "1.0"}, Actor: "alice",
		CreatedAt: at, UpdatedAt: at.Add(time.Duration(v) * time.Second), Version: v,
		Steps: []view.Step{{Name: "build", Phase: promotion.PhaseDeploy, State: "pending"}}}
	for j := 1; j <= i; j++ {
		p.Transitions = append(p.Transitions, view.Transition{From: f.states[j-1], To: f.states[j],
			Actor: "system", At: at.Add(time.Duration(j+1) * time.Second)})
	}
	if i >= 1 {
		started := at.Add(time.Second + time.Second/2)
		p.Steps[0].State, p.Steps[0].Attempts, p.Steps[0].StartedAt = "running", 1, &started
	}
	if i >= 2 {
		finished := at.Add(2*time.Second + time.Second/2)
		code := 0
		p.Steps[0].State, p.Steps[0].FinishedAt, p.Steps[0].ExitCode = "succeeded", &finished, &code
	}
	if p.State.Terminal() {
		p.Message = "ended " + string(p.State)
	}
	return p
}

// startAPI serves the API over svc and points the CLI at it.
func startAPI(t *testing.T, svc api.Service) {
	srv := httptest.NewServer(api.New(api.Config{Service: svc, DisableAuth: true}))
	t.Cleanup(srv.Close)
	t.Setenv("FERRY_SERVER", srv.URL)
}

func TestPromoteWaitExitCodes(t *testing.T) {
	tests := []struct {
		end      promotion.State
		wantCode int
		wantLast string
	}{
		{promotion.Succeeded, 0, "promotion p1 succeeded: shop 1.0 is in prod"},
		{promotion.RolledBack, 3, "promotion p1 ended rolled_back: ended rolled_back"},
		{promotion.Failed, 3, "promotion p1 ended failed: ended failed"},
	}
	for _, tt := range tests {
		t.Run(string(tt.end), func(t *testing.T) {
			startAPI(t, &fakeService{states: []promotion.State{promotion.Queued, promotion.Deploying, promotion.Verifying, tt.end}})
			code, stdout, stderr := runCLI(t, "", "promote", "--pipeline", "shop", "--release", "1.0", "--to", "prod", "--wait")
			if code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			want := []string{
				"promotion p1: promote shop 1.0 → prod (queued)",
				"deploy/build attempt 1 running",
				"queued → deploying",
				"deploy/build succeeded",
				"deploying → verifying",
				"verifying → " + string(tt.end),
				tt.wantLast,
			}
			if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
			}
		})
	}
}

func TestPromoteJSONPrintsThePromotion(t *testing.T) {
	svc := &fakeService{states: []promotion.State{promotion.Queued, promotion.RolledBack}}
	startAPI(t, svc)
	code, stdout, stderr := runCLI(t, "", "promote", "--pipeline", "shop", "--release", "1.0", "--to", "prod",
		"--actor", "carol", "-o", "json", "--wait")
	if code != 3 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	var p view.Promotion
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("stdout is not a promotion: %v\n%s", err, stdout)
	}
	if p.ID != "p1" || p.State != promotion.RolledBack {
		t.Errorf("promotion = %+v", p)
	}
	if !strings.Contains(stderr, "queued → rolled_back") {
		t.Errorf("progress not on stderr: %q", stderr)
	}
	if len(svc.actors) != 1 || svc.actors[0] != "carol" {
		t.Errorf("actors = %v, want [carol]", svc.actors)
	}

	code, stdout, _ = runCLI(t, "", "promote", "--pipeline", "shop", "--release", "1.0", "--to", "prod", "-o", "yaml")
	if code != 0 || !strings.Contains(stdout, "id: p1\n") || !strings.Contains(stdout, "state: queued\n") {
		t.Errorf("exit code = %d, yaml:\n%s", code, stdout)
	}
}

func TestApplyPrintsValidationErrorsOnePerLine(t *testing.T) {
	startAPI(t, &fakeService{})
	code, _, stderr := runCLI(t, "name: shop\n", "apply", "-f", "-")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	want := "<stdin>:3:5: environments[0].name: required\n<stdin>:4:13: environments[0].after[0]: unknown environment \"qa\"\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
}

func TestReleaseConflictExitsWith1(t *testing.T) {
	startAPI(t, &fakeService{})
	code, _, stderr := runCLI(t, "", "release", "create", "--pipeline", "shop", "--version", "1.0",
		"--artifact", "api=reg/api@sha256:"+strings.Repeat("b", 64))
	if code != 1 || !strings.Contains(stderr, `artifact "api" has digest`) {
		t.Errorf("exit code = %d, stderr %q", code, stderr)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)
	got, err := parseSince("24h", now)
	if err != nil || !got.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("24h: %v, %v", got, err)
	}
	got, err = parseSince("2025-01-01T09:00:00Z", now)
	if err != nil || !got.Equal(time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("RFC 3339: %v, %v", got, err)
	}
	if _, err := parseSince("-1h", now); exitCode(err) != 2 {
		t.Errorf("-1h: %v", err)
	}
}

func TestPrintLogsGroupsByAttempt(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	chunks := []view.LogChunk{
		{Phase: promotion.PhaseDeploy, Step: "build", Index: 0, Attempt: 1, At: at, Text: "compiling\n"},
		{Phase: promotion.PhaseDeploy, Step: "build", Index: 0, Attempt: 1, At: at, Text: "no newline"},
		{Phase: promotion.PhaseDeploy, Step: "build", Index: 0, Attempt: 2, At: at, Text: "ok\n"},
		{Phase: promotion.PhaseVerify, Step: "smoke", Index: 0, Attempt: 1, At: at, Text: "200\n"},
	}
	var b bytes.Buffer
	if err := printLogs(&b, chunks); err != nil {
		t.Fatal(err)
	}
	want := `==> deploy/build attempt 1 <==
compiling
no newline
==> deploy/build attempt 2 <==
ok
==> verify/smoke attempt 1 <==
200
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
