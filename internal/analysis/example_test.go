package analysis_test

import (
	"context"
	"fmt"

	"github.com/ferry-dev/ferry/internal/analysis"
)

func ExampleInterpolate() {
	q, err := analysis.Interpolate(`sum(rate(errors_total{env="${environment}",version="${release}"}[5m]))`,
		map[string]string{"environment": "production", "release": "1.4.2"})
	fmt.Println(q, err)

	_, err = analysis.Interpolate(`up{env="${env}"}`, map[string]string{"environment": "production"})
	fmt.Println(err)
	// Output:
	// sum(rate(errors_total{env="production",version="1.4.2"}[5m])) <nil>
	// interpolate: unknown variable ${env} (known: ${environment}, ${pipeline}, ${release}, ${promotion}, ${baseline}, ${artifact.NAME.digest}; $${ writes ${)
}

func ExampleCompileCondition() {
	rate := 0.002
	c, _ := analysis.CompileCondition("result < 0.01")
	ok, err := c.Eval(context.Background(), analysis.Value{Scalar: &rate})
	fmt.Println(ok, err)

	_, err = analysis.CompileCondition("result < 0.01 &&\n  reslt > 0")
	fmt.Println(err)
	// Output:
	// true <nil>
	// 2:3: undeclared reference to 'reslt' (did you mean 'result'?)
}
