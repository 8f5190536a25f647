package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
)

// The webhooks scenario (issue 16): the generator is the node's Wompi. It
// serves a wompifake on WompiAddr, the address the node's SPA_WOMPI_BASE_URL
// names, with the node's own SPA_WOMPI_* keys, so the events it signs are
// ones the node must accept and the transactions they name are ones the
// node can confirm. It seeds shop orders, asks the node for each order's
// payment, pays each once at its fake (never posting the events itself),
// then posts every event in one burst, with exact duplicates and stale
// PENDING updates shuffled in, and checks in the database that each
// intent was approved exactly once.

// ScenarioWebhooks is the payments burst.
const ScenarioWebhooks = "webhooks"

// eventsPerIntent: each approval logs its APPROVED event and the stale
// PENDING update the fake sends after it (Delivery.StalePending).
const eventsPerIntent = 2

// WompiKeysFromEnv reads the merchant keys the node was started with
// (SPA_WOMPI_*) and the address its SPA_WOMPI_BASE_URL points at, where
// the webhooks scenario serves its fake Wompi.
func WompiKeysFromEnv(getenv func(string) string) (wompifake.Keys, string, error) {
	cfg, ok, err := wompi.FromEnv(getenv)
	if err != nil {
		return wompifake.Keys{}, "", err
	}
	if !ok {
		return wompifake.Keys{}, "", fmt.Errorf("the webhooks scenario needs the node's SPA_WOMPI_* keys in its environment (%s and the others)", wompi.EnvEventsSecret)
	}
	addr := ""
	if rest, found := strings.CutPrefix(cfg.BaseURL, "http://"); found {
		addr, _, _ = strings.Cut(rest, "/")
	}
	return wompifake.Keys{Public: cfg.PublicKey, Private: cfg.PrivateKey, Integrity: cfg.IntegritySecret, Events: cfg.EventsSecret}, addr, nil
}

// webhooksPlan splits Events into the intents to seed and the duplicates.
func webhooksPlan(events int, duplicateShare float64) (intents, duplicates int) {
	unique := events - int(float64(events)*duplicateShare+0.5)
	intents = max(1, (unique+eventsPerIntent-1)/eventsPerIntent)
	return intents, max(0, events-intents*eventsPerIntent)
}

// signedEvent is one event of the burst: its body and checksum header.
type signedEvent struct {
	body     []byte
	checksum string
}

// runWebhooks is Run for ScenarioWebhooks.
func runWebhooks(ctx context.Context, o Options, c *client) (*Result, error) {
	if o.Mint == nil {
		return nil, errors.New("loadgen: webhooks: client tokens are minted with the node's key (SPA_TOKEN_SECRET or --data-dir), not --admin-token")
	}
	if o.WompiAddr == "" {
		return nil, errors.New("loadgen: webhooks: no address for the fake Wompi: SPA_WOMPI_BASE_URL must be http://host:port/v1, as given to the node")
	}
	ln, err := net.Listen("tcp", o.WompiAddr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: webhooks: the node's Wompi: %w", err)
	}
	fake := wompifake.Serve(ln, o.WompiKeys)
	defer fake.Close()
	// No webhook is set, so the fake posts nothing: the burst does. Each
	// approval also logs an older PENDING update, the out-of-order kind.
	fake.DefaultDelivery(wompifake.Delivery{StalePending: true})

	runID := newRunID()
	intents, dups := webhooksPlan(o.Events, o.DuplicateShare)
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, o.Name+": "+format+"\n", args...)
		}
	}
	say("seeding %d paid orders", intents)
	if err := seedPayments(ctx, c, o, fake, runID, intents); err != nil {
		return nil, fmt.Errorf("loadgen: seed: %w", err)
	}
	var unique []signedEvent
	stale := 0
	for _, e := range fake.Events() {
		unique = append(unique, signedEvent{body: e.Body, checksum: e.Checksum})
		if e.Status == string(wompi.StatusPending) {
			stale++
		}
	}
	if len(unique) != intents*eventsPerIntent {
		return nil, fmt.Errorf("loadgen: webhooks: the fake logged %d events for %d intents, want %d", len(unique), intents, intents*eventsPerIntent)
	}
	rng := mrand.New(mrand.NewPCG(o.Seed, 0))
	burst := append([]signedEvent(nil), unique...)
	for range dups {
		burst = append(burst, unique[rng.IntN(len(unique))])
	}
	// Shuffled, a duplicate may come before its original or race it, and
	// a stale PENDING may come before or after its approval.
	rng.Shuffle(len(burst), func(i, j int) { burst[i], burst[j] = burst[j], burst[i] })

	say("posting %d events (%d duplicates) with %d workers", len(burst), dups, o.Workers)
	res, applied := fireBurst(ctx, c, o, burst)
	res.RunID, res.Name, res.Label, res.Scenario, res.Mode = runID, o.Name, o.Label, o.Scenario, ModeClosed
	res.Workers, res.Params = o.Workers, o.Params
	p := &Payments{Intents: intents, Events: len(burst), Duplicates: dups, OutOfOrder: stale, Applied: applied}
	if res.Elapsed > 0 {
		p.AppliesPerSec, p.EventsPerSec = float64(applied)/res.Elapsed, float64(len(burst))/res.Elapsed
	}
	if w := res.Ops[OpWebhook]; w != nil {
		p.NotOK = w.Count
		for out, n := range w.Outcomes {
			if strings.HasPrefix(out, "200") {
				p.NotOK -= n
			}
		}
	}
	res.Payments = p
	checkWebhooks(ctx, o, runID, res)
	if !res.Correct.OK {
		return res, ErrViolation
	}
	return res, nil
}

