package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// The tests in this file run the commands against stubServer, a stand-in for
// Ferry's HTTP layer that answers with canned JSON and records what it was
// sent. They check the requests the commands make and what they print; the
// end-to-end behaviour of these routes is tested against a real server
// separately.

// stubRequest is a request stubServer received.
type stubRequest struct {
	Method         string
	Path           string
	Query          url.Values
	Body           map[string]any
	IdempotencyKey string
}

// stubServer answers "METHOD /path" with a canned status and JSON body.
type stubServer struct {
	mu       sync.Mutex
	requests []stubRequest
	routes   map[string]stubResponse
}

type stubResponse struct {
	status int
	body   any
}

// startStub starts a stub server with routes and points the CLI at it.
func startStub(t *testing.T, routes map[string]stubResponse) *stubServer {
	t.Helper()
	s := &stubServer{routes: routes}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	t.Setenv("FERRY_SERVER", srv.URL)
	t.Setenv("FERRY_TOKEN", "test-token")
	return s
}

func (s *stubServer) serve(w http.ResponseWriter, r *http.Request) {
	req := stubRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if data, _ := io.ReadAll(r.Body); len(data) > 0 {
		if err := json.Unmarshal(data, &req.Body); err != nil {
			http.Error(w, "body is not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	resp, ok := s.routes[r.Method+" "+r.URL.Path]
	if !ok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": 404, "title": "Not Found", "code": "route_not_found",
			"detail": "no route " + r.Method + " " + r.URL.Path})
		return
	}
	status := resp.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp.body)
}

// only returns the one request the server received.
func (s *stubServer) only(t *testing.T) stubRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) != 1 {
		t.Fatalf("server received %d requests, want 1: %+v", len(s.requests), s.requests)
	}
	return s.requests[0]
}

var (
	t0 = time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	t1 = time.Date(2025, 1, 31, 9, 30, 0, 0, time.UTC)
)

// awaitingPromotion is a promotion into prod waiting for one more approval.
func awaitingPromotion() view.Promotion {
	since := t0
	return view.Promotion{
		ID: "p1", Pipeline: "shop", Environment: "prod", Kind: promotion.KindPromote,
		State: promotion.AwaitingApproval, Release: view.ReleaseRef{ID: "r1", Version: "1.4.0"},
		Revision: 3, Actor: "alice", Reason: "CHG-1234",
		Message: "needs 1 more approval from approver on shop/prod",
		Gates: []promotion.GateEvaluation{
			{Name: "upstream", Kind: "upstream", Result: promotion.GatePass, Reason: "succeeded in staging", At: t1},
			{Name: "approvals", Kind: "approvals", Result: promotion.GatePending, Reason: "1 of 2 approvals (bob)", Since: &since, At: t1},
		},
		Approvals: []promotion.Approval{
			{PromotionID: "p1", User: "bob", Decision: promotion.Approve, Comment: "looks good", Revision: 3, At: t1},
		},
		Steps: []view.Step{}, CreatedAt: t0,
	}
}

