package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/lockbooking"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/actors/waitlist"
	"github.com/spa-engine/spa/cluster/jsmetrics"
	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/gateway"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/poolmetrics"
	"github.com/spa-engine/spa/persistence/postgres"
	"github.com/spa-engine/spa/persistence/sqlite"
)

// sqliteFile is the embedded store's file inside the data dir.
const sqliteFile = "spa.db"

// openStore selects the driver from DATABASE_URL: a postgres URL selects
// PostgreSQL/CockroachDB, none selects SQLite in the data dir.
func openStore(ctx context.Context, cfg config, opts *persistence.Options) (persistence.Store, error) {
	var o persistence.Options
	if opts != nil {
		o = *opts
	}
	o.SlowStatement = cfg.DBSlowStatement
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, o)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: open: %w", err)
		}
		return s, nil
	}
	if err := privateDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("SPA_DATA_DIR: %w", err)
	}
	s, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, sqliteFile), o)
	if err != nil {
		return nil, fmt.Errorf("open embedded SQLite: %w", err)
	}
	return s, nil
}

// node is one running server and everything it owns, in start order.
type node struct {
	log    *slog.Logger
	store  persistence.Store
	nats   *natsserver.Server
	actors *actors.System
	sched  *schedule.Directory
	// writer writes the calendar actors' batches together (group commit
	// across calendars).
	writer *batch.Writer
	// resources hosts one actor per shared resource (room, sauna).
	resources *resource.Directory
	relay     *outbox.Relay
	// catalogue follows CatalogueChanged events; followups feeds
	// AppointmentChanged events to the waitlist.
	catalogue jetstream.ConsumeContext
	followups jetstream.ConsumeContext
	app       *fiber.App
	ln        net.Listener
	// admin serves /metrics and /debug/pprof on adminLn (SPA_ADMIN_ADDR).
	admin   *fiber.App
	adminLn net.Listener
	// reg is every series the admin listener serves (the dashboards'
	// test reads its descriptions).
	reg     *prometheus.Registry
	cancel  context.CancelFunc // stops background loops
	loops   sync.WaitGroup
	timeout time.Duration
	// drain is how long shutdown keeps serving with /readyz at 503 before
	// it stops accepting (SPA_SHUTDOWN_DRAIN); draining is set from then on.
	drain    time.Duration
	draining atomic.Bool

	// baseline decides claims instead of sched when SPA_BOOKING_ENGINE is
	// lock-baseline (benchmarks only).
	baseline *lockbooking.Engine
	// cluster is set in multi-node mode (cluster.go).
	cluster *clusterNode

	// keyring seals data at rest (identity.go: sealingKeyring).
	keyring *pii.Keyring
	// identity is sign-in: session actors, OTP limiter (identity.go).
	identity *identityNode

	// shop is the inventory and cart actors (shop.go).
	shop *shopNode

	// quota hosts the quota actors: login-code limits and hoarding caps
	// (quota.go).
	quota *quota.Directory
	// payments is online payments (payments.go); providerMetrics are the
	// spa_provider_* series every provider client shares.
	payments        *paymentsNode
	providerMetrics *resilient.Metrics
	// notifications feeds events to the notify service (notifications.go).
	notifications *notificationsNode
	// bot is the WhatsApp bot (bot.go).
	bot *botNode
}

