package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// crashScript is a step that records each attempt, checks that no process of
// an earlier attempt is still alive (a zombie left for an init that does not
// reap counts as gone), and on its first attempt starts a long-lived child
// and blocks, so that the server can be killed in the middle of it.
const crashScript = `
tag="$FERRY_PHASE-$FERRY_STEP"
if [ -f "$WORK/$tag.child" ]; then
  old=$(cat "$WORK/$tag.child")
  st=$(awk '{print $3}' "/proc/$old/stat" 2>/dev/null)
  if [ -n "$st" ] && [ "$st" != Z ]; then echo "$tag attempt $FERRY_ATTEMPT overlaps pid $old" >> "$WORK/overlap"; fi
fi
echo "$tag $FERRY_ATTEMPT $FERRY_IDEMPOTENCY_KEY" >> "$WORK/attempts"
if [ "$FERRY_ATTEMPT" = 1 ]; then
  sleep 300 &
  echo $! > "$WORK/$tag.child"
  touch "$WORK/$tag.started"
  wait
fi
`

func crashPipeline() string {
	indented := "            " + strings.ReplaceAll(strings.TrimSpace(crashScript), "\n", "\n            ")
	return fmt.Sprintf(`name: crash
environments:
  - name: dev
    steps:
      - name: deploy
        exec:
          run: |
%[1]s
    verify:
      - name: check
        exec:
          run: |
%[1]s
`, indented)
}

// TestKillNineMidStepAndMidVerify kills the server with SIGKILL while a deploy
// step runs, restarts it, kills it again while the check runs, restarts it,
// and checks that the promotion finishes with every attempt recorded, the
// same idempotency key across attempts, and no attempt overlapping the
// orphaned process of the one before.
func TestKillNineMidStepAndMidVerify(t *testing.T) { eachStore(t, testKillNineMidStepAndMidVerify) }

func testKillNineMidStepAndMidVerify(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("p.yaml", crashPipeline()))
	s.must("release", "create", "--pipeline", "crash", "--version", "1.0.0", "--artifact", "a=x/a@"+digest("c"))
	var p view.Promotion
	if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "crash", "--release", "1.0.0", "--to", "dev", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}

	s.waitFile("deploy-deploy.started")
	orphan := readPID(t, filepath.Join(s.work, "deploy-deploy.child"))
	s.kill9()
	if !processRunning(orphan) {
		t.Fatalf("the step's child %d died with the server: the test no longer exercises orphans", orphan)
	}
	s.start()

	s.waitFile("verify-check.started")
	if processRunning(orphan) {
		t.Fatalf("orphan %d of the first deploy attempt still runs after the restart", orphan)
	}
	orphan2 := readPID(t, filepath.Join(s.work, "verify-check.child"))
	s.kill9()
	s.start()

	done := s.waitEnded(p.ID)
	if done.State != promotion.Succeeded {
		t.Fatalf("promotion ended %s: %s", done.State, done.Message)
	}
	if processRunning(orphan2) {
		t.Fatalf("orphan %d of the first check attempt still runs", orphan2)
	}
	if o := s.readWork("overlap"); o != "" {
		t.Fatalf("attempts overlapped:\n%s", o)
	}
	att := lines(s.readWork("attempts"))
	if len(att) != 4 {
		t.Fatalf("attempts = %q, want deploy 1, deploy 2, check 1, check 2", att)
	}
	keys := map[string]string{}
	for i, l := range att {
		f := strings.Fields(l)
		wantTag, wantAttempt := []string{"deploy-deploy", "deploy-deploy", "verify-check", "verify-check"}[i], []string{"1", "2", "1", "2"}[i]
		if f[0] != wantTag || f[1] != wantAttempt {
			t.Fatalf("attempt %d = %q, want %s attempt %s", i, l, wantTag, wantAttempt)
		}
		if k, ok := keys[f[0]]; ok && k != f[2] {
			t.Fatalf("%s changed idempotency key across attempts: %s then %s", f[0], k, f[2])
		}
		keys[f[0]] = f[2]
	}
	if keys["deploy-deploy"] == keys["verify-check"] {
		t.Fatal("the deploy step and the check share an idempotency key")
	}
	for _, st := range done.Steps {
		if st.Attempts != 2 || st.State != "succeeded" {
			t.Errorf("step %s/%s: %d attempts, %s; want 2 attempts, succeeded", st.Phase, st.Name, st.Attempts, st.State)
		}
	}
	var states []string
	for _, tr := range done.Transitions {
		states = append(states, string(tr.To))
	}
	if got := strings.Join(states, " "); got != "gating deploying verifying succeeded" {
		t.Fatalf("transitions = %s", got)
	}
	audit := s.must("audit", "--promotion", p.ID, "-o", "json")
	if strings.Count(audit, `interrupted`) < 2 {
		t.Fatalf("the audit log does not record the two interrupted attempts:\n%s", audit)
	}
}

// TestGracefulShutdownInterruptsAndResumes sends SIGTERM while a step runs
// longer than the shutdown grace: the attempt is recorded as interrupted and
// the next start runs attempt 2.
func TestGracefulShutdownInterruptsAndResumes(t *testing.T) {
	eachStore(t, testGracefulShutdownInterruptsAndResumes)
}

func testGracefulShutdownInterruptsAndResumes(t *testing.T, b backend) {
	s := startServer(t, b, "--shutdown-grace", "500ms")
	s.must("apply", "-f", s.writeFile("p.yaml", crashPipeline()))
	s.must("release", "create", "--pipeline", "crash", "--version", "1.0.0", "--artifact", "a=x/a@"+digest("g"))
	var p view.Promotion
	_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "crash", "--release", "1.0.0", "--to", "dev", "-o", "json")), &p)
	s.waitFile("deploy-deploy.started")
	orphan := readPID(t, filepath.Join(s.work, "deploy-deploy.child"))
	s.term()
	if processRunning(orphan) {
		t.Fatalf("graceful shutdown left the step's process %d running", orphan)
	}
	s.start()
	s.waitFile("verify-check.started")
	s.kill9()
	s.start()
	done := s.waitEnded(p.ID)
	if done.State != promotion.Succeeded || done.Steps[0].Attempts != 2 {
		t.Fatalf("after restart: %s, deploy attempts %d", done.State, done.Steps[0].Attempts)
	}
	if o := s.readWork("overlap"); o != "" {
		t.Fatalf("attempts overlapped:\n%s", o)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// processRunning reports whether pid is a live process (zombies do not count).
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}
