package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/pgtest"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// startReplicas starts n servers on one new PostgreSQL database, sharing a work directory.
func startReplicas(t *testing.T, n int) []*server {
	t.Helper()
	dsn := pgtest.Shared(t).CreateDatabase(t, "cluster")
	work := t.TempDir()
	var out []*server
	for i := range n {
		s := &server{t: t, db: dsn, data: filepath.Join(t.TempDir(), fmt.Sprintf("data%d", i)), work: work}
		s.start()
		t.Cleanup(s.stop)
		out = append(out, s)
	}
	return out
}

// cluster returns the replicas as one server sees them.
func (s *server) cluster() []view.Replica {
	s.t.Helper()
	var reps []view.Replica
	out := s.must("cluster", "-o", "json")
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		s.t.Fatalf("decode cluster: %v\n%s", err, out)
	}
	return reps
}

// failoverScript records each attempt with its start time and pid, checks
// that no process of an earlier attempt is alive, and blocks on attempt 1.
const failoverScript = `
if [ -f "$WORK/child" ]; then
  old=$(cat "$WORK/child")
  st=$(awk '{print $3}' "/proc/$old/stat" 2>/dev/null)
  if [ -n "$st" ] && [ "$st" != Z ]; then echo "attempt $FERRY_ATTEMPT overlaps pid $old" >> "$WORK/overlap"; fi
fi
echo "$FERRY_ATTEMPT $(date +%s.%N) $FERRY_IDEMPOTENCY_KEY" >> "$WORK/attempts"
if [ "$FERRY_ATTEMPT" = 1 ]; then
  sleep 300 &
  echo $! > "$WORK/child"
  touch "$WORK/started"
  wait
fi
`

