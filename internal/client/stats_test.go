package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
)

func TestStatsQueryAndDecoding(t *testing.T) {
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"from":"2025-03-01T00:00:00Z","to":"2025-03-31T00:00:00Z","production":["shop/prod"],
			"promotions":4,"attempts":3,"successRate":0.5,"rollbackRate":null,"series":[{"from":"2025-03-01T00:00:00Z",
			"to":"2025-03-02T00:00:00Z","promotions":1,"successRate":null}]}`))
	})
	rep, err := c.Stats(t.Context(), StatsQuery{Pipeline: "my shop", Environment: "prod", Window: "30d", Bucket: "1d"})
	if err != nil {
		t.Fatal(err)
	}
	if got := (*seen)[0].path + "?" + (*seen)[0].query; got != "/api/v1/stats?bucket=1d&environment=prod&pipeline=my+shop&window=30d" {
		t.Errorf("request = %s", got)
	}
	if !rep.From.Equal(from) || rep.Promotions != 4 || rep.Attempts != 3 || rep.SuccessRate == nil || *rep.SuccessRate != 0.5 ||
		rep.RollbackRate != nil || len(rep.Series) != 1 || rep.Series[0].Promotions != 1 || rep.Series[0].SuccessRate != nil ||
		len(rep.Production) != 1 {
		t.Errorf("report = %+v", rep)
	}
	// An empty query sends no parameters: the server decides.
	if _, err := c.Stats(t.Context(), StatsQuery{}); err != nil || (*seen)[1].query != "" {
		t.Errorf("empty query: %q, %v", (*seen)[1].query, err)
	}
}

func TestCreateReleaseSendsCommitTime(t *testing.T) {
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, http.StatusCreated, release.Release{ID: "r1", Pipeline: "shop", Version: "1.0.0"})
	})
	ct := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	r := release.Release{Pipeline: "shop", Version: "1.0.0", CommitTime: &ct,
		Artifacts: []release.Artifact{{Name: "api", URI: "reg/api", Digest: "sha256:" + strings.Repeat("a", 64)}}}
	if _, _, err := c.CreateRelease(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if body := (*seen)[0].body; !strings.Contains(body, `"commitTime":"2025-03-01T09:30:00Z"`) {
		t.Errorf("body = %s", body)
	}
}

// TestStatsReachesItsRoute runs Stats against the real API handler.
func TestStatsReachesItsRoute(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Service: statsService{}, DisableAuth: true}))
	t.Cleanup(srv.Close)
	rep, err := New(srv.URL, srv.Client()).Stats(t.Context(), StatsQuery{Pipeline: "shop", Window: "7d"})
	if err != nil || rep.Pipeline != "shop" {
		t.Fatalf("Stats = %+v, %v", rep, err)
	}
	_, err = New(srv.URL, srv.Client()).Stats(t.Context(), StatsQuery{Window: "soon"})
	if Code(err) != "invalid" || !strings.Contains(err.Error(), `window="soon"`) {
		t.Errorf("bad window: %v", err)
	}
}

// statsService answers Stats with the pipeline it was asked for.
type statsService struct{ api.Service }

func (statsService) Stats(_ context.Context, req engine.StatsRequest) (*stats.Report, error) {
	return &stats.Report{Pipeline: req.Pipeline, Production: []string{}}, nil
}
