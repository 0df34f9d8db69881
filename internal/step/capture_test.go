package step_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/step"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink collects the chunks a Capture hands over.
type sink struct {
	mu     sync.Mutex
	chunks [][]byte
	calls  chan struct{} // receives after each chunk, if not full
}

func newSink() *sink { return &sink{calls: make(chan struct{}, 1000)} }

func (s *sink) take(b []byte) {
	s.mu.Lock()
	s.chunks = append(s.chunks, b)
	s.mu.Unlock()
	select {
	case s.calls <- struct{}{}:
	default:
	}
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.chunks, nil))
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.chunks)
}

func (s *sink) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("the sink was not called")
	}
}

func TestCaptureRedactsAcrossSplitWrites(t *testing.T) {
	secrets := []string{"hunter2", "hunt", "s3cr3t-token"}
	cases := map[string]string{
		"pw=hunter2;":                   "pw=***;",
		"hunter2hunter2":                "******",
		"huntress":                      "***ress", // the shorter secret, once the longer cannot match
		"hunte":                         "***e",
		"tok=s3cr3t-token end":          "tok=*** end",
		"s3cr3t-tokes3cr3t-token":       "s3cr3t-toke***",
		"no secrets here, just hun":     "no secrets here, just hun",
		"hhunter2 hunter hunter2hunter": "h*** ***er ******er",
	}
	for in, want := range cases {
		for split := 0; split <= len(in); split++ {
			for split2 := split; split2 <= len(in); split2++ {
				s := newSink()
				c := step.NewCapture(0, secrets, time.Hour, s.take)
				for _, part := range []string{in[:split], in[split:split2], in[split2:]} {
					if _, err := io.WriteString(c, part); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				if got := s.String(); got != want {
					t.Fatalf("%q written as %q|%q|%q: got %q, want %q",
						in, in[:split], in[split:split2], in[split2:], got, want)
				}
			}
		}
	}
}

func TestCaptureHoldsBackOnlyPossibleSecrets(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, []string{"password"}, time.Hour, s.take)
	defer c.Close()
	io.WriteString(c, "deploying api\nusing pass")
	c.Flush()
	if got := s.String(); got != "deploying api\nusing " {
		t.Fatalf("after Flush: %q, want the text up to the possible secret", got)
	}
	io.WriteString(c, "port\n")
	c.Flush()
	if got := s.String(); got != "deploying api\nusing passport\n" {
		t.Fatalf("after the rest: %q", got)
	}
	io.WriteString(c, "pass")
	c.Close()
	if got := s.String(); got != "deploying api\nusing passport\npass" {
		t.Fatalf("after Close: %q, want the held back prefix released", got)
	}
}

func TestCaptureLimit(t *testing.T) {
	s := newSink()
	c := step.NewCapture(100, []string{"secret"}, time.Hour, s.take)
	line := strings.Repeat("x", 24) + "\n" // 25 bytes
	for range 10 {
		io.WriteString(c, line)
	}
	io.WriteString(c, "secret") // dropped as "***": 3 bytes
	c.Close()
	c.Close()
	got := s.String()
	want := strings.Repeat(line, 4) + "\n[ferry: output truncated after 100 bytes; 153 more bytes dropped]\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if n := strings.Count(got, "[ferry: output truncated"); n != 1 {
		t.Errorf("%d truncation lines, want 1", n)
	}
}

func TestCaptureDefaultLimit(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, nil, time.Hour, s.take)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for range 17 {
		c.Write(chunk)
	}
	c.Write([]byte("tail"))
	c.Close()
	got := s.String()
	dropped := 17*len(chunk) + 4 - step.DefaultOutputLimit
	marker := fmt.Sprintf("\n[ferry: output truncated after 1048576 bytes; %d more bytes dropped]\n", dropped)
	if len(got) != step.DefaultOutputLimit+len(marker) || !strings.HasSuffix(got, marker) {
		t.Fatalf("got %d bytes ending %q, want 1 MiB and %q", len(got), got[max(0, len(got)-80):], marker)
	}
}

func TestCaptureLimitKeepsCharactersWhole(t *testing.T) {
	s := newSink()
	c := step.NewCapture(5, nil, time.Hour, s.take)
	io.WriteString(c, "abcdé!") // é is 2 bytes at offsets 4 and 5
	c.Close()
	want := "abcd\n[ferry: output truncated after 4 bytes; 3 more bytes dropped]\n"
	if got := s.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCaptureChunksKeepCharactersWhole(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, nil, time.Hour, s.take)
	io.WriteString(c, "naïve ✓"+"\xe2\x9c") // ends with two bytes of a 3-byte character
	c.Flush()
	io.WriteString(c, "\x93 done")
	c.Close()
	if got := s.String(); got != "naïve ✓✓ done" {
		t.Fatalf("got %q", got)
	}
	for _, ch := range s.chunks {
		if !utf8.Valid(ch) {
			t.Errorf("chunk %q splits a character", ch)
		}
	}
}

func TestCaptureFlushesOnInterval(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, nil, 10*time.Millisecond, s.take)
	defer c.Close()
	io.WriteString(c, "first\n")
	s.wait(t)
	io.WriteString(c, "second\n")
	s.wait(t)
	if got := s.String(); got != "first\nsecond\n" {
		t.Fatalf("got %q", got)
	}
}

func TestCaptureFlushesWhenFull(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, nil, time.Hour, s.take)
	defer c.Close()
	c.Write(make([]byte, step.FlushSize-1))
	if n := s.count(); n != 0 {
		t.Fatalf("%d sink calls below FlushSize, want 0", n)
	}
	c.Write([]byte{'\n'})
	if n := s.count(); n != 1 {
		t.Fatalf("%d sink calls at FlushSize, want 1 during Write", n)
	}
}

func TestCaptureNoSinkCallAfterClose(t *testing.T) {
	s := newSink()
	c := step.NewCapture(0, nil, time.Millisecond, s.take)
	io.WriteString(c, "x")
	c.Close()
	n := s.count()
	if _, err := io.WriteString(c, "late"); err == nil {
		t.Error("Write after Close succeeded")
	}
	c.Flush()
	if s.count() != n || s.String() != "x" {
		t.Errorf("sink called after Close: %q", s.String())
	}
}

func TestCaptureConcurrentWrites(t *testing.T) {
	const writers, lines = 8, 500
	s := newSink()
	c := step.NewCapture(0, []string{"TOPSECRET"}, time.Millisecond, s.take)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(c, "writer %d line %d TOPSECRET\n", w, i)
			}
		})
	}
	wg.Wait()
	c.Close()
	got := s.String()
	if strings.Contains(got, "TOPSECRET") {
		t.Error("a secret was stored")
	}
	if n := strings.Count(got, " ***\n"); n != writers*lines {
		t.Errorf("%d redacted lines, want %d", n, writers*lines)
	}
	for w := range writers {
		for i := range lines {
			if !strings.Contains(got, fmt.Sprintf("writer %d line %d ***\n", w, i)) {
				t.Fatalf("line %d of writer %d is missing or mangled", i, w)
			}
		}
	}
}
