package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/actors/schedule/claimcheck"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence/pgtest"
)

// TestChaos is the chaos suite (docs/chaos.md): three real nodes, each in
// a network namespace of its own, under bookings, resource claims, cart
// reservations and checkouts and login codes, while nemeses partition
// them from each other and from the database, slow and drop their
// packets, pause, kill and restart them. The checks come after the run;
// the recovery times are logged (CHAOS lines), not asserted.
//
// The short form runs in make test; SPA_CHAOS_FULL=1 (make chaos) holds
// each nemesis longer (10 lease TTLs instead of 2) and restarts all three
// nodes in turn instead of one.
func TestChaos(t *testing.T) {
	if err := chaosNetAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the chaos suite must run in CI: %v", err)
		}
		t.Skipf("chaos suite: %v", err)
	}
	base := pgtest.BaseURL(t)
	full := os.Getenv("SPA_CHAOS_FULL") == "1"
	x := startChaos(t, base, full)
	t.Cleanup(func() {
		if t.Failed() { // every incarnation's log, for what the output's tails leave out
			f := filepath.Join(os.TempDir(), fmt.Sprintf("spa-chaos-%d.log", time.Now().Unix()))
			if os.WriteFile(f, []byte(x.allLogs()), 0o600) == nil {
				t.Logf("every node's log, all incarnations: %s", f)
			}
		}
	})
	x.run()
	x.check()
	x.report()
}

// chaosRun is one run of the suite.
type chaosRun struct {
	t    *testing.T
	net  *chaosNet
	c    *testCluster
	full bool
	// hold is how long a nemesis stays in place once it has taken effect.
	hold time.Duration

	bookings *load
	rooms    *roomLoad
	stock    *stockLoad
	logins   *loginLoad

	began   time.Time
	mu      sync.Mutex
	logs    map[string][]string // earlier incarnations' logs, by node
	results []nemesisResult
}

// nemesisResult is what one nemesis did to the cluster: what it measured
// while in place (effect, after: e.g. how long until the other nodes
// owned every partition), what the nodes saw at its end (during), and how
// long after it was lifted until all three nodes agreed on members and
// owners again and every node was ready (recovery).
type nemesisResult struct {
	name     string
	effect   string
	after    time.Duration
	during   string
	recovery time.Duration
}

// effect is what a nemesis measured while in place.
type effect struct {
	what  string
	after time.Duration
}

func startChaos(t *testing.T, base string, full bool) *chaosRun {
	pg, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	pgAddr := pg.Host
	if pg.Port() == "" {
		pgAddr += ":5432"
	}
	bin := buildBinary(t)
	n := newChaosNet(t, 3, pgAddr)
	x := &chaosRun{t: t, net: n, full: full, hold: 2 * clusterLeaseTTL, logs: map[string][]string{}, began: time.Now()}
	if full {
		x.hold = 10 * clusterLeaseTTL
	}
	x.c = startChaosCluster(t, n.wrapper(bin), n)
	return x
}

// startChaosCluster starts three nodes, node i in namespace i, on fixed
// ports of their own addresses; each reaches PostgreSQL through its proxy.
func startChaosCluster(t *testing.T, bin string, n *chaosNet) *testCluster {
	t.Helper()
	db := pgSchemaURL(t)
	if err := run(t.Context(), []string{"migrate"}, envFunc(map[string]string{"DATABASE_URL": db}), ioDiscard{}, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, bin: bin, db: db}
	var routes []string
	for _, ip := range n.ips {
		routes = append(routes, ip+":6222")
	}
	for i, ip := range n.ips {
		env := map[string]string{
			"CHAOS_NETNS":            n.ns[i],
			"DATABASE_URL":           n.dbURL(i, db),
			"SPA_TOKEN_SECRET":       clusterSecret,
			"SPA_DATA_DIR":           t.TempDir(),
			"SPA_DEV_ALLOW_REMOTE":   "1", // dev mode (login codes in the log) on the namespaces' addresses
			"SPA_HTTP_ADDR":          ip + ":8080",
			"SPA_ADMIN_ADDR":         ip + ":9090",
			"SPA_HTTP_ADVERTISE":     "http://" + ip + ":8080",
			"SPA_NATS_PORT":          "4222",
			"SPA_NODE_NAME":          fmt.Sprintf("n%d", i),
			"SPA_CLUSTER_ADDR":       ip + ":6222",
			"SPA_CLUSTER_ROUTES":     strings.Join(routes, ","),
			"SPA_CLUSTER_LEASE_TTL":  clusterLeaseTTL.String(),
			"SPA_SLOT_STEP":          "30m",
			"SPA_SHUTDOWN_TIMEOUT":   "10s",
			"SPA_NOTIFY_QUIET_HOURS": "off",
			// The test is the load balancer: X-Forwarded-For names the client.
			"SPA_TRUSTED_PROXIES": n.hostIP,
			// A dead node's messages are handed out again soon.
			"SPA_NOTIFY_ACK_WAIT": "10s",
		}
		withoutHoardingCaps(env)
		c.nodes = append(c.nodes, &clusterProc{name: env["SPA_NODE_NAME"], env: env})
	}
	c.startAll(t, 60*time.Second)
	return c
}

