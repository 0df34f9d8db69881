package engine

import (
	"testing"

	"github.com/ferry-dev/ferry/internal/promotion"
)

// TestNotificationEvents checks which events a change reports and the keys
// that keep a repeated change from being sent twice.
func TestNotificationEvents(t *testing.T) {
	soak := promotion.GateEvaluation{Name: "soak", Kind: "soak", Result: promotion.GatePending}
	window := promotion.GateEvaluation{Name: "windows", Kind: "windows", Result: promotion.GatePending}
	approvals := promotion.GateEvaluation{Name: "approvals", Kind: "approvals", Result: promotion.GatePending}
	policy := promotion.GateEvaluation{Name: "no-friday", Kind: "policy", Result: promotion.GateFail}
	passed := promotion.GateEvaluation{Name: "upstream", Kind: "upstream", Result: promotion.GatePass}
	gates := promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePending, Reason: "waiting"}
	toAwaiting := []promotion.Transition{{From: promotion.Gating, To: promotion.AwaitingApproval}}

	keys := func(p promotion.Promotion, ev promotion.Event, trs []promotion.Transition) []string {
		var out []string
		for _, n := range notifications(&p, ev, trs) {
			out = append(out, n.event+" "+n.key)
		}
		return out
	}
	tests := []struct {
		name string
		p    promotion.Promotion
		ev   promotion.Event
		trs  []promotion.Transition
		want []string
	}{
		{"a soak holds it", promotion.Promotion{Gates: []promotion.GateEvaluation{passed, soak}}, gates, nil,
			[]string{"gate.blocked gate.blocked:soak=pending"}},
		{"the same soak, evaluated again", promotion.Promotion{Gates: []promotion.GateEvaluation{soak, passed}}, gates, nil,
			[]string{"gate.blocked gate.blocked:soak=pending"}},
		{"a window besides", promotion.Promotion{Gates: []promotion.GateEvaluation{soak, window}}, gates, nil,
			[]string{"gate.blocked gate.blocked:soak=pending,windows=pending"}},
		{"only approvals: no gate.blocked", promotion.Promotion{Version: 4, Gates: []promotion.GateEvaluation{passed, approvals}}, gates, toAwaiting,
			[]string{"approval.requested approval.requested:4.0"}},
		{"approvals again later", promotion.Promotion{Version: 9, Gates: []promotion.GateEvaluation{approvals}}, gates, toAwaiting,
			[]string{"approval.requested approval.requested:9.0"}},
		{"a policy refuses", promotion.Promotion{Gates: []promotion.GateEvaluation{policy}},
			promotion.Event{Type: promotion.EvGates, Gate: promotion.GateFail},
			[]promotion.Transition{{From: promotion.Gating, To: promotion.Rejected}},
			[]string{"gate.blocked gate.blocked:no-friday=fail", "promotion.failed promotion.failed"}},
		{"gates recorded but not evaluated now", promotion.Promotion{Gates: []promotion.GateEvaluation{soak}},
			promotion.Event{Type: promotion.EvStepSucceeded}, []promotion.Transition{{From: promotion.Verifying, To: promotion.Succeeded}},
			[]string{"promotion.succeeded promotion.succeeded"}},
		{"rolled back", promotion.Promotion{}, promotion.Event{Type: promotion.EvStepSucceeded},
			[]promotion.Transition{{From: promotion.RollingBack, To: promotion.RolledBack}},
			[]string{"promotion.rolled_back promotion.rolled_back"}},
		{"rollback failed", promotion.Promotion{}, promotion.Event{Type: promotion.EvStepFailed},
			[]promotion.Transition{{From: promotion.RollingBack, To: promotion.RollbackFailed}},
			[]string{"promotion.failed promotion.failed"}},
		{"aborted: nothing", promotion.Promotion{}, promotion.Event{Type: promotion.EvAbort},
			[]promotion.Transition{{From: promotion.Deploying, To: promotion.Aborted}}, nil},
		{"deploying: nothing", promotion.Promotion{Gates: []promotion.GateEvaluation{passed}},
			promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass},
			[]promotion.Transition{{From: promotion.Gating, To: promotion.Deploying}}, nil},
	}
	for _, tt := range tests {
		got := keys(tt.p, tt.ev, tt.trs)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}
