package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// The blocklist: IP addresses and ranges refused before any handler runs,
// and "persona non grata" phone and document numbers the login checks with
// Blocklist.IsBlocked. Person blocks are stored as a keyed blind index, so
// the table never holds the number itself.

// blocklistTTL bounds how stale another node's change may look: each node
// reloads its IP blocks at most this long after its last load. This node's
// own changes apply at once.
const blocklistTTL = 10 * time.Second

// blocklistRetry is how soon a failed reload is tried again; meanwhile the
// last good snapshot keeps serving.
const blocklistRetry = time.Second

// ipSnapshot is one load of the IP blocks: single addresses in a map, ranges
// in a slice (few in practice).
type ipSnapshot struct {
	loadedAt time.Time
	addrs    map[netip.Addr]time.Time // address → expiry (zero: none)
	ranges   []persistence.Block
	prefixes []netip.Prefix // parallel to ranges
}

func (s *ipSnapshot) blocked(a netip.Addr, now time.Time) bool {
	if exp, ok := s.addrs[a]; ok && (exp.IsZero() || exp.After(now)) {
		return true
	}
	for i, p := range s.prefixes {
		if p.Contains(a) && s.ranges[i].ActiveAt(now) {
			return true
		}
	}
	return false
}

// Blocklist answers "is this caller blocked?". The IP side is an in-memory
// snapshot read without locks on every request; the person side reads the
// store (it runs once per login, not per request). Safe for concurrent use.
type Blocklist struct {
	store persistence.Store
	index *pii.BlindIndex  // nil: no person blocks
	now   func() time.Time // business clock: block expiry
	ttl   time.Duration
	log   *slog.Logger
	// since measures snapshot age on the wall clock, so a test's frozen
	// business clock cannot freeze reloads.
	since func(time.Time) time.Duration

	refused prometheus.Counter // requests refused by refuseBlockedIPs

	snap      atomic.Pointer[ipSnapshot]
	reloading sync.Mutex
	stale     atomic.Bool // set by Invalidate
}

// NewBlocklist returns a Blocklist over store. index hashes phone and
// document numbers (nil disables person blocks); ttl is the reload period
// of the IP snapshot (0: 10s).
func NewBlocklist(store persistence.Store, index *pii.BlindIndex, ttl time.Duration, now func() time.Time, log *slog.Logger) *Blocklist {
	if ttl <= 0 {
		ttl = blocklistTTL
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Blocklist{store: store, index: index, now: now, ttl: ttl, log: log, since: time.Since,
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})}
}

// Invalidate makes the next request reload the IP blocks: call it after a
// change on this node, or when another node announces one.
func (b *Blocklist) Invalidate() { b.stale.Store(true) }

// IPBlocked reports whether a is refused. When the store cannot be read it
// answers from the last snapshot (none at all: not blocked): a database
// outage must not turn into refusing everyone.
func (b *Blocklist) IPBlocked(ctx context.Context, a netip.Addr) bool {
	s := b.snap.Load()
	if s == nil || b.stale.Load() || b.since(s.loadedAt) >= b.ttl {
		s = b.reload(ctx)
	}
	return s != nil && s.blocked(a.Unmap(), b.now())
}

// reload loads a new snapshot; concurrent callers take the current one
// rather than queue behind the read.
func (b *Blocklist) reload(ctx context.Context) *ipSnapshot {
	cur := b.snap.Load()
	if !b.reloading.TryLock() {
		if cur == nil { // the first load: wait for it
			b.reloading.Lock()
			defer b.reloading.Unlock()
			return b.snap.Load()
		}
		return cur
	}
	defer b.reloading.Unlock()
	b.stale.Store(false)
	now := b.now()
	var blocks []persistence.Block
	err := b.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		blocks, err = tx.BlockList(ctx, persistence.BlockListParams{
			Kind: persistence.BlockIP, ActiveAt: now, Limit: persistence.MaxBlockListLimit,
		})
		return err
	})
	if err != nil {
		b.log.Warn("blocklist reload failed; serving the last snapshot", slog.String("error", err.Error()))
		if cur != nil {
			retry := *cur
			retry.loadedAt = time.Now().Add(blocklistRetry - b.ttl)
			b.snap.Store(&retry)
		}
		return cur
	}
	s := &ipSnapshot{loadedAt: time.Now(), addrs: map[netip.Addr]time.Time{}}
	for _, blk := range blocks {
		p, err := netip.ParsePrefix(blk.Value)
		if err != nil {
			continue // NormalizeBlock let nothing else in
		}
		if p.IsSingleIP() {
			s.addrs[p.Addr()] = blk.ExpiresAt
			continue
		}
		s.ranges, s.prefixes = append(s.ranges, blk), append(s.prefixes, p)
	}
	b.snap.Store(s)
	return s
}

