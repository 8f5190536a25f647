package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/persistence"
)

// blockEnv is a gateway that reads the client IP from X-Forwarded-For (the
// test transport's peer is 0.0.0.0, trusted here), with a blind index key
// and a clock the test moves.
func blockEnv(t *testing.T, index bool) (*env, *atomic.Int64) {
	t.Helper()
	var offset atomic.Int64
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(d *Deps) {
		d.Config.ProxyHeader, d.Config.TrustedProxies = "X-Forwarded-For", []string{"0.0.0.0"}
		d.Now = func() time.Time { return start.Add(time.Duration(offset.Load())) }
		if index {
			bi, err := pii.NewBlindIndex(bytes.Repeat([]byte("k"), pii.MinIndexKeyLen))
			if err != nil {
				t.Fatal(err)
			}
			d.BlindIndex = bi
		}
	})
	return e, &offset
}

func (e *env) from(ip, method, path string) result {
	e.t.Helper()
	return e.do(method, path, "", "X-Forwarded-For", ip)
}

type blockResp struct {
	ID     string
	Kind   string
	Label  string
	Active bool
}

func (e *env) addBlock(body string) blockResp {
	e.t.Helper()
	r := e.admin("POST", "/v1/admin/blocks", body)
	if r.status != 201 {
		e.t.Fatalf("add block %s: %d %s", body, r.status, r.body)
	}
	return decode[blockResp](e.t.(*testing.T), r)
}

func TestIPBlocklist(t *testing.T) {
	e, clock := blockEnv(t, false)
	if r := e.from("203.0.113.9", "GET", "/v1/legal/documents"); r.status != 200 {
		t.Fatalf("before any block: %d", r.status)
	}
	rng := e.addBlock(`{"kind":"ip","value":"203.0.113.0/24","reason":"credential stuffing"}`)
	one := e.addBlock(`{"kind":"ip","value":"2001:db8::7","reason":"scraper","expires_at":"2026-11-27T13:00:00Z"}`)
	if rng.Label != "203.0.113.0/24" || one.Label != "2001:db8::7/128" || !one.Active {
		t.Fatalf("blocks %+v %+v", rng, one)
	}
	for _, ip := range []string{"203.0.113.9", "203.0.113.200", "2001:db8::7"} {
		if r := e.from(ip, "GET", "/v1/legal/documents"); r.status != 403 || r.errCode(t) != "blocked" {
			t.Fatalf("%s: %d %s", ip, r.status, r.body)
		}
	}
	for _, ip := range []string{"203.0.114.1", "2001:db8::8", "198.51.100.1"} {
		if r := e.from(ip, "GET", "/v1/legal/documents"); r.status != 200 {
			t.Fatalf("%s wrongly blocked: %d %s", ip, r.status, r.body)
		}
	}
	// Probes stay reachable from a blocked address.
	if r := e.from("203.0.113.9", "GET", "/healthz"); r.status != 200 {
		t.Fatalf("healthz from a blocked IP: %d", r.status)
	}
	// Expiry needs no reload.
	clock.Store(int64(time.Hour))
	if r := e.from("2001:db8::7", "GET", "/v1/legal/documents"); r.status != 200 {
		t.Fatalf("after expiry: %d %s", r.status, r.body)
	}
	listed := decode[struct{ Blocks []blockResp }](t, e.admin("GET", "/v1/admin/blocks?kind=ip", "")).Blocks
	if len(listed) != 1 || listed[0].ID != rng.ID {
		t.Fatalf("listed in force: %+v", listed)
	}
	all := decode[struct{ Blocks []blockResp }](t, e.admin("GET", "/v1/admin/blocks?include_expired=true", "")).Blocks
	if len(all) != 2 || all[0].Active {
		t.Fatalf("listed with expired: %+v", all)
	}
	// Removing lifts the block at once on this node.
	if r := e.admin("DELETE", "/v1/admin/blocks/"+rng.ID, ""); r.status != 204 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if r := e.from("203.0.113.9", "GET", "/v1/legal/documents"); r.status != 200 {
		t.Fatalf("after removal: %d %s", r.status, r.body)
	}
	if r := e.admin("DELETE", "/v1/admin/blocks/"+rng.ID, ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("remove twice: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"kind":"ip","value":"10.0.0.1/8","reason":"x"}`, 422, "validation_failed"},
		{`{"kind":"ip","value":"not an ip","reason":"x"}`, 422, "validation_failed"},
		{`{"kind":"ip","value":"10.0.0.0/8","reason":""}`, 422, "validation_failed"},
		{`{"kind":"email","value":"a@b.co","reason":"x"}`, 422, "validation_failed"},
		{`{"kind":"ip","value":"10.0.0.0/8","reason":"x","expires_at":"2020-01-01T00:00:00Z"}`, 422, "validation_failed"},
		{`{"kind":"phone","value":"+573001234567","reason":"x"}`, 503, "unavailable"},
	} {
		if r := e.admin("POST", "/v1/admin/blocks", tc.body); r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("%s: %d %s", tc.body, r.status, r.body)
		}
	}
	e.addBlock(`{"kind":"ip","value":"10.0.0.0/8","reason":"x"}`)
	if r := e.admin("POST", "/v1/admin/blocks", `{"kind":"ip","value":"10.0.0.0/8","reason":"again"}`); r.status != 409 || r.errCode(t) != "conflict" {
		t.Fatalf("duplicate: %d %s", r.status, r.body)
	}
	// An IPv4-mapped IPv6 peer is the IPv4 address.
	if r := e.from("::ffff:10.1.2.3", "GET", "/v1/legal/documents"); r.status != 403 {
		t.Fatalf("mapped address: %d %s", r.status, r.body)
	}

	if m := string(e.metrics().body); !strings.Contains(m, "spa_http_blocked_requests_total 4\n") {
		t.Fatalf("metrics lack 4 blocked requests:\n%s", m)
	}
	audit := string(e.admin("GET", "/v1/admin/audit", "").body)
	if strings.Count(audit, `"block.add"`) != 3 || strings.Count(audit, `"block.remove"`) != 1 {
		t.Fatalf("audit: %s", audit)
	}
}

