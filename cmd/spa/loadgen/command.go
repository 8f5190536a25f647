package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
)

// Env is what Command needs from the process.
type Env struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Minter returns a MintFunc signing with the node's token key as found
	// from the environment and dataDir ("" for the default); nil, or an
	// error, leaves --admin-token as the only way in.
	Minter func(dataDir string) (MintFunc, error)
}

// Command is `spa loadgen [flags]` and `spa loadgen report [flags]`.
func Command(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 && args[0] == "report" {
		return reportCommand(ctx, args[1:], env)
	}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var o Options
	getenv := func(k, def string) string {
		if v := env.Getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.BaseURL, "url", getenv("SPA_LOADGEN_URL", "http://127.0.0.1:8080"), "base URL of the node (env SPA_LOADGEN_URL); a cluster's nodes comma-separated: workers are spread over them round robin, seeding goes to the first")
	fs.StringVar(&o.Scenario, "scenario", "hot", "hot, spread, mixed, ceiling (hot's claims against spa bare: no seeding, no database) or webhooks (a burst of signed Wompi events; needs the node's SPA_WOMPI_* keys)")
	fs.StringVar(&o.Mode, "mode", ModeClosed, "closed (workers loop) or open (fixed arrival rate)")
	fs.IntVar(&o.Workers, "workers", 64, "closed: concurrent clients; open: most requests in flight")
	fs.Float64Var(&o.Rate, "rate", 0, "open mode: operations per second")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to drive load (default 20s)")
	fs.IntVar(&o.Staff, "staff", 0, "staff members to seed (spread 100, mixed 20; hot 1)")
	fs.IntVar(&o.Days, "days", 0, "days to book over (spread 30, mixed 7; hot 1)")
	fs.Float64Var(&o.ZipfS, "zipf-s", 1.1, "Zipf exponent of staff popularity (> 1)")
	fs.Float64Var(&o.ReadRatio, "read-ratio", 0.9, "mixed: share of availability reads")
	fs.DurationVar(&o.Slot, "slot", 0, "service length and slot grid; must equal the node's SPA_SLOT_STEP (default 15m)")
	fs.BoolVar(&o.Idempotency, "idempotency", false, "send an Idempotency-Key with every claim (mixed always does)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "per-request timeout (default 10s); a timeout is an ambiguous claim")
	fs.DurationVar(&o.CheckTimeout, "check-timeout", 0, "budget of the porcupine check (default 2m)")
	fs.StringVar(&o.AdminToken, "admin-token", env.Getenv("SPA_ADMIN_TOKEN"), "admin bearer token (env SPA_ADMIN_TOKEN; default: minted with the node's key)")
	dataDir := fs.String("data-dir", env.Getenv("SPA_DATA_DIR"), "the node's data dir: its dev token key and SQLite file (env SPA_DATA_DIR, default data)")
	fs.StringVar(&o.DatabaseURL, "database-url", env.Getenv("DATABASE_URL"), "the node's PostgreSQL URL, for the overlap check (env DATABASE_URL; unset: SQLite in --data-dir)")
	fs.StringVar(&o.Name, "name", "", "run name in results (default the scenario)")
	fs.StringVar(&o.Label, "label", "", "label of the system under test, e.g. the engine")
	serverPIDs := fs.String("server-pid", "", "the node's process id on this machine (a cluster's: comma-separated): report the CPU they and the local PostgreSQL spent per confirmed booking (Linux /proc)")
	metricsURLs := fs.String("metrics-url", "", "the nodes' /metrics URLs, comma-separated: report the share of requests to placed actors forwarded to another node")
	fs.Uint64Var(&o.Seed, "seed", 0, "random seed (0: random)")
	repeat := fs.Int("repeat", 1, "run the scenario this many times, each on its own freshly seeded staff, and report the median try by its headline rate (hot: decisions/s, spread: confirmed/s); every try must pass its checks")
	fs.IntVar(&o.Events, "events", 5000, "webhooks: events in the burst")
	fs.Float64Var(&o.DuplicateShare, "duplicates", 0.2, "webhooks: share of the burst that are exact copies of another event")
	out := fs.String("out", "loadgen-result.json", "JSON result file")
	summary := fs.String("summary", "loadgen-summary.md", "Markdown summary file (also printed)")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile here (is the generator the bottleneck?)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected argument %q", fs.Arg(0))
	}
	for _, p := range strings.FieldsFunc(*serverPIDs, func(r rune) bool { return r == ',' }) {
		pid, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pid <= 0 {
			return fmt.Errorf("loadgen: --server-pid: %q is not a process id", p)
		}
		o.ServerPIDs = append(o.ServerPIDs, pid)
	}
	o.MetricsURLs = strings.FieldsFunc(*metricsURLs, func(r rune) bool { return r == ',' })
	if *dataDir == "" {
		*dataDir = "data"
	}
	if o.DatabaseURL == "" {
		o.SQLitePath = SQLitePathFor(*dataDir)
	}
	if o.AdminToken == "" && env.Minter != nil {
		mint, err := env.Minter(*dataDir)
		if err != nil {
			return fmt.Errorf("loadgen: tokens: %w", err)
		}
		o.Mint = mint
	}
	if !*quiet {
		o.Progress = env.Stderr
	}
	if o.Scenario == ScenarioWebhooks {
		keys, addr, err := WompiKeysFromEnv(env.Getenv)
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		o.WompiKeys, o.WompiAddr = keys, addr
	}
	o.Params = map[string]string{"args": strings.Join(redact(args), " ")}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("loadgen: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("loadgen: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *repeat < 1 || (*repeat > 1 && o.Scenario == ScenarioWebhooks) {
		return fmt.Errorf("loadgen: --repeat %d: must be 1, or more for a booking scenario", *repeat)
	}
	res, err := runRepeated(ctx, o, *repeat, Run)
	if res == nil {
		return err
	}
	if werr := writeResult(res, *out, *summary, env.Stdout); werr != nil {
		return errors.Join(err, werr)
	}
	if errors.Is(err, ErrViolation) {
		return fmt.Errorf("%w: %s", err, strings.Join(res.Correct.Violations, "; "))
	}
	return err
}

// redact hides the value of --admin-token in echoed arguments.
func redact(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		switch {
		case (a == "--admin-token" || a == "-admin-token") && i+1 < len(out):
			out[i+1] = "<redacted>"
		case strings.HasPrefix(a, "--admin-token="), strings.HasPrefix(a, "-admin-token="):
			out[i] = a[:strings.Index(a, "=")+1] + "<redacted>"
		}
	}
	return out
}

func writeResult(res *Result, out, summary string, stdout io.Writer) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if out != "" {
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var md strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		return err
	}
	if summary != "" {
		if err := os.WriteFile(summary, []byte(md.String()), 0o644); err != nil {
			return err
		}
	}
	_, err = io.WriteString(stdout, md.String())
	return err
}
