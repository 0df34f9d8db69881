package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/analysis/judge"
)

func newJudgeCommand(g *globals) *cobra.Command {
	var (
		baselinePath, canaryPath, direction string
		critical                            []string
		effectSize                          float64
	)
	cmd := &cobra.Command{
		Use:   "judge --baseline FILE --canary FILE [--direction increase|decrease|either] [--critical NAME ...]",
		Short: "Compare a canary's metrics with its baseline's and decide whether it passes",
		Long: `Compare samples of a canary's metrics with samples of the same metrics from
its baseline, and decide whether the canary passes. Runs offline: it reads
two files and calls no server.

Each file holds samples keyed by metric name, as JSON:

  {"latency_ms": [101, 98, 103], "errors": [0, 1, 0]}

or as CSV with the header metric,value and one sample per row:

  metric,value
  latency_ms,101
  latency_ms,98

The format is taken from the extension (.json, .csv), else from the content.

Each metric is tested with a two-sided Mann–Whitney U test: exact for fewer
than 50 samples on each side without ties, else the normal approximation
with tie and continuity corrections. The p-values are adjusted for the
number of metrics with the Holm–Bonferroni method. A metric is high or low
when its adjusted p-value is at most 0.05, the change is in a direction
--direction calls bad and it is at least --effect-size; otherwise it passes.
A metric with fewer than 3 samples on either side is nodata and counts as
not passing. The score is the percentage of metrics that pass: 95 or more
passes, 75 or more is marginal, less fails; a --critical metric that is high,
low or nodata fails the judgement whatever the score.

The table shows, per metric: the classification, the p-value and adjusted
p-value, the Hodges–Lehmann estimate of the shift (canary − baseline) with
its 95% confidence interval, the effect (relative change of the mean, or
"cles", P(canary > baseline) + ½·P(equal) − ½, when the baseline mean is 0)
and the sample counts.

Exit code: 0 if the canary passes, 3 if it is marginal or fails, 1 if a file
cannot be read, 2 for a usage error.`,
		Example: `  ferry judge --baseline baseline.json --canary canary.json
  ferry judge --baseline base.csv --canary canary.csv --direction increase --critical errors
  ferry judge --baseline base.json --canary canary.json --effect-size 0.1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch judge.Direction(direction) {
			case judge.Increase, judge.Decrease, judge.Either:
			default:
				return usageErrorf("--direction %q: want increase, decrease or either", direction)
			}
			if !(effectSize >= 0 && !math.IsInf(effectSize, 0)) {
				return usageErrorf("--effect-size %v: want a number ≥ 0, such as 0.1 for 10%%", effectSize)
			}
			cfg := judge.Config{Metrics: map[string]judge.MetricConfig{}}
			cfg.Default.Direction = judge.Direction(direction)
			cfg.Default.EffectSize = effectSize
			for _, name := range critical {
				mc := cfg.Default
				mc.Critical = true
				cfg.Metrics[name] = mc
			}
			if err := cfg.Validate(); err != nil {
				return asUsage(err)
			}
			baseline, err := readSamples(baselinePath)
			if err != nil {
				return err
			}
			canary, err := readSamples(canaryPath)
			if err != nil {
				return err
			}
			r := judge.Judge(baseline, canary, cfg)
			if err := g.print(r, func(w io.Writer) error { return printJudgement(w, r) }); err != nil {
				return err
			}
			if r.Verdict != judge.Passed {
				return &judgementError{result: r}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&baselinePath, "baseline", "", "samples of the baseline, JSON or CSV (required)")
	f.StringVar(&canaryPath, "canary", "", "samples of the canary, JSON or CSV (required)")
	f.StringVar(&direction, "direction", string(judge.Either), "the change that is bad: increase, decrease or either")
	f.StringArrayVar(&critical, "critical", nil, "a metric that fails the judgement on its own when high, low or without data (repeatable)")
	f.Float64Var(&effectSize, "effect-size", 0, "the smallest relative change that matters, 0.1 for 10%; 0: any significant change")
	for _, name := range []string{"baseline", "canary"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// printJudgement prints a judgement: one row per metric, then the verdict.
func printJudgement(w io.Writer, r judge.Result) error {
	if len(r.Metrics) > 0 {
		tw := newTable(w)
		row(tw, "METRIC", "RESULT", "P", "ADJ. P", "ESTIMATE", "95% CI", "EFFECT", "N (BASE/CANARY)")
		for _, m := range r.Metrics {
			name := m.Name
			if m.Critical {
				name += " (critical)"
			}
			ci := "-"
			if m.CILow != nil && m.CIHigh != nil {
				ci = fmt.Sprintf("[%s, %s]", formatNumber(m.CILow, false), formatNumber(m.CIHigh, false))
			}
			row(tw, name, m.Classification, formatNumber(m.PValue, false), formatNumber(m.AdjustedPValue, false),
				formatNumber(m.Estimate, true), ci, formatEffect(m), fmt.Sprintf("%d/%d", m.BaselineCount, m.CanaryCount))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "verdict: %s (score %.1f): %s\n", r.Verdict, r.Score, r.Reason)
	return err
}

// formatNumber formats an optional number with 4 significant digits, with a
// sign when signed, or "-" when there is none.
func formatNumber(v *float64, signed bool) string {
	if v == nil {
		return "-"
	}
	if signed {
		return fmt.Sprintf("%+.4g", *v)
	}
	return fmt.Sprintf("%.4g", *v)
}

// formatEffect formats a metric's effect size: a percentage change of the
// mean, or the common-language effect size when the baseline mean is 0.
func formatEffect(m judge.Metric) string {
	switch {
	case m.EffectSize == nil:
		return "-"
	case m.BaselineMean != nil && *m.BaselineMean == 0:
		return fmt.Sprintf("cles %+.3f", *m.EffectSize)
	}
	return fmt.Sprintf("%+.1f%%", 100**m.EffectSize)
}

// judgementError reports that a canary did not pass. It unwraps to an
// endedError so that the exit code is 3, as for ferry plan; the judgement
// printed the reason.
type judgementError struct{ result judge.Result }

func (e *judgementError) Error() string {
	return fmt.Sprintf("canary judged %s: %s", e.result.Verdict, e.result.Reason)
}

func (e *judgementError) Unwrap() error {
	return &endedError{id: "judge", message: e.result.Reason}
}

// readSamples reads a file of samples keyed by metric name, as JSON or CSV.
// Its errors name the file and, for malformed content, the line.
func readSamples(path string) (map[string][]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty file: want samples as JSON or CSV", path)
	}
	var samples map[string][]float64
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case ext == ".json":
		samples, err = parseJSONSamples(data)
	case ext == ".csv":
		samples, err = parseCSVSamples(data)
	case bytes.TrimSpace(data)[0] == '{':
		samples, err = parseJSONSamples(data)
	default:
		samples, err = parseCSVSamples(data)
	}
	var lineErr *lineError
	if errors.As(err, &lineErr) {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return samples, nil
}

// lineError is malformed content at a line of a file; it prints as
// "LINE: message" so that it can follow the file's name.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("%d: %s", e.line, e.msg) }

// lineAt returns the line of data at byte offset off, counting from 1.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// parseJSONSamples parses {"metric": [numbers...], ...}. It reads token by
// token so that every error has a line.
func parseJSONSamples(data []byte) (map[string][]float64, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(format string, args ...any) error {
		return &lineError{lineAt(data, dec.InputOffset()), fmt.Sprintf(format, args...)}
	}
	token := func() (json.Token, error) {
		tok, err := dec.Token()
		var syntax *json.SyntaxError
		switch {
		case errors.As(err, &syntax):
			return nil, &lineError{lineAt(data, syntax.Offset), "invalid JSON: " + syntax.Error()}
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &lineError{lineAt(data, int64(len(data))), "unexpected end of JSON"}
		case err != nil:
			return nil, fail("invalid JSON: %v", err)
		}
		return tok, nil
	}
	const want = `want an object of metric names to arrays of numbers, such as {"latency_ms": [101, 98]}`
	tok, err := token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fail("%s", want)
	}
	samples := make(map[string][]float64)
	for dec.More() {
		if tok, err = token(); err != nil {
			return nil, err
		}
		name := tok.(string) // object keys are strings
		if _, dup := samples[name]; dup {
			return nil, fail("metric %q appears twice", name)
		}
		if strings.TrimSpace(name) == "" {
			return nil, fail("empty metric name")
		}
		if tok, err = token(); err != nil {
			return nil, err
		}
		if tok != json.Delim('[') {
			return nil, fail("metric %q: %s", name, want)
		}
		values := []float64{}
		for dec.More() {
			if tok, err = token(); err != nil {
				return nil, err
			}
			num, ok := tok.(json.Number)
			if !ok {
				return nil, fail("metric %q: %v is not a number", name, jsonTokenString(tok))
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil || math.IsInf(v, 0) {
				return nil, fail("metric %q: %s is out of range", name, num)
			}
			values = append(values, v)
		}
		if _, err = token(); err != nil { // ]
			return nil, err
		}
		samples[name] = values
	}
	if _, err = token(); err != nil { // }
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("unexpected content after the JSON object")
	}
	return samples, nil
}

// jsonTokenString describes a JSON token in an error message.
func jsonTokenString(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(t)
	case json.Delim:
		return string(t)
	}
	return fmt.Sprint(tok)
}

// parseCSVSamples parses CSV with the header metric,value and one sample per
// row.
func parseCSVSamples(data []byte) (map[string][]float64, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 2
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	csvError := func(err error) error {
		var parse *csv.ParseError
		if errors.As(err, &parse) {
			return &lineError{parse.Line, "invalid CSV: " + parse.Err.Error() + ": want two fields, metric,value"}
		}
		return err
	}
	header, err := r.Read()
	if err != nil {
		return nil, csvError(err)
	}
	if !strings.EqualFold(strings.TrimSpace(header[0]), "metric") || !strings.EqualFold(strings.TrimSpace(header[1]), "value") {
		line, _ := r.FieldPos(0)
		return nil, &lineError{line, fmt.Sprintf("header %q: want metric,value", strings.Join(header, ","))}
	}
	samples := make(map[string][]float64)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return samples, nil
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		name, text := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if name == "" {
			return nil, &lineError{line, "empty metric name"}
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, &lineError{line, fmt.Sprintf("metric %q: value %q is not a finite number", name, text)}
		}
		samples[name] = append(samples[name], v)
	}
}
