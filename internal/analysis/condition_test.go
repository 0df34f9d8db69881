package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCompileConditionErrors(t *testing.T) {
	tests := []struct {
		src     string
		line    int
		column  int
		message string
	}{
		{"result <", 1, 9, "Syntax error"},
		{"reslt < 0.01", 1, 1, "undeclared reference to 'reslt'"},
		{"result < 0.01 &&\n  total > 3", 2, 3, "undeclared reference to 'total'"},
		{"1 + 2", 1, 3, "condition must evaluate to bool, not int"},
		{`"ok"`, 1, 1, "condition must evaluate to bool, not string"},
		{"result < 'a' + 1", 1, 14, "found no matching overload for '_+_'"},
	}
	for _, tt := range tests {
		_, err := CompileCondition(tt.src)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("CompileCondition(%q) = %v, want an *Error", tt.src, err)
			continue
		}
		if e.Line != tt.line || e.Column != tt.column || !strings.Contains(e.Message, tt.message) {
			t.Errorf("CompileCondition(%q) = %d:%d: %s; want %d:%d: ...%s...", tt.src, e.Line, e.Column, e.Message, tt.line, tt.column, tt.message)
		}
		if prefix := fmt.Sprintf("%d:%d: ", tt.line, tt.column); !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Error() = %q, want LINE:COLUMN: first", err)
		}
	}
}

func TestConditionEval(t *testing.T) {
	f := 0.5
	tests := []struct {
		src  string
		v    Value
		want bool
	}{
		{"result < 1.0", Value{Scalar: &f}, true},
		{"result < 1", Value{Scalar: &f}, true},
		{"result == 0.5", Value{Scalar: &f}, true},
		{"result.all(x, x < 1.0)", Value{Vector: []Sample{{Value: 0.2}, {Value: 0.9}}}, true},
		{"result.all(x, x < 1.0)", Value{Vector: []Sample{{Value: 0.2}, {Value: 1.9}}}, false},
		{`result.items.exists(i, i.name == "api" && i.ready)`, Value{JSON: map[string]any{
			"items": []any{map[string]any{"name": "web", "ready": false}, map[string]any{"name": "api", "ready": true}},
		}}, true},
		{"result", Value{JSON: true}, true},
	}
	for _, tt := range tests {
		c, err := CompileCondition(tt.src)
		if err != nil {
			t.Errorf("CompileCondition(%q): %v", tt.src, err)
			continue
		}
		got, err := c.Eval(context.Background(), tt.v)
		if err != nil || got != tt.want {
			t.Errorf("%s with %v = %v, %v; want %v", tt.src, tt.v, got, err, tt.want)
		}
	}
}

func TestConditionEvalErrors(t *testing.T) {
	big := make([]Sample, 100_000)
	tests := []struct {
		src  string
		v    Value
		want string
	}{
		{"result", Value{JSON: "yes"}, "condition must evaluate to bool, not string"},
		{"result < 0.01", Value{Vector: []Sample{{Value: 0}}}, "no such overload"},
		{"result.all(x, result.all(y, x == y))", Value{Vector: big}, ErrCostLimit.Error()},
	}
	for _, tt := range tests {
		c, err := CompileCondition(tt.src)
		if err != nil {
			t.Fatalf("CompileCondition(%q): %v", tt.src, err)
		}
		_, err = c.Eval(context.Background(), tt.v)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.src, err, tt.want)
		}
	}
	c, _ := CompileCondition("result.all(x, x == 0.0)")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Eval(ctx, Value{Vector: big}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled evaluation: %v", err)
	}
	if _, err := c.Eval(context.Background(), Value{Vector: big[:1000]}); err != nil {
		t.Errorf("1000 samples: %v", err)
	}
}
