package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// TestHealthcheckAgainstANode: `spa healthcheck` passes once a real node
// is ready, and fails once it has stopped.
func TestHealthcheckAgainstANode(t *testing.T) {
	base, stop, _ := serveInProcess(t, map[string]string{}, t.TempDir())
	addr := strings.TrimPrefix(base, "http://")
	testwait.For(t, 10*time.Second, "healthcheck to pass", func() bool {
		return run(t.Context(), []string{"healthcheck", "--addr", addr}, env(nil), io.Discard, io.Discard) == nil
	})
	var out bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", "--live"}, env(map[string]string{"SPA_HTTP_ADDR": addr}), &out, io.Discard); err != nil {
		t.Fatalf("healthcheck --live with SPA_HTTP_ADDR: %v", err)
	}
	if !strings.Contains(out.String(), "/healthz: 200") {
		t.Fatalf("output %q does not name /healthz", out.String())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"healthcheck", "--addr", addr, "--timeout", "2s"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("healthcheck passed against a stopped node")
	}
}

// TestHealthcheckNotReady: a 503 from /readyz fails the check and shows
// the body (docker inspect keeps it); --live asks /healthz instead.
func TestHealthcheckNotReady(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"checks":{"store":"timeout"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	err := run(t.Context(), []string{"healthcheck", "--addr", addr}, env(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "store") {
		t.Fatalf("not ready: err = %v, want the 503 and its body", err)
	}
	if err := run(t.Context(), []string{"healthcheck", "--addr", addr, "--live"}, env(nil), io.Discard, io.Discard); err != nil {
		t.Fatalf("--live: %v", err)
	}
}

func TestHealthcheckAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr string
		live bool
		want string
	}{
		{":8080", false, "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8080", true, "http://127.0.0.1:8080/healthz"},
		{"[::]:8080", false, "http://[::1]:8080/readyz"},
		{"10.0.0.7:80", false, "http://10.0.0.7:80/readyz"},
	} {
		got, err := probeURL(tc.addr, tc.live)
		if err != nil || got != tc.want {
			t.Errorf("probeURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	for _, bad := range []string{"8080", "127.0.0.1:0", "host:port"} {
		if _, err := probeURL(bad, false); err == nil {
			t.Errorf("probeURL(%q) accepted", bad)
		}
	}
}

func TestHealthcheckHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", "-h"}, env(nil), &stdout, io.Discard); err != nil {
		t.Fatalf("healthcheck -h: %v", err)
	}
	if !strings.Contains(stdout.String(), "-live") {
		t.Fatalf("healthcheck -h printed %q", stdout.String())
	}
}