type ioDiscard struct{}

func (ioDiscard) Write(b []byte) (int, error) { return len(b), nil }

// run seeds the catalogue, starts the workloads and applies the nemeses
// one after the other, each lifted and recovered from before the next.
func (x *chaosRun) run() {
	t, c, n := x.t, x.c, x.net
	// 24 calendars spread over the partitions (so that every nemesis
	// hits some), each open for ten days: the load does not run out of
	// free slots, and wins go on through every nemesis.
	s := c.setUp(24)
	day := s.slots
	for d := 1; d < 10; d++ {
		for _, start := range day {
			at, err := time.Parse(time.RFC3339, start)
			if err != nil {
				t.Fatal(err)
			}
			s.slots = append(s.slots, at.AddDate(0, 0, d).Format(time.RFC3339))
		}
	}
	x.rooms = startRoomLoad(t, c, 2)
	x.stock = startStockLoad(t, c)
	x.logins = startLoginLoad(t, c)
	x.bookings = c.startLoad(s, 6)
	t.Logf("CHAOS cluster formed and seeded at +%v", time.Since(x.began).Round(time.Second))
	x.bookings.await(t, loadStretch/4, "", "the load to run before the first nemesis")

	// Partition one node from the others, both ways: the two others
	// take its partitions over.
	x.nemesis("partition n2 from n0 and n1 (both ways)", func() effect {
		n.isolate(2)
		e := effect{"n0 and n1 own every partition", x.takeover(0, 1)}
		time.Sleep(x.hold / 2)
		return e
	}, func() { n.heal(2) })

	// One way: n1's packets to n0 are dropped, n0's reach n1.
	x.nemesis("partition n1 → n0 (one way)", func() effect {
		n.cutOneWay(1, 0)
		time.Sleep(x.hold)
		return effect{}
	}, func() { n.heal(1) })

	// A node cut from the database: its connections hang. It answers 503
	// on /readyz and goes on standby, and n1 and n2 take its partitions,
	// so its calendars keep booking through them.
	x.nemesis("partition n0 from the database", func() effect {
		n.cutDatabase(0)
		began := time.Now()
		testwait.For(t, time.Minute, "n0 to report itself not ready", func() bool { return !x.ready(c.nodes[0]) })
		testwait.For(t, time.Minute, "n1 and n2 to own every partition, n0 on standby", func() bool { return c.standingIn(0, 1, 2) })
		e := effect{"n0's /readyz 503, n0 on standby, n1 and n2 own every partition", time.Since(began)}
		time.Sleep(x.hold)
		return e
	}, func() { n.heal(0) })

	// A bad link: 20% loss between n0 and n1, n0's sending slowed to a
	// 1 Mbit/s queue of up to 200 ms, and 20 ms more on every chunk of
	// n2's database traffic.
	x.nemesis("latency and loss (n0↔n1 20% loss, n0 1mbit/200ms queue, n2 database +20ms)", func() effect {
		n.lossy(0, 1, 0.2)
		n.slowLink(0, "1mbit", "200ms")
		n.db[2].delay.Store(int64(20 * time.Millisecond))
		began, claims := time.Now(), loadStretch/8
		if x.full {
			claims = loadStretch
		}
		x.bookings.await(t, claims, "", "the load to go on over the bad links")
		e := effect{fmt.Sprint(claims, " claims decided"), time.Since(began)}
		time.Sleep(x.hold)
		return e
	}, func() { n.heal(0); n.heal(2) })

	// A paused process (SIGSTOP) past its leases.
	x.nemesis("pause n1 (SIGSTOP)", func() effect {
		c.setLive(0, 2)
		if err := c.nodes[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		e := effect{"n0 and n2 own every partition", x.takeover(0, 2)}
		time.Sleep(x.hold / 2)
		return e
	}, func() {
		if err := c.nodes[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		c.setLive(0, 1, 2)
	})

	// kill -9, then started again on its data.
	x.nemesis("kill -9 n2, then start it again", func() effect {
		c.setLive(0, 1)
		if err := c.nodes[2].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-c.nodes[2].exited
		e := effect{"n0 and n1 own every partition", x.takeover(0, 1)}
		time.Sleep(x.hold / 2)
		return e
	}, func() {
		x.restart(c.nodes[2])
		c.setLive(0, 1, 2)
	})

	// Rolling restart: each node stopped gracefully and started again,
	// one after the other (the last one's recovery is reported); the short
	// form restarts n2 only.
	name, first := "rolling restart (SIGTERM, start again, one node after the other)", c.nodes[:2]
	if !x.full {
		name, first = "graceful restart of n2 (SIGTERM, start again)", nil
	}
	x.nemesis(name, func() effect {
		began := time.Now()
		for i, p := range first {
			x.stopGracefully(i)
			x.restart(p)
			c.setLive(0, 1, 2)
			c.waitSettled(time.Minute, 0, 1, 2)
		}
		x.stopGracefully(2)
		if first == nil {
			return effect{"n2 stopped", time.Since(began)}
		}
		return effect{"n0 and n1 restarted and settled, n2 stopped", time.Since(began)}
	}, func() {
		x.restart(c.nodes[2])
		c.setLive(0, 1, 2)
	})

	x.bookings.await(t, loadStretch, "", "the load to run after the last nemesis")
	x.bookings.finish()
	x.rooms.finish()
	x.stock.finish()
	x.logins.finish()
}

// nemesis applies a fault, lifts it, and waits for the cluster to
// recover: all three nodes agree on members and owners, and all are
// ready.
func (x *chaosRun) nemesis(name string, apply func() effect, lift func()) {
	x.t.Helper()
	x.t.Logf("CHAOS nemesis at +%v: %s", time.Since(x.began).Round(time.Second), name)
	e := apply()
	during := x.views()
	lifted := time.Now()
	lift()
	x.c.waitSettled(2*time.Minute, 0, 1, 2)
	testwait.For(x.t, 2*time.Minute, "every node to be ready after "+name, func() bool {
		return x.ready(x.c.nodes[0]) && x.ready(x.c.nodes[1]) && x.ready(x.c.nodes[2])
	})
	r := nemesisResult{name: name, effect: e.what, after: e.after, during: during, recovery: time.Since(lifted)}
	x.t.Logf("CHAOS %s: %s after %v; at its end %s; recovered %v after it was lifted",
		name, r.effect, r.after.Round(time.Millisecond), r.during, r.recovery.Round(time.Millisecond))
	x.results = append(x.results, r)
	// Some load decided through the recovered cluster before the next.
	x.bookings.await(x.t, loadStretch/4, "", "the load to go on after "+name)
}

// views sums up what each live node sees: how many members, and how many
// partitions each node owns (n0 10/11/11 = n0 sees itself own 10, n1 11
// and n2 11; "-" for a node that does not answer).
func (x *chaosRun) views() string {
	var parts []string
	for _, p := range x.c.nodes {
		v, err := x.c.view(p)
		if err != nil {
			parts = append(parts, p.name+" -")
			continue
		}
		owned := make([]int, len(x.c.nodes))
		for _, o := range v.Partitions {
			for i, q := range x.c.nodes {
				if q.name == o.Owner {
					owned[i]++
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s %dm %d/%d/%d", p.name, len(v.Members), owned[0], owned[1], owned[2]))
	}
	return strings.Join(parts, ", ")
}

// takeover waits until the nodes in idx agree, among themselves alone, on
// members and owners, and returns how long it took.
func (x *chaosRun) takeover(idx ...int) time.Duration {
	x.t.Helper()
	began := time.Now()
	var seen []string
	for {
		if _, ok := x.c.settled(idx...); ok {
			return time.Since(began)
		}
		if v := x.views(); len(seen) == 0 || seen[len(seen)-1] != v {
			seen = append(seen, fmt.Sprintf("%6.1fs %s", time.Since(began).Seconds(), v))
		}
		if time.Since(began) > 2*time.Minute {
			x.t.Fatalf("nodes %v did not agree on members and owners within 2m; what the nodes saw (members, partitions owned by n0/n1/n2):\n%s",
				idx, strings.Join(seen, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (x *chaosRun) ready(p *clusterProc) bool {
	res, err := (&http.Client{Timeout: 2 * time.Second}).Get(p.base + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// restart starts p again, keeping the log of the incarnation before.
func (x *chaosRun) restart(p *clusterProc) {
	x.mu.Lock()
	x.logs[p.name] = append(x.logs[p.name], p.stderr.String())
	x.mu.Unlock()
	x.c.restart(p)
}

func (x *chaosRun) stopGracefully(i int) {
	p := x.c.nodes[i]
	var others []int
	for j := range x.c.nodes {
		if j != i {
			others = append(others, j)
		}
	}
	x.c.setLive(others...)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		x.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			x.t.Fatalf("%s: graceful stop: %v\n%s", p.name, err, tail(p.stderr.String(), 20))
		}
	case <-time.After(30 * time.Second):
		// SIGQUIT makes the Go runtime print every goroutine's stack on
		// stderr: what the stop waits for.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
		}
		f := filepath.Join(os.TempDir(), "spa-chaos-"+p.name+"-stuck.log")
		_ = os.WriteFile(f, []byte(p.stderr.String()), 0o600)
		x.t.Fatalf("%s did not stop within 30s; its log and goroutine stacks (SIGQUIT) are in %s", p.name, f)
	}
}

// allLogs is every incarnation's log of every node.
func (x *chaosRun) allLogs() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var b strings.Builder
	for _, p := range x.c.nodes {
		for _, l := range append(slices.Clone(x.logs[p.name]), p.stderr.String()) {
			for _, line := range strings.Split(l, "\n") {
				b.WriteString(p.name + " " + line + "\n")
			}
		}
	}
	return b.String()
}

// check runs the checks of the run; any failure fails the test.
func (x *chaosRun) check() {
	t := x.t
	// Bookings: linearizable, acknowledged holds stored, no overlap.
	x.c.verify(x.bookings)
	conn, err := pgx.Connect(context.Background(), x.c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	x.rooms.check(t, conn)
	x.stock.check(t, x.c, conn)
	x.logins.check(t, x)
}

func (x *chaosRun) report() {
	x.t.Logf("CHAOS run took %v (full form %v)", time.Since(x.began).Round(time.Second), x.full)
	for _, r := range x.results {
		effect := "–"
		if r.effect != "" {
			effect = fmt.Sprintf("%s after %v", r.effect, r.after.Round(10*time.Millisecond))
		}
		x.t.Logf("CHAOS result | %s | %s | %s | %v |", r.name, effect, r.during, r.recovery.Round(10*time.Millisecond))
	}
}

// Resource claims: a treatment needing the one room, booked with any of
// its own staff (not the bookings load's, whose history must not see
// refusals it did not cause).
type roomLoad struct {
	mu       sync.Mutex
	acked    []string
	statuses map[int]int
	wg       sync.WaitGroup
	stop     chan struct{}
}

func startRoomLoad(t *testing.T, c *testCluster, clients int) *roomLoad {
	t.Helper()
	a := api{t, c.nodes[0].base}
	week := everyDay("08:00", "18:00")
	var staff []string
	for i := range 3 {
		id := fmt.Sprintf("room-st%d", i)
		a.must(200, "PUT", "/v1/admin/staff/"+id, c.admin, map[string]any{"name": id, "time_zone": "America/Bogota",
			"weekly_hours": week, "active": true, "version": 0})
		staff = append(staff, id)
	}
	a.must(200, "PUT", "/v1/admin/resources/room", c.admin, map[string]any{"name": "Room", "capacity": 1, "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/services/room-treatment", c.admin, map[string]any{"name": "Treatment", "category": "body",
		"duration_minutes": 45, "buffer_after_minutes": 15, "resource_id": "room", "active": true, "version": 0})
	bogota, _ := time.LoadLocation("America/Bogota")
	// Ten days of the room: a day is booked out in a few seconds.
	var slots []string
	for d := 3; d < 13; d++ {
		day := time.Now().In(bogota).AddDate(0, 0, d)
		for m := 8 * 60; m < 17*60; m += 30 {
			slots = append(slots, time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, bogota).Format(time.RFC3339))
		}
	}
	l := &roomLoad{statuses: map[int]int{}, stop: make(chan struct{})}
	for i := range clients {
		token := clusterToken(t, fmt.Sprint("room", i), "client")
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				case <-time.After(time.Duration(100+rand.N(200)) * time.Millisecond):
				}
				status, out, err := shopCall(c.pick().base, "POST", "/v1/appointments", token, map[string]any{
					"service_id": "room-treatment", "staff_id": staff[rand.N(len(staff))], "start": slots[rand.N(len(slots))]})
				l.mu.Lock()
				if err != nil {
					status = 0
				}
				l.statuses[status]++
				if id, _ := out["id"].(string); status == 201 && id != "" {
					l.acked = append(l.acked, id)
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *roomLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// check: the room (capacity one) never has two live appointments whose
// padded intervals overlap, and every acknowledged one is stored live.
func (l *roomLoad) check(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	t.Logf("room claims by status %v", l.statuses)
	var overlaps int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM appointments a JOIN appointments b
		ON a.resource_id = b.resource_id AND a.id < b.id
		AND a.start_at - make_interval(secs => a.buffer_before_seconds) < b.end_at + make_interval(secs => b.buffer_after_seconds)
		AND b.start_at - make_interval(secs => b.buffer_before_seconds) < a.end_at + make_interval(secs => a.buffer_after_seconds)
		WHERE a.resource_id = 'room' AND a.status IN ('held', 'confirmed') AND b.status IN ('held', 'confirmed')`).Scan(&overlaps); err != nil {
		t.Fatal(err)
	}
	if overlaps != 0 {
		t.Errorf("the room (capacity 1) has %d pairs of overlapping live appointments", overlaps)
	}
	rows, err := conn.Query(ctx, `SELECT id FROM appointments WHERE resource_id = 'room' AND status = 'held'`)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range l.acked {
		if !slices.Contains(stored, id) {
			t.Errorf("acknowledged room booking %s is not stored as held", id)
		}
	}
	if len(l.acked) == 0 {
		t.Error("the room load won no booking at all")
	}
}

// Stock: carts reserve one unit of a variant and check out. The
// reservations form a history checked with porcupine against a counter
// of the variant's units; checkouts are retried with their
// Idempotency-Key until answered.
type stockLoad struct {
	mu       sync.Mutex
	ops      []porcupine.Operation
	t0       time.Time
	stock    map[string]int
	statuses map[string]int
	orders   map[string]string // acknowledged order id → cart
	wg       sync.WaitGroup
	stop     chan struct{}
}

// stockInput is one reservation: which variant, of how many units.
type stockInput struct {
	variant string
	units   int
}

// stockModel: the state of a variant is how many of its units are
// reserved (no reservation is given back during the run). A reservation
// is granted only while a unit is free and refused only when none is.
var stockModel = (&porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			v := op.Input.(stockInput).variant
			if _, ok := by[v]; !ok {
				order = append(order, v)
			}
			by[v] = append(by[v], op)
		}
		var out [][]porcupine.Operation
		for _, v := range order {
			out = append(out, by[v])
		}
		return out
	},
	Init: func() []any { return []any{0} },
	Step: func(state, input, output any) []any {
		taken, units := state.(int), input.(stockInput).units
		switch output.(claimcheck.Outcome) {
		case claimcheck.Won:
			if taken >= units {
				return nil
			}
			return []any{taken + 1}
		case claimcheck.Refused:
			if taken < units {
				return nil
			}
			return []any{taken}
		default:
			if taken < units {
				return []any{taken + 1, taken}
			}
			return []any{taken}
		}
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("reserve %s → %v", input.(stockInput).variant, output)
	},
}).ToModel()

func startStockLoad(t *testing.T, c *testCluster) *stockLoad {
	t.Helper()
	// One scarce variant, sold out early in the run, and plenty of two
	// others.
	l := &stockLoad{t0: time.Now(), stock: map[string]int{"oil-scarce": 6, "oil-a": 400, "oil-b": 400},
		statuses: map[string]int{}, orders: map[string]string{}, stop: make(chan struct{})}
	a := api{t, c.nodes[1].base}
	a.must(200, "PUT", "/v1/admin/shop/categories/oils", c.admin, map[string]any{"name": "Oils", "active": true, "version": 0})
	var variants []string
	for v, units := range l.stock {
		a.must(200, "PUT", "/v1/admin/shop/products/p-"+v, c.admin, map[string]any{"name": "Oil", "category_id": "oils", "active": true, "version": 0})
		a.must(200, "PUT", "/v1/admin/shop/variants/"+v, c.admin, map[string]any{"product_id": "p-" + v, "sku": strings.ToUpper(v),
			"price_minor": 5000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
		a.mustAfter503(201, "POST", "/v1/admin/shop/variants/"+v+"/stock-movements", c.admin,
			map[string]any{"kind": "receipt", "qty": units, "reason": "delivery"}, "Idempotency-Key", "receipt-"+v)
		variants = append(variants, v)
	}
	slices.Sort(variants)
	for i := range 4 {
		l.wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-l.stop:
					return
				case <-time.After(time.Duration(50+rand.N(100)) * time.Millisecond):
				}
				// A client of its own per cart: a signed-in client has one
				// open cart, and each reservation needs a new one.
				token, err := mintClusterToken(fmt.Sprintf("shopper-%d-%d", i, k), "client")
				if err != nil {
					l.count("token: " + err.Error())
					continue
				}
				l.shop(c, token, variants[rand.N(len(variants))])
			}
		})
	}
	return l
}

// mintClusterToken is clusterToken for goroutines.
func mintClusterToken(subject, role string) (string, error) {
	var out strings.Builder
	err := run(context.Background(), []string{"token", "--subject", subject, "--role", role},
		envFunc(map[string]string{"SPA_TOKEN_SECRET": clusterSecret}), &out, ioDiscard{})
	return strings.TrimSpace(out.String()), err
}

func (l *stockLoad) count(what string) {
	l.mu.Lock()
	l.statuses[what]++
	l.mu.Unlock()
}

// shop: a cart, one unit of variant, and a checkout when it was granted.
func (l *stockLoad) shop(c *testCluster, token, variant string) {
	status, out, err := shopCall(c.pick().base, "POST", "/v1/carts", token, nil)
	if err != nil || (status != 201 && status != 200) {
		l.count(fmt.Sprint("cart ", status))
		return
	}
	cart, _ := out["id"].(string)
	call := time.Since(l.t0).Nanoseconds()
	status, out, err = shopCall(c.pick().base, "PUT", "/v1/carts/"+cart+"/lines/"+variant, token, map[string]any{"qty": 1})
	ret := time.Since(l.t0).Nanoseconds()
	outcome := claimcheck.Ambiguous
	code := ""
	if e, ok := out["error"].(map[string]any); ok {
		code, _ = e["code"].(string)
	}
	switch {
	case err == nil && status == 200:
		outcome = claimcheck.Won
	case err == nil && status == 409 && code == "out_of_stock":
		outcome = claimcheck.Refused
	}
	l.mu.Lock()
	l.ops = append(l.ops, porcupine.Operation{ClientId: 0, Input: stockInput{variant, l.stock[variant]}, Call: call, Output: outcome, Return: ret})
	l.statuses[fmt.Sprint("reserve ", status, " ", code)]++
	l.mu.Unlock()
	if outcome != claimcheck.Won {
		return
	}
	// The checkout, retried with its key until it is answered for sure.
	for try := 0; try < 40; try++ {
		status, out, err = shopCall(c.pick().base, "POST", "/v1/carts/"+cart+"/checkout", token, map[string]any{"fulfilment": "pickup"},
			"Idempotency-Key", "checkout-"+cart)
		if err == nil && status == 201 {
			id, _ := out["id"].(string)
			l.mu.Lock()
			l.orders[id] = cart
			l.mu.Unlock()
			l.count("checkout 201")
			return
		}
		if err == nil && status < 500 && status != 409 {
			l.count(fmt.Sprint("checkout ", status))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	l.count("checkout unanswered")
}

func (l *stockLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// check: the reservations are linearizable against each variant's
// stock; no variant is oversold or negative; every acknowledged order is
// stored; no cart has two orders.
func (l *stockLoad) check(t *testing.T, c *testCluster, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	t.Logf("shop: %d reservations, answers %v", len(l.ops), l.statuses)
	// Each operation of the history is a client of its own: the shoppers
	// do not wait for one answer before another cart's request.
	ops := slices.Clone(l.ops)
	for i := range ops {
		ops[i].ClientId = i
	}
	switch res, info := porcupine.CheckOperationsVerbose(stockModel, ops, time.Minute); res {
	case porcupine.Illegal:
		f := filepath.Join(os.TempDir(), fmt.Sprintf("spa-chaos-stock-%d.html", time.Now().Unix()))
		if out, err := os.Create(f); err == nil {
			_ = porcupine.Visualize(stockModel, info, out)
			out.Close()
		}
		t.Errorf("porcupine: the stock history is not linearizable (the longest linearizable prefix, drawn: %s)", f)
	case porcupine.Unknown:
		t.Error("porcupine: the stock history's check timed out")
	}
	for v, units := range l.stock {
		var taken int
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(qty), 0) FROM shop_reservations WHERE variant_id = $1 AND state IN ('live', 'consumed')`, v).Scan(&taken); err != nil {
			t.Fatal(err)
		}
		if taken > units {
			t.Errorf("%s oversold: %d units reserved or sold of %d", v, taken, units)
		}
		// The variant's inventory actor answers the stock read; right
		// after the last nemesis it may still be activating on its owner.
		var st map[string]any
		began := time.Now()
		testwait.Until(t, 2*time.Minute, v+"'s stock to be readable", func() error {
			status, out, err := shopCall(c.pick().base, "GET", "/v1/admin/shop/variants/"+v+"/stock", c.admin, nil)
			if err != nil || status != 200 {
				return fmt.Errorf("%d %v %v", status, out, err)
			}
			st = out
			return nil
		})
		if waited := time.Since(began); waited > 5*time.Second {
			t.Logf("CHAOS %s's stock answered after %v", v, waited.Round(time.Millisecond))
		}
		onHand, avail := st["on_hand"].(float64), st["available"].(float64)
		if onHand < 0 || avail < 0 {
			t.Errorf("%s: on hand %v, available %v", v, onHand, avail)
		}
		t.Logf("%s: %d units, %d reserved or sold; on hand %v, available %v", v, units, taken, onHand, avail)
	}
	// A cart line is one reservation: two for one cart and variant (none
	// lapses within a run) took a unit no operation of the history asked
	// for.
	rows, err := conn.Query(ctx, `SELECT r.cart_id, r.variant_id, r.id, r.state, r.qty, r.order_id, r.created_at, r.updated_at
		FROM shop_reservations r JOIN (SELECT cart_id, variant_id FROM shop_reservations WHERE state IN ('live', 'consumed')
		GROUP BY cart_id, variant_id HAVING count(*) > 1) d ON d.cart_id = r.cart_id AND d.variant_id = r.variant_id
		ORDER BY r.cart_id, r.created_at`)
	if err != nil {
		t.Fatal(err)
	}
	twice := map[string]bool{}
	for rows.Next() {
		var cart, variant, id, state, order string
		var qty int64
		var created, updated time.Time
		if err := rows.Scan(&cart, &variant, &id, &state, &qty, &order, &created, &updated); err != nil {
			t.Fatal(err)
		}
		twice[cart] = true
		t.Logf("cart %s %s: reservation %s %s qty %d order %q created %s updated %s", cart, variant, id, state, qty, order,
			created.Format(time.RFC3339Nano), updated.Format(time.RFC3339Nano))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(twice) != 0 {
		t.Errorf("%d carts hold two reservations of one variant (rows above)", len(twice))
	}
	var dupCarts int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT cart_id FROM orders WHERE cart_id <> '' GROUP BY cart_id HAVING count(*) > 1) d`).Scan(&dupCarts); err != nil {
		t.Fatal(err)
	}
	if dupCarts != 0 {
		t.Errorf("%d carts have more than one order", dupCarts)
	}
	for id, cart := range l.orders {
		var got string
		if err := conn.QueryRow(ctx, `SELECT cart_id FROM orders WHERE id = $1`, id).Scan(&got); err != nil || got != cart {
			t.Errorf("acknowledged order %s (cart %s): stored cart %q, %v", id, cart, got, err)
		}
	}
	if len(l.orders) == 0 {
		t.Error("the shop load checked out no order at all")
	}
}

// Login codes: each request is for a phone of its own, sent once.
type loginLoad struct {
	mu       sync.Mutex
	acked    []string // phones answered 202
	statuses map[int]int
	wg       sync.WaitGroup
	stop     chan struct{}
}

func startLoginLoad(t *testing.T, c *testCluster) *loginLoad {
	t.Helper()
	l := &loginLoad{statuses: map[int]int{}, stop: make(chan struct{})}
	l.wg.Go(func() {
		for k := 0; ; k++ {
			select {
			case <-l.stop:
				return
			case <-time.After(time.Duration(200+rand.N(200)) * time.Millisecond):
			}
			// The check finds a phone's message by its last four digits
			// (the log masks the rest): unique for the first 10,000
			// requests, some 40 minutes of this pace.
			phone := fmt.Sprintf("+57310%07d", k)
			// Through the trusted proxy address, from many client
			// addresses: the per-address limit (20 codes an hour) is not
			// what is tested here.
			status, _, err := shopCall(c.pick().base, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone},
				"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", k%250))
			l.mu.Lock()
			if err != nil {
				status = 0
			}
			l.statuses[status]++
			if status == 202 {
				l.acked = append(l.acked, phone)
			}
			l.mu.Unlock()
		}
	})
	return l
}

func (l *loginLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// check: every acknowledged login code was sent once, and no phone got
// two messages; the codes sign in.
func (l *loginLoad) check(t *testing.T, x *chaosRun) {
	t.Helper()
	t.Logf("login codes by status %v", l.statuses)
	if len(l.acked) == 0 {
		t.Error("no login code was acknowledged")
		return
	}
	codes, lines := map[string][]string{}, map[string][]string{}
	testwait.Until(t, time.Minute, "every acknowledged login code in the logs", func() error {
		codes, lines = map[string][]string{}, map[string][]string{}
		for _, line := range strings.Split(x.allLogs(), "\n") {
			i := strings.Index(line, "dev message sink")
			if i < 0 || !strings.Contains(line, `"otp"`) {
				continue
			}
			for _, phone := range l.acked {
				// The masked recipient ends with the last four digits.
				if strings.Contains(line, phone[len(phone)-4:]+`","`) {
					codes[phone] = append(codes[phone], sixDigitCode.FindString(line[i:]))
					lines[phone] = append(lines[phone], line)
				}
			}
		}
		for _, phone := range l.acked {
			if len(codes[phone]) == 0 {
				return fmt.Errorf("no message for %s yet", phone[len(phone)-4:])
			}
		}
		return nil
	})
	for phone, sent := range codes {
		if len(sent) > 1 {
			t.Errorf("login code for …%s sent %d times:\n%s", phone[len(phone)-4:], len(sent), strings.Join(lines[phone], "\n"))
		}
	}
	// A sample of the codes signs in.
	for _, phone := range l.acked[:min(5, len(l.acked))] {
		code := codes[phone][0]
		api{t, x.c.nodes[rand.N(3)].base}.mustAfter503(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code, "device": "chaos"},
			"X-Forwarded-For", "203.0.113.7")
	}
}