// TestPersonBlocks: phone and document blocks are matched in any spelling,
// and neither the table nor the API holds the number in clear.
func TestPersonBlocks(t *testing.T) {
	e, _ := blockEnv(t, true)
	ph := e.addBlock(`{"kind":"phone","value":"+57 300 123 4567","reason":"fraud"}`)
	doc := e.addBlock(`{"kind":"document","value":"1.234.567-8","reason":"chargebacks"}`)
	if strings.Contains(ph.Label, "1234") || !strings.HasPrefix(ph.Label, "+57") || strings.Contains(doc.Label, "2345") {
		t.Fatalf("labels not masked: %q %q", ph.Label, doc.Label)
	}
	if r := e.admin("POST", "/v1/admin/blocks", `{"kind":"phone","value":"3001234567","reason":"again"}`); r.status != 409 {
		t.Fatalf("same phone in national form: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", "/v1/admin/blocks", `{"kind":"phone","value":"12","reason":"x"}`); r.status != 422 {
		t.Fatalf("bad phone: %d %s", r.status, r.body)
	}

	ctx := context.Background()
	srv := e.blocklist(t)
	for _, tc := range []struct {
		phone, doc string
		want       bool
	}{
		{"+573001234567", "", true},
		{"300 123 4567", "", true},
		{"+573001234568", "", false},
		{"", "12345678", true},
		{"", "1 234 567 8", true},
		{"+573001234568", "12345678", true},
		{"not a phone", "87654321", false},
		{"", "", false},
	} {
		got, err := srv.IsBlocked(ctx, tc.phone, tc.doc)
		if err != nil || got != tc.want {
			t.Errorf("IsBlocked(%q, %q) = %v, %v; want %v", tc.phone, tc.doc, got, err, tc.want)
		}
	}

	// No plaintext anywhere in the table.
	var rows []persistence.Block
	if err := e.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		rows, err = tx.BlockList(ctx, persistence.BlockListParams{Limit: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range rows {
		for _, field := range []string{b.Value, b.Label, b.Reason} {
			if strings.Contains(field, "3001234567") || strings.Contains(field, "12345678") {
				t.Fatalf("plaintext in block %+v", b)
			}
		}
	}
	if len(rows) != 2 {
		t.Fatalf("rows %d", len(rows))
	}
	// Lifting the phone block frees it.
	if r := e.admin("DELETE", "/v1/admin/blocks/"+ph.ID, ""); r.status != 204 {
		t.Fatal(r.status)
	}
	if got, err := srv.IsBlocked(ctx, "+573001234567", ""); err != nil || got {
		t.Fatalf("after removal: %v %v", got, err)
	}
}

// blocklist builds a Blocklist over the env's store with the same key, as
// the login would use it.
func (e *env) blocklist(t *testing.T) *Blocklist {
	bi, _ := pii.NewBlindIndex(bytes.Repeat([]byte("k"), pii.MinIndexKeyLen))
	return legal.NewBlocklist(e.store, bi, 0, nil, nil)
}

// failingStore fails every transaction, as a database outage would.
type failingStore struct {
	persistence.Store
	fail atomic.Bool
}

func (f *failingStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if f.fail.Load() {
		return fmt.Errorf("down: %w", persistence.ErrUnavailable)
	}
	return f.Store.InTx(ctx, fn)
}

// TestBlocklistKeepsSnapshotWhenStoreFails: a reload that fails serves the
// last snapshot instead of lifting every block (or refusing everyone), and
// IsBlocked reports the outage so the login can fail closed.
func TestBlocklistKeepsSnapshotWhenStoreFails(t *testing.T) {
	e, _ := blockEnv(t, true)
	e.addBlock(`{"kind":"ip","value":"192.0.2.0/24","reason":"abuse"}`)
	fs := &failingStore{Store: e.store}
	bi, _ := pii.NewBlindIndex(bytes.Repeat([]byte("k"), pii.MinIndexKeyLen))
	b := legal.NewBlocklist(fs, bi, time.Nanosecond, nil, nil) // every check wants a reload
	ctx := context.Background()
	blocked := mustAddr(t, "192.0.2.1")
	if !b.IPBlocked(ctx, blocked) {
		t.Fatal("not blocked with the store up")
	}
	fs.fail.Store(true)
	if !b.IPBlocked(ctx, blocked) || b.IPBlocked(ctx, mustAddr(t, "192.0.3.1")) {
		t.Fatal("the last snapshot was not kept while the store is down")
	}
	if _, err := b.IsBlocked(ctx, "+573001234567", ""); !errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("IsBlocked during an outage: %v", err)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
