package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// samplesCSV returns samples as CSV, metric by metric in the order given.
func samplesCSV(metrics ...any) string {
	var b strings.Builder
	b.WriteString("metric,value\n")
	for i := 0; i < len(metrics); i += 2 {
		for _, v := range metrics[i+1].([]float64) {
			fmt.Fprintf(&b, "%s,%v\n", metrics[i], v)
		}
	}
	return b.String()
}

var (
	baseLatency   = []float64{101, 98, 103, 97, 100, 102, 99, 104, 96, 100.5}
	sameLatency   = []float64{100.2, 98.1, 102.9, 97.3, 99.8, 101.7, 99.1, 103.6, 96.4, 100.9}
	slowerLatency = []float64{121, 118, 123, 117, 120, 122, 119, 124, 116, 120.5}
)

func TestJudgeReadsJSONAndCSV(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t)) // the command must not call it
	baseJSON, _ := json.Marshal(map[string][]float64{"latency": baseLatency, "errors": {0, 0, 1, 0, 0, 0}})
	baseline := writeFile(t, "baseline.json", string(baseJSON))
	canary := writeFile(t, "canary.csv", samplesCSV("latency", sameLatency, "errors", []float64{0, 1, 0, 0, 0, 0}))

	code, stdout, stderr := runCLI(t, "", "judge", "--baseline", baseline, "--canary", canary)
	if code != 0 {
		t.Fatalf("exit code = %d, want 0; stderr: %s", code, stderr)
	}
	for _, want := range []string{"METRIC", "ADJ. P", "95% CI", "errors", "latency", "pass", "10/10", "verdict: pass (score 100.0)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, stdout)
		}
	}

	// The format comes from the content when the name has no known extension.
	noExtJSON := writeFile(t, "baseline", string(baseJSON))
	noExtCSV := writeFile(t, "canary.txt", samplesCSV("latency", sameLatency, "errors", []float64{0, 1, 0, 0, 0, 0}))
	if code, _, stderr := runCLI(t, "", "judge", "--baseline", noExtJSON, "--canary", noExtCSV); code != 0 {
		t.Errorf("detected formats: exit code = %d; stderr: %s", code, stderr)
	}
}

func TestJudgeExitCodes(t *testing.T) {
	base := writeFile(t, "base.csv", samplesCSV("a", baseLatency, "b", baseLatency, "c", baseLatency, "d", baseLatency))
	tests := []struct {
		name    string
		canary  string
		flags   []string
		code    int
		verdict string
	}{
		{"pass", samplesCSV("a", sameLatency, "b", sameLatency, "c", sameLatency, "d", sameLatency), nil, 0, "pass"},
		{"marginal", samplesCSV("a", sameLatency, "b", sameLatency, "c", sameLatency, "d", slowerLatency), nil, 3, "marginal"},
		{"fail", samplesCSV("a", sameLatency, "b", slowerLatency, "c", sameLatency, "d", slowerLatency), nil, 3, "fail"},
		{"critical", samplesCSV("a", sameLatency, "b", sameLatency, "c", sameLatency, "d", slowerLatency), []string{"--critical", "d"}, 3, "fail"},
		{"allowed direction", samplesCSV("a", sameLatency, "b", sameLatency, "c", sameLatency, "d", slowerLatency), []string{"--direction", "decrease"}, 0, "pass"},
		{"effect size", samplesCSV("a", sameLatency, "b", sameLatency, "c", sameLatency, "d", slowerLatency), []string{"--effect-size", "0.5"}, 0, "pass"},
		{"no data", samplesCSV("a", sameLatency[:2]), nil, 3, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			canary := writeFile(t, "canary.csv", tt.canary)
			args := append([]string{"judge", "--baseline", base, "--canary", canary, "-o", "json"}, tt.flags...)
			code, stdout, stderr := runCLI(t, "", args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing: the result says why", stderr)
			}
			var r struct {
				Verdict string           `json:"verdict"`
				Score   float64          `json:"score"`
				Reason  string           `json:"reason"`
				Metrics []map[string]any `json:"metrics"`
			}
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			if r.Verdict != tt.verdict || r.Reason == "" || len(r.Metrics) == 0 {
				t.Errorf("result = %+v, want verdict %s", r, tt.verdict)
			}
		})
	}
}

func TestJudgeUnreadableInputExitsWith1(t *testing.T) {
	good := writeFile(t, "good.csv", samplesCSV("a", baseLatency))
	tests := []struct {
		name, file, content string
		// want is a substring of stderr: the file and the line.
		want string
	}{
		{"malformed CSV value", "bad.csv", "metric,value\na,1\na,1.5x\na,2\n", `bad.csv:3: metric "a": value "1.5x" is not a finite number`},
		{"CSV line with three fields", "bad.csv", "metric,value\na,1\na,2,3\n", "bad.csv:3: invalid CSV: wrong number of fields"},
		{"CSV without header", "bad.csv", "a,1\na,2\n", `bad.csv:1: header "a,1": want metric,value`},
		{"CSV with an empty name", "bad.csv", "metric,value\n,1\n", "bad.csv:2: empty metric name"},
		{"CSV NaN", "bad.csv", "metric,value\na,NaN\n", "bad.csv:2:"},
		{"JSON syntax", "bad.json", "{\"a\": [1,\n 2,,]}", "bad.json:2: invalid JSON"},
		{"JSON string value", "bad.json", "{\"a\": [1,\n \"2\"]}", `bad.json:2: metric "a": "2" is not a number`},
		{"JSON not an object", "bad.json", "[1, 2]", "bad.json:1: want an object"},
		{"JSON metric not an array", "bad.json", "{\n\"a\": 1}", `bad.json:2: metric "a": want an object`},
		{"JSON duplicate metric", "bad.json", "{\"a\": [1],\n\"a\": [2]}", `bad.json:2: metric "a" appears twice`},
		{"JSON trailing content", "bad.json", "{\"a\": [1]}\n{}", "bad.json:2: unexpected content"},
		{"JSON truncated", "bad.json", "{\"a\": [1,\n", "bad.json:2: "},
		{"empty", "empty.json", "\n", "empty.json: empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := writeFile(t, tt.file, tt.content)
			code, stdout, stderr := runCLI(t, "", "judge", "--baseline", good, "--canary", bad)
			if code != 1 {
				t.Errorf("exit code = %d, want 1; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope.json")
	code, _, stderr := runCLI(t, "", "judge", "--baseline", missing, "--canary", good)
	if code != 1 || !strings.Contains(stderr, "nope.json") {
		t.Errorf("missing file: exit code = %d, stderr %q", code, stderr)
	}
}

func TestJudgeUsageErrorsExitWith2(t *testing.T) {
	f := writeFile(t, "s.csv", samplesCSV("a", baseLatency))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"judge", "--baseline", f}, `required flag(s) "canary" not set`},
		{[]string{"judge", "--baseline", f, "--canary", f, "--direction", "up"}, `--direction "up"`},
		{[]string{"judge", "--baseline", f, "--canary", f, "--effect-size", "-1"}, "--effect-size -1"},
		{[]string{"judge", "--baseline", f, "--canary", f, "--effect-size", "big"}, "invalid argument"},
		{[]string{"judge", "--baseline", f, "--canary", f, "extra"}, "unknown command"},
		{[]string{"judge", "--baseline", f, "--canary", f, "-o", "xml"}, `-o "xml"`},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit code = %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}
