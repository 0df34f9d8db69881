package promtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/promtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func TestTargetExposition(t *testing.T) {
	target := promtest.NewTarget(t)
	target.SetCounter("requests_total", map[string]string{"code": "200", "path": `/a"b`}, 10)
	target.Add("requests_total", map[string]string{"code": "200", "path": `/a"b`}, 2.5)
	target.Add("requests_total", map[string]string{"code": "500"}, 1)
	target.SetGauge("queue_depth", nil, 7)
	scrapes := 0
	target.OnScrape(func() { scrapes++ })

	got := get(t, target.URL())
	want := `# TYPE queue_depth gauge
queue_depth 7
# TYPE requests_total counter
requests_total{code="200",path="/a\"b"} 12.5
requests_total{code="500"} 1
`
	if got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if scrapes != 1 {
		t.Errorf("OnScrape ran %d times, want 1", scrapes)
	}
}

func TestTargetKindMismatchPanics(t *testing.T) {
	target := promtest.NewTarget(t)
	target.SetGauge("x", nil, 1)
	defer func() {
		if recover() == nil {
			t.Errorf("Add to a gauge did not panic")
		}
	}()
	target.Add("x", nil, 1)
}

// TestScrape starts a real server that scrapes a target, and reads the
// target's values back through the query API.
func TestScrape(t *testing.T) {
	target := promtest.NewTarget(t)
	target.SetGauge("temperature", map[string]string{"room": "lab"}, 21.5)
	target.OnScrape(func() { target.Add("scrapes_total", nil, 1) })
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: time.Second})

	prom.Await(t, "scrapes_total >= 2", 15*time.Second)

	body := get(t, prom.URL()+"/api/v1/query?"+url.Values{"query": {`temperature{room="lab"}`}}.Encode())
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(resp.Data.Result) != 1 {
		t.Fatalf("temperature: %s", body)
	}
	r := resp.Data.Result[0]
	if r.Value[1] != "21.5" || r.Metric["job"] != "test" || r.Metric["instance"] != target.Address() {
		t.Errorf("temperature: %s", body)
	}
	if !strings.Contains(get(t, prom.URL()+"/-/ready"), "Ready") {
		t.Errorf("server not ready")
	}
}
