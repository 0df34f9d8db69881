package promtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/testproc"
)

// promtool runs promtool with args and stdin, and returns its combined
// output and whether it exited 0. It skips tb (fails it under CI) when
// promtool is not installed.
func promtool(tb testing.TB, stdin []byte, args ...string) (string, bool) {
	tb.Helper()
	// The Debian package prometheus installs promtool beside the server.
	bin, err := testproc.Find(Package, "promtool")
	if err != nil {
		testproc.Unavailable(tb, "promtest", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		tb.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
	}
	return string(out), err == nil
}

// CheckMetrics runs `promtool check metrics` on exposition, a scrape in the
// Prometheus text format, and fails tb with promtool's findings (names,
// suffixes, units, help texts) when it reports any. It skips tb (fails it
// under CI) when promtool is not installed.
func CheckMetrics(tb testing.TB, exposition []byte) {
	tb.Helper()
	if out, ok := promtool(tb, exposition, "check", "metrics"); !ok {
		tb.Fatalf("promtool check metrics found problems:\n%s", out)
	}
}

// CheckExpressions parses every PromQL expression of exprs with `promtool
// check rules`, each written as a recording rule, and fails tb naming the
// expressions that do not parse. It skips tb (fails it under CI) when
// promtool is not installed.
func CheckExpressions(tb testing.TB, exprs []string) {
	tb.Helper()
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	rules := make([]rule, len(exprs))
	for i, e := range exprs {
		rules[i] = rule{Record: fmt.Sprintf("check:expression_%d", i+1), Expr: e}
	}
	// JSON is YAML.
	doc, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "expressions", "rules": rules}}})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "expressions.yml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		tb.Fatal(err)
	}
	if out, ok := promtool(tb, nil, "check", "rules", path); !ok {
		var list strings.Builder
		for _, r := range rules {
			fmt.Fprintf(&list, "  %s: %s\n", r.Record, r.Expr)
		}
		tb.Fatalf("promtool check rules refused expressions:\n%s\nthe expressions:\n%s", out, list.String())
	}
}
