// Package natsserver embeds a NATS server with JetStream in the engine
// process (part of cluster/: embedded NATS and, later, membership and
// placement). The node's own clients connect in-process, so they never
// depend on a TCP port; the port, when enabled, serves other processes.
package natsserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures the embedded server.
type Config struct {
	// Host is the client listen address; empty means 127.0.0.1.
	Host string
	// Port is the client port: -1 picks a random free port (as in
	// nats-server), 0 does not listen at all (in-process clients only).
	Port int
	// StoreDir is the JetStream file storage directory. Required.
	StoreDir string
	// ServerName names the server; empty lets nats-server use its ID.
	ServerName string
	// JetStreamMaxMemory and JetStreamMaxStore cap JetStream resources in
	// bytes; 0 keeps nats-server's defaults.
	JetStreamMaxMemory, JetStreamMaxStore int64
	// ReadyTimeout bounds how long Start waits for readiness; default 10s.
	ReadyTimeout time.Duration
	// DrainTimeout bounds how long Stop waits for client connections to
	// drain; default 5s.
	DrainTimeout time.Duration

	// ClusterName, when set, joins the server into the NATS cluster of that
	// name through routes, and JetStream runs clustered (Raft meta group,
	// replicated streams). Empty runs a standalone server and ignores the
	// other Cluster fields and Routes. A clustered server needs ServerName
	// to be stable across restarts.
	ClusterName string
	// ClusterHost is the route listen address; empty means Host.
	ClusterHost string
	// ClusterPort is the route listen port: -1 picks a random free port.
	// Required when ClusterName is set.
	ClusterPort int
	// ClusterAdvertise is the host:port other servers dial to reach this
	// one's routes; empty lets nats-server advertise the listen address.
	ClusterAdvertise string
	// Routes are the seed route URLs (nats-route://host:port) of the other
	// servers; listing this server's own route is harmless.
	Routes []string

	// ClusterTLS, when set, encrypts the routes and authenticates the
	// servers at both ends: it must hold this server's certificate (valid
	// for the host names other servers dial), the CA pool that signs every
	// server's certificate as RootCAs and ClientCAs, and ClientAuth
	// tls.RequireAndVerifyClientCert. Actor requests (phone numbers among
	// them) and leases travel the routes.
	ClusterTLS *tls.Config

	// Secret, when set, is required of everyone: routes authenticate with
	// it (user "spa") and clients, in-process ones included, present it as
	// a token. Without it anyone who reaches a port could publish
	// forwarded actor requests or rewrite leases. Empty: no
	// authentication (a single node on loopback).
	Secret string
}

// RouteTLS builds Config.ClusterTLS from PEM files: this server's
// certificate and key, and the CA that signs every server's certificate.
// Both ends of a route verify each other against that CA.
func RouteTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("natsserver: route certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("natsserver: route CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("natsserver: route CA %s holds no PEM certificate", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// routeUser is the user name routes authenticate as; the secret is the
// password.
const routeUser = "spa"

// Server is a running embedded NATS server plus the node's shared
// in-process client connection. Its methods are safe for concurrent use.
type Server struct {
	ns     *server.Server
	cfg    Config
	logger *slog.Logger
	nc     *nats.Conn

	mu      sync.Mutex
	conns   []*nats.Conn
	stopped bool
	once    sync.Once
}

// Start configures and starts the server, waits until it accepts
// connections and JetStream is enabled, and opens the shared in-process
// connection. A listen failure (e.g. port in use) is reported with the
// host:port. ctx only bounds the start-up.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("natsserver: Config.StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		DontListen:         cfg.Port == 0,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.JetStreamMaxMemory,
		JetStreamMaxStore:  cfg.JetStreamMaxStore,
		NoSigs:             true, // the process owns signal handling
	}
	if cfg.ClusterName != "" {
		if cfg.ClusterPort == 0 {
			return nil, errors.New("natsserver: Config.ClusterPort is required with ClusterName (-1 for a random port)")
		}
		chost := cfg.ClusterHost
		if chost == "" {
			chost = cfg.Host
		}
		opts.Cluster = server.ClusterOpts{
			Name:      cfg.ClusterName,
			Host:      chost,
			Port:      cfg.ClusterPort,
			Advertise: cfg.ClusterAdvertise,
		}
		if cfg.Secret != "" {
			opts.Cluster.Username, opts.Cluster.Password = routeUser, cfg.Secret
		}
		if cfg.ClusterTLS != nil {
			opts.Cluster.TLSConfig = cfg.ClusterTLS
			opts.Cluster.TLSTimeout = 2 // seconds for a route's handshake
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("natsserver: route %q: want nats-route://host:port", r)
			}
			if cfg.Secret != "" {
				u.User = url.UserPassword(routeUser, cfg.Secret)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.Secret != "" {
		opts.Authorization = cfg.Secret
	}
	hp := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if opts.DontListen {
		hp = "in-process"
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: configure %s: %w", hp, err)
	}
	log := newLogger(logger.With("component", "nats-server"))
	ns.SetLoggerV2(log, log.debug, log.trace, false)

	fail := func(err error) (*Server, error) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	ns.Start() // returns once listening (or failed to)
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for {
		if err := log.fatalErr(); err != nil {
			return fail(fmt.Errorf("natsserver: start on %s: %w", hp, err))
		}
		if ns.ReadyForConnections(50*time.Millisecond) && ns.JetStreamEnabled() {
			break
		}
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("natsserver: start on %s: %w", hp, err))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("natsserver: %s not ready (JetStream enabled: %v) after %s",
				hp, ns.JetStreamEnabled(), cfg.ReadyTimeout))
		}
	}
	s := &Server{ns: ns, cfg: cfg, logger: logger}
	nc, err := s.Connect(nats.Name("spa-node"))
	if err != nil {
		return fail(fmt.Errorf("natsserver: in-process connection: %w", err))
	}
	s.nc = nc
	logger.Info("nats server started", "client_url", s.ClientURL(), "store_dir", cfg.StoreDir)
	return s, nil
}

