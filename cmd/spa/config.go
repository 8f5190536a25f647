package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"

	"github.com/spa-engine/spa/actors/service/notify"
)

// Modes. Production refuses to start without its secrets; dev generates
// them and keeps them in the data dir so tokens survive a restart.
const (
	modeDev        = "dev"
	modeProduction = "production"
)

// config is everything a node needs to start, parsed and validated.
type config struct {
	// getenv is the environment parseConfig read, for packages that read
	// their own variables (the message providers).
	getenv   func(string) string
	Mode     string
	DataDir  string
	HTTPAddr string
	// AdminAddr is the private listener of /metrics, /debug/pprof and
	// the ops console (gateway.NewAdmin).
	AdminAddr   string
	DatabaseURL string // empty: embedded SQLite in DataDir
	// DBSlowStatement is the slow-statement threshold (0: off).
	DBSlowStatement    time.Duration
	NATSHost           string
	NATSPort           int
	TokenSecret        []byte // only from the environment, never a flag
	TokenIssuer        string
	CORSOrigins        []string
	BodyLimit          int
	RequestTimeout     time.Duration
	StoreDeadline      time.Duration // bounds each store transaction (persistence.Options.TxDeadline)
	IdempotencyTTL     time.Duration
	IdempotencyLockTTL time.Duration
	ShutdownTimeout    time.Duration
	LogLevel           slog.Level
	HoldTTL            time.Duration
	// HoldLapsesPerSecond bounds how many lapsed holds the node records
	// per second (schedule.Config.LapsesPerSecond).
	HoldLapsesPerSecond int
	BookingHorizon      time.Duration
	MinNotice           time.Duration
	SlotStep            time.Duration
	CartTTLAnonymous    time.Duration
	CartTTLSignedIn     time.Duration
	// Hoarding caps (0: off), counted cluster-wide by quota actors
	// (cmd/spa/quota.go, docs/deploy.md): live holds per client and per
	// IP; units reserved per anonymous cart, per IP, and the percent of a
	// variant's stock one anonymous cart or IP may reserve.
	HoldsPerClient   int
	HoldsPerIP       int
	CartUnitsPerCart int
	CartUnitsPerIP   int
	CartVariantShare int
	BookingEngine    string // engineActors or engineLockBaseline
	// GroupCommitWriters is how many transactions the node's group commit
	// across calendars runs at once (actors/batch.Writer); 0: none. One is
	// the default: concurrent SERIALIZABLE writers abort each other (in the
	// spread benchmark about 40% of the transactions were retried with two
	// writers, 70% with four), while one writer's batches simply grow.
	GroupCommitWriters int
	// GroupCommitLaneJobs starts the writer's light-load lane: a batch
	// that arrives while the transactions in flight carry at most this
	// many calendars' batches is written at once instead of after them
	// (batch.WriterConfig.LaneJobs; 0: no lane).
	GroupCommitLaneJobs int
	// KioskTTL is the default lifetime of a kiosk token and TOTPIssuer the
	// name authenticator apps show (docs/identity-2fa-kiosk.md).
	KioskTTL   time.Duration
	TOTPIssuer string
	// TOTPGrace is how long a staff-role user may go without a confirmed
	// second factor (docs/identity-2fa-kiosk.md).
	TOTPGrace time.Duration
	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed (gateway/clientip.go); empty: the peer is the client.
	TrustedProxies []string
	// ShutdownDrain is how long a stopping node answers /readyz with 503
	// while it still serves, before it stops accepting (-1, "auto", until
	// parseConfig resolves it).
	ShutdownDrain time.Duration
	// DevAllowRemote lets a dev node listen beyond this machine. Dev mode
	// writes every login code to the log, so by default it refuses any
	// listener that is not on a loopback address (checkDevListeners).
	DevAllowRemote bool
	// Cluster is the multi-node mode (cluster.go).
	Cluster clusterConfig
	// Payments is online payments through Wompi (payments.go).
	Payments paymentsConfig
	// Notifications: messages to clients are sent (notifications.go).
	Notifications bool
	// NotifyReminders are the appointment reminders' lead times (none:
	// no reminders) and NotifyBackoff the waits between retries of a
	// message (notifications.go).
	NotifyReminders []notify.Reminder
	// NotifyQuietHours is when marketing may go (SPA_NOTIFY_QUIET_HOURS).
	NotifyQuietHours quiethours.Policy
	NotifyBackoff    []time.Duration
	// NotifyAckWait is the notification consumers' AckWait
	// (SPA_NOTIFY_ACK_WAIT, notifications.go).
	NotifyAckWait time.Duration
	// NotifyStatusWindow is how long a sent message waits for a delivery
	// status before falling back (SPA_NOTIFY_STATUS_WINDOW, delivery.go).
	NotifyStatusWindow time.Duration
	// NotifyWhatsAppTemplates are the approved templates per kind for
	// outside the 24-hour window (SPA_WHATSAPP_TEMPLATES, delivery.go).
	NotifyWhatsAppTemplates map[notify.Kind]notify.WhatsAppTemplate
}

