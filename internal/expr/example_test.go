package expr_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/expr"
	"github.com/ferry-dev/ferry/internal/release"
)

func Example() {
	env, err := expr.NewEnv()
	if err != nil {
		panic(err)
	}
	approvals, err := env.Compile(`release.labels["risk"] == "low" ? 0 : 2`, expr.Int)
	if err != nil {
		panic(err)
	}
	in := expr.Input{
		Release: release.Release{Version: "1.4.2", Labels: map[string]string{"risk": "high"}},
		Now:     time.Date(2025, 3, 10, 13, 30, 0, 0, time.UTC),
	}
	n, err := approvals.EvalInt(context.Background(), in)
	fmt.Println(n, err)

	_, err = env.Compile("release.commit != \"\" &&\n  release.versoin != \"\"", expr.Bool)
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// 2:10: undefined field 'versoin'
}
