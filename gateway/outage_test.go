package gateway

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/postgres"
)

// openPG opens and migrates a PostgreSQL store at url.
func openPG(t *testing.T, url string, opts persistence.Options) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// wantUnavailable checks r is 503 unavailable with a Retry-After.
func wantUnavailable(t *testing.T, what string, r result) {
	t.Helper()
	if r.status != 503 || r.errCode(t) != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d Retry-After %q %s, want 503 unavailable with Retry-After", what, r.status, r.header.Get("Retry-After"), r.body)
	}
}

// TestStuckStoreAnswers503AndReadinessRecovers: a table locked from
// another connection holds every transaction that needs it. With a store
// deadline, the request answers 503 unavailable (Retry-After) when the
// deadline passes instead of waiting for the lock (a 504 at the HTTP
// timeout); /readyz reports the store unready while a transaction is
// stuck, and ready again by itself once the lock is gone.
func TestStuckStoreAnswers503AndReadinessRecovers(t *testing.T) {
	url := pgtest.SchemaURL(t, "gateway")
	st := openPG(t, url, persistence.Options{TxDeadline: 2 * time.Second})
	e := newEnv(t, func(d *Deps) { d.Store = st })
	admin := e.token("owner-1", auth.RoleAdmin)
	if r := e.putStudio(admin, goodStudio); r.status != 200 {
		t.Fatalf("before the lock: %d %s", r.status, r.body)
	}

	ctx := t.Context()
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	lock, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE studios IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var unlockOnce sync.Once
	unlock := func() { unlockOnce.Do(func() { _ = lock.Rollback(context.Background()) }) }
	defer unlock()
	// Without a deadline the request would wait for the lock: release it
	// late rather than hang, so such a run fails instead.
	safety := time.AfterFunc(30*time.Second, unlock)
	defer safety.Stop()

	stuck := make(chan result, 1)
	start := time.Now()
	go func() {
		stuck <- e.raw("PUT", "/v1/admin/studio", `{"name":"Casa Calma","time_zone":"America/Bogota","currency":"COP","version":1}`,
			"Authorization", "Bearer "+admin, "Content-Type", "application/json")
	}()

	// While the request waits on the lock, readiness turns.
	sawUnready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !sawUnready; {
		r := e.do("GET", "/readyz", "")
		sawUnready = r.status == 503
		if !sawUnready {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !sawUnready {
		t.Fatal("/readyz stayed ready while a transaction was stuck on a lock")
	}
	r := <-stuck
	elapsed := time.Since(start)
	wantUnavailable(t, "a write to the locked table", r)
	if elapsed >= 15*time.Second { // the HTTP timeout: the deadline must come well before it
		t.Fatalf("answered after %s", elapsed)
	}

	unlock()
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; {
		ready = e.do("GET", "/readyz", "").status == 200
		if !ready {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("/readyz did not recover after the lock was released")
	}
	if r := e.putStudio(admin, `{"name":"Casa Calma","time_zone":"America/Bogota","currency":"COP","version":1}`); r.status != 200 {
		t.Fatalf("after the lock: %d %s", r.status, r.body)
	}
}

// TestRefusedStoreAnswers503: once the database's port refuses
// connections, every store-backed request answers 503 unavailable with
// Retry-After, not 500 internal; /readyz reports the store down.
func TestRefusedStoreAnswers503(t *testing.T) {
	u, err := url.Parse(pgtest.SchemaURL(t, "gateway"))
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL for this test: %v", err)
	}
	p := newTCPProxy(t, u.Host)
	u.Host = p.addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st := openPG(t, u.String(), persistence.Options{TxDeadline: 3 * time.Second})
	e := newEnv(t, func(d *Deps) { d.Store = st })
	admin := e.token("owner-1", auth.RoleAdmin)
	if r := e.putStudio(admin, goodStudio); r.status != 200 {
		t.Fatalf("before the outage: %d %s", r.status, r.body)
	}

	p.close() // the port is closed now: connections are refused
	defer func() {
		if t.Failed() {
			t.Logf("logs: %s", e.logs)
		}
	}()

	wantUnavailable(t, "a write", e.raw("PUT", "/v1/admin/studio", `{"name":"Casa Calma","time_zone":"America/Bogota","currency":"COP","version":1}`,
		"Authorization", "Bearer "+admin, "Content-Type", "application/json"))
	wantUnavailable(t, "a read", e.raw("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+admin))
	if r := e.do("GET", "/readyz", ""); r.status != 503 {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
}

// tcpProxy forwards a local port to target until closed; closing it
// closes the port and every connection through it.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			go func() { _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