// Booking engines: the production schedule actors, or the lock-per-request
// baseline kept for benchmarks (actors/lockbooking).
const (
	engineActors       = "actors"
	engineLockBaseline = "lock-baseline"
)

// setting is one configuration value: settable by flag or environment
// variable (the flag wins), validated by set, which names neither: the
// caller prefixes the error with the source, so every message names the
// offending variable or flag.
type setting struct {
	flag, env, def, usage string
	set                   func(c *config, v string) error
}

var settings = []setting{
	{"mode", "SPA_MODE", modeDev, "dev or production", func(c *config, v string) error {
		if v != modeDev && v != modeProduction {
			return fmt.Errorf("must be %q or %q, got %q", modeDev, modeProduction, v)
		}
		c.Mode = v
		return nil
	}},
	{"dev-allow-remote", devAllowRemoteEnv, "false", "dev mode only: let the node listen on addresses other than loopback (dev mode writes login codes to the log; use production mode on any reachable host)", func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false (1 or 0), got %q", v)
		}
		c.DevAllowRemote = b
		return nil
	}},
	{"data-dir", "SPA_DATA_DIR", "data", "directory for the SQLite file, NATS storage and dev keys", func(c *config, v string) error {
		if strings.TrimSpace(v) == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = filepath.Clean(v)
		return nil
	}},
	{"http-addr", "SPA_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address (host:port, port 0 picks a free one); the default answers on this machine only: 0.0.0.0:8080 (or :8080) serves every interface", func(c *config, v string) error {
		if _, err := hostPort(v); err != nil {
			return err
		}
		c.HTTPAddr = v
		return nil
	}},
	{"admin-addr", "SPA_ADMIN_ADDR", "127.0.0.1:9090", "admin listen address: /metrics (anonymous), /debug/pprof (admin token); keep it private (loopback, or the pod address Prometheus scrapes), never behind the public load balancer", func(c *config, v string) error {
		if _, err := hostPort(v); err != nil {
			return err
		}
		c.AdminAddr = v
		return nil
	}},
	{"database-url", "DATABASE_URL", "", "postgres:// or postgresql:// URL of PostgreSQL/CockroachDB; unset: embedded SQLite", func(c *config, v string) error {
		if v == "" {
			c.DatabaseURL = ""
			return nil
		}
		u, err := url.Parse(v)
		if err != nil {
			return errors.New("not a URL") // the URL may hold a password: never echo it
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return fmt.Errorf("unsupported scheme %q: want postgres:// or postgresql://, or leave it unset for embedded SQLite", u.Scheme)
		}
		c.DatabaseURL = v
		return nil
	}},
	{"nats-host", "SPA_NATS_HOST", "127.0.0.1", "embedded NATS listen host", func(c *config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.NATSHost = v
		return nil
	}},
	{"nats-port", "SPA_NATS_PORT", "4250", "embedded NATS client port (-1: random, 0: in-process only); 4222 is usually taken by a system NATS", func(c *config, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < -1 || p > 65535 {
			return fmt.Errorf("must be a port number, -1 or 0, got %q", v)
		}
		c.NATSPort = p
		return nil
	}},
	{"token-issuer", "SPA_TOKEN_ISSUER", "spa", "issuer claim of access tokens", func(c *config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.TokenIssuer = v
		return nil
	}},
	{"cors-origins", "SPA_CORS_ORIGINS", "", "comma-separated origins allowed by CORS (empty: none)", func(c *config, v string) error {
		c.CORSOrigins = nil
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return fmt.Errorf("origin %q must look like https://host[:port] (list origins explicitly, no *)", o)
			}
			c.CORSOrigins = append(c.CORSOrigins, strings.TrimSuffix(o, "/"))
		}
		return nil
	}},
	{"body-limit", "SPA_BODY_LIMIT", "1048576", "largest request body in bytes", intIn(1024, 64<<20, func(c *config, n int) { c.BodyLimit = n })},
	{"request-timeout", "SPA_REQUEST_TIMEOUT", "15s", "read and write timeout of one HTTP request (longer than SPA_STORE_DEADLINE)", durationIn(5*time.Second, 10*time.Minute, func(c *config, d time.Duration) { c.RequestTimeout = d })},
	{"store-deadline", "SPA_STORE_DEADLINE", "3s", "longest a store transaction may take (waiting for a connection or a lock included) before the request answers 503 unavailable; well under the request timeout, so a stuck database is answered in seconds", durationIn(100*time.Millisecond, 10*time.Second, func(c *config, d time.Duration) { c.StoreDeadline = d })},
	{"idempotency-ttl", "SPA_IDEMPOTENCY_TTL", "24h", "how long a stored Idempotency-Key response is replayed", durationIn(time.Minute, 30*24*time.Hour, func(c *config, d time.Duration) { c.IdempotencyTTL = d })},
	{"idempotency-lock-ttl", "SPA_IDEMPOTENCY_LOCK_TTL", "30s", "how long an in-progress key blocks a duplicate before a retry may take it over", durationIn(time.Second, time.Hour, func(c *config, d time.Duration) { c.IdempotencyLockTTL = d })},
	{"db-slow-statement", "SPA_DB_SLOW_STATEMENT", "250ms", "statements slower than this are counted by store operation (spa_db_slow_statements_total; PostgreSQL/CockroachDB); 0s: off", durationIn(0, time.Minute, func(c *config, d time.Duration) { c.DBSlowStatement = d })},
	{"shutdown-timeout", "SPA_SHUTDOWN_TIMEOUT", "20s", "how long a graceful shutdown may take", durationIn(time.Second, 10*time.Minute, func(c *config, d time.Duration) { c.ShutdownTimeout = d })},
	{"shutdown-drain", "SPA_SHUTDOWN_DRAIN", "auto", "on SIGTERM, how long /readyz answers 503 while the node still serves, before it stops accepting: time for load balancers to stop sending to it (SPA_SHUTDOWN_TIMEOUT starts after it); auto: 0s alone, 2s in a cluster", func(c *config, v string) error {
		if v == "auto" {
			c.ShutdownDrain = -1
			return nil
		}
		return durationIn(0, 5*time.Minute, func(c *config, d time.Duration) { c.ShutdownDrain = d })(c, v)
	}},
	{"hold-ttl", "SPA_HOLD_TTL", "10m", "how long an unconfirmed hold blocks its slot", durationIn(time.Minute, 24*time.Hour, func(c *config, d time.Duration) { c.HoldTTL = d })},
	{"hold-lapses-per-second", "SPA_HOLD_LAPSES_PER_SECOND", "100", "how many lapsed holds the node records per second at most (status, transition, event); a lapsed hold blocks nothing meanwhile, and a wave of them after a peak no longer holds up the claims", intIn(1, 100000, func(c *config, n int) { c.HoldLapsesPerSecond = n })},
	{"booking-horizon", "SPA_BOOKING_HORIZON", "2160h", "how far ahead clients may book (2160h = 90 days)", durationIn(24*time.Hour, 2*366*24*time.Hour, func(c *config, d time.Duration) { c.BookingHorizon = d })},
	{"min-notice", "SPA_MIN_NOTICE", "0s", "how soon before its start a slot may still be booked", durationIn(0, 30*24*time.Hour, func(c *config, d time.Duration) { c.MinNotice = d })},
	{"slot-step", "SPA_SLOT_STEP", "15m", "grid of bookable start times within working hours", durationIn(5*time.Minute, 4*time.Hour, func(c *config, d time.Duration) { c.SlotStep = d })},
	{"cart-ttl-anonymous", "SPA_CART_TTL_ANONYMOUS", "30m", "how long an anonymous cart keeps its reservations without activity", durationIn(time.Minute, 7*24*time.Hour, func(c *config, d time.Duration) { c.CartTTLAnonymous = d })},
	{"cart-ttl-signed-in", "SPA_CART_TTL_SIGNED_IN", "2h", "how long a signed-in client's cart keeps its reservations without activity", durationIn(time.Minute, 7*24*time.Hour, func(c *config, d time.Duration) { c.CartTTLSignedIn = d })},
	{"holds-per-client", "SPA_HOLDS_PER_CLIENT", "10", "most live (unconfirmed) holds one client may have at once; 0: no cap (staff are never capped)", intIn(0, 1_000_000, func(c *config, n int) { c.HoldsPerClient = n })},
	{"holds-per-ip", "SPA_HOLDS_PER_IP", "50", "most live holds clients may have from one IP address (IPv6: one /64) at once; 0: no cap", intIn(0, 1_000_000, func(c *config, n int) { c.HoldsPerIP = n })},
	{"cart-units-per-cart", "SPA_CART_UNITS_PER_CART", "20", "most units one anonymous cart may reserve; 0: no cap (signed-in carts are not capped)", intIn(0, 1_000_000, func(c *config, n int) { c.CartUnitsPerCart = n })},
	{"cart-units-per-ip", "SPA_CART_UNITS_PER_IP", "60", "most units anonymous carts may reserve from one IP address (IPv6: one /64); 0: no cap", intIn(0, 1_000_000, func(c *config, n int) { c.CartUnitsPerIP = n })},
	{"cart-variant-share", "SPA_CART_VARIANT_SHARE", "25", "most percent of a variant's units on hand one anonymous cart, or the anonymous carts of one IP, may reserve (at least 1 unit); 0: no cap", intIn(0, 100, func(c *config, n int) { c.CartVariantShare = n })},
	{"booking-engine", "SPA_BOOKING_ENGINE", engineActors, "who decides claims: actors, or lock-baseline (benchmarks only: the old lock-per-request design, PostgreSQL only)", func(c *config, v string) error {
		if v != engineActors && v != engineLockBaseline {
			return fmt.Errorf("must be %q or %q, got %q", engineActors, engineLockBaseline, v)
		}
		c.BookingEngine = v
		return nil
	}},
	{"group-commit-writers", "SPA_GROUP_COMMIT_WRITERS", "1", "transactions in flight that each write the changes of many calendars (0: each calendar writes alone)", intIn(0, 64, func(c *config, n int) { c.GroupCommitWriters = n })},
	{"group-commit-lane-jobs", "SPA_GROUP_COMMIT_LANE_JOBS", "2", "light-load lane: a calendar's batch that arrives while the group commit's transactions in flight carry at most this many batches is written at once in a second transaction instead of waiting for them (0: no lane)", intIn(0, 64, func(c *config, n int) { c.GroupCommitLaneJobs = n })},
	{"kiosk-ttl", "SPA_KIOSK_TTL", "12h", "default lifetime of a kiosk token an admin issues for a studio device", durationIn(5*time.Minute, 90*24*time.Hour, func(c *config, d time.Duration) { c.KioskTTL = d })},
	{"totp-grace", "SPA_TOTP_GRACE", "24h", "how long after promotion (or a factor reset) a staff, receptionist or admin may sign in with the login code alone, to enrol the TOTP second factor and nothing else", durationIn(5*time.Minute, 7*24*time.Hour, func(c *config, d time.Duration) { c.TOTPGrace = d })},
	{"totp-issuer", "SPA_TOTP_ISSUER", "Spa", "the name authenticator apps show for the staff second factor (no ':')", func(c *config, v string) error {
		if v == "" || len(v) > 64 || strings.ContainsAny(v, ":\x00") {
			return fmt.Errorf("must be 1 to 64 characters without ':', got %q", v)
		}
		c.TOTPIssuer = v
		return nil
	}},
	{"trusted-proxies", "SPA_TRUSTED_PROXIES", "", "comma-separated addresses or CIDR ranges of the load balancers whose X-Forwarded-For names the client (empty: the peer is the client)", func(c *config, v string) error {
		c.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if _, err := netip.ParsePrefix(p); err != nil {
				if _, err := netip.ParseAddr(p); err != nil {
					return fmt.Errorf("%q is not an IP address or CIDR range", p)
				}
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
		return nil
	}},
	{"log-level", "SPA_LOG_LEVEL", "info", "debug, info, warn or error", func(c *config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
}

// devAllowRemoteEnv names the explicit consent to a dev node reachable
// from other machines.
const devAllowRemoteEnv = "SPA_DEV_ALLOW_REMOTE"

// tokenSecretEnv is the one secret this node needs today. Secrets come only
// from the environment so they never show in a process list.
const tokenSecretEnv = "SPA_TOKEN_SECRET"

// kind names the value a setting takes, from its default: an integer, a
// duration, a bool, or a string.
func (s setting) kind() string {
	if _, err := strconv.Atoi(s.def); err == nil {
		return "int"
	}
	if _, err := time.ParseDuration(s.def); err == nil {
		return "duration"
	}
	if _, err := strconv.ParseBool(s.def); err == nil {
		return "bool"
	}
	return "string"
}

func intIn(lo, hi int, apply func(*config, int)) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer in [%d, %d] such as %d, got %q", lo, hi, lo+(hi-lo)/2, v)
		}
		apply(c, n)
		return nil
	}
}

