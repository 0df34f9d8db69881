package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// clusterService answers the cluster route with reps; every other method panics.
type clusterService struct {
	api.Service
	reps []view.Replica
}

func (s *clusterService) Cluster(context.Context) ([]view.Replica, error) { return s.reps, nil }

func testReplicas() []view.Replica {
	started := time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	seen := time.Date(2025, 1, 31, 9, 30, 12, 0, time.UTC)
	ref := func(id, pipelineName, env string, st promotion.State) view.PromotionRef {
		return view.PromotionRef{ID: id, Pipeline: pipelineName, Environment: env, State: st, Kind: promotion.KindPromote,
			Release: view.ReleaseRef{ID: "r-" + id, Version: "1.4.0"}}
	}
	return []view.Replica{
		{ID: "ferry-a:4242", Host: "ferry-a", Addr: "10.0.0.1:7420", StartedAt: started, SeenAt: seen, Self: true,
			Driving: []view.PromotionRef{ref("p1", "shop", "prod", promotion.Deploying), ref("p2", "billing", "staging", promotion.Verifying)}},
		{ID: "ferry-b:977", Host: "ferry-b", Addr: "10.0.0.2:7420", StartedAt: started.Add(time.Minute), SeenAt: seen,
			Driving: []view.PromotionRef{}},
	}
}

func TestClusterTable(t *testing.T) {
	startAPI(t, &clusterService{reps: testReplicas()})
	code, stdout, stderr := runCLI(t, "", "cluster")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	want := `2 replicas; answered by ferry-a:4242

REPLICA       HOST     ADDRESS        STARTED               LAST SEEN             PROMOTIONS
ferry-a:4242  ferry-a  10.0.0.1:7420  2025-01-31T09:00:00Z  2025-01-31T09:30:12Z  shop/prod:deploying, billing/staging:verifying
ferry-b:977   ferry-b  10.0.0.2:7420  2025-01-31T09:01:00Z  2025-01-31T09:30:12Z  -
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestClusterJSONIsTheAPIsJSON(t *testing.T) {
	reps := testReplicas()
	startAPI(t, &clusterService{reps: reps})
	code, stdout, stderr := runCLI(t, "", "cluster", "-o", "json")
	if code != 0 {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	var got []view.Replica
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a list of replicas: %v\n%s", err, stdout)
	}
	if !reflect.DeepEqual(got, reps) {
		t.Errorf("replicas = %+v, want %+v", got, reps)
	}
	if !strings.Contains(stdout, `"environment": "prod"`) || !strings.Contains(stdout, `"driving": []`) {
		t.Errorf("stdout lacks the API's field names:\n%s", stdout)
	}

	code, stdout, _ = runCLI(t, "", "cluster", "-o", "yaml")
	if code != 0 || !strings.Contains(stdout, "id: ferry-a:4242\n") || !strings.Contains(stdout, "self: true\n") {
		t.Errorf("exit code = %d, yaml:\n%s", code, stdout)
	}
}

func TestClusterWithoutReplicas(t *testing.T) {
	startAPI(t, &clusterService{})
	code, stdout, _ := runCLI(t, "", "cluster")
	if code != 0 || stdout != "no live replicas\n" {
		t.Errorf("exit code = %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "cluster", "-o", "json")
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("exit code = %d, json %q", code, stdout)
	}
}

func TestClusterUnreachableServerExitsWith1(t *testing.T) {
	t.Setenv("FERRY_SERVER", closedServer(t))
	code, _, stderr := runCLI(t, "", "cluster")
	if code != 1 || !strings.Contains(stderr, "Is a Ferry server running at") {
		t.Errorf("exit code = %d, stderr %q", code, stderr)
	}
}
