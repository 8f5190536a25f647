package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
)

// TestDevModeListensOnLoopbackOnly: dev mode, which writes login codes to
// the log, refuses every listener reachable from another machine (HTTP,
// NATS clients, cluster routes) unless SPA_DEV_ALLOW_REMOTE says so; the
// error names the variable.
func TestDevModeListensOnLoopbackOnly(t *testing.T) {
	refused := map[string]struct {
		env  map[string]string
		want string
	}{
		"http on every interface":   {map[string]string{"SPA_HTTP_ADDR": "0.0.0.0:8080"}, "SPA_HTTP_ADDR:"},
		"http with an empty host":   {map[string]string{"SPA_HTTP_ADDR": ":8080"}, "SPA_HTTP_ADDR:"},
		"http on every v6":          {map[string]string{"SPA_HTTP_ADDR": "[::]:8080"}, "SPA_HTTP_ADDR:"},
		"http on a LAN address":     {map[string]string{"SPA_HTTP_ADDR": "192.168.1.20:8080"}, "SPA_HTTP_ADDR:"},
		"http on a host name":       {map[string]string{"SPA_HTTP_ADDR": "spa.example.com:8080"}, "SPA_HTTP_ADDR:"},
		"nats on every interface":   {map[string]string{"SPA_NATS_HOST": "0.0.0.0"}, "SPA_NATS_HOST:"},
		"routes on every interface": {map[string]string{"SPA_CLUSTER_ADDR": "0.0.0.0:6222", "DATABASE_URL": "postgres://u@db/spa", "SPA_NODE_NAME": "a", "SPA_TOKEN_SECRET": secret32}, "SPA_CLUSTER_ADDR:"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig("serve", nil, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), devAllowRemoteEnv) {
				t.Fatalf("err = %v, want it to name %s and %s", err, tc.want, devAllowRemoteEnv)
			}
			with := map[string]string{devAllowRemoteEnv: "1"}
			for k, v := range tc.env {
				with[k] = v
			}
			if _, err := parseConfig("serve", nil, env(with), io.Discard); err != nil {
				t.Fatalf("with %s=1: %v", devAllowRemoteEnv, err)
			}
			if _, err := parseConfig("serve", []string{"--dev-allow-remote=true"}, env(tc.env), io.Discard); err != nil {
				t.Fatalf("with --dev-allow-remote=true: %v", err)
			}
		})
	}
	for name, e := range map[string]map[string]string{
		"defaults":               nil,
		"localhost":              {"SPA_HTTP_ADDR": "localhost:8080", "SPA_NATS_HOST": "localhost"},
		"loopback v4 range":      {"SPA_HTTP_ADDR": "127.0.0.2:0"},
		"loopback v6":            {"SPA_HTTP_ADDR": "[::1]:0", "SPA_NATS_HOST": "::1"},
		"in-process nats only":   {"SPA_NATS_HOST": "0.0.0.0", "SPA_NATS_PORT": "0"},
		"production anywhere":    {"SPA_MODE": "production", "SPA_TOKEN_SECRET": secret32, "SPA_HTTP_ADDR": ":8080", "SPA_NATS_HOST": "0.0.0.0"},
		"explicitly not allowed": {devAllowRemoteEnv: "false"},
	} {
		if _, err := parseConfig("serve", nil, env(e), io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// migrate listens on nothing.
	if _, err := parseConfig("migrate", nil, env(map[string]string{"SPA_HTTP_ADDR": ":8080"}), io.Discard); err != nil {
		t.Errorf("migrate: %v", err)
	}
}

// TestProductionRefusesWeakSecrets: a production secret must look random,
// whatever its length: all zeros, one repeated byte, a short alphabet or a
// repeated pattern are refused, naming the variable (and the key's entry)
// and never echoing the value.
func TestProductionRefusesWeakSecrets(t *testing.T) {
	random := func(n int) []byte {
		b, err := base64.StdEncoding.DecodeString(secret32)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) < n { // more random-looking bytes for longer keys
			b = append(b, byte(len(b)*151+17))
		}
		return b[:n]
	}
	weak := map[string][]byte{
		"all zeros":         make([]byte, 32),
		"one repeated byte": bytes.Repeat([]byte{0xa5}, 48),
		"hex text twice":    []byte("0123456789abcdef0123456789abcdef"),
		"random half twice": append(random(24), random(24)...),
		"two values":        bytes.Repeat([]byte{0, 1}, 32),
	}
	for name, key := range weak {
		t.Run(name, func(t *testing.T) {
			enc := base64.StdEncoding.EncodeToString(key)
			_, err := parseConfig("serve", nil, env(map[string]string{"SPA_MODE": "production", "SPA_TOKEN_SECRET": enc}), io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), "SPA_TOKEN_SECRET: too weak") || strings.Contains(err.Error(), enc) {
				t.Errorf("token secret: err = %v", err)
			}
			if len(key) != 32 {
				return
			}
			_, err = parseConfig("serve", nil, env(map[string]string{"SPA_MODE": "production", "SPA_TOKEN_SECRET": secret32,
				piiKeysEnv: "k2:" + secret32 + ",k1:" + enc}), io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), `SPA_PII_KEYS: entry 2 ("k1"): too weak`) || strings.Contains(err.Error(), enc) {
				t.Errorf("pii key: err = %v", err)
			}
		})
	}
	if _, err := parseConfig("serve", nil, env(map[string]string{"SPA_MODE": "production",
		"SPA_TOKEN_SECRET": base64.StdEncoding.EncodeToString(random(48)), piiKeysEnv: "k1:" + secret32}), io.Discard); err != nil {
		t.Fatalf("random secrets refused: %v", err)
	}
	// Dev mode keeps its zero-setup start: a weak key there is the
	// developer's own (and dev listens on loopback only).
	if _, err := parseConfig("serve", nil, env(map[string]string{"SPA_TOKEN_SECRET": base64.StdEncoding.EncodeToString(make([]byte, 32))}), io.Discard); err != nil {
		t.Fatalf("dev: %v", err)
	}
}

