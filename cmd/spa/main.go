// Command spa is the booking and operations engine's one binary: it serves a
// node, migrates the schema, mints operator tokens and prints its version.
// main is tiny; run holds the logic so tests drive it end to end.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spa-engine/spa/actors/auth"
)

// version is stamped by the Makefile (-ldflags "-X main.version=…").
var version = "dev"

const usageText = `usage: spa <command> [flags]

commands:
  serve        run a node (HTTP gateway, actors, embedded NATS, store)
  migrate      apply the embedded schema migrations and print what was done
  token        mint an access token for manual testing: spa token --subject ID --role admin
  healthcheck  exit 0 when the node on SPA_HTTP_ADDR is ready (--live: alive); for HEALTHCHECKs
  loadgen      drive load at a node and check its bookings: spa loadgen -h (report: spa loadgen report -h)
  version      print the version
  help         show this text

Every flag of serve, migrate and token can also be set by environment
variable; "spa serve -h" lists them.
`

func main() {
	collectLessOften(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "spa:", err)
		}
		os.Exit(2)
	}
}

// gcPercent is the collector's target when GOGC is not set: the heap may
// grow to five times what is live before a collection, not twice (Go's
// 100). A node's live heap is small (a few hundred MB at most) next to
// what a peak allocates per second, so at 100 about a tenth of its CPU
// went to collecting: under keyed spread 400 took 6% off the CPU per
// confirmed booking and added 9% confirmed/s (docs/benchmarks-notes.md).
// GOGC and GOMEMLIMIT still rule when set (docs/operations.md).
const gcPercent = 400

// collectLessOften sets the collector's target to gcPercent unless GOGC is
// set (the runtime read it at start).
func collectLessOften(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// run executes one command. ctx is cancelled on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return errors.New("missing command")
	}
	err := runCommand(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, errHelped) {
		return nil
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		cfg, err := parseCommand(cmd, rest, getenv, stdout, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		cfg, err := parseCommand(cmd, rest, getenv, stdout, stderr)
		if err != nil {
			return err
		}
		return migrate(ctx, cfg, stdout)
	case "token":
		return mintToken(cmd, rest, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, getenv, stdout, stderr)
	case "loadgen":
		return loadgenCommand(ctx, rest, getenv, stdout, stderr)
	case "bare": // hidden: the bench's bare-HTTP ceiling (bare.go)
		return bareCommand(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "spa %s (%s, %s %s/%s)\n", version, revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// parseCommand is parseConfig for a command line: -h prints the flags to
// stdout and is no error (errHelped: run returns nil); a bad flag prints
// them to stderr with the error.
func parseCommand(cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) (config, error) {
	var usage bytes.Buffer
	cfg, err := parseConfig(cmd, args, getenv, &usage)
	if errors.Is(err, flag.ErrHelp) {
		_, werr := usage.WriteTo(stdout)
		return cfg, errors.Join(errHelped, werr)
	}
	_, _ = usage.WriteTo(stderr)
	return cfg, err
}

// errHelped says -h was answered: run turns it into success.
var errHelped = errors.New("help printed")

// revision is the VCS commit the binary was built from, when Go recorded it.
func revision() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown revision"
}

// migrate applies pending migrations and says what it did.
func migrate(ctx context.Context, cfg config, stdout io.Writer) error {
	store, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %04d_%s\n", m.Version, m.Name)
	}
	fmt.Fprintf(stdout, "%s schema up to date (%d migration(s) applied now)\n", store.Dialect(), len(applied))
	return nil
}

// mintToken prints a signed access token made with the node's configured key
// (SPA_TOKEN_SECRET, or the dev key kept in the data dir). The token
// carries the second factor (amr "mfa") that staff roles need: whoever can
// run this holds the signing secret, which proves more than a TOTP code.
func mintToken(cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	subject := fs.String("subject", "", "token subject (user id)")
	role := fs.String("role", "admin", "client, staff, receptionist or admin")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	dataDir := fs.String("data-dir", "", "data dir holding the dev key (env SPA_DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *subject == "" {
		return errors.New("token: --subject is required")
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("token: --role: %w", err)
	}
	if *ttl <= 0 || *ttl > auth.MaxLifetime(r) {
		return fmt.Errorf("token: --ttl must be in (0, %s] for role %s (longer tokens are refused by every node), got %s", auth.MaxLifetime(r), r, *ttl)
	}
	var cfgArgs []string
	if *dataDir != "" {
		cfgArgs = []string{"--data-dir", *dataDir}
	}
	cfg, err := parseConfig(cmd, cfgArgs, getenv, stderr)
	if err != nil {
		return err
	}
	if err := loadSecrets(&cfg); err != nil {
		return err
	}
	tokens, err := auth.NewTokens(cfg.TokenSecret, cfg.TokenIssuer, time.Now)
	if err != nil {
		return err
	}
	tok, claims, err := tokens.Mint(*subject, r, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "token %s for %s (%s) expires %s\n", claims.TokenID, claims.Subject, claims.Role, claims.ExpiresAt.Format(time.RFC3339))
	return nil
}
