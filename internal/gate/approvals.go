package gate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
)

// Approvers returns who may approve under a, as written in its from list;
// when it names nobody, anyone with the approver role.
func Approvers(a *pipeline.Approvals) []string {
	if a == nil || len(a.From) == 0 {
		return []string{"role:" + string(auth.RoleApprover)}
	}
	return a.From
}

// Eligible reports whether a user holding roles may approve under a, and if
// not, why. creator made the release and requester asked for the promotion.
func Eligible(a *pipeline.Approvals, user string, roles []string, creator, requester string) (bool, string) {
	if !a.AllowSelfApproval && (user == creator || user == requester) {
		what := "requested the promotion"
		if user == creator {
			what = "created the release"
		}
		return false, fmt.Sprintf("%s %s, and this environment does not allow self-approval", user, what)
	}
	for _, f := range Approvers(a) {
		kind, name, _ := strings.Cut(f, ":")
		switch kind {
		case "user":
			if name == user {
				return true, ""
			}
		case "role":
			for _, r := range roles {
				if auth.Role(r).Includes(auth.Role(name)) {
					return true, ""
				}
			}
		}
	}
	return false, fmt.Sprintf("%s is not among the approvers (%s)", user, strings.Join(Approvers(a), ", "))
}

// approvals: enough eligible people must approve exactly this release at
// this revision; one rejection refuses; a promotion never waits silently.
func (e *evaluator) approvals(ctx context.Context, g *pipeline.Gates) {
	a := g.Approvals
	if a == nil {
		return
	}
	e.out.Approvers = Approvers(a)
	p, rel := e.in.Promotion, e.in.Release
	required := 0
	if e.progs != nil {
		required = e.progs.RequiredN
		if e.progs.Required != nil {
			n, err := e.progs.Required.EvalInt(ctx, e.exprInput())
			if err != nil {
				e.add(KindApprovals, KindApprovals, promotion.GateFail, fmt.Sprintf("could not evaluate required: %v", err), nil)
				return
			}
			required = int(n)
		}
	}
	if required <= 0 {
		e.add(KindApprovals, KindApprovals, promotion.GatePass, "no approval required for this release", nil)
		return
	}
	digest := rel.ContentDigest()
	var approvers, voided, refused []string
	for _, ap := range e.in.Approvals {
		switch {
		case ap.ReleaseDigest != digest || ap.Revision != p.Revision:
			voided = append(voided, ap.User)
			continue
		case a.ExpiresAfter > 0 && e.in.Now.Sub(ap.At) > a.ExpiresAfter.D():
			voided = append(voided, ap.User+" (expired)")
			continue
		}
		if ok, why := Eligible(a, ap.User, ap.Roles, rel.CreatedBy, p.Actor); !ok {
			refused = append(refused, why)
			continue
		}
		if ap.Decision == promotion.Reject {
			reason := "rejected by " + ap.User
			if ap.Comment != "" {
				reason += ": " + ap.Comment
			}
			e.add(KindApprovals, KindApprovals, promotion.GateFail, reason, nil)
			return
		}
		approvers = append(approvers, ap.User)
	}
	sort.Strings(approvers)
	if len(approvers) >= required {
		e.add(KindApprovals, KindApprovals, promotion.GatePass, fmt.Sprintf("approved by %s (%d of %d)", strings.Join(approvers, ", "), len(approvers), required), nil)
		return
	}

	// Waiting on people: deadlines count from when every other gate had
	// passed and the promotion started waiting for approvals.
	for _, g := range e.out.Gates {
		if g.Result != promotion.GatePass {
			e.approvalPending = true
			e.add(KindApprovals, KindApprovals, promotion.GatePending, fmt.Sprintf("%d of %d approvals from %s (deadlines start once the other gates pass)",
				len(approvers), required, strings.Join(Approvers(a), ", ")), nil)
			return
		}
	}
	start := e.in.Now
	for _, g := range e.in.Previous {
		if g.Kind == KindApprovals && g.Result == promotion.GatePending && g.Since != nil {
			start = *g.Since
		}
	}
	var deadlines []time.Time
	if a.Timeout > 0 {
		deadline := start.Add(a.Timeout.D())
		if !e.in.Now.Before(deadline) && a.OnTimeout != "escalate" {
			e.add(KindApprovals, KindApprovals, promotion.GateFail, fmt.Sprintf("no decision within %s: %d of %d approvals", a.Timeout.D(), len(approvers), required), nil)
			return
		}
		deadlines = append(deadlines, deadline)
	}
	if a.Escalate != nil && !e.in.Escalated {
		at := start.Add(a.Escalate.After.D())
		if a.Escalate.After <= 0 {
			at = start.Add(a.Timeout.D())
		}
		if !e.in.Now.Before(at) {
			e.out.Escalate = true
		} else {
			deadlines = append(deadlines, at)
		}
	}
	var wake *time.Time
	for _, d := range deadlines {
		if d.After(e.in.Now) && (wake == nil || d.Before(*wake)) {
			d := d
			wake = &d
		}
	}
	e.approvalPending, e.approvalWake = true, wake
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d approvals from %s", len(approvers), required, strings.Join(Approvers(a), ", "))
	if len(approvers) > 0 {
		fmt.Fprintf(&b, " (approved by %s)", strings.Join(approvers, ", "))
	}
	if len(voided) > 0 {
		fmt.Fprintf(&b, "; voided: %s (the release or pipeline changed since, or too old)", strings.Join(voided, ", "))
	}
	if len(refused) > 0 {
		fmt.Fprintf(&b, "; not counted: %s", strings.Join(refused, "; "))
	}
	if a.Timeout > 0 {
		fmt.Fprintf(&b, "; %s at %s", orDefault(a.OnTimeout, "reject"), start.Add(a.Timeout.D()).UTC().Format(time.RFC3339))
	}
	e.add(KindApprovals, KindApprovals, promotion.GatePending, b.String(), wake)
	e.out.Gates[len(e.out.Gates)-1].Since = &start
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
