package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service/payments"
)

// Online payments (docs/payments.md): the Wompi client from SPA_WOMPI_*,
// or in dev mode without keys a fake Wompi on a loopback port whose
// checkout page approves or declines and posts its signed events to this
// node's own webhook; and the reconciliation loop.

// Payment settings.
const (
	paymentsAuto = "auto"
	paymentsOn   = "true"
	paymentsOff  = "false"
)

// paymentsConfig is the payments part of config.
type paymentsConfig struct {
	// Enabled: payments are served. In production it needs every
	// SPA_WOMPI_* key; in dev mode a missing set of keys starts the fake.
	Enabled bool
	// Wompi is the client's configuration; Fake is set in dev mode
	// without keys.
	Wompi wompi.Config
	Fake  bool
	// RedirectURL is where Wompi's checkout sends the payer back.
	RedirectURL string
	// ReconcileInterval is how often reconciliation polls Wompi.
	ReconcileInterval time.Duration
}

// paymentSettings are the payment rows of the settings table. The mode is
// parsed before them (settings apply in order).
var paymentSettings = []setting{
	{"payments-redirect-url", "SPA_PAYMENTS_REDIRECT_URL", "", "where Wompi's checkout sends the payer back (absolute http(s) URL; empty: Wompi's own result page)", func(c *config, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("must be an absolute http(s) URL")
		}
		c.Payments.RedirectURL = v
		return nil
	}},
	{"payments-reconcile-interval", "SPA_PAYMENTS_RECONCILE_INTERVAL", "1m", "how often reconciliation reads pending and recently changed payments back from Wompi (10s to 1h)", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > time.Hour {
			return fmt.Errorf("must be a duration from 10s to 1h, got %q", v)
		}
		c.Payments.ReconcileInterval = d
		return nil
	}},
	{"payments", "SPA_PAYMENTS", paymentsAuto, "online payments through Wompi: auto (dev: on, with a fake Wompi when no SPA_WOMPI_* key is set; production: on when the keys are set), true (production: every SPA_WOMPI_* key required) or false", func(c *config, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != paymentsAuto && v != paymentsOn && v != paymentsOff {
			return fmt.Errorf("must be %q, %q or %q, got %q", paymentsAuto, paymentsOn, paymentsOff, v)
		}
		getenv := c.getenv
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		wcfg, keys, err := wompi.FromEnv(getenv)
		if err != nil {
			return fmt.Errorf("payments: %w", err)
		}
		switch {
		case v == paymentsOff:
			return nil
		case keys:
			c.Payments.Enabled, c.Payments.Wompi = true, wcfg
		case c.Mode == modeDev:
			c.Payments.Enabled, c.Payments.Fake = true, true
		case v == paymentsOn:
			return fmt.Errorf("%s: required in production mode when payments are on (with the other SPA_WOMPI_* keys)", wompi.EnvPublicKey)
		}
		return nil
	}},
}

func init() { settings = append(settings, paymentSettings...) }

// paymentsNode is the node's payments: the service, the dev fake, the
// reconciliation loop.
type paymentsNode struct {
	svc  *payments.Service
	fake *wompifake.Server
	wc   *wompi.Client
}

// reconcileKey is the placement key whose partition owner runs
// reconciliation in a cluster.
const reconcileKey = "payments/reconcile"

// startPayments builds the payments service (nil when payments are off).
func (n *node) startPayments(cfg config, reg prometheus.Registerer, pm *resilient.Metrics) (*payments.Service, error) {
	if !cfg.Payments.Enabled {
		n.log.Info("online payments off (SPA_PAYMENTS)")
		return nil, nil
	}
	p := &paymentsNode{}
	wcfg := cfg.Payments.Wompi
	if cfg.Payments.Fake {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("fake Wompi: %w", err)
		}
		k := wompifake.DefaultKeys()
		p.fake = wompifake.Serve(ln, k)
		wcfg = wompi.Config{PublicKey: k.Public, PrivateKey: k.Private, IntegritySecret: k.Integrity, EventsSecret: k.Events,
			BaseURL: p.fake.BaseURL(), CheckoutURL: p.fake.CheckoutURL()}
		n.log.Warn("dev mode: payments go to a fake Wompi (no SPA_WOMPI_* keys set)", "url", p.fake.URL)
	}
	n.payments = p // before any error below, so shutdown closes the fake
	wc, err := wompi.New(wcfg, pm)
	if err != nil {
		return nil, err
	}
	p.wc = wc
	met, err := payments.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	p.svc = payments.New(payments.Deps{Store: n.store, Wompi: wc, Sealer: n.keyring, RedirectURL: cfg.Payments.RedirectURL,
		Metrics: met, Log: n.log, Now: time.Now})
	return p.svc, nil
}

// listening points the dev fake's webhook at this node's own address.
func (p *paymentsNode) listening(addr net.Addr) {
	if p == nil || p.fake == nil {
		return
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	p.fake.SetWebhook("http://" + net.JoinHostPort(host, port) + "/v1/webhooks/wompi")
}

// startReconciliation runs reconciliation every interval. In a cluster
// only the node holding the partition of reconcileKey runs it (Apply is
// idempotent, so an overlap during a hand-off is harmless).
func (n *node) startReconciliation(ctx context.Context, cfg config) {
	if n.payments == nil || n.payments.svc == nil {
		return
	}
	svc := n.payments.svc
	svc.RefreshMetrics(ctx)
	n.every(ctx, cfg.Payments.ReconcileInterval, "payment reconciliation", func(ctx context.Context) error {
		if c := n.cluster; c != nil {
			if _, ok := c.place.Holds(c.place.PartitionOf(reconcileKey)); !ok {
				return nil
			}
		}
		res, err := svc.Reconcile(ctx)
		if res.Applied > 0 || res.Expired > 0 || res.Events > 0 {
			n.log.Info("payment reconciliation", "checked", res.Checked, "applied", res.Applied, "expired", res.Expired,
				"late_events", res.Events, "failures", res.Failures)
		}
		return err
	})
}

// stop closes the dev fake and the client's idle connections.
func (p *paymentsNode) stop() {
	if p == nil {
		return
	}
	if p.wc != nil {
		p.wc.CloseIdleConnections()
	}
	if p.fake != nil {
		p.fake.Close()
	}
}
