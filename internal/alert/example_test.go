package alert_test

import (
	"fmt"
	"strings"

	"github.com/ferry-dev/ferry/internal/alert"
)

func Example() {
	body := `{
	  "version": "4",
	  "groupKey": "{}:{alertname=\"HighErrorRate\"}",
	  "status": "firing",
	  "alerts": [
	    {"status": "firing", "fingerprint": "b2", "labels": {"alertname": "HighErrorRate", "severity": "critical"}},
	    {"status": "firing", "fingerprint": "a1", "labels": {"alertname": "LatencyP99", "severity": "page"}},
	    {"status": "resolved", "fingerprint": "c3", "labels": {"alertname": "DiskFull", "severity": "page"}}
	  ]
	}`
	m, err := alert.Decode(strings.NewReader(body), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	sev, err := alert.ParseMatcher(`severity=~"critical|page"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	routes := []alert.Route{{Pipeline: "shop", Environment: "prod", Matchers: []alert.Matcher{sev}}}
	for _, t := range alert.Targets(m, routes) {
		fmt.Printf("%s/%s: %s\n", t.Pipeline, t.Environment, alert.Summary(t.Alerts))
	}
	// Output:
	// shop/prod: 2 firing: LatencyP99 (severity=page), HighErrorRate (severity=critical)
}