// startNode brings a node up. On failure it stops whatever already started.
func startNode(ctx context.Context, cfg config, stderr io.Writer) (n *node, err error) {
	if err := loadSecrets(&cfg); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	n = &node{log: log, timeout: cfg.ShutdownTimeout, drain: cfg.ShutdownDrain}
	defer func() {
		if err != nil {
			n.shutdown()
			n = nil
		}
	}()
	reg := prometheus.NewRegistry()
	n.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(), buildInfo())

	// The relay exists only after the store, but the store must be able to
	// wake it after a commit that wrote events.
	var relay atomic.Pointer[outbox.Relay]
	if n.keyring, err = sealingKeyring(cfg); err != nil {
		return n, err
	}
	n.store, err = openStore(ctx, cfg, &persistence.Options{AfterOutboxCommit: func(ids []string) {
		if r := relay.Load(); r != nil {
			r.Committed(ids)
		}
	},
		// Personal free text about clients (shipping addresses, reasons,
		// the reasons events carry) is sealed under per-client data keys
		// wrapped by the keyring: anonymisation destroys the client's key.
		Personal: pii.ClientKeys{Keys: n.keyring},
		// A stuck database answers 503 within this, not 504 at the HTTP
		// timeout; readiness reports it (persistence.TxWatch).
		TxDeadline: cfg.StoreDeadline,
	})
	if err != nil {
		return n, err
	}
	if ps, ok := n.store.(persistence.PoolStatser); ok {
		reg.MustRegister(poolmetrics.New(ps))
	}
	applied, err := n.store.Migrate(ctx)
	if err != nil {
		return n, fmt.Errorf("migrate: %w", err)
	}
	for _, m := range applied {
		log.Info("migration applied", "version", m.Version, "name", m.Name)
	}

	// JetStream keeps the events (and the files it writes are 0640): the
	// store dir is private, like the data dir.
	if err := privateDir(filepath.Join(cfg.DataDir, "nats")); err != nil {
		return n, fmt.Errorf("SPA_DATA_DIR: %w", err)
	}
	n.nats, err = natsserver.Start(ctx, cfg.Cluster.natsConfig(natsserver.Config{
		Host:     cfg.NATSHost,
		Port:     cfg.NATSPort,
		StoreDir: filepath.Join(cfg.DataDir, "nats"),
	}, cfg.TokenSecret), log)
	if err != nil {
		return n, fmt.Errorf("SPA_NATS_PORT: embedded NATS: %w", err)
	}
	// Without a timeout an unanswered async publish ack would wait forever.
	js, err := n.nats.JetStream(jetstream.WithPublishAsyncTimeout(10 * time.Second))
	if err != nil {
		return n, fmt.Errorf("jetstream: %w", err)
	}
	// Streams and durable consumers, read from JetStream on each scrape.
	reg.MustRegister(jsmetrics.New(js, 2*time.Second, log))

	if n.actors, err = actors.Start(log); err != nil {
		return n, err
	}
	if n.writer, err = batch.NewWriter(n.store, batch.WriterConfig{Workers: cfg.GroupCommitWriters, LaneJobs: cfg.GroupCommitLaneJobs}, reg); err != nil {
		return n, err
	}
	// Answers actors remember under clients' Idempotency-Keys are sealed
	// like profiles: they may carry personal data.
	answers := keyed.Config{TTL: cfg.IdempotencyTTL, Seal: n.keyring}
	schedMetrics, err := schedule.NewMetrics(reg)
	if err != nil {
		return n, err
	}
	n.sched, err = schedule.NewDirectory(n.actors.Root(), schedule.Deps{
		Store: n.store, Now: time.Now, Log: log, Metrics: schedMetrics, Fence: n.leaseFence(cfg), Writer: n.writer, Keys: answers,
		Config: schedule.Config{HoldTTL: cfg.HoldTTL, Horizon: cfg.BookingHorizon, MinNotice: cfg.MinNotice, Step: cfg.SlotStep,
			LapsesPerSecond: cfg.HoldLapsesPerSecond},
	}, cfg.RequestTimeout)
	if err != nil {
		return n, err
	}

	if n.shop, err = startShop(n.actors, n.store, n.writer, n.leaseFence(cfg), answers, cfg, log, reg); err != nil {
		return n, err
	}

	resourceMetrics, err := resource.NewMetrics(reg)
	if err != nil {
		return n, err
	}
	n.resources, err = resource.NewDirectory(n.actors.Root(), resource.Deps{
		Store: n.store, Now: time.Now, Log: log, Metrics: resourceMetrics, Fence: n.leaseFence(cfg), Writer: n.writer,
		Config: resource.Config{Horizon: cfg.BookingHorizon},
	}, cfg.RequestTimeout)
	if err != nil {
		return n, err
	}

	if err := n.startQuota(cfg, reg); err != nil {
		return n, err
	}

	// Alone, the directories; in a cluster, the partition routers.
	schedDoor, resourceDoor, err := n.calendarDoors(ctx, cfg, js, reg)
	if err != nil {
		return n, err
	}

	if n.relay, err = outbox.New(n.store, js, outbox.Config{Replicas: cfg.Cluster.replicas(), Shared: cfg.Cluster.enabled()}, log, reg); err != nil {
		return n, fmt.Errorf("outbox relay: %w", err)
	}
	if err := n.relay.Start(ctx); err != nil {
		return n, fmt.Errorf("outbox relay: %w", err)
	}
	relay.Store(n.relay)
	// Hours, overrides and time off change: the staff member's schedule
	// actor reloads.
	n.catalogue, err = followCatalogue(ctx, js, log, func(ev *messages.CatalogueChanged) {
		switch ev.Kind {
		case "staff":
			n.sched.Invalidate(ev.Id)
		case "resource": // a new capacity
			n.resources.Invalidate(ev.Id)
		}
	})
	if err != nil {
		return n, err
	}

	var calendars door.Door = schedDoor
	var resources *resource.Client
	// The appointment follow-up starts once payments are wired (below), so
	// no cancellation is acknowledged before its deposit can be settled.
	var handleAppointment func(context.Context, *messages.AppointmentChanged) error
	var pay *payments.Service
	if cfg.BookingEngine == engineLockBaseline {
		n.baseline, err = lockbooking.Open(ctx, cfg.DatabaseURL, lockbooking.Config{HoldTTL: cfg.HoldTTL, Horizon: cfg.BookingHorizon,
			MinNotice: cfg.MinNotice, Step: cfg.SlotStep, AfterOutboxCommit: n.relay.Notify, Keys: answers})
		if err != nil {
			return n, fmt.Errorf("SPA_BOOKING_ENGINE: %w", err)
		}
		calendars = n.baseline
		log.Warn("booking engine: lock-baseline (benchmark baseline, not for production)")
	} else {
		resources = resource.NewClient(resourceDoor)
		// Resource actors follow every change of an appointment with a
		// resource (the backstop for expiries and lost replies); freed
		// slots go to the waitlist; lapsed holds give back credits.
		rf := &resource.Follower{Store: n.store, Resources: resources}
		wl := &waitlist.Processor{Store: n.store, Calendars: schedule.NewClient(schedDoor), Now: time.Now}
		handleAppointment = func(ctx context.Context, ev *messages.AppointmentChanged) error {
			if err := rf.Handle(ctx, ev); err != nil {
				return err
			}
			if err := wl.Handle(ctx, ev); err != nil {
				return err
			}
			// A cancelled or no-show booking's paid deposit is refunded or
			// kept as a fee (nothing when payments are off).
			return pay.FollowAppointment(ctx, ev)
		}
	}

	tokens, err := auth.NewTokens(cfg.TokenSecret, cfg.TokenIssuer, time.Now)
	if err != nil {
		return n, fmt.Errorf("%s: %w", tokenSecretEnv, err)
	}
	identity, err := n.startIdentity(ctx, cfg, js, reg, tokens)
	if err != nil {
		return n, err
	}
	// One template catalog for the notifications and the admin's routes,
	// so an activation applies to this node's next message at once.
	templates, err := notify.NewCatalog(n.store, notify.CatalogOptions{Log: log})
	if err != nil {
		return n, err
	}
	if err := n.startNotifications(ctx, cfg, js, reg, n.identity.sender, templates); err != nil {
		return n, err
	}
	holdCaps, cartCaps, err := n.hoardingCaps(cfg, reg)
	if err != nil {
		return n, err
	}
	if pay, err = n.startPayments(cfg, reg, n.providerMetrics); err != nil {
		return n, err
	}
	if pay != nil {
		// Deposits paid online confirm (or release) their appointments
		// through the same calendars the gateway books on.
		pay.EnableDeposits(booking.New(booking.Deps{Store: n.store, Calendars: schedule.NewClient(calendars),
			Resources: resources, Logger: log}))
	}
	if handleAppointment != nil {
		if n.followups, err = followAppointments(ctx, js, log, handleAppointment); err != nil {
			return n, err
		}
	}
	// The WhatsApp bot books through the calendars the gateway books on.
	if err := n.startBot(ctx, cfg, js, reg, booking.Deps{Store: n.store, Calendars: schedule.NewClient(calendars),
		Resources: resources, Keys: answers, Logger: log, Now: time.Now, Caps: holdCaps}, identity); err != nil {
		return n, fmt.Errorf("bot: %w", err)
	}
	messaging, err := n.startInbox(reg)
	if err != nil {
		return n, err
	}
	n.app, err = gateway.New(gateway.Deps{
		Store:      n.store,
		Tokens:     tokens,
		Logger:     log,
		Registerer: reg,
		Calendars:  schedule.NewClient(calendars),
		Resources:  resources,
		Cluster:    n.clusterView(),
		Holders:    n.idempotencyHolders(),
		Identity:   identity,
		KioskTTL:   cfg.KioskTTL,
		TOTP:       gateway.TOTPConfig{Issuer: cfg.TOTPIssuer, Grace: cfg.TOTPGrace},
		BlindIndex: identity.Index, // the phone index of sign-in serves the blocklist too
		Sealer:     n.keyring,
		Inventory:  inventory.NewClient(n.shop.inventory),
		Carts:      cart.NewClient(n.shop.carts),
		OnRestock:  n.shop.restock,
		ShopVIP:    shop.StoredVIP(n.store, 2*time.Second, log), // the admin-managed VIP list
		HoldCaps:   holdCaps,
		CartCaps:   cartCaps,
		Payments:   pay,
		Inbox:      messaging,
		Providers:  n.providerMetrics.Health,
		Now:        time.Now,

		NotificationTemplates:   templates,
		NotificationDeadLetters: n.notifications.deadLetterAdmin(),
		Conversations:           n.desk(), // the WhatsApp bot's hand-off desk (bot.go)
		Checks: append([]gateway.Check{
			{Name: "store", Check: n.store.Ping},
			{Name: "nats", Check: func(context.Context) error { return n.nats.Ready() }},
			{Name: "actors", Check: n.actors.Ping},
			{Name: "serving", Check: n.serving},
		}, n.clusterChecks()...),
		Config: gateway.Config{
			BodyLimit:          cfg.BodyLimit,
			CORSOrigins:        cfg.CORSOrigins,
			RequestTimeout:     cfg.RequestTimeout,
			IdempotencyTTL:     cfg.IdempotencyTTL,
			IdempotencyLockTTL: cfg.IdempotencyLockTTL,
			ProxyHeader:        proxyHeader(cfg.TrustedProxies),
			TrustedProxies:     cfg.TrustedProxies,
		},
	})
	if err != nil {
		return n, err
	}

	loopCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.every(loopCtx, time.Minute, "waitlist expiry", func(ctx context.Context) error {
		return n.store.InTx(ctx, func(tx persistence.Tx) error {
			_, err := tx.WaitlistExpire(ctx, time.Now(), 1000)
			return err
		})
	})
	n.startShopOrderSweep(loopCtx)
	n.startReconciliation(loopCtx, cfg)
	if err := n.startPIIRotation(loopCtx, identity.Keyring, reg); err != nil {
		return n, err
	}
	n.every(loopCtx, time.Minute, "quota sweep", n.sweepQuotas)
	n.startBotSweep(loopCtx)
	n.every(loopCtx, time.Minute, "idempotency sweep", func(ctx context.Context) error {
		return n.store.InTx(ctx, func(tx persistence.Tx) error {
			removed, err := tx.IdempotencyDeleteExpired(ctx, time.Now(), 1000)
			if removed > 0 {
				n.log.Info("expired idempotency records removed", "count", removed)
			}
			return err
		})
	})

	n.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return n, fmt.Errorf("SPA_HTTP_ADDR: %w", err)
	}
	n.payments.listening(n.ln.Addr()) // the dev fake posts its events here
	if n.admin, err = gateway.NewAdmin(gateway.AdminDeps{Tokens: tokens, Gatherer: reg, Logger: log, API: n.app}); err != nil {
		return n, err
	}
	if n.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
		return n, fmt.Errorf("SPA_ADMIN_ADDR: %w", err)
	}
	return n, nil
}

