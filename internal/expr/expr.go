// Package expr compiles and evaluates the expressions in pipelines — gate
// policies, risk-based approval counts and check conditions — in the one
// expression language Ferry uses: CEL.
//
// Expressions are type-checked when a pipeline is applied, so that a typo in
// a field name is reported with its line and column before any promotion
// runs, and they are cost-limited when they run, so that no expression can
// stall a promotion.
package expr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	// Time zone names in expressions such as now.getHours("Europe/Berlin")
	// must not depend on the zoneinfo files of the host.
	_ "time/tzdata"
)

// CostLimit is the most an evaluation may cost, in CEL cost units (roughly
// one per operation and per list element visited). An evaluation that
// exceeds it stops with ErrCostLimit.
const CostLimit = 100_000

// interruptEvery is how many comprehension iterations run between checks of
// the context.
const interruptEvery = 100

// ErrCostLimit marks an evaluation stopped because it exceeded CostLimit.
var ErrCostLimit = errors.New("expression exceeded its cost limit")

// Kind is the type an expression must evaluate to.
type Kind int

// The kinds of expression.
const (
	// Bool is the kind of policies and conditions.
	Bool Kind = iota
	// Int is the kind of counts, such as the number of approvals required.
	Int
)

// String returns the CEL name of k's type.
func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Int:
		return "int"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func (k Kind) celType() *types.Type {
	if k == Int {
		return types.IntType
	}
	return types.BoolType
}

// Error is a compile error in an expression. Line and Column are 1-based and
// relative to the expression's source, so that a caller can add the position
// of the expression in its file.
type Error struct {
	Line    int
	Column  int
	Message string
}

// Error returns "LINE:COLUMN: MESSAGE".
func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message) }

// Env is the CEL environment that every Ferry expression is compiled in. It
// declares the variables release, pipeline, environment, promotion, now and
// history. An Env is safe for concurrent use.
type Env struct {
	env *cel.Env
}

// NewEnv returns the environment.
func NewEnv() (*Env, error) {
	opts := append([]cel.EnvOption{schemaTypes()}, variables()...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("expression environment: %w", err)
	}
	return &Env{env: env}, nil
}

// Compile parses and type-checks src and returns a program that evaluates to
// want. Parse and type errors, including a result of the wrong type, are
// returned as *Error.
func (e *Env) Compile(src string, want Kind) (*Program, error) {
	ast, iss := e.env.Compile(src)
	if iss.Err() != nil {
		first := iss.Errors()[0]
		return nil, &Error{
			Line:    first.Location.Line(),
			Column:  first.Location.Column() + 1,
			Message: strings.TrimSuffix(first.Message, " (in container '')"),
		}
	}
	if err := noConstruction(ast); err != nil {
		return nil, err
	}
	got := ast.OutputType()
	if !want.celType().IsExactType(got) && !types.DynType.IsExactType(got) {
		loc := ast.NativeRep().SourceInfo().GetStartLocation(ast.NativeRep().Expr().ID())
		return nil, &Error{
			Line:    loc.Line(),
			Column:  loc.Column() + 1,
			Message: fmt.Sprintf("expression must evaluate to %s, not %s", want, typeName(got)),
		}
	}
	prg, err := e.env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
	)
	if err != nil {
		return nil, &Error{Line: 1, Column: 1, Message: err.Error()}
	}
	return &Program{env: e.env, prg: prg, want: want}, nil
}

// noConstruction rejects an expression that constructs an object such as
// ferry.Release{...}: the schema's objects exist only as inputs.
func noConstruction(a *cel.Ast) error {
	native := a.NativeRep()
	found := celast.MatchDescendants(celast.NavigateAST(native), celast.KindMatcher(celast.StructKind))
	if len(found) == 0 {
		return nil
	}
	loc := native.SourceInfo().GetStartLocation(found[0].ID())
	return &Error{
		Line:    loc.Line(),
		Column:  loc.Column() + 1,
		Message: fmt.Sprintf("cannot construct %s values", typeName(native.GetType(found[0].ID()))),
	}
}

// typeName names t as an expression author would write it.
func typeName(t *types.Type) string {
	switch {
	case t.Kind() == types.NullTypeKind:
		return "null"
	case t.Kind() == types.TimestampKind && t.IsAssignableType(types.NullType):
		return "timestamp or null"
	}
	return t.String()
}

// Program is a compiled expression. A Program is safe for concurrent use.
type Program struct {
	env  *cel.Env
	prg  cel.Program
	want Kind
}

// Kind returns the type p evaluates to.
func (p *Program) Kind() Kind { return p.want }

// EvalBool evaluates a Bool program against in.
func (p *Program) EvalBool(ctx context.Context, in Input) (bool, error) {
	out, err := p.eval(ctx, Bool, &in)
	if err != nil {
		return false, err
	}
	return bool(out.(types.Bool)), nil
}

// EvalInt evaluates an Int program against in.
func (p *Program) EvalInt(ctx context.Context, in Input) (int64, error) {
	out, err := p.eval(ctx, Int, &in)
	if err != nil {
		return 0, err
	}
	return int64(out.(types.Int)), nil
}

// eval evaluates p and checks that the result has kind want. The value it
// returns is a types.Bool or a types.Int accordingly.
func (p *Program) eval(ctx context.Context, want Kind, in *Input) (any, error) {
	if p.want != want {
		return nil, fmt.Errorf("evaluate expression: compiled as %s, evaluated as %s", p.want, want)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("evaluate expression: %w", err)
	}
	out, _, err := p.prg.ContextEval(ctx, in.activation(p.env.CELTypeAdapter()))
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		switch {
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded:
			return nil, fmt.Errorf("%w of %d", ErrCostLimit, CostLimit)
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.ContextCancelled && ctx.Err() != nil:
			return nil, fmt.Errorf("evaluate expression: %w", ctx.Err())
		}
		return nil, fmt.Errorf("evaluate expression: %w", err)
	}
	switch v := out.(type) {
	case types.Bool:
		if want == Bool {
			return v, nil
		}
	case types.Int:
		if want == Int {
			return v, nil
		}
	}
	// Only an expression whose type is dyn can get here.
	return nil, fmt.Errorf("evaluate expression: expression must evaluate to %s, not %s", want, out.Type().TypeName())
}