// TestThreeReplicaFailover kills (SIGKILL) the replica driving a promotion
// in the middle of a step; another replica takes it over within 10 seconds,
// runs the step again with the same idempotency key only once the first
// attempt's processes are gone, and the promotion's history is whole.
func TestThreeReplicaFailover(t *testing.T) {
	reps := startReplicas(t, 3)
	if got := len(reps[1].cluster()); got != 3 {
		t.Fatalf("cluster lists %d replicas, want 3", got)
	}
	script := "            " + strings.ReplaceAll(strings.TrimSpace(failoverScript), "\n", "\n            ")
	reps[0].must("apply", "-f", reps[0].writeFile("p.yaml", "name: ha\nenvironments:\n  - name: prod\n    steps:\n      - name: deploy\n        exec:\n          run: |\n"+script+"\n"))
	reps[1].must("release", "create", "--pipeline", "ha", "--version", "1.0.0", "--artifact", "a=x/a@"+digest("ha"))
	var p view.Promotion
	if err := json.Unmarshal([]byte(reps[2].must("promote", "--pipeline", "ha", "--release", "1.0.0", "--to", "prod", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	reps[0].waitFile("started")

	// Find the replica driving it, from any replica's view of the cluster.
	var driver *server
	for _, r := range reps[0].cluster() {
		for _, d := range r.Driving {
			if d.ID == p.ID {
				pid, _ := strconv.Atoi(r.ID[strings.LastIndex(r.ID, ":")+1:])
				for _, s := range reps {
					if s.cmd.Process.Pid == pid {
						driver = s
					}
				}
			}
		}
	}
	if driver == nil {
		t.Fatalf("no replica is listed as driving promotion %s: %+v", p.ID, reps[0].cluster())
	}
	orphan := readPID(t, filepath.Join(driver.work, "child"))
	killed := time.Now()
	driver.kill9()
	var survivor *server
	for _, s := range reps {
		if s != driver {
			survivor = s
		}
	}

	done := survivor.waitEnded(p.ID)
	if done.State != promotion.Succeeded {
		t.Fatalf("after failover the promotion ended %s: %s", done.State, done.Message)
	}
	att := lines(survivor.readWork("attempts"))
	if len(att) != 2 {
		t.Fatalf("attempts = %q, want 2", att)
	}
	first, second := strings.Fields(att[0]), strings.Fields(att[1])
	if first[0] != "1" || second[0] != "2" || first[2] != second[2] {
		t.Fatalf("attempts = %q: want attempt 1 then 2 with one idempotency key", att)
	}
	started, _ := strconv.ParseFloat(second[1], 64)
	takeover := time.Unix(0, int64(started*1e9)).Sub(killed)
	t.Logf("attempt 2 started %v after the driving replica was killed", takeover.Round(time.Millisecond))
	if takeover > 10*time.Second {
		t.Errorf("takeover took %v, want at most 10s", takeover)
	}
	if o := survivor.readWork("overlap"); o != "" {
		t.Fatalf("attempt 2 overlapped the first attempt's processes: %s", o)
	}
	if processRunning(orphan) {
		t.Fatalf("the first attempt's process %d still runs", orphan)
	}
	var states []string
	for _, tr := range done.Transitions {
		states = append(states, string(tr.To))
	}
	if got := strings.Join(states, " "); got != "gating deploying verifying succeeded" {
		t.Fatalf("transitions after failover = %s", got)
	}
	if done.Steps[0].Attempts != 2 {
		t.Fatalf("deploy step has %d attempts recorded, want 2", done.Steps[0].Attempts)
	}
	audit := survivor.must("audit", "--promotion", p.ID, "-o", "json")
	if !strings.Contains(audit, "interrupted") {
		t.Fatalf("the audit log does not record the interrupted attempt:\n%s", audit)
	}
	if n := len(survivor.cluster()); n != 2 {
		t.Logf("cluster still lists %d replicas right after the kill (it drops a replica after two lease periods)", n)
	}
}

// TestContentionAcrossReplicas sends 100 promotions over 20 environments to
// three replicas at once: all end, none runs twice, and no environment ever
// runs two steps at a time.
func TestContentionAcrossReplicas(t *testing.T) {
	reps := startReplicas(t, 3)
	var spec strings.Builder
	spec.WriteString("name: wide\nenvironments:\n")
	for i := range 20 {
		fmt.Fprintf(&spec, `  - name: env%02d
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_ENVIRONMENT start $(date +%%s%%N) $FERRY_PROMOTION_ID" >> "$WORK/steps"; sleep 0.05; echo "$FERRY_ENVIRONMENT end $(date +%%s%%N) $FERRY_PROMOTION_ID" >> "$WORK/steps"'}
`, i)
	}
	reps[0].must("apply", "-f", reps[0].writeFile("wide.yaml", spec.String()))
	for v := range 5 {
		reps[v%3].must("release", "create", "--pipeline", "wide", "--version", fmt.Sprintf("1.%d", v), "--artifact", "a=x/a@"+digest(fmt.Sprint("w", v)))
	}

	type req struct{ version, env string }
	var reqs []req
	for v := range 5 {
		for e := range 20 {
			reqs = append(reqs, req{fmt.Sprintf("1.%d", v), fmt.Sprintf("env%02d", e)})
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]string{"pipeline": "wide", "release": r.version, "environment": r.env})
			req, _ := http.NewRequest(http.MethodPost, "http://"+reps[i%3].addr+"/api/v1/promotions", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("promote %v: %v", r, err)
				return
			}
			defer resp.Body.Close()
			var p view.Promotion
			if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil {
				t.Errorf("promote %v: status %d", r, resp.StatusCode)
				return
			}
			mu.Lock()
			ids[p.ID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 100 {
		t.Fatalf("%d distinct promotions created, want 100", len(ids))
	}

	deadline := time.Now().Add(3 * time.Minute)
	var all []view.Promotion
	for {
		all = reps[1].promotions("--pipeline", "wide", "--limit", "1000")
		active := 0
		for _, p := range all {
			if !p.State.Terminal() {
				active++
			}
		}
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d promotions still unfinished after 3 minutes", active)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(all) != 100 {
		t.Fatalf("%d promotions stored, want 100", len(all))
	}
	ran := map[string]int{}
	succeeded := 0
	for _, p := range all {
		switch p.State {
		case promotion.Succeeded:
			succeeded++
		case promotion.Superseded:
		default:
			t.Errorf("promotion %s into %s ended %s: %s", p.ID, p.Environment, p.State, p.Message)
		}
	}
	type span struct {
		start, end int64
		id         string
	}
	spans := map[string][]span{}
	open := map[string]span{}
	for _, l := range lines(reps[0].readWork("steps")) {
		f := strings.Fields(l)
		ts, _ := strconv.ParseInt(f[2], 10, 64)
		switch f[1] {
		case "start":
			ran[f[3]]++
			open[f[3]] = span{start: ts, id: f[3]}
		case "end":
			sp := open[f[3]]
			sp.end = ts
			spans[f[0]] = append(spans[f[0]], sp)
		}
	}
	for id, n := range ran {
		if n != 1 {
			t.Errorf("promotion %s ran its step %d times", id, n)
		}
	}
	if len(ran) != succeeded {
		t.Errorf("%d promotions ran a step, %d succeeded", len(ran), succeeded)
	}
	for env, ss := range spans {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		for i := 1; i < len(ss); i++ {
			if ss[i].start < ss[i-1].end {
				t.Errorf("%s ran %s and %s at the same time", env, ss[i-1].id, ss[i].id)
			}
		}
	}
	t.Logf("%d succeeded, %d superseded", succeeded, 100-succeeded)
}

// TestDatabaseOutage stops PostgreSQL while a step runs — briefly, then for
// longer than a lease — and checks that the server stays up, reports
// not-ready, and finishes the promotion once the database is back.
func TestDatabaseOutage(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.CreateDatabase(t, "outage")
	s := &server{t: t, db: dsn, data: filepath.Join(t.TempDir(), "data"), work: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	s.must("apply", "-f", s.writeFile("p.yaml", `name: out
environments:
  - name: prod
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_ATTEMPT" >> "$WORK/attempts"; touch "$WORK/started-$FERRY_ATTEMPT"; sleep 2'}
`))
	for i, outage := range []time.Duration{time.Second, 9 * time.Second} {
		version := fmt.Sprintf("1.%d", i)
		s.must("release", "create", "--pipeline", "out", "--version", version, "--artifact", "a=x/a@"+digest(version))
		var p view.Promotion
		_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "out", "--release", version, "--to", "prod", "-o", "json")), &p)
		s.waitFile("started-1")
		pg.Stop(t)
		time.Sleep(300 * time.Millisecond)
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			t.Fatalf("the server stopped answering during the outage: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("/readyz during the outage: %d, want 503", resp.StatusCode)
		}
		time.Sleep(outage)
		pg.Start(t)
		done := s.waitEnded(p.ID)
		if done.State != promotion.Succeeded {
			t.Fatalf("outage of %v: promotion ended %s: %s\n%s", outage, done.State, done.Message, s.logs.String())
		}
		// Ready again once the store answers and the leases are renewed
		// (a replica fenced by a long outage renews within a quarter lease).
		for deadline := time.Now().Add(10 * time.Second); ; {
			resp, err = http.Get("http://" + s.addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz 10s after the outage: %v %v", resp, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("outage of %v: deploy step ran %d attempt(s)", outage, done.Steps[0].Attempts)
		if outage > 6*time.Second && done.Steps[0].Attempts != 2 {
			t.Errorf("an outage longer than the lease: %d attempts, want 2 (stopped, then run again)", done.Steps[0].Attempts)
		}
		if err := os.Remove(filepath.Join(s.work, "started-1")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigratePostgres(t *testing.T) {
	dsn := pgtest.Shared(t).CreateDatabase(t, "migrate")
	s := &server{t: t}
	latest := latestMigration(t, "../store/postgres/migrations")
	if out := s.must("migrate", "--db", dsn); !strings.Contains(out, "created") || !strings.Contains(out, fmt.Sprintf("schema version %d", latest)) {
		t.Fatalf("first migrate: %s", out)
	}
	if out := s.must("migrate", "--db", dsn); !strings.Contains(out, fmt.Sprintf("up to date at schema version %d", latest)) {
		t.Fatalf("second migrate: %s", out)
	}
}

// latestMigration returns the highest version among the NNNN_title.sql files
// of dir.
func latestMigration(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations in %s: %v", dir, err)
	}
	latest := 0
	for _, f := range files {
		var v int
		if _, err := fmt.Sscanf(filepath.Base(f), "%04d_", &v); err != nil {
			t.Fatalf("migration file %s: %v", f, err)
		}
		latest = max(latest, v)
	}
	return latest
}
