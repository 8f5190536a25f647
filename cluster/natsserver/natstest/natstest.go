// Package natstest starts embedded NATS servers for other packages' tests.
package natstest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/spa-engine/spa/cluster/natsserver"
)

// Run starts a server on 127.0.0.1 with a random port and JetStream in a
// t.TempDir(), and stops it when the test ends.
func Run(t testing.TB) *natsserver.Server {
	t.Helper()
	return RunWith(t, natsserver.Config{})
}

// RunWith is Run with cfg: an empty Host becomes 127.0.0.1, Port 0 becomes
// -1 (random; call natsserver.Start directly for an in-process-only
// server) and an empty StoreDir a t.TempDir(). Reuse a StoreDir (and the
// ClientURL's port) to "restart" a server.
func RunWith(t testing.TB, cfg natsserver.Config) *natsserver.Server {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := natsserver.Start(context.Background(), cfg, logger)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}
