package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSessionKeyIsMadeOnceAndKept(t *testing.T) {
	t.Setenv(sessionKeyEnv, "")
	dir := filepath.Join(t.TempDir(), "data")
	first, err := sessionKey(dir)
	if err != nil || len(first) != 32 {
		t.Fatalf("first start: %d bytes, %v", len(first), err)
	}
	fi, err := os.Stat(filepath.Join(dir, sessionKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session-key file: %v %v, want mode 0600", fi, err)
	}
	again, err := sessionKey(dir)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatal("the key changed on restart: every session would end")
	}
	other, _ := sessionKey(t.TempDir())
	if bytes.Equal(first, other) {
		t.Fatal("two data directories got the same key")
	}

	t.Setenv(sessionKeyEnv, strings.Repeat("ab", 32))
	if k, err := sessionKey(dir); err != nil || !bytes.Equal(k, bytes.Repeat([]byte{0xab}, 32)) {
		t.Fatalf("FERRY_SESSION_KEY: %x %v", k, err)
	}
	t.Setenv(sessionKeyEnv, "abcd")
	if _, err := sessionKey(dir); err == nil || !strings.Contains(err.Error(), sessionKeyEnv+": want at least 64 hex digits") {
		t.Fatalf("a short FERRY_SESSION_KEY: %v", err)
	}

	t.Setenv(sessionKeyEnv, "")
	if err := os.WriteFile(filepath.Join(dir, sessionKeyFile), []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sessionKey(dir); err == nil || !strings.Contains(err.Error(), "want 64 hex digits") {
		t.Fatalf("a damaged session-key file: %v", err)
	}
}
