package gateway

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/persistence"
)

// The blocklist's HTTP side: the IP check ahead of every route and the
// admin routes. What a block matches and how the lists are cached is
// actors/service/legal's (docs/legal.md).

// Blocklist is legal.Blocklist, the type cmd shares between the gateway
// (Deps.Blocklist) and a login outside it.
type Blocklist = legal.Blocklist

// errBlocked is the answer to a blocked caller.
var errBlocked = fault.New(fault.CodeBlocked, "")

// refuseBlockedIPs answers 403 blocked to a caller whose IP is on the
// blocklist. Probes stay reachable so an orchestrator never kills a node
// because of a block on its own address.
func (s *server) refuseBlockedIPs(c *fiber.Ctx) error {
	if s.blocks == nil {
		return c.Next()
	}
	switch c.Path() {
	case "/healthz", "/readyz":
		return c.Next()
	}
	a, ok := s.clientAddr(c)
	if ok && s.blocks.IPBlocked(c.UserContext(), a) {
		s.blockedIPs.Inc()
		return errBlocked
	}
	return c.Next()
}

// clientAddr is clientIP parsed (false: not an address). Without a
// trusted proxy it reads the peer's address as it is, instead of writing
// it out and parsing it back on every request.
func (s *server) clientAddr(c *fiber.Ctx) (netip.Addr, bool) {
	if s.deps.Config.ProxyHeader == "" || !c.IsProxyTrusted() {
		return netip.AddrFromSlice(c.Context().RemoteIP())
	}
	a, err := netip.ParseAddr(s.clientIP(c))
	return a, err == nil
}

// registerBlocking adds the blocklist admin routes and the IP check.
func (s *server) registerBlocking(app *fiber.App) {
	s.blocks = s.legalSvc.Blocklist()
	s.blockedIPs = s.counter("spa_http_blocked_requests_total",
		"Requests refused with 403 blocked because the client IP is on the blocklist.")
	admin := RequireRole(auth.RoleAdmin)
	changed := func(h fiber.Handler) fiber.Handler {
		return func(c *fiber.Ctx) error {
			err := h(c)
			s.blocks.Invalidate()
			return err
		}
	}
	app.Get("/v1/admin/blocks", admin, s.listBlocks)
	app.Post("/v1/admin/blocks", admin, changed(s.mutate(s.addBlock)))
	app.Delete("/v1/admin/blocks/:id", admin, changed(s.mutate(s.removeBlock)))
}

type blockJSON struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Label     string     `json:"label"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Active    bool       `json:"active"`
}

func blockView(b legal.Block) blockJSON {
	return blockJSON{
		ID: b.ID, Kind: string(b.Kind), Label: b.Label, Reason: b.Reason, CreatedBy: b.CreatedBy,
		CreatedAt: b.CreatedAt.UTC(), ExpiresAt: utcOrNil(b.ExpiresAt), Active: b.Active,
	}
}

type blockInput struct {
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Reason    string     `json:"reason"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func (s *server) addBlock(c *fiber.Ctx, tx persistence.Tx) error {
	var in blockInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	blk, err := s.legalSvc.AddBlock(c.UserContext(), tx, s.caller(c), legal.BlockInput(in))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(blockView(blk))
}

func (s *server) removeBlock(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.legalSvc.RemoveBlock(c.UserContext(), tx, s.caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listBlocks(c *fiber.Ctx) error {
	var f fieldErrors
	q := legal.BlockQuery{Limit: limitQuery(c, &f, legal.DefaultAuditLimit, legal.MaxAuditLimit), IncludeExpired: c.QueryBool("include_expired")}
	if q.Kind = persistence.BlockKind(c.Query("kind")); q.Kind != "" && !persistence.ValidBlockKind(q.Kind) {
		f.add("kind", "must be ip, phone or document")
	}
	q.BeforeID = beforeCursor(c, &f)
	if err := f.err(); err != nil {
		return err
	}
	rows, next, err := s.legalSvc.Blocks(c.UserContext(), s.caller(c), q)
	if err != nil {
		return err
	}
	page := struct {
		Blocks []blockJSON `json:"blocks"`
		Next   *string     `json:"next"`
	}{Blocks: make([]blockJSON, len(rows)), Next: next}
	for i, r := range rows {
		page.Blocks[i] = blockView(r)
	}
	return c.JSON(page)
}

// counter registers a counter on the gateway's registry. A registration
// failure (the name taken) leaves it counting unregistered, logged: a
// metric must not stop the API from starting.
func (s *server) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	if err := s.deps.Registerer.Register(c); err != nil {
		s.log.Error("register metric", slog.String("name", name), slog.String("error", err.Error()))
	}
	return c
}
