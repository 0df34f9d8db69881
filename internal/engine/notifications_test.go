package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/notify"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

const notifyPipeline = `name: shop
notifications:
  - name: all
    url: http://127.0.0.1:9/all
    events: [promotion.succeeded, promotion.failed, promotion.rolled_back, approval.requested, gate.blocked]
environments:
  - name: dev
    gates:
      policies:
        - name: not-two
          expr: release.version != "2.0.0"
          message: 2.0.0 is withdrawn
    steps:
      - name: deploy
        exec:
          run: test "$FERRY_RELEASE" != 3.0.0
    notifications:
      - name: failures
        url: http://127.0.0.1:9/failures
        events: [promotion.failed, promotion.rolled_back]
        format: slack
`

// TestNotificationsEnqueuedWithTransitions: each promotion's outcome is
// written to the outbox of every endpoint that asks for it, in the
// transaction of the change, and the promotion shows them.
func TestNotificationsEnqueuedWithTransitions(t *testing.T) {
	b := &testBundle{dir: t.TempDir()}
	b.dbPath = b.dir + "/ferry.db"
	var kicks atomic.Int32
	b.start(t, engine.Config{Notified: func() { kicks.Add(1) }})
	b.apply(t, notifyPipeline)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		b.release(t, "shop", v)
	}
	type sent struct{ endpoint, event string }
	check := func(version string, state promotion.State, want ...sent) {
		t.Helper()
		p := b.wait(t, b.promote(t, "shop", version, "dev").ID)
		if p.State != state {
			t.Fatalf("%s ended %s, want %s: %s", version, p.State, state, p.Message)
		}
		var got []sent
		for i, n := range p.Notifications {
			got = append(got, sent{n.Endpoint, n.Event})
			if n.State != "pending" || n.Attempts != 0 || n.ID == "" {
				t.Errorf("%s notification %d = %+v, want pending and not tried", version, i, n)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s notified %v, want %v", version, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s notified %v, want %v", version, got, want)
			}
		}
	}
	check("1.0.0", promotion.Succeeded, sent{"all", "promotion.succeeded"})
	check("2.0.0", promotion.Rejected, sent{"all", "gate.blocked"}, sent{"all", "promotion.failed"}, sent{"failures", "promotion.failed"})
	check("3.0.0", promotion.RolledBack, sent{"all", "promotion.rolled_back"}, sent{"failures", "promotion.rolled_back"})
	if kicks.Load() < 3 {
		t.Errorf("Notified was called %d times, want at least once per promotion", kicks.Load())
	}

	// The payload of gate.blocked names the gate and why it refused.
	ps, err := b.eng.Promotions(context.Background(), store.PromotionFilter{Pipeline: "shop", States: []promotion.State{promotion.Rejected}})
	if err != nil || len(ps) != 1 {
		t.Fatalf("rejected promotions: %v, %v", ps, err)
	}
	var ns []store.Notification
	if err := b.st.View(context.Background(), func(tx store.Tx) error {
		ns, err = tx.Notifications(context.Background(), ps[0].ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ev notify.Event
	if err := json.Unmarshal(ns[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event != "gate.blocked" || len(ev.Gates) != 1 || ev.Gates[0].Name != "not-two" || ev.Gates[0].Result != promotion.GateFail ||
		ev.Promotion.Release != "2.0.0" || ev.Promotion.Environment != "dev" || ev.Promotion.ID != ps[0].ID {
		t.Errorf("gate.blocked payload = %s", ns[0].Payload)
	}
	if ns[0].ThreadSeq != 1 || ns[1].ThreadSeq != 2 || ns[2].ThreadSeq != 1 {
		t.Errorf("thread seqs %d, %d, %d; want 1, 2 in all's thread and 1 in failures'", ns[0].ThreadSeq, ns[1].ThreadSeq, ns[2].ThreadSeq)
	}
}

// TestApprovalRequestedEachTimeItWaits: a promotion that needs two
// approvals asks for them when it starts waiting and again after the first.
func TestApprovalRequestedEachTimeItWaits(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
notifications:
  - name: approvers
    url: https://hooks.example.com/approvers
    events: [approval.requested, promotion.succeeded]
environments:
  - name: prod
    gates:
      approvals: {required: 2, from: ["role:approver"]}
    steps: [{name: d, exec: {run: 'true'}}]
`)
	b.release(t, "shop", "1.0.0")
	p := b.promote(t, "shop", "1.0.0", "prod")
	b.waitState(t, p.ID, promotion.AwaitingApproval)
	ctx := context.Background()
	if _, err := b.eng.Approve(ctx, principal("bob", auth.RoleApprover), p.ID, "fine"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.Approve(ctx, principal("carol", auth.RoleApprover), p.ID, "fine"); err != nil {
		t.Fatal(err)
	}
	done := b.wait(t, p.ID)
	var got []string
	for _, n := range done.Notifications {
		got = append(got, fmt.Sprintf("%d %s", n.Seq, n.Event))
	}
	want := []string{"1 approval.requested", "2 approval.requested", "3 promotion.succeeded"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("notifications %v, want %v", got, want)
	}
}