// Conn returns the node's shared in-process client connection. Stop
// drains it; do not close it yourself.
func (s *Server) Conn() *nats.Conn { return s.nc }

// JetStream returns a JetStream context on the shared connection.
func (s *Server) JetStream(opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	return jetstream.New(s.nc, opts...)
}

// Connect opens an additional in-process client connection (it reconnects
// forever while the server runs). Stop drains it. opts are applied after
// the defaults, so they may override them.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errors.New("natsserver: server stopped")
	}
	all := append([]nats.Option{
		nats.InProcessServer(s.ns),
		nats.Token(s.cfg.Secret), // ignored by a server without one
		nats.MaxReconnects(-1),
		nats.DrainTimeout(s.cfg.DrainTimeout),
	}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// ClientURL returns the URL other processes connect to (with the actual
// port when Port was -1), or "" when the server does not listen.
func (s *Server) ClientURL() string {
	if s.cfg.Port == 0 {
		return ""
	}
	return s.ns.ClientURL()
}

// ClusterAddr returns the host:port of the route listener (with the actual
// port when ClusterPort was -1), or "" when the server is not clustered.
func (s *Server) ClusterAddr() string {
	if s.cfg.ClusterName == "" {
		return ""
	}
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return a.String()
}

// JetStreamMetaLeader reports whether this server currently leads the
// JetStream meta group (always false when standalone).
func (s *Server) JetStreamMetaLeader() bool { return s.ns.JetStreamIsLeader() }

// JetStreamMetaCurrent reports whether this server's view of the JetStream
// meta group is current, i.e. it knows a leader and has caught up with it
// (always true when standalone).
func (s *Server) JetStreamMetaCurrent() bool { return s.ns.JetStreamIsCurrent() }

// Routes returns how many routes to other servers are up.
func (s *Server) Routes() int { return s.ns.NumRoutes() }

// JetStreamPeers returns the names of the JetStream meta group's peers as
// seen by its leader; nil on any other server and when standalone.
func (s *Server) JetStreamPeers() []string { return s.ns.JetStreamClusterPeers() }

// Ready reports nil when the server runs, JetStream is enabled and the
// shared client connection is connected; it backs /readyz.
func (s *Server) Ready() error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	switch {
	case stopped || !s.ns.Running():
		return errors.New("nats: server not running")
	case !s.ns.JetStreamEnabled():
		return errors.New("nats: jetstream not enabled")
	case !s.nc.IsConnected():
		return fmt.Errorf("nats: client connection %s", s.nc.Status())
	}
	return nil
}

// Stop drains the client connections made through Start and Connect, then
// shuts the server down and waits for it. Calling it again is harmless.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		conns := s.conns
		s.mu.Unlock()
		for _, nc := range conns {
			if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				nc.Close()
			}
		}
		deadline := time.Now().Add(s.cfg.DrainTimeout + time.Second)
		for _, nc := range conns {
			for !nc.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			nc.Close()
		}
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.logger.Info("nats server stopped")
	})
}

// LevelTrace is the slog level of nats-server's protocol traces.
const LevelTrace = slog.LevelDebug - 4

// slogLogger adapts slog to nats-server's Logger interface and remembers
// the first fatal error so Start can report it instead of hanging.
type slogLogger struct {
	l            *slog.Logger
	debug, trace bool
	mu           sync.Mutex
	fatal        error
}

func newLogger(l *slog.Logger) *slogLogger {
	ctx := context.Background()
	return &slogLogger{l: l, debug: l.Enabled(ctx, slog.LevelDebug), trace: l.Enabled(ctx, LevelTrace)}
}

func (g *slogLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if g.l.Enabled(ctx, level) {
		g.l.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

func (g *slogLogger) fatalErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fatal
}

// Noticef implements server.Logger.
func (g *slogLogger) Noticef(format string, v ...any) { g.log(slog.LevelInfo, format, v) }

// Warnf implements server.Logger.
func (g *slogLogger) Warnf(format string, v ...any) { g.log(slog.LevelWarn, format, v) }

// Errorf implements server.Logger.
func (g *slogLogger) Errorf(format string, v ...any) { g.log(slog.LevelError, format, v) }

// Debugf implements server.Logger.
func (g *slogLogger) Debugf(format string, v ...any) { g.log(slog.LevelDebug, format, v) }

// Tracef implements server.Logger.
func (g *slogLogger) Tracef(format string, v ...any) { g.log(LevelTrace, format, v) }

// Fatalf implements server.Logger: it logs at error level and records the
// error; it never exits the process.
func (g *slogLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	g.l.Error(msg, "fatal", true)
	g.mu.Lock()
	if g.fatal == nil {
		g.fatal = errors.New(msg)
	}
	g.mu.Unlock()
}
