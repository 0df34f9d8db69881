package testproc

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFindNamesThePackageOfAMissingProgram(t *testing.T) {
	_, err := Find("some-package", "ferry-no-such-program", "ferry-nor-this")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install some-package") ||
		!strings.Contains(err.Error(), "ferry-no-such-program or ferry-nor-this") {
		t.Fatalf("err = %v", err)
	}
	if p, err := Find("coreutils", "ferry-no-such-program", "sh"); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Fatalf("Find falls back to the next name: %q, %v", p, err)
	}
}

func TestFreePortIsFree(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}

func TestStartWaitReadyStop(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	p, err := Start("/bin/sh", []string{"-c", "echo listening; exec sleep 60"}, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(10*time.Second, func(context.Context) error {
		if !strings.Contains(p.Log(), "listening") {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("SIGTERM did not stop the program: it took %s", time.Since(start))
	}
}

func TestWaitReadyReportsAnExitAndATakenPort(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("/bin/sh", []string{"-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1"}, dir, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(10*time.Second, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "its log:") {
		t.Fatalf("err = %v, want ErrAddrInUse with the log", err)
	}
}

func TestWaitReadyKillsAProgramNeverReady(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("/bin/sh", []string{"-c", "exec sleep 60"}, dir, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(200*time.Millisecond, func(context.Context) error { return errors.New("still starting") })
	if err == nil || !strings.Contains(err.Error(), "not ready after 200ms (still starting)") {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-p.done:
	default:
		t.Fatal("the program still runs after WaitReady gave up")
	}
}