// every runs fn each interval until ctx ends, logging its failures.
func (n *node) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) {
	n.loops.Add(1)
	go func() {
		defer n.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					n.log.Warn(what+" failed", "err", err)
				}
			}
		}
	}()
}

// serving is the "serving" readiness check: it fails from the moment the
// node begins to shut down, so load balancers stop sending to it while it
// still answers what they already sent.
func (n *node) serving(context.Context) error {
	if n.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// shutdown stops the node in dependency order: turn unready and keep
// serving for the drain period, stop accepting HTTP and drain requests in
// flight, stop actors (they finish what they accepted), flush the outbox,
// stop NATS, close the store. Safe on a half-started node.
func (n *node) shutdown() {
	n.draining.Store(true)
	if n.app != nil && n.drain > 0 {
		// A load balancer stops sending only after its next readiness probe
		// failed: until then requests keep arriving and must be answered,
		// not refused by a closed listener.
		n.log.Info("draining: /readyz answers 503, requests are still served", "for", n.drain.String())
		time.Sleep(n.drain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	step := func(what string, stop func()) {
		start := time.Now()
		stop()
		n.log.Info("shutdown step done", "step", what, "took_ms", time.Since(start).Milliseconds())
	}
	if n.app != nil {
		step("http drained", func() {
			if err := n.app.ShutdownWithContext(ctx); err != nil {
				n.log.Warn("HTTP drain incomplete", "err", err)
			}
		})
	} else if n.ln != nil {
		n.ln.Close()
	}
	// The admin listener goes after the API has drained, so the last
	// scrape sees the drain.
	if n.admin != nil {
		if err := n.admin.ShutdownWithContext(ctx); err != nil {
			n.log.Warn("admin drain incomplete", "err", err)
		}
	}
	if n.adminLn != nil {
		n.adminLn.Close() // not served when the node never got to serve
	}
	for _, cc := range []jetstream.ConsumeContext{n.catalogue, n.followups} {
		if cc != nil {
			cc.Stop()
		}
	}
	n.notifications.stop() // waits for a send in flight to be recorded
	n.bot.stop()           // what it did not answer stays in its stream
	if n.cluster != nil {
		step("cluster left", func() { n.cluster.stop(ctx) })
	}
	if n.actors != nil {
		step("actors stopped", func() {
			if n.sched != nil {
				n.sched.Stop(n.timeout) // each calendar finishes its writes
			}
			if n.resources != nil {
				n.resources.Stop(n.timeout)
			}
			n.shop.stop(n.timeout) // carts release through the inventory, which finishes its writes
			n.identity.stop(n.timeout)
			if n.quota != nil {
				n.quota.Stop(n.timeout)
			}
			n.actors.Stop()
		})
	}
	n.writer.Close() // after the actors, which wait for their writes
	if n.baseline != nil {
		n.baseline.Close()
	}
	if n.cancel != nil {
		step("background loops stopped", func() { n.cancel(); n.loops.Wait() })
	}
	n.payments.stop()
	if n.relay != nil {
		step("outbox flushed", n.relay.Stop)
	}
	if n.nats != nil {
		step("nats stopped", n.nats.Stop)
	}
	if n.store != nil {
		step("store closed", func() {
			if err := n.store.Close(); err != nil {
				n.log.Warn("store close", "err", err)
			}
		})
	}
}

// serve runs a node until ctx is cancelled (SIGINT/SIGTERM) or the HTTP
// server fails, then shuts it down in order.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	n, err := startNode(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	served := make(chan error, 2)
	go func() { served <- n.app.Listener(n.ln) }()
	go func() { served <- n.admin.Listener(n.adminLn) }()
	n.log.Info("node started", "http", n.ln.Addr().String(), "admin", n.adminLn.Addr().String(), "nats", n.nats.ClientURL(), "store", string(n.store.Dialect()), "mode", cfg.Mode)
	fmt.Fprintf(stdout, "listening on http://%s\n", n.ln.Addr())
	fmt.Fprintf(stdout, "admin on http://%s\n", n.adminLn.Addr())
	select {
	case <-ctx.Done():
		n.log.Info("shutting down", "cause", context.Cause(ctx))
		n.shutdown()
		return nil
	case err := <-served:
		n.shutdown()
		if err == nil || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("http: %w", err)
	}
}

// followCatalogue calls fn for every CatalogueChanged event published from
// now on. Missing one is harmless: schedule actors also reload when they
// passivate.
func followCatalogue(ctx context.Context, js jetstream.JetStream, log *slog.Logger, fn func(*messages.CatalogueChanged)) (jetstream.ConsumeContext, error) {
	cons, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.OrderedConsumer(ctx, outbox.StreamName, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{messages.Subject(&messages.CatalogueChanged{})},
			DeliverPolicy:  jetstream.DeliverNewPolicy,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("follow catalogue: %w", err)
	}
	return cons.Consume(func(msg jetstream.Msg) {
		var ev messages.Event
		var cc messages.CatalogueChanged
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil || ev.Payload.UnmarshalTo(&cc) != nil {
			log.Warn("undecodable catalogue event", "subject", msg.Subject())
			return
		}
		fn(&cc)
	})
}

// followupsConsumer is the durable consumer of appointment changes: what
// it has not acknowledged is redelivered after a restart, so no freed slot
// is missed.
const followupsConsumer = "appointment-followups"

// followAppointments hands AppointmentChanged events to handle one at a
// time (MaxAckPending 1: two offers never race for one slot on a node),
// acknowledging each once handled and redelivering it with backoff when
// handling fails. An undecodable event is terminated and logged.
func followAppointments(ctx context.Context, js jetstream.JetStream, log *slog.Logger, handle func(context.Context, *messages.AppointmentChanged) error) (jetstream.ConsumeContext, error) {
	backoff := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	cons, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, outbox.StreamName, jetstream.ConsumerConfig{
			Durable:       followupsConsumer,
			FilterSubject: messages.Subject(&messages.AppointmentChanged{}),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       time.Minute,
			MaxAckPending: 1,
			MaxDeliver:    len(backoff) + 1,
			// No BackOff: the delays are NakWithDelay's, from the table
			// (with a BackOff, nats-server counts a delayed nak's wait from
			// BackOff[n-1], which stretched these retries; see
			// cmd/spa/notifications.go).
			DeliverPolicy: jetstream.DeliverNewPolicy,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("follow appointments: %w", err)
	}
	return cons.Consume(func(msg jetstream.Msg) {
		var ev messages.Event
		var ac messages.AppointmentChanged
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil || ev.Payload.UnmarshalTo(&ac) != nil {
			log.Error("undecodable appointment event dropped", "subject", msg.Subject())
			_ = msg.Term()
			return
		}
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := handle(hctx, &ac); err != nil {
			log.Warn("appointment follow-up failed; will retry", "event", ev.Id, "err", err)
			delay := backoff[0]
			if md, err := msg.Metadata(); err == nil {
				delay = backoff[min(int(md.NumDelivered), len(backoff))-1]
			}
			_ = msg.NakWithDelay(delay)
			return
		}
		_ = msg.Ack()
	})
}

// buildInfo is spa_build_info: 1, labelled with what the binary is, so
// dashboards and alerts can tell versions apart during a rollout.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "spa_build_info",
		Help:        "The running binary: version, VCS revision and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision(), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
