package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sessionKeyEnv names the environment variable that gives the dashboard's
// session key: 64 hex digits. Replicas behind one address need the same key.
const sessionKeyEnv = "FERRY_SESSION_KEY"

// sessionKeyFile is the file in the data directory that keeps the
// dashboard's session key when FERRY_SESSION_KEY is not set.
const sessionKeyFile = "session-key"

// sessionKey returns the key that seals the dashboard's session cookies:
// FERRY_SESSION_KEY when set, else DATA_DIR/session-key, created with 32
// random bytes (mode 0600) on the first start so that sessions survive a
// restart.
func sessionKey(dataDir string) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv(sessionKeyEnv)); v != "" {
		key, err := hex.DecodeString(v)
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("%s: want at least 64 hex digits (make one with: openssl rand -hex 32)", sessionKeyEnv)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, sessionKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) < 32 {
			return nil, fmt.Errorf("%s: want 64 hex digits; delete it to have a new key made (everyone signs in again)", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make session key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return sessionKey(dataDir) // another server on this directory made it first
	}
	if err != nil {
		return nil, fmt.Errorf("write session key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write session key %s: %w", path, werr)
	}
	return key, nil
}