func TestDecisionCommandsSendTheirRequests(t *testing.T) {
	p := awaitingPromotion()
	rejected := p
	rejected.State, rejected.Message = promotion.Rejected, "rejected by carol: not during the sale"
	reviewed := p
	reviewed.State, reviewed.Expedited = promotion.Succeeded, true
	reviewed.Review = &promotion.Review{By: "dave", At: t1, Comment: "justified"}
	tests := []struct {
		name     string
		args     []string
		route    string
		resp     view.Promotion
		wantBody map[string]any
		wantOut  string
	}{
		{"approve", []string{"approve", "p1", "--comment", "ok by me"}, "POST /api/v1/promotions/p1/approve", p,
			map[string]any{"comment": "ok by me"},
			"promotion p1 approved: promote shop 1.4.0 → prod is awaiting_approval: needs 1 more approval from approver on shop/prod\n"},
		{"approve without comment", []string{"approve", "p1"}, "POST /api/v1/promotions/p1/approve", p,
			map[string]any{}, "promotion p1 approved: "},
		{"reject", []string{"reject", "p1", "--comment", "not during the sale"}, "POST /api/v1/promotions/p1/reject", rejected,
			map[string]any{"comment": "not during the sale"},
			"promotion p1 rejected: promote shop 1.4.0 → prod is rejected: rejected by carol: not during the sale\n"},
		{"review", []string{"review", "p1", "--comment", "justified"}, "POST /api/v1/promotions/p1/review", reviewed,
			map[string]any{"comment": "justified"}, "promotion p1 reviewed by dave\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startStub(t, map[string]stubResponse{tt.route: {body: tt.resp}})
			code, stdout, stderr := runCLI(t, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit code = %d; stderr: %s", code, stderr)
			}
			req := s.only(t)
			if got := req.Method + " " + req.Path; got != tt.route {
				t.Errorf("request = %s, want %s", got, tt.route)
			}
			if !reflect.DeepEqual(req.Body, tt.wantBody) {
				t.Errorf("body = %v, want %v", req.Body, tt.wantBody)
			}
			if req.IdempotencyKey == "" {
				t.Error("POST carries no Idempotency-Key")
			}
			if !strings.HasPrefix(stdout, tt.wantOut) {
				t.Errorf("stdout = %q, want it to start with %q", stdout, tt.wantOut)
			}
		})
	}
}

func TestDecisionJSONIsThePromotion(t *testing.T) {
	p := awaitingPromotion()
	startStub(t, map[string]stubResponse{"POST /api/v1/promotions/p1/approve": {body: p}})
	code, stdout, stderr := runCLI(t, "", "approve", "p1", "-o", "json")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	var got view.Promotion
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.ID != "p1" || len(got.Approvals) != 1 {
		t.Errorf("stdout is not the promotion (%v):\n%s", err, stdout)
	}
}