func durationIn(lo, hi time.Duration, apply func(*config, time.Duration)) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("must be a duration in [%s, %s] such as %s, got %q", lo, hi, durationExamples(lo, hi), v)
		}
		apply(c, d)
		return nil
	}
}

// durationExamples names two readable durations inside [lo, hi], so a range
// error never suggests a value it would refuse.
func durationExamples(lo, hi time.Duration) string {
	var in []string
	for _, ex := range []string{"1s", "30s", "1m", "5m", "10m", "15m", "30m", "1h", "2h", "12h", "24h", "72h", "168h", "720h", "2160h"} {
		if d, _ := time.ParseDuration(ex); d >= lo && d <= hi {
			in = append(in, ex)
		}
	}
	switch len(in) {
	case 0:
		return lo.String()
	case 1:
		return in[0]
	}
	return in[0] + " or " + in[len(in)/2]
}

func hostPort(v string) (int, error) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return 0, fmt.Errorf("must be host:port, got %q", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("port must be 0..65535, got %q", port)
	}
	return p, nil
}

// parseConfig reads settings from args (flags of the named command) over
// getenv over defaults, and validates every value. It does no I/O, so it
// can be fuzzed; secrets that dev mode generates are resolved later by
// loadSecrets.
func parseConfig(command string, args []string, getenv func(string) string, usage io.Writer) (config, error) {
	c := config{getenv: getenv}
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(usage)
	given := make(map[string]*string, len(settings))
	for _, s := range settings {
		// The backquoted kind is what -h prints after the flag's name
		// (flag.UnquoteUsage), so numbers and durations read as such.
		given[s.flag] = fs.String(s.flag, "", fmt.Sprintf("%s (`%s`; env %s, default %q)", s.usage, s.kind(), s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%s: unexpected argument %q", command, fs.Arg(0))
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	for _, s := range settings {
		v, source := s.def, s.env+" (default)"
		if e := getenv(s.env); e != "" {
			v, source = e, s.env
		}
		if setFlags[s.flag] {
			v, source = *given[s.flag], "--"+s.flag
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s: %w", source, err)
		}
	}
	if err := validateCluster(&c); err != nil {
		return c, err
	}
	if c.ShutdownDrain < 0 {
		// A single node has no other node to send its clients to; a
		// cluster's load balancer does, once it saw the 503.
		c.ShutdownDrain = 0
		if c.Cluster.enabled() {
			c.ShutdownDrain = defaultClusterDrain
		}
	}
	if c.StoreDeadline >= c.RequestTimeout {
		return c, fmt.Errorf("SPA_STORE_DEADLINE (%s) must be shorter than SPA_REQUEST_TIMEOUT (%s): a stuck store must be answered before the request times out", c.StoreDeadline, c.RequestTimeout)
	}
	if command == "serve" { // migrate and token listen on nothing
		if err := checkDevListeners(&c); err != nil {
			return c, err
		}
	}
	if raw := getenv(tokenSecretEnv); raw != "" {
		secret, err := decodeSecret(raw)
		if err != nil {
			return c, fmt.Errorf("%s: %w", tokenSecretEnv, err)
		}
		if c.Mode == modeProduction {
			if err := weakSecret(secret); err != nil {
				return c, fmt.Errorf("%s: %w; generate one with: openssl rand -base64 48", tokenSecretEnv, err)
			}
		}
		c.TokenSecret = secret
	} else if c.Mode == modeProduction {
		return c, fmt.Errorf("%s: required in production mode (32 or more random bytes, base64-encoded); generate one with: openssl rand -base64 48", tokenSecretEnv)
	}
	if raw := strings.TrimSpace(getenv(piiKeysEnv)); raw != "" {
		// Checked here too (the keyring is built later), so a bad or
		// weak key stops the node before it opens anything.
		_, keys, err := parsePIIKeys(raw)
		if err != nil {
			return c, fmt.Errorf("%s: %w", piiKeysEnv, err)
		}
		if c.Mode == modeProduction {
			if err := weakPIIKeys(raw, keys); err != nil {
				return c, fmt.Errorf("%s: %w", piiKeysEnv, err)
			}
		}
	}
	return c, nil
}

// checkDevListeners refuses, in dev mode, every listener that is not on a
// loopback address (HTTP, the NATS client port, the cluster routes), unless
// SPA_DEV_ALLOW_REMOTE says so: dev mode writes each login code to the log
// and generates its own keys, which is fine on a laptop and a takeover on a
// reachable host. It resolves no names (parseConfig does no I/O): only
// "localhost" and loopback IPs count as loopback; an empty host or 0.0.0.0
// means every interface.
func checkDevListeners(c *config) error {
	if c.Mode != modeDev || c.DevAllowRemote {
		return nil
	}
	listeners := []struct{ source, addr string }{{"SPA_HTTP_ADDR", c.HTTPAddr}, {"SPA_ADMIN_ADDR", c.AdminAddr}}
	if c.NATSPort != 0 { // 0: NATS in process only, no listener
		listeners = append(listeners, struct{ source, addr string }{"SPA_NATS_HOST", net.JoinHostPort(c.NATSHost, "0")})
	}
	if c.Cluster.ListenAddr != "" {
		listeners = append(listeners, struct{ source, addr string }{"SPA_CLUSTER_ADDR", c.Cluster.ListenAddr})
	}
	for _, l := range listeners {
		host, _, err := net.SplitHostPort(l.addr)
		if err == nil && isLoopbackHost(host) {
			continue
		}
		return fmt.Errorf("%s: dev mode listens on loopback only (it writes login codes to the log), got %q: set SPA_MODE=production for a reachable node, or %s=1 to accept the risk", l.source, l.addr, devAllowRemoteEnv)
	}
	return nil
}

// isLoopbackHost reports a host that only this machine reaches.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Secret strength. A random key of 32 bytes has about 30 distinct byte
// values and an empirical entropy near 4.9 bits per byte; these floors are
// far below what chance gives a random key (the odds of a random 32-byte
// key failing either are below 10^-20) and far above what a typed or
// patterned one reaches (all zeros: 1 value, 0 bits; "0123456789abcdef"
// twice: 16 values, a repeated pattern).
const (
	minDistinctSecretBytes = 20
	minSecretEntropyBits   = 4.0 // Shannon entropy of the byte histogram, bits per byte
)

// weakSecret reports why a secret's bytes cannot be random: too few
// distinct byte values, too low an entropy, or a repeated pattern. It
// never names the bytes, so the caller's error never echoes a secret.
func weakSecret(b []byte) error {
	var count [256]int
	distinct := 0
	for _, x := range b {
		if count[x] == 0 {
			distinct++
		}
		count[x]++
	}
	if distinct < minDistinctSecretBytes {
		return fmt.Errorf("too weak: %d distinct byte values, a random key of this length has about %.0f (need at least %d)", distinct, 256*(1-math.Pow(255.0/256, float64(len(b)))), minDistinctSecretBytes)
	}
	entropy := 0.0
	for _, n := range count {
		if n > 0 {
			p := float64(n) / float64(len(b))
			entropy -= p * math.Log2(p)
		}
	}
	if entropy < minSecretEntropyBits {
		return fmt.Errorf("too weak: %.1f bits of entropy per byte, need at least %.1f", entropy, minSecretEntropyBits)
	}
	for period := 1; period <= len(b)/2; period++ {
		if bytes.Equal(b[period:], b[:len(b)-period]) {
			return fmt.Errorf("too weak: a pattern of %d bytes repeated", period)
		}
	}
	return nil
}

// decodeSecret accepts standard or URL-safe base64 of at least 32 bytes.
func decodeSecret(raw string) ([]byte, error) {
	raw = strings.TrimSpace(raw)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil {
			if len(b) < 32 {
				return nil, fmt.Errorf("decodes to %d bytes, need at least 32", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("must be base64 (standard or URL-safe)") // never echo a secret
}

// devSecrets is what dev mode keeps in the data dir.
type devSecrets struct {
	TokenSecret string `json:"token_secret"` // base64
}

const devSecretsFile = "dev-secrets.json"

// loadSecrets fills secrets dev mode may generate: it reuses the ones kept in
// the data dir, or creates and keeps new ones (mode 0600). Production mode
// never gets here without its secrets (parseConfig refused it).
func loadSecrets(c *config) error {
	if c.TokenSecret != nil {
		return nil
	}
	if c.Mode != modeDev {
		return fmt.Errorf("%s: required in production mode", tokenSecretEnv)
	}
	path := filepath.Join(c.DataDir, devSecretsFile)
	var s devSecrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := os.Chmod(path, 0o600); err != nil { // kept by hand with a wider mode
			return err
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%s: %w (delete it to generate new dev keys)", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		key := make([]byte, 48)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		s.TokenSecret = base64.StdEncoding.EncodeToString(key)
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := privateDir(c.DataDir); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("keep dev keys: %w", err)
		}
	default:
		return err
	}
	secret, err := decodeSecret(s.TokenSecret)
	if err != nil {
		return fmt.Errorf("%s: token_secret %w", path, err)
	}
	c.TokenSecret = secret
	return nil
}
