package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/store"
)

// adminTokenEnv names the environment variable that gives the server its
// first admin token.
const adminTokenEnv = "FERRY_ADMIN_TOKEN"

// adminTokenFile is the file in the data directory where a server writes
// the admin token it created.
const adminTokenFile = "admin-token"

// checkAuthFlag refuses an unknown --auth, and --auth=off unless the server
// listens on a loopback address only.
func checkAuthFlag(mode, listen string) error {
	switch mode {
	case "on":
		return nil
	case "off":
	default:
		return usageErrorf("--auth %q: want on or off", mode)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usageErrorf("--listen %q: %v", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageErrorf("--auth=off needs a loopback --listen address such as 127.0.0.1:7420, not %q: "+
		"without tokens, anyone who reaches the server could do anything", listen)
}

// bootstrapAdmin gives a store without tokens its first admin token: the
// one FERRY_ADMIN_TOKEN holds, or a new one written to DATA_DIR/admin-token
// (mode 0600) and returned to be shown once. It returns "" when the store
// had tokens already or the token came from the environment.
func bootstrapAdmin(ctx context.Context, st store.Store, dataDir string) (string, error) {
	given := strings.TrimSpace(os.Getenv(adminTokenEnv))
	plaintext, created, err := api.BootstrapAdmin(ctx, st, given, time.Now())
	if err != nil {
		if given != "" {
			return "", fmt.Errorf("%s: %w", adminTokenEnv, err)
		}
		return "", err
	}
	if !created || given != "" {
		return "", nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dataDir, adminTokenFile)
	if err := os.WriteFile(path, []byte(plaintext+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the admin token to %s: %w", path, err)
	}
	return plaintext, nil
}

// defaultTokenFile is where the CLI looks for a token when neither --token
// nor FERRY_TOKEN gives one and it talks to the default local server: the
// admin token a server started in the current directory wrote.
var defaultTokenFile = filepath.Join("ferry-data", adminTokenFile)

// readDefaultToken returns the token in defaultTokenFile, or "" when there
// is none.
func readDefaultToken() (string, error) {
	b, err := os.ReadFile(defaultTokenFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", defaultTokenFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// withoutTokens returns environ without the variables that hold API tokens
// and the dashboard's session key, so that steps never inherit them.
func withoutTokens(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == adminTokenEnv || name == "FERRY_TOKEN" || name == sessionKeyEnv {
			continue
		}
		out = append(out, kv)
	}
	return out
}