// ErrNoBlindIndex: a phone or document block was asked for but no blind
// index key is configured.
var ErrNoBlindIndex = errors.New("gateway: no blind index key configured for person blocks")

// personValue is the stored form of a phone or document number: the hex
// blind index of its normalised form, and a masked label for admins.
func (b *Blocklist) personValue(kind persistence.BlockKind, raw string) (value, label string, err error) {
	if b.index == nil {
		return "", "", ErrNoBlindIndex
	}
	switch kind {
	case persistence.BlockPhone:
		n, err := phone.Parse(raw)
		if err != nil {
			return "", "", err
		}
		return hex.EncodeToString(b.index.Sum(pii.FieldPhone, n.E164)), n.Masked(), nil
	case persistence.BlockDocument:
		doc := pii.Normalize(pii.FieldDocument, raw)
		if doc == "" || len(doc) > 32 {
			return "", "", errors.New("gateway: document number must have 1 to 32 characters")
		}
		return hex.EncodeToString(b.index.Sum(pii.FieldDocument, doc)), pii.MaskDocument(doc), nil
	}
	return "", "", errors.New("gateway: not a person block kind")
}

// IsBlocked reports whether the phone number or the document number (either
// may be empty) is on the "persona non grata" list. The OTP login calls it
// before sending a code; a phone number that does not parse is not blocked
// (the login refuses it on its own terms). Store errors are returned, so
// the caller can fail closed.
func (b *Blocklist) IsBlocked(ctx context.Context, phoneNumber, document string) (bool, error) {
	if b.index == nil {
		return false, nil
	}
	now := b.now()
	check := func(kind persistence.BlockKind, raw string) (bool, error) {
		if strings.TrimSpace(raw) == "" {
			return false, nil
		}
		value, _, err := b.personValue(kind, raw)
		if err != nil {
			return false, nil
		}
		err = b.store.InTx(ctx, func(tx persistence.Tx) error {
			_, err := tx.BlockFind(ctx, kind, value, now)
			return err
		})
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, persistence.ErrNotFound):
			return false, nil
		}
		return false, err
	}
	if blocked, err := check(persistence.BlockPhone, phoneNumber); blocked || err != nil {
		return blocked, err
	}
	return check(persistence.BlockDocument, document)
}

// ---- HTTP ------------------------------------------------------------------

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
	case "/healthz", "/readyz", "/metrics":
		return c.Next()
	}
	a, err := netip.ParseAddr(s.clientIP(c))
	if err == nil && s.blocks.IPBlocked(c.UserContext(), a) {
		s.blocks.refused.Inc()
		return errBlocked
	}
	return c.Next()
}

