package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestPingAndStop(t *testing.T) {
	s, err := Start(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a running system: %v", err)
	}
	s.Stop()
	s.Stop() // twice is harmless
	if err := s.Ping(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("Ping after Stop = %v, want ErrStopped", err)
	}
}

func TestPingHonoursExpiredContext(t *testing.T) {
	s, err := Start(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with an expired deadline succeeded")
	}
}
