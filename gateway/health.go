package gateway

import (
	"context"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/gateway/reqctx"
)

// healthz is liveness: the process serves HTTP. It checks nothing else, so
// a database outage never gets the pod restarted.
func (s *server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// maxCheckError caps the error text /readyz shows: enough to point at the
// failing dependency, not enough to dump internals.
const maxCheckError = 120

// readyz is readiness: every Check passes within ReadyTimeout. Checks run
// concurrently so one slow dependency costs the timeout once, not N times.
// Anonymous callers (probes, load balancers) get the status and each
// component's ok or error; an admin token also gets the error text.
func (s *server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.deps.Config.ReadyTimeout)
	defer cancel()
	results := make(map[string]string, len(s.deps.Checks))
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		ready = true
	)
	for _, chk := range s.deps.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := runCheck(ctx, chk)
			mu.Lock()
			defer mu.Unlock()
			results[chk.Name] = res
			ready = ready && res == "ok"
		}()
	}
	wg.Wait()
	if p, ok := reqctx.Principal(c); !ok || p.Role != auth.RoleAdmin {
		// The error text names internals (the database's user, name, host
		// and port; NATS servers): anyone may probe readiness, only an
		// admin token reads why a component failed.
		for name, res := range results {
			if res != "ok" {
				results[name] = "error"
			}
		}
	}
	body := fiber.Map{"status": "ready", "checks": results}
	if s.deps.Providers != nil {
		providers, degraded := providerHealth(s.deps.Providers())
		body["providers"], body["degraded"] = providers, degraded
	}
	if !ready {
		body["status"] = "unready"
		return c.Status(fiber.StatusServiceUnavailable).JSON(body)
	}
	return c.JSON(body)
}

// providerHealth is the providers' part of /readyz: each breaker's state
// and last success, and whether any breaker is not closed (degraded).
// It never makes the node unready: the store, NATS and the actors do.
func providerHealth(hs []resilient.Health) (map[string]fiber.Map, bool) {
	out := make(map[string]fiber.Map, len(hs))
	degraded := false
	for _, h := range hs {
		p := fiber.Map{"state": h.State}
		if !h.LastSuccess.IsZero() {
			p["last_success"] = h.LastSuccess
		}
		out[h.Provider] = p
		degraded = degraded || h.State != "closed"
	}
	return out, degraded
}

// runCheck runs one check, giving up at ctx's deadline even if the check
// ignores ctx (its goroutine then finishes on its own).
func runCheck(ctx context.Context, chk Check) string {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errPanicked
			}
		}()
		done <- chk.Check(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return "ok"
	}
	msg := "error: " + err.Error()
	if len(msg) > maxCheckError {
		msg = strings.ToValidUTF8(msg[:maxCheckError], "") + "…"
	}
	return msg
}

type panicError struct{}

func (panicError) Error() string { return "check panicked" }

var errPanicked error = panicError{}
