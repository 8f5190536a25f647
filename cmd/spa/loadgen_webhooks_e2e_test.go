package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spa-engine/spa/cmd/spa/loadgen"
)

// TestLoadgenWebhooksEndToEnd runs the payments burst small (200 events,
// a fifth duplicates) against a served node on SQLite that holds Wompi
// keys and whose Wompi is the generator's, as make bench does: every
// answer is 200, each intent is approved exactly once by the webhook and
// the database shows no double apply. It asserts no timing.
func TestLoadgenWebhooksEndToEnd(t *testing.T) {
	// The generator serves the node's Wompi; the node learns its address
	// before either starts, as the bench's fixed port gives it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wompiAddr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"SPA_WOMPI_PUBLIC_KEY":            "pub_test_loadgenWebhooks000000",
		"SPA_WOMPI_PRIVATE_KEY":           "prv_test_loadgenWebhooks000000",
		"SPA_WOMPI_INTEGRITY_SECRET":      "test_integrity_loadgenWebhooks0",
		"SPA_WOMPI_EVENTS_SECRET":         "test_events_loadgenWebhooks0000",
		"SPA_WOMPI_BASE_URL":              "http://" + wompiAddr + "/v1",
		"SPA_WOMPI_CHECKOUT_URL":          "http://" + wompiAddr + "/p/",
		"SPA_PAYMENTS_RECONCILE_INTERVAL": "1h",
	}
	dataDir := t.TempDir()
	base, _, _ := serveInProcess(t, env, dataDir)

	dir := t.TempDir()
	out, summary := filepath.Join(dir, "r.json"), filepath.Join(dir, "s.md")
	var stdout syncBuffer
	args := []string{"loadgen", "--url", base, "--data-dir", dataDir, "--out", out, "--summary", summary, "--quiet",
		"--label", "test", "--name", "webhooks", "--scenario", "webhooks", "--events", "200", "--duplicates", "0.2", "--workers", "8"}
	if err := run(t.Context(), args, func(k string) string { return env[k] }, &stdout, io.Discard); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stdout.String())
	}
	res := readResult(t, out)
	p := res.Payments
	if !res.Correct.OK || len(res.Correct.Violations) != 0 || p == nil {
		t.Fatalf("verdict %+v, payments %+v", res.Correct, p)
	}
	if p.Events != 200 || p.Duplicates != 40 || p.Intents != 80 || p.OutOfOrder != 80 || p.NotOK != 0 || p.Applied != 80 {
		t.Fatalf("burst: %+v", p)
	}
	c := p.Check
	if !c.Checked || c.Intents != 80 || c.ApprovedOnce != 80 || c.DoubleApplies != 0 || c.NotApplied != 0 || c.LedgerSumMinor != 0 {
		t.Fatalf("database check: %+v", c)
	}
	w := res.Ops[loadgen.OpWebhook]
	if w == nil || w.Count != 200 || w.Outcomes["200 applied"] != 80 {
		t.Fatalf("webhook answers: %+v", w)
	}
	md, err := os.ReadFile(summary)
	if err != nil || !strings.Contains(string(md), "**Correctness: PASS**") || !strings.Contains(string(md), "0 double applies") {
		t.Fatalf("summary: %v\n%s", err, md)
	}
}
