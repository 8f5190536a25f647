package main

import (
	"context"
	"io"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/cmd/spa/loadgen"
)

// loadgenCommand is `spa loadgen`: it mints the generator's tokens with the
// node's key, found as `spa token` finds it (SPA_TOKEN_SECRET, or the dev
// key in the data dir), so a run needs no manual token.
func loadgenCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return loadgen.Command(ctx, args, loadgen.Env{Getenv: getenv, Stdout: stdout, Stderr: stderr,
		Minter: func(dataDir string) (loadgen.MintFunc, error) {
			cfg, err := parseConfig("loadgen", []string{"--data-dir", dataDir}, getenv, stderr)
			if err != nil {
				return nil, err
			}
			if err := loadSecrets(&cfg); err != nil {
				return nil, err
			}
			tokens, err := auth.NewTokens(cfg.TokenSecret, cfg.TokenIssuer, time.Now)
			if err != nil {
				return nil, err
			}
			return func(subject, role string) (string, error) {
				r, err := auth.ParseRole(role)
				if err != nil {
					return "", err
				}
				tok, _, err := tokens.Mint(subject, r, 6*time.Hour)
				return tok, err
			}, nil
		}})
}
