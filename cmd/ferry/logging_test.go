package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// logLine logs with format to a buffer and returns what was written.
func logLine(t *testing.T, format string) string {
	t.Helper()
	var buf bytes.Buffer
	log, err := newLogger(&buf, format, "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("promotion transition", "promotion_id", "p1", "to", "deploying")
	return buf.String()
}

func TestLogFormats(t *testing.T) {
	for _, format := range []string{"json", "auto"} {
		var rec map[string]any
		out := logLine(t, format)
		if err := json.Unmarshal([]byte(out), &rec); err != nil || rec["msg"] != "promotion transition" || rec["promotion_id"] != "p1" {
			t.Errorf("--log-format %s to a buffer: %q (%v), want one JSON line at info level", format, out, err)
		}
	}
	if out := logLine(t, "text"); !strings.HasPrefix(out, "time=") || !strings.Contains(out, `msg="promotion transition" promotion_id=p1`) ||
		strings.Count(out, "\n") != 1 {
		t.Errorf("--log-format text: %q, want one text line at info level", out)
	}
}

// TestAutoLogFormatFollowsTheTerminal checks that auto picks text on a real
// terminal (a pseudo-terminal) and JSON on a regular file.
func TestAutoLogFormatFollowsTheTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := newLogger(f, "auto", "info")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := log.Handler().(*slog.JSONHandler); !ok {
		t.Errorf("auto on a regular file uses %T, want JSON", log.Handler())
	}
	if log, err = newLogger(openPTY(t), "auto", "info"); err != nil {
		t.Fatal(err)
	}
	if _, ok := log.Handler().(*slog.TextHandler); !ok {
		t.Errorf("auto on a terminal uses %T, want text", log.Handler())
	}
}

// openPTY opens the follower side of a new pseudo-terminal, or skips the
// test where the system has none.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	leader, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { leader.Close() })
	if err := unix.IoctlSetPointerInt(int(leader.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(leader.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pseudo-terminal number: %v", err)
	}
	follower, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { follower.Close() })
	return follower
}
