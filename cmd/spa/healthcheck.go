package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck is `spa healthcheck`: one GET of /readyz (or /healthz with
// --live) on the node's own HTTP address, success only on 200. The image is
// distroless (no shell, no curl), so compose's and Docker's HEALTHCHECK run
// the binary itself. It reads SPA_HTTP_ADDR, not the whole configuration:
// a probe must not fail because a secret it does not need is unset.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defAddr := getenv("SPA_HTTP_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:8080"
	}
	addr := fs.String("addr", defAddr, "the node's HTTP address, host:port (env SPA_HTTP_ADDR); a wildcard host (0.0.0.0, ::, empty) is asked on loopback")
	live := fs.Bool("live", false, "check liveness (/healthz: the process serves HTTP) instead of readiness (/readyz: store, NATS, actors)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return errHelped
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q", fs.Arg(0))
	}
	target, err := probeURL(*addr, *live)
	if err != nil {
		return fmt.Errorf("healthcheck: --addr: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	// The body says which check failed; docker inspect shows it.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d: %s", target, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "%s: %d\n", target, resp.StatusCode)
	return nil
}

// probeURL is the URL of the probe on addr: a listener on every interface
// is reached through loopback.
func probeURL(addr string, live bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("must be host:port, got %q", addr)
	}
	if p, err := hostPort(addr); err != nil || p == 0 {
		return "", fmt.Errorf("needs a fixed port, got %q", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	path := "/readyz"
	if live {
		path = "/healthz"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
