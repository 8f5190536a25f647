package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence/pgtest"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listeningURL extracts the base URL from serve's "listening on" line.
func listeningURL(out string) string { return urlAfter(out, "listening on ") }

// adminListenURL extracts the admin listener's URL from serve's "admin
// on" line (printed right after "listening on").
func adminListenURL(out string) string { return urlAfter(out, "admin on ") }

func urlAfter(out, prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// admins maps the base URL of a node serveInProcess started to its admin
// listener's URL, for metricsOf.
var admins sync.Map

// metricsOf scrapes /metrics from the admin listener of the node
// serveInProcess started at base (the public port serves none).
func metricsOf(t testing.TB, base string) (int, string) {
	t.Helper()
	admin, ok := admins.Load(base)
	if !ok {
		t.Fatalf("no admin listener known for %s", base)
	}
	return httpGet(t, admin.(string)+"/metrics")
}

// serveInProcess runs `spa serve` through run() on port 0 with a temp data
// dir, returns its base URL, a function that stops it (as SIGTERM would)
// and returns run's error, and its log.
// withoutHoardingCaps turns the hold and cart caps off in env, for the
// tests that generate load: many holds from one client and from one
// address (loopback) by design. TestHoardingCapsEndToEnd covers the caps.
func withoutHoardingCaps(env map[string]string) map[string]string {
	for _, k := range []string{"SPA_HOLDS_PER_CLIENT", "SPA_HOLDS_PER_IP", "SPA_CART_UNITS_PER_CART", "SPA_CART_UNITS_PER_IP", "SPA_CART_VARIANT_SHARE"} {
		env[k] = "0"
	}
	return env
}

func serveInProcess(t testing.TB, env map[string]string, dataDir string) (string, func() error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	natsPort := "-1" // a random port; SPA_NATS_PORT in env for a test that connects
	if p := env["SPA_NATS_PORT"]; p != "" {
		natsPort = p
	}
	args := []string{"serve", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--nats-port", natsPort, "--data-dir", dataDir}
	done := make(chan struct{}) // closed when run has returned result
	var result error
	go func() {
		defer close(done)
		result = run(ctx, args, func(k string) string { return env[k] }, stdout, stderr)
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case <-done:
				runErr = result
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("serve did not stop\n%s", stderr.String())
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	var base string
	testwait.Until(t, 30*time.Second, "serve to start", func() error {
		select {
		case <-done:
			t.Fatalf("serve exited early: %v\n%s", result, stderr.String())
		default:
		}
		base = listeningURL(stdout.String())
		admin := adminListenURL(stdout.String())
		if base == "" || admin == "" {
			return fmt.Errorf("not listening yet\n%s", stderr.String())
		}
		admins.Store(base, admin)
		return nil
	})
	return base, stop, stderr
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pgSchemaURL gives the test its own schema in TEST_DATABASE_URL's database
// (dropped afterwards).
func pgSchemaURL(t *testing.T) string { return pgtest.SchemaURL(t, "e2e") }

// drivers lists the stores every end-to-end test runs against: SQLite
// always, PostgreSQL when TEST_DATABASE_URL is set.
func drivers(t *testing.T) map[string]func(t *testing.T) map[string]string {
	d := map[string]func(t *testing.T) map[string]string{
		"sqlite": func(*testing.T) map[string]string { return map[string]string{} },
	}
	if pgtest.Available(t) {
		d["postgres"] = func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_URL": pgSchemaURL(t)}
		}
	}
	return d
}

func TestServeEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			base, stop, logs := serveInProcess(t, envFor(t), t.TempDir())

			if code, body := httpGet(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
				t.Fatalf("/healthz = %d %s", code, body)
			}
			var ready struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			testwait.For(t, 10*time.Second, "/readyz 200", func() bool {
				code, body := httpGet(t, base+"/readyz")
				return code == 200 && json.Unmarshal([]byte(body), &ready) == nil
			})
			for _, dep := range []string{"store", "nats", "actors"} {
				if ready.Checks[dep] != "ok" {
					t.Errorf("readyz check %s = %q", dep, ready.Checks[dep])
				}
			}
			if code, _ := httpGet(t, base+"/metrics"); code != 404 {
				t.Fatalf("the public port serves /metrics: %d", code)
			}
			code, body := metricsOf(t, base)
			if code != 200 || !strings.Contains(body, "spa_http_requests_total") || !strings.Contains(body, "go_goroutines") ||
				!strings.Contains(body, "spa_db_pool_max_connections") || !strings.Contains(body, "spa_build_info{") ||
				!strings.Contains(body, `spa_jetstream_stream_messages{stream="SPA_EVENTS"}`) || !strings.Contains(body, "spa_outbox_oldest_pending_seconds") {
				t.Fatalf("/metrics = %d, missing expected series:\n%.500s", code, body)
			}
			problems, err := promlint.New(strings.NewReader(body)).Lint()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				if strings.HasPrefix(p.Metric, "spa_") {
					t.Errorf("metric %s: %s", p.Metric, p.Text)
				}
			}
			if code, body := httpGet(t, base+"/no/such/route"); code != 404 || !strings.Contains(body, `"not_found"`) {
				t.Fatalf("unknown route = %d %s", code, body)
			}
			if err := stop(); err != nil {
				t.Fatalf("graceful stop: %v", err)
			}
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Fatal("server still answers after shutdown")
			}
			want := []string{"http drained", "actors stopped", "background loops stopped", "outbox flushed", "nats stopped", "store closed"}
			if got := shutdownSteps(t, logs.String()); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("shutdown order %q, want %q", got, want)
			}
		})
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var stderr syncBuffer
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir()},
		func(k string) string { return map[string]string{"SPA_MODE": "production"}[k] }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "SPA_TOKEN_SECRET") {
		t.Fatalf("production without a secret: err = %v", err)
	}
	err = run(context.Background(), []string{"serve", "--data-dir", t.TempDir()},
		func(k string) string {
			return map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}[k]
		}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("unreachable database: err = %v", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, os.Getenv, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "spa ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, os.Getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"migrate", "--data-dir", dir}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied 0001_") {
		t.Fatalf("first migrate printed %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "applied 0001_") || !strings.Contains(out.String(), "0 migration(s) applied") {
		t.Fatalf("second migrate printed %q", out.String())
	}
}

// shutdownSteps lists the "shutdown step done" log lines in order.
func shutdownSteps(t *testing.T, logs string) []string {
	t.Helper()
	var steps []string
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Step string `json:"step"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "shutdown step done" {
			steps = append(steps, rec.Step)
		}
	}
	return steps
}
