package audit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateRequiresFields(t *testing.T) {
	ok := Event{Time: time.Unix(1, 0), Actor: "alice", Action: "promotion.create", Subject: "promotion/p1", Details: Details(map[string]int{"n": 1})}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mutate func(e *Event)
		want   string
	}{
		{func(e *Event) { e.Actor = "" }, "actor is required"},
		{func(e *Event) { e.Action = "" }, "action is required"},
		{func(e *Event) { e.Subject = "" }, "subject is required"},
		{func(e *Event) { e.Time = time.Time{} }, "time is required"},
		{func(e *Event) { e.Details = []byte("{not json") }, "not valid JSON"},
	} {
		e := ok
		c.mutate(&e)
		if err := e.Validate(); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want ErrIncomplete mentioning %q", err, c.want)
		}
	}
}

func TestValidateRequiresReasonOfDecisions(t *testing.T) {
	for _, action := range []string{"promotion.break-glass", "promotion.reject", "promotion.review"} {
		e := Event{Time: time.Unix(1, 0), Actor: "alice", Action: action, Subject: "promotion/p1", Reason: " \t"}
		if err := e.Validate(); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "reason is required") {
			t.Errorf("%s without a reason: %v", action, err)
		}
		e.Reason = "freeze exception approved by the CAB"
		if err := e.Validate(); err != nil {
			t.Errorf("%s with a reason: %v", action, err)
		}
	}
	e := Event{Time: time.Unix(1, 0), Actor: "system", Action: "promotion.transition", Subject: "promotion/p1"}
	if err := e.Validate(); err != nil {
		t.Errorf("a transition needs no reason: %v", err)
	}
}
