package promotion_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/promotion"
)

func watchPlan() promotion.Plan {
	pl := testPlan()
	pl.Watch = []promotion.StepPlan{{Name: "watch"}}
	return pl
}

func TestWatchStartsWhenChecksPass(t *testing.T) {
	p := in(promotion.Verifying, cur(promotion.PhaseVerify, 0, 1, 0))
	res := checkResult(t, p, watchPlan(), promotion.Event{Type: promotion.EvStepSucceeded})
	got := res.Promotion
	if got.State != promotion.Watching || got.Cursor != cur(promotion.PhaseWatch, 0, 1, 0) {
		t.Fatalf("state %s cursor %+v, want watching at the watch item", got.State, got.Cursor)
	}
	if want := []promotion.Action{run(cur(promotion.PhaseWatch, 0, 1, 0))}; !reflect.DeepEqual(res.Actions, want) {
		t.Errorf("actions = %v, want %v", res.Actions, want)
	}

	// A rollback promotion has nothing to watch: it succeeds.
	rb := p
	rb.Kind = promotion.KindRollback
	if got := checkResult(t, rb, watchPlan(), promotion.Event{Type: promotion.EvStepSucceeded}).Promotion; got.State != promotion.Succeeded {
		t.Errorf("rollback promotion went to %s, want succeeded", got.State)
	}
}

func TestWatchOutcomes(t *testing.T) {
	watching := in(promotion.Watching, cur(promotion.PhaseWatch, 0, 1, 0))
	for _, c := range []struct {
		name      string
		ev        promotion.Event
		want      promotion.State
		stop      bool
		inMessage string
	}{
		{"window passed", promotion.Event{Type: promotion.EvStepSucceeded}, promotion.Succeeded, false, "watch window passed"},
		{"check failed", promotion.Event{Type: promotion.EvStepFailed, Reason: "error-rate: 0.2 > 0.05"}, promotion.RollingBack, false, "watch failed: error-rate: 0.2 > 0.05; rolling back to 1.0.0"},
		{"alert", promotion.Event{Type: promotion.EvAlert, Reason: "HighErrorRate"}, promotion.RollingBack, true, "alert firing: HighErrorRate; rolling back to 1.0.0"},
		{"ended early", promotion.Event{Type: promotion.EvResume, Reason: "ended by ana"}, promotion.Succeeded, true, "ended by ana"},
		{"inconclusive", promotion.Event{Type: promotion.EvStepInconclusive, Reason: "no data"}, promotion.Paused, false, "no data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := checkResult(t, watching, watchPlan(), c.ev)
			got := res.Promotion
			if got.State != c.want {
				t.Fatalf("state = %s, want %s", got.State, c.want)
			}
			if !strings.Contains(got.Message, c.inMessage) {
				t.Errorf("message %q does not say %q", got.Message, c.inMessage)
			}
			stopped := len(res.Actions) > 0 && res.Actions[0] == stopStep
			if stopped != c.stop {
				t.Errorf("actions %v: stop first = %v, want %v", res.Actions, stopped, c.stop)
			}
			if c.want == promotion.RollingBack && got.Cursor != cur(promotion.PhaseRollback, 0, 1, 0) {
				t.Errorf("rolling back from cursor %+v", got.Cursor)
			}
		})
	}
}

func TestAlertWhileVerifyingRollsBack(t *testing.T) {
	// While a check waits to retry, no step runs: nothing to stop, and the timer is cleared.
	p := waiting(in(promotion.Verifying, cur(promotion.PhaseVerify, 0, 2, 1)), now.Add(5e9))
	res := checkResult(t, p, testPlan(), promotion.Event{Type: promotion.EvAlert, Reason: "HighErrorRate"})
	if got := res.Promotion; got.State != promotion.RollingBack || got.WakeAt != nil {
		t.Fatalf("state %s WakeAt %v, want rolling_back without a timer", got.State, got.WakeAt)
	}
	for _, a := range res.Actions {
		if a == stopStep {
			t.Errorf("stopped a step while none ran: %v", res.Actions)
		}
	}
	// Deploying is not verifying: an alert there is refused.
	if _, err := promotion.Apply(in(promotion.Deploying, cur(promotion.PhaseDeploy, 0, 1, 0)), testPlan(),
		promotion.Event{Type: promotion.EvAlert}, now); !isInvalid(err) {
		t.Errorf("alert while deploying: err = %v, want invalid", err)
	}
}