// TestWeakSecretPassesRandomKeys: the floors never refuse what crypto/rand
// gives (a refusal of a real key would stop a production node).
func TestWeakSecretPassesRandomKeys(t *testing.T) {
	for i := 0; i < 2000; i++ {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			t.Fatal(err)
		}
		if err := weakSecret(k[:]); err != nil {
			t.Fatalf("random key %d refused: %v", i, err)
		}
	}
}

// TestDeployFilesRunProduction: every deploy file meant for real hosts sets
// SPA_MODE=production; the local cluster script, which stays in dev mode,
// binds loopback only.
func TestDeployFilesRunProduction(t *testing.T) {
	production := regexp.MustCompile(`SPA_MODE(=|: |, value: ")production`)
	for _, f := range []string{"Dockerfile", "spa.service", "compose.yaml", "k8s/statefulset.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		if !production.Match(b) {
			t.Errorf("deploy/%s does not set SPA_MODE=production", f)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "local-cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := regexp.MustCompile(`SPA_(HTTP_ADDR|CLUSTER_ADDR|NATS_HOST)=(\S+)`).FindAllSubmatch(b, -1)
	if len(addrs) < 2 {
		t.Fatalf("local-cluster.sh: listeners not found (%d)", len(addrs))
	}
	for _, m := range addrs {
		if !strings.HasPrefix(string(m[2]), "127.0.0.1") {
			t.Errorf("local-cluster.sh runs dev mode on %s=%s", m[1], m[2])
		}
	}
}

// TestTokenCommandCapsLifetime: `spa token` mints at most the lifetime
// every node accepts for the role (auth.MaxLifetime), and the longest
// kiosk lifetime configuration allows is one the nodes accept.
func TestTokenCommandCapsLifetime(t *testing.T) {
	dir := t.TempDir()
	mint := func(role, ttl string) error {
		return run(t.Context(), []string{"token", "--subject", "op", "--role", role, "--ttl", ttl, "--data-dir", dir},
			env(nil), io.Discard, io.Discard)
	}
	for _, tc := range []struct{ role, ttl string }{{"admin", "720h"}, {"admin", "24h1s"}, {"client", "8760h"}, {"kiosk", "2161h"}} {
		if err := mint(tc.role, tc.ttl); err == nil || !strings.Contains(err.Error(), "--ttl") {
			t.Errorf("%s for %s: err = %v", tc.ttl, tc.role, err)
		}
	}
	for _, tc := range []struct{ role, ttl string }{{"admin", "1h"}, {"admin", "24h"}, {"kiosk", "2160h"}} {
		if err := mint(tc.role, tc.ttl); err != nil {
			t.Errorf("%s for %s: %v", tc.ttl, tc.role, err)
		}
	}
	c, err := parseConfig("serve", []string{"--kiosk-ttl", auth.MaxKioskTokenLifetime.String()}, env(nil), io.Discard)
	if err != nil || c.KioskTTL != auth.MaxKioskTokenLifetime {
		t.Fatalf("the longest kiosk lifetime nodes accept is refused by configuration: %v", err)
	}
	if _, err := parseConfig("serve", []string{"--kiosk-ttl", (auth.MaxKioskTokenLifetime + time.Hour).String()}, env(nil), io.Discard); err == nil {
		t.Fatal("configuration allows kiosk tokens no node accepts")
	}
}
