package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// CostLimit is the most one evaluation of a condition may cost, in CEL cost
// units (roughly one per operation and per list element visited). An
// evaluation that exceeds it stops with ErrCostLimit.
const CostLimit = 100_000

// interruptEvery is how many comprehension iterations run between checks of
// the context.
const interruptEvery = 100

// ErrCostLimit marks an evaluation stopped because it exceeded CostLimit.
var ErrCostLimit = errors.New("condition exceeded its cost limit")

// Error is a compile error in a condition. Line and Column are 1-based and
// relative to the condition's source, so that a caller can add the position
// of the condition in its file.
type Error struct {
	Line    int
	Column  int
	Message string
}

// Error returns "LINE:COLUMN: MESSAGE".
func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message) }

// conditionEnv returns the CEL environment of conditions: one variable,
// result, of type dyn, and comparisons across numeric types, so that
// result < 1 holds for a result of 0.5.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	env, err := cel.NewEnv(
		cel.Variable("result", cel.DynType),
		cel.CrossTypeNumericComparisons(true),
	)
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	return env, nil
})

// Condition is a compiled successCondition or failureCondition: a CEL
// expression of type bool over the variable result, which is a double for a
// scalar, a list of doubles for a vector (result.all(x, x < 1.0)) and the
// document for JSON (result.status == "ok"). A Condition is safe for
// concurrent use.
type Condition struct {
	src string
	prg cel.Program
}

// CompileCondition parses and checks src. Parse and type errors, including
// a result that cannot be a bool, are returned as *Error.
func CompileCondition(src string) (*Condition, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		first := iss.Errors()[0]
		return nil, &Error{
			Line:    first.Location.Line(),
			Column:  first.Location.Column() + 1,
			Message: strings.TrimSuffix(first.Message, " (in container '')"),
		}
	}
	got := ast.OutputType()
	if !types.BoolType.IsExactType(got) && !types.DynType.IsExactType(got) {
		loc := ast.NativeRep().SourceInfo().GetStartLocation(ast.NativeRep().Expr().ID())
		return nil, &Error{
			Line:    loc.Line(),
			Column:  loc.Column() + 1,
			Message: fmt.Sprintf("condition must evaluate to bool, not %s", got),
		}
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
	)
	if err != nil {
		return nil, &Error{Line: 1, Column: 1, Message: err.Error()}
	}
	return &Condition{src: src, prg: prg}, nil
}

// String returns the condition's source.
func (c *Condition) String() string { return c.src }

// Eval evaluates the condition with v as result.
func (c *Condition) Eval(ctx context.Context, v Value) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("evaluate %s: %w", c.src, err)
	}
	out, _, err := c.prg.ContextEval(ctx, map[string]any{"result": v.result()})
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		switch {
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded:
			return false, fmt.Errorf("evaluate %s: %w of %d", c.src, ErrCostLimit, CostLimit)
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.ContextCancelled && ctx.Err() != nil:
			return false, fmt.Errorf("evaluate %s: %w", c.src, ctx.Err())
		}
		return false, fmt.Errorf("evaluate %s: %w", c.src, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate %s: condition must evaluate to bool, not %s", c.src, out.Type().TypeName())
	}
	return bool(b), nil
}