// seedPayments creates a product with stock for n orders, then for each
// of n clients a cart, its checkout and the order's payment, and pays the
// payment's checkout link once at the fake, approved.
func seedPayments(ctx context.Context, c *client, o Options, fake *wompifake.Server, runID string, n int) error {
	product, variant := runID+"-prod", runID+"-var"
	if _, err := c.must(ctx, http.StatusOK, http.MethodPut, "/v1/admin/shop/products/"+product, o.AdminToken,
		map[string]any{"name": "Load test " + runID, "active": true, "version": 0}); err != nil {
		return err
	}
	if _, err := c.must(ctx, http.StatusOK, http.MethodPut, "/v1/admin/shop/variants/"+variant, o.AdminToken,
		map[string]any{"product_id": product, "sku": strings.ToUpper(runID), "price_minor": 5000000, "tax_rate_bp": 1900,
			"active": true, "version": 0}); err != nil {
		return err
	}
	if _, err := c.mustKeyed(ctx, http.StatusCreated, http.MethodPost, "/v1/admin/shop/variants/"+variant+"/stock-movements",
		o.AdminToken, map[string]any{"kind": "receipt", "qty": n, "reason": "loadgen " + runID}, runID+"-stock"); err != nil {
		return err
	}
	clients := make([]string, n)
	for i := range clients {
		clients[i] = fmt.Sprintf("%s-c%05d", runID, i)
	}
	deadline := time.Now().Add(30 * time.Second)
	return parallel(ctx, clients, seedParallelism, func(id string) error {
		tok, err := o.Mint(id, "client")
		if err != nil {
			return err
		}
		cart, err := c.must(ctx, http.StatusCreated, http.MethodPost, "/v1/carts", tok, nil)
		if err != nil {
			return err
		}
		cartID, _ := cart["id"].(string)
		// The catalogue is cached at the edge: the first lines may meet a
		// variant not visible yet.
		for {
			_, err = c.must(ctx, http.StatusOK, http.MethodPut, "/v1/carts/"+cartID+"/lines/"+variant, tok, map[string]any{"qty": 1})
			if err == nil {
				break
			}
			if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
				return err
			}
		}
		ord, err := c.mustKeyed(ctx, http.StatusCreated, http.MethodPost, "/v1/carts/"+cartID+"/checkout", tok,
			map[string]any{"fulfilment": "pickup"}, id+"-checkout")
		if err != nil {
			return err
		}
		orderID, _ := ord["id"].(string)
		pay, err := c.mustKeyed(ctx, http.StatusCreated, http.MethodPost, "/v1/shop/orders/"+orderID+"/payments", tok, nil, id+"-pay")
		if err != nil {
			return err
		}
		link, _ := pay["checkout_url"].(string)
		if _, err := fake.PayCheckout(link, wompifake.Approve); err != nil {
			return fmt.Errorf("paying order %s at the fake Wompi: %w", orderID, err)
		}
		return nil
	})
}

