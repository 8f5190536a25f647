package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// TestShutdownDrainTurnsUnreadyFirst: on SIGTERM a node with a drain
// period answers /readyz with 503 ("serving": error) while it still
// answers other requests, so a load balancer takes it out before its
// listener closes; then it stops as usual.
func TestShutdownDrainTurnsUnreadyFirst(t *testing.T) {
	base, stop, logs := serveInProcess(t, map[string]string{"SPA_SHUTDOWN_DRAIN": "3s"}, t.TempDir())
	testwait.For(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == 200
	})
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	sawUnready := false
	for !sawUnready {
		select {
		case err := <-stopped:
			t.Fatalf("stopped (%v) without /readyz ever answering 503 while serving\n%s", err, logs.String())
		default:
		}
		res, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz refused before the drain ended: %v", err)
		}
		_ = json.NewDecoder(res.Body).Decode(&ready)
		res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable {
			if ready.Checks["serving"] != "error" || ready.Checks["store"] != "ok" {
				t.Fatalf("unready while draining: %+v, want only serving failing", ready)
			}
			sawUnready = true
		}
	}
	// Unready, yet still serving.
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz while draining = %d %s", code, body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
	if !strings.Contains(logs.String(), "draining") {
		t.Fatalf("no drain logged:\n%s", logs.String())
	}
}
