package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/engine"
)

// TestStatsQuery checks how GET /api/v1/stats reads its query: the window
// defaults to 30 days, durations take days, and a bad one is a 400 naming
// the parameter that reaches no figure.
func TestStatsQuery(t *testing.T) {
	b := setup(t)
	tests := []struct {
		target string
		want   engine.StatsRequest
	}{
		{"/api/v1/stats", engine.StatsRequest{Window: 30 * 24 * time.Hour}},
		{"/api/v1/stats?pipeline=shop&environment=prod&window=7d&bucket=1d",
			engine.StatsRequest{Pipeline: "shop", Environment: "prod", Window: 7 * 24 * time.Hour, Bucket: 24 * time.Hour}},
		{"/api/v1/stats?window=36h&bucket=6h", engine.StatsRequest{Window: 36 * time.Hour, Bucket: 6 * time.Hour}},
	}
	for _, tt := range tests {
		rec := b.do(t, http.MethodGet, tt.target, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", tt.target, rec.Code, rec.Body)
		}
		if b.svc.statsRequest != tt.want {
			t.Errorf("GET %s: request %+v, want %+v", tt.target, b.svc.statsRequest, tt.want)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if v, ok := body["successRate"]; !ok || v != nil {
			t.Errorf("GET %s: successRate = %v (present %v), want null", tt.target, v, ok)
		}
	}
	calls := b.svc.count("Stats")
	for target, detail := range map[string]string{
		"/api/v1/stats?window=forever":      `query parameter window="forever": want a positive duration such as 30d, 7d or 12h`,
		"/api/v1/stats?window=-3d":          `query parameter window="-3d"`,
		"/api/v1/stats?window=0s":           `query parameter window="0s"`,
		"/api/v1/stats?window=7d&bucket=xx": `query parameter bucket="xx"`,
	} {
		p := readProblem(t, b.do(t, http.MethodGet, target, ""), http.StatusBadRequest, codeInvalid)
		if p["detail"] != detail && !startsWith(p["detail"], detail) {
			t.Errorf("GET %s: detail %q, want %q", target, p["detail"], detail)
		}
	}
	if b.svc.count("Stats") != calls {
		t.Errorf("a bad query reached the engine")
	}
}

func startsWith(v any, prefix string) bool {
	s, ok := v.(string)
	return ok && len(s) >= len(prefix) && s[:len(prefix)] == prefix
}