// fireBurst posts every event of burst once, as fast as o.Workers
// clients allow, and returns the result with the answers' latencies and
// how many were applied.
func fireBurst(ctx context.Context, c *client, o Options, burst []signedEvent) (*Result, int64) {
	var next, applied atomic.Int64
	workers := make([]*stats, o.Workers)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		st := newStats()
		workers[w] = st
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(burst)) || ctx.Err() != nil {
					return
				}
				start := time.Now()
				r := c.postEvent(ctx, burst[i])
				out := r.outcome()
				if r.status == http.StatusOK {
					var b struct {
						Outcome string `json:"outcome"`
					}
					_ = json.Unmarshal(r.raw, &b)
					out = "200 " + b.Outcome
					if b.Outcome == "applied" {
						applied.Add(1)
					}
				}
				st.record(OpWebhook, out, time.Since(start))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	all := newStats()
	for _, st := range workers {
		all.merge(st)
	}
	res := &Result{Started: t0.UTC(), Elapsed: elapsed.Seconds(), Ops: all.ops(elapsed)}
	for _, op := range res.Ops {
		res.Operations += op.Count
	}
	res.Achieved = float64(res.Operations) / elapsed.Seconds()
	return res, applied.Load()
}

// checkWebhooks fills res.Correct: every answer 200, no more applies
// than intents, and the database's count of approvals per intent.
func checkWebhooks(ctx context.Context, o Options, runID string, res *Result) {
	v, p := &res.Correct, res.Payments
	v.Violations = []string{}
	if p.NotOK > 0 {
		v.Violations = append(v.Violations, fmt.Sprintf("webhook: %d of %d answers were not 200 (%s)", p.NotOK, p.Events,
			outcomeList(res.Ops[OpWebhook].Outcomes)))
	}
	if p.Applied > int64(p.Intents) {
		v.Violations = append(v.Violations, fmt.Sprintf("webhook: %d events answered applied for %d intents", p.Applied, p.Intents))
	}
	if o.DatabaseURL == "" && o.SQLitePath == "" {
		v.Violations = append(v.Violations, "payments check: no database given (--database-url or --data-dir)")
	} else {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		rows, err := readPaymentIntents(cctx, o.DatabaseURL, o.SQLitePath, runID+"-")
		cancel()
		if err != nil {
			v.Violations = append(v.Violations, err.Error())
		} else {
			var more []string
			p.Check, more = judgePayments(rows, p.Intents)
			v.Violations = append(v.Violations, more...)
		}
	}
	v.OK = len(v.Violations) == 0
}

// postEvent posts one signed event to the node's webhook, as Wompi does.
func (c *client) postEvent(ctx context.Context, e signedEvent) response {
	return c.exchange(ctx, func(req *fasthttp.Request) {
		req.SetRequestURI(c.base + "/v1/webhooks/wompi")
		req.Header.SetMethod(http.MethodPost)
		req.Header.SetContentType("application/json")
		req.Header.Set(wompi.ChecksumHeader, e.checksum)
		req.SetBodyRaw(e.body)
	})
}

// mustKeyed sends a request with an Idempotency-Key that has to answer
// want.
func (c *client) mustKeyed(ctx context.Context, want int, method, path, token string, body any, key string) (map[string]any, error) {
	r := c.do(ctx, method, path, token, body, key)
	if r.err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, r.err)
	}
	if r.status != want {
		return nil, fmt.Errorf("%s %s = %d %v, want %d", method, path, r.status, r.body(), want)
	}
	return r.body(), nil
}