// registerBlocking adds the blocklist admin routes and the IP check.
func (s *server) registerBlocking(app *fiber.App) {
	s.blocks = s.deps.Blocklist
	if s.blocks == nil {
		s.blocks = NewBlocklist(s.deps.Store, s.deps.BlindIndex, blocklistTTL, s.deps.Now, s.log)
	}
	s.blocks.refused = s.counter("spa_http_blocked_requests_total",
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

func blockView(b persistence.Block, now time.Time) blockJSON {
	return blockJSON{
		ID: b.ID, Kind: string(b.Kind), Label: b.Label, Reason: b.Reason, CreatedBy: b.CreatedBy,
		CreatedAt: b.CreatedAt.UTC(), ExpiresAt: utcOrNil(b.ExpiresAt), Active: b.ActiveAt(now),
	}
}

type blockInput struct {
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Reason    string     `json:"reason"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// ipBlockValue reads an address ("203.0.113.7", a /32 or /128) or a range
// ("203.0.113.0/24") as a canonical prefix. A range with host bits set is
// refused rather than silently widened or narrowed.
func ipBlockValue(v string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || p.Masked() != p {
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, true
}

func (s *server) addBlock(c *fiber.Ctx, tx persistence.Tx) error {
	var in blockInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	now := s.deps.Now().UTC()
	var f fieldErrors
	kind := persistence.BlockKind(in.Kind)
	reason := f.text("reason", in.Reason, 1, 500)
	var value, label string
	in.Value = strings.TrimSpace(in.Value)
	switch kind {
	case persistence.BlockIP:
		if p, ok := ipBlockValue(in.Value); ok {
			value, label = p.String(), p.String()
		} else {
			f.add("value", "must be an IP address or a CIDR range without host bits, e.g. 203.0.113.0/24")
		}
	case persistence.BlockPhone, persistence.BlockDocument:
		var err error
		value, label, err = s.blocks.personValue(kind, in.Value)
		switch {
		case errors.Is(err, ErrNoBlindIndex):
			return fault.Unavailable("phone and document blocks need the PII index key configured")
		case err != nil && kind == persistence.BlockPhone:
			f.add("value", "must be a mobile number, e.g. +573001234567")
		case err != nil:
			f.add("value", "must be a document number of 1 to 32 characters")
		}
	default:
		f.add("kind", "must be ip, phone or document")
	}
	var expires time.Time
	if in.ExpiresAt != nil {
		if expires = in.ExpiresAt.UTC(); !expires.After(now) {
			f.add("expires_at", "must be in the future")
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	p, _ := Principal(c)
	blk := persistence.Block{
		ID: ulid.Make().String(), Kind: kind, Value: value, Label: label, Reason: reason,
		CreatedBy: p.Subject, CreatedAt: now, ExpiresAt: expires,
	}
	ctx := c.UserContext()
	if err := tx.BlockAdd(ctx, blk); err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			return fault.Conflict("that " + string(kind) + " is already blocked")
		}
		return err
	}
	detail := map[string]any{"kind": string(kind), "label": label, "reason": reason}
	if !expires.IsZero() {
		detail["expires_at"] = expires
	}
	revoked, err := s.revokeBlockedPhone(c, tx, kind, value, now)
	if err != nil {
		return err
	}
	if len(revoked) > 0 {
		detail["revoked_sessions"] = len(revoked)
	}
	if err := s.audit(c, tx, "block.add", "block/"+blk.ID, detail); err != nil {
		return err
	}
	s.forget(now, revoked...) // before the commit, as adminRevokeUser does
	blk, err = tx.BlockGet(ctx, blk.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(blockView(blk, now))
}

// revokeBlockedPhone ends the sessions of the user whose phone was just
// blocked: the sign-in check stops new ones, but without this a session
// opened before the block would refresh for up to SessionMaxAge. The
// blocklist shares the sign-in's blind index (cmd/spa), so the block's
// value is the user's phone index.
func (s *server) revokeBlockedPhone(c *fiber.Ctx, tx persistence.Tx, kind persistence.BlockKind, value string, now time.Time) ([]string, error) {
	if kind != persistence.BlockPhone || s.deps.Identity == nil {
		return nil, nil
	}
	index, err := hex.DecodeString(value)
	if err != nil {
		return nil, err
	}
	ctx := c.UserContext()
	u, err := tx.UserGetByPhoneIndex(ctx, index)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, _ := Principal(c)
	return s.revokeSessions(ctx, tx, u.ID, nil, revokeBlocked, p.Subject, RequestID(c), now)
}

func (s *server) removeBlock(c *fiber.Ctx, tx persistence.Tx) error {
	id := c.Params("id")
	if _, err := ulid.ParseStrict(id); err != nil {
		return fault.NotFound("block not found")
	}
	ctx := c.UserContext()
	blk, err := tx.BlockGet(ctx, id)
	if err != nil {
		return notFound(err, "block")
	}
	if err := tx.BlockRemove(ctx, id); err != nil {
		return notFound(err, "block")
	}
	if err := s.audit(c, tx, "block.remove", "block/"+id, map[string]any{
		"kind": string(blk.Kind), "label": blk.Label, "reason": blk.Reason,
	}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listBlocks(c *fiber.Ctx) error {
	now := s.deps.Now().UTC()
	var f fieldErrors
	p := persistence.BlockListParams{Limit: limitQuery(c, &f, defaultAuditLimit, maxAuditLimit), ActiveAt: now}
	if p.Kind = persistence.BlockKind(c.Query("kind")); p.Kind != "" && !persistence.ValidBlockKind(p.Kind) {
		f.add("kind", "must be ip, phone or document")
	}
	if c.QueryBool("include_expired") {
		p.ActiveAt = time.Time{}
	}
	p.BeforeID = beforeCursor(c, &f)
	if err := f.err(); err != nil {
		return err
	}
	page := struct {
		Blocks []blockJSON `json:"blocks"`
		Next   *string     `json:"next"`
	}{Blocks: []blockJSON{}}
	rows, next, err := readPage(s, c, p.Limit, func(ctx context.Context, tx persistence.Tx, limit int) ([]persistence.Block, error) {
		p.Limit = limit
		return tx.BlockList(ctx, p)
	}, func(r persistence.Block) string { return r.ID })
	if err != nil {
		return err
	}
	page.Next = next
	for _, r := range rows {
		page.Blocks = append(page.Blocks, blockView(r, now))
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