func TestForbiddenDecisionExitsWith1(t *testing.T) {
	detail := "bob may not decide on promotion p1: bob requested the promotion, and this environment does not allow self-approval"
	startStub(t, map[string]stubResponse{"POST /api/v1/promotions/p1/approve": {status: http.StatusForbidden,
		body: map[string]any{"status": 403, "title": "Forbidden", "code": "forbidden", "detail": detail}}})
	code, stdout, stderr := runCLI(t, "", "approve", "p1")
	if code != 1 || stdout != "" || stderr != "error: "+detail+"\n" {
		t.Errorf("exit code = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestApprovalsTable(t *testing.T) {
	other := awaitingPromotion()
	other.ID, other.Pipeline, other.Environment, other.Actor = "p2", "billing", "prod", "erin"
	other.Release.Version = "2.0.1"
	other.Gates = nil
	other.Message = "awaiting approval"
	s := startStub(t, map[string]stubResponse{"GET /api/v1/approvals": {body: []view.Promotion{awaitingPromotion(), other}}})
	code, stdout, stderr := runCLI(t, "", "approvals")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	want := `ID  PIPELINE/ENV  RELEASE  REQUESTED BY  WAITING SINCE         WHY
p1  shop/prod     1.4.0    alice         2025-01-31T09:00:00Z  1 of 2 approvals (bob)
p2  billing/prod  2.0.1    erin          -                     awaiting approval
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if req := s.only(t); req.Method != http.MethodGet || req.Path != "/api/v1/approvals" {
		t.Errorf("request = %s %s", req.Method, req.Path)
	}
}

func TestApprovalsEmpty(t *testing.T) {
	startStub(t, map[string]stubResponse{"GET /api/v1/approvals": {body: []view.Promotion{}}})
	code, stdout, _ := runCLI(t, "", "approvals")
	if code != 0 || stdout != "no promotions awaiting your approval\n" {
		t.Errorf("exit code = %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "approvals", "-o", "json")
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("exit code = %d, json %q", code, stdout)
	}
}

func TestReviewsTable(t *testing.T) {
	hotfix := awaitingPromotion()
	hotfix.State, hotfix.Expedited, hotfix.Reason = promotion.Succeeded, true, "hotfix for INC-77"
	hotfix.Gates, hotfix.Approvals = nil, nil
	glass := hotfix
	glass.ID, glass.Expedited, glass.OverrideWindow, glass.Actor, glass.Reason = "p2", false, true, "bob", "INC-78"
	glass.CreatedAt = t1
	s := startStub(t, map[string]stubResponse{"GET /api/v1/reviews": {body: []view.Promotion{hotfix, glass}}})
	code, stdout, stderr := runCLI(t, "", "reviews")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	want := `ID  PIPELINE/ENV  RELEASE  OVERRIDE     REQUESTED BY  STATE      CREATED               REASON
p1  shop/prod     1.4.0    expedited    alice         succeeded  2025-01-31T09:00:00Z  hotfix for INC-77
p2  shop/prod     1.4.0    break-glass  bob           succeeded  2025-01-31T09:30:00Z  INC-78
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if req := s.only(t); req.Method != http.MethodGet || req.Path != "/api/v1/reviews" {
		t.Errorf("request = %s %s", req.Method, req.Path)
	}
}

func testPlan(proceed bool) view.Plan {
	p := view.Plan{
		Pipeline: "shop", Environment: "prod", Release: view.ReleaseRef{ID: "r1", Version: "1.4.0"}, Revision: 3,
		Proceed: true, Result: promotion.GatePass, Reason: "gates passed",
		Gates: []promotion.GateEvaluation{
			{Name: "upstream", Kind: "upstream", Result: promotion.GatePass, Reason: "succeeded in staging", At: t0},
			{Name: "soak", Kind: "soak", Result: promotion.GatePass, Reason: "soaked 2h in staging", At: t0},
		},
		Preflight: []string{"capacity"},
	}
	if !proceed {
		wake := t1
		p.Proceed, p.Result, p.Reason = false, promotion.GatePending, "waiting for 2 approvals"
		p.Gates = append(p.Gates, promotion.GateEvaluation{Name: "approvals", Kind: "approvals",
			Result: promotion.GatePending, Reason: "0 of 2 approvals", At: t0})
		p.Approvers = []string{"approver on shop/prod", "admin"}
		p.WakeAt = &wake
		p.Queue = 1
	}
	return p
}

func TestPlanWouldProceedExitsWith0(t *testing.T) {
	s := startStub(t, map[string]stubResponse{"GET /api/v1/plan": {body: testPlan(true)}})
	code, stdout, stderr := runCLI(t, "", "plan", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	want := `plan: promote shop 1.4.0 → prod (pipeline revision 3)

GATE      KIND      RESULT  REASON
upstream  upstream  pass    succeeded in staging
soak      soak      pass    soaked 2h in staging

would proceed now
preflight checks: capacity
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	req := s.only(t)
	wantQuery := url.Values{"pipeline": {"shop"}, "release": {"1.4.0"}, "environment": {"prod"}}
	if req.Method != http.MethodGet || !reflect.DeepEqual(req.Query, wantQuery) {
		t.Errorf("request = %s %s?%s, want query %s", req.Method, req.Path, req.Query.Encode(), wantQuery.Encode())
	}
}

func TestPlanWouldNotProceedExitsWith3(t *testing.T) {
	s := startStub(t, map[string]stubResponse{"GET /api/v1/plan": {body: testPlan(false)}})
	code, stdout, stderr := runCLI(t, "", "plan", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod",
		"--expedite", "--override-window", "--reason", "INC-77")
	if code != 3 {
		t.Fatalf("exit code = %d, want 3; stderr: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing: the plan says why", stderr)
	}
	for _, want := range []string{
		"approvals  approvals  pending  0 of 2 approvals\n",
		"\nwould not proceed: waiting for 2 approvals\n",
		"may approve: approver on shop/prod, admin\n",
		"gates evaluated again at: 2025-01-31T09:30:00Z\n",
		"queued behind: 1 unfinished promotion into prod\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	wantQuery := url.Values{"pipeline": {"shop"}, "release": {"1.4.0"}, "environment": {"prod"},
		"expedite": {"true"}, "overrideWindow": {"true"}, "reason": {"INC-77"}}
	if req := s.only(t); !reflect.DeepEqual(req.Query, wantQuery) {
		t.Errorf("query = %s, want %s", req.Query.Encode(), wantQuery.Encode())
	}
}

func TestPlanJSONIsTheAPIsPlan(t *testing.T) {
	for _, proceed := range []bool{true, false} {
		plan := testPlan(proceed)
		startStub(t, map[string]stubResponse{"GET /api/v1/plan": {body: plan}})
		wantCode := 0
		if !proceed {
			wantCode = 3
		}
		code, stdout, stderr := runCLI(t, "", "plan", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod", "-o", "json")
		if code != wantCode {
			t.Fatalf("proceed %v: exit code = %d, want %d; stderr: %s", proceed, code, wantCode, stderr)
		}
		var got view.Plan
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not a plan: %v\n%s", err, stdout)
		}
		if !reflect.DeepEqual(got, plan) {
			t.Errorf("plan = %+v, want %+v", got, plan)
		}
		code, stdout, _ = runCLI(t, "", "plan", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod", "-o", "yaml")
		if code != wantCode || !strings.Contains(stdout, "proceed: "+map[bool]string{true: "true", false: "false"}[proceed]+"\n") {
			t.Errorf("proceed %v: exit code = %d, yaml:\n%s", proceed, code, stdout)
		}
	}
}

func TestPlanErrorExitsWith1(t *testing.T) {
	startStub(t, map[string]stubResponse{"GET /api/v1/plan": {status: http.StatusNotFound,
		body: map[string]any{"status": 404, "code": "not_found", "detail": "release 9.9.9 of pipeline shop not found"}}})
	code, _, stderr := runCLI(t, "", "plan", "--pipeline", "shop", "--release", "9.9.9", "--to", "prod")
	if code != 1 || !strings.Contains(stderr, "release 9.9.9 of pipeline shop not found") {
		t.Errorf("exit code = %d, stderr %q", code, stderr)
	}
}

func TestPromoteSendsExpediteAndOverrideWindow(t *testing.T) {
	p := awaitingPromotion()
	p.State, p.Expedited, p.OverrideWindow = promotion.Queued, true, true
	s := startStub(t, map[string]stubResponse{"POST /api/v1/promotions": {status: http.StatusCreated, body: p}})
	code, stdout, stderr := runCLI(t, "", "promote", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod",
		"--expedite", "--override-window", "--reason", "INC-77")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	if !strings.Contains(stdout, "promotion p1: promote shop 1.4.0 → prod (queued)") {
		t.Errorf("stdout = %q", stdout)
	}
	req := s.only(t)
	want := map[string]any{"pipeline": "shop", "release": "1.4.0", "environment": "prod", "reason": "INC-77",
		"expedite": true, "overrideWindow": true}
	if req.Path != "/api/v1/promotions" || !reflect.DeepEqual(req.Body, want) {
		t.Errorf("request %s body = %v, want %v", req.Path, req.Body, want)
	}
}

func TestPromotionShowPrintsGatesApprovalsAndReview(t *testing.T) {
	p := awaitingPromotion()
	until := t1
	p.Gates[0].Until = &until
	p.Expedited = true
	at := t1.Format(time.RFC3339)
	logs := []view.LogChunk{{Phase: "verify", Step: "error-rate", Attempt: 1, Text: "measuring x every 1s, 2 times\n" +
		`measurement {"at":"` + at + `","value":0.002,"verdict":"successful"}` + "\n" +
		`measurement {"at":"` + at + `","value":null,"verdict":"inconclusive"}` + "\n"}}
	startStub(t, map[string]stubResponse{"GET /api/v1/promotions/p1": {body: p}, "GET /api/v1/promotions/p1/logs": {body: logs}})
	code, stdout, stderr := runCLI(t, "", "promotion", "show", "p1")
	if !strings.Contains(stdout, "\nMeasurements:\n") || !strings.Contains(stdout, "0.002") || !strings.Contains(stdout, "no data") {
		t.Errorf("promotion show lacks the measurements:\n%s", stdout)
	}
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	for _, want := range []string{
		"Expedited:    yes (soak skipped)\n",
		"Reviewed:     not yet (see ferry reviews)\n",
		"\nGates:\nGATE       KIND       RESULT   REASON                  UNTIL\n" +
			"upstream   upstream   pass     succeeded in staging    2025-01-31T09:30:00Z\n" +
			"approvals  approvals  pending  1 of 2 approvals (bob)  -\n",
		"\nApprovals:\nUSER  DECISION  COMMENT     AT\nbob   approve   looks good  2025-01-31T09:30:00Z\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Break-glass:") {
		t.Errorf("stdout shows break-glass for a promotion that is not:\n%s", stdout)
	}

	p.Gates, p.Approvals, p.OverrideWindow = nil, nil, true
	p.Review = &promotion.Review{By: "dave", At: t1, Comment: "justified"}
	startStub(t, map[string]stubResponse{"GET /api/v1/promotions/p1": {body: p}, "GET /api/v1/promotions/p1/logs": {body: []view.LogChunk{}}})
	code, stdout, _ = runCLI(t, "", "promotion", "show", "p1")
	if code != 0 || !strings.Contains(stdout, "Break-glass:  yes (deployment windows and freezes ignored)\n") ||
		!strings.Contains(stdout, "Reviewed:     by dave at 2025-01-31T09:30:00Z: justified\n") ||
		strings.Contains(stdout, "Gates:") || strings.Contains(stdout, "Approvals:") {
		t.Errorf("exit code = %d, stdout:\n%s", code, stdout)
	}
}

func TestGateCommandUsageErrorsExitWith2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"reject", "p1"}, `required flag(s) "comment" not set`},
		{[]string{"reject", "p1", "--comment", " "}, "--comment must not be empty"},
		{[]string{"review", "p1"}, `required flag(s) "comment" not set`},
		{[]string{"review", "p1", "--comment", ""}, "--comment must not be empty"},
		{[]string{"approve"}, "takes 1 argument"},
		{[]string{"reject", "--comment", "no"}, "takes 1 argument"},
		{[]string{"approvals", "extra"}, "unknown command"},
		{[]string{"reviews", "extra"}, "unknown command"},
		{[]string{"plan", "--pipeline", "shop", "--release", "1.4.0"}, `required flag(s) "to" not set`},
		{[]string{"promote", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod", "--expedite"}, "--expedite needs --reason"},
		{[]string{"promote", "--pipeline", "shop", "--release", "1.4.0", "--to", "prod", "--override-window"}, "--override-window needs --reason"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := startStub(t, nil)
			code, _, stderr := runCLI(t, "", tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.requests) > 0 {
				t.Errorf("a usage error sent %d request(s)", len(s.requests))
			}
		})
	}
}

func TestPromotionShowPrintsWatchAlertsAndWatchMeasurements(t *testing.T) {
	p := awaitingPromotion()
	p.State = promotion.Watching
	p.Watch = &view.Watch{For: "30m0s", StartedAt: t1, Until: t1.Add(30 * time.Minute), Open: true}
	p.Alerts = []view.Alert{{Key: "k1", GroupKey: `{}:{alertname="Slow"}`, Summary: "1 firing: Slow", At: t1}}
	at := t1.Format(time.RFC3339)
	logs := []view.LogChunk{{Phase: promotion.PhaseWatch, Step: "watch", Attempt: 1, Text: "watching 2 checks until x\n" +
		`[error-rate] measurement {"at":"` + at + `","value":0.004,"verdict":"successful"}` + "\n" +
		"[health] ok\n"}}
	startStub(t, map[string]stubResponse{"GET /api/v1/promotions/p1": {body: p}, "GET /api/v1/promotions/p1/logs": {body: logs}})
	code, stdout, stderr := runCLI(t, "", "promotion", "show", "p1")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	for _, want := range []string{
		"Watch:        open, 2025-01-31T09:30:00Z to 2025-01-31T10:00:00Z (30m0s)\n",
		"\nAlerts:\n",
		"1 firing: Slow",
		"\nMeasurements:\n",
		"watch/error-rate",
		"0.004",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("promotion show lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "watch/watch") {
		t.Errorf("a watch measurement is named after the watch item, not its check:\n%s", stdout)
	}
}
