package legal

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

	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// The blocklist: IP addresses and ranges refused before any handler runs,
// and "persona non grata" phone and document numbers the login checks with
// Blocklist.IsBlocked. Person blocks are stored as a keyed blind index, so
// the table never holds the number itself.

// DefaultBlocklistTTL bounds how stale another node's change may look: each node
// reloads its IP blocks at most this long after its last load. This node's
// own changes apply at once.
const DefaultBlocklistTTL = 10 * time.Second

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

	snap      atomic.Pointer[ipSnapshot]
	reloading sync.Mutex
	stale     atomic.Bool // set by Invalidate
}

// NewBlocklist returns a Blocklist over store. index hashes phone and
// document numbers (nil disables person blocks); ttl is the reload period
// of the IP snapshot (0: 10s).
func NewBlocklist(store persistence.Store, index *pii.BlindIndex, ttl time.Duration, now func() time.Time, log *slog.Logger) *Blocklist {
	if ttl <= 0 {
		ttl = DefaultBlocklistTTL
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Blocklist{store: store, index: index, now: now, ttl: ttl, log: log, since: time.Since}
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
var ErrNoBlindIndex = errors.New("legal: no blind index key configured for person blocks")

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
			return "", "", errors.New("legal: document number must have 1 to 32 characters")
		}
		return hex.EncodeToString(b.index.Sum(pii.FieldDocument, doc)), pii.MaskDocument(doc), nil
	}
	return "", "", errors.New("legal: not a person block kind")
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

// ---- Admin use cases -------------------------------------------------------

// RevokeBlocked is the revocation reason of the sessions of a user whose
// phone was blocked.
const RevokeBlocked = "blocked"

// Block is a stored block and whether it applies now.
type Block struct {
	persistence.Block
	Active bool
}

// BlockInput adds a block: Kind ip (an address or a CIDR range without
// host bits), phone or document (stored as a blind index and a masked
// label); ExpiresAt nil: until removed.
type BlockInput struct {
	Kind      string
	Value     string
	Reason    string
	ExpiresAt *time.Time
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

// AddBlock adds a block in tx, for admins, and audits it with the masked
// label only. Blocking a phone also ends every session of the user with
// that number: the sign-in check alone would let a session opened before
// the block refresh for months. Call Blocklist().Invalidate after the
// transaction commits.
func (s *Service) AddBlock(ctx context.Context, tx persistence.Tx, by service.Caller, in BlockInput) (Block, error) {
	if err := requireAdmin(by); err != nil {
		return Block{}, err
	}
	now := s.d.Now().UTC()
	var f []fault.FieldError
	bad := func(field, msg string) { f = append(f, fault.FieldError{Field: field, Message: msg}) }
	kind := persistence.BlockKind(in.Kind)
	reason := strings.TrimSpace(in.Reason)
	if n := utf8.RuneCountInString(reason); n < 1 || n > 500 || strings.ContainsFunc(reason, isControl) {
		bad("reason", "must be 1 to 500 printable characters")
	}
	var value, label string
	in.Value = strings.TrimSpace(in.Value)
	switch kind {
	case persistence.BlockIP:
		if p, ok := ipBlockValue(in.Value); ok {
			value, label = p.String(), p.String()
		} else {
			bad("value", "must be an IP address or a CIDR range without host bits, e.g. 203.0.113.0/24")
		}
	case persistence.BlockPhone, persistence.BlockDocument:
		var err error
		value, label, err = s.d.Blocklist.personValue(kind, in.Value)
		switch {
		case errors.Is(err, ErrNoBlindIndex):
			return Block{}, fault.Unavailable("phone and document blocks need the PII index key configured")
		case err != nil && kind == persistence.BlockPhone:
			bad("value", "must be a mobile number, e.g. +573001234567")
		case err != nil:
			bad("value", "must be a document number of 1 to 32 characters")
		}
	default:
		bad("kind", "must be ip, phone or document")
	}
	var expires time.Time
	if in.ExpiresAt != nil {
		if expires = in.ExpiresAt.UTC(); !expires.After(now) {
			bad("expires_at", "must be in the future")
		}
	}
	if len(f) > 0 {
		return Block{}, fault.Invalid("", f...)
	}
	blk := persistence.Block{
		ID: ulid.Make().String(), Kind: kind, Value: value, Label: label, Reason: reason,
		CreatedBy: by.Subject, CreatedAt: now, ExpiresAt: expires,
	}
	if err := tx.BlockAdd(ctx, blk); err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			return Block{}, fault.Conflict("that " + string(kind) + " is already blocked")
		}
		return Block{}, err
	}
	detail := map[string]any{"kind": string(kind), "label": label, "reason": reason}
	if !expires.IsZero() {
		detail["expires_at"] = expires
	}
	revoked, err := s.revokeBlockedPhone(ctx, tx, by, kind, value, now)
	if err != nil {
		return Block{}, err
	}
	if len(revoked) > 0 {
		detail["revoked_sessions"] = len(revoked)
	}
	if err := service.Audit(ctx, tx, s.d.Now(), by, "block.add", "block/"+blk.ID, "", detail); err != nil {
		return Block{}, err
	}
	if s.d.Sessions != nil {
		s.d.Sessions.Forget(now, revoked...) // before the commit, as an admin's revocation does
	}
	blk, err = tx.BlockGet(ctx, blk.ID)
	if err != nil {
		return Block{}, err
	}
	return Block{blk, blk.ActiveAt(now)}, nil
}

// revokeBlockedPhone ends the sessions of the user whose phone was just
// blocked. The blocklist shares the sign-in's blind index (cmd/spa), so
// the block's value is the user's phone index.
func (s *Service) revokeBlockedPhone(ctx context.Context, tx persistence.Tx, by service.Caller, kind persistence.BlockKind, value string, now time.Time) ([]string, error) {
	if kind != persistence.BlockPhone || s.d.Sessions == nil {
		return nil, nil
	}
	index, err := hex.DecodeString(value)
	if err != nil {
		return nil, err
	}
	u, err := tx.UserGetByPhoneIndex(ctx, index)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.d.Sessions.EndSessions(ctx, tx, by, u.ID, RevokeBlocked, now)
}

// RemoveBlock lifts a block in tx, for admins, and audits it. Call
// Blocklist().Invalidate after the transaction commits.
func (s *Service) RemoveBlock(ctx context.Context, tx persistence.Tx, by service.Caller, id string) error {
	if err := requireAdmin(by); err != nil {
		return err
	}
	if _, err := ulid.ParseStrict(id); err != nil {
		return fault.NotFound("block not found")
	}
	blk, err := tx.BlockGet(ctx, id)
	if err != nil {
		return fault.IfNotFound(err, "block")
	}
	if err := tx.BlockRemove(ctx, id); err != nil {
		return fault.IfNotFound(err, "block")
	}
	return service.Audit(ctx, tx, s.d.Now(), by, "block.remove", "block/"+id, "", map[string]any{
		"kind": string(blk.Kind), "label": blk.Label, "reason": blk.Reason,
	})
}

// BlockQuery pages through blocks newest first.
type BlockQuery struct {
	Kind           persistence.BlockKind // "": every kind
	IncludeExpired bool
	BeforeID       string // cursor from a previous page
	Limit          int    // page size
}

// Blocks lists blocks for admins; next is the cursor of the following page.
func (s *Service) Blocks(ctx context.Context, by service.Caller, q BlockQuery) (out []Block, next *string, err error) {
	if err := requireAdmin(by); err != nil {
		return nil, nil, err
	}
	now := s.d.Now().UTC()
	p := persistence.BlockListParams{Kind: q.Kind, ActiveAt: now, BeforeID: q.BeforeID, Limit: q.Limit + 1}
	if q.IncludeExpired {
		p.ActiveAt = time.Time{}
	}
	var rows []persistence.Block
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		rows, err = tx.BlockList(ctx, p)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, next = pageOf(rows, q.Limit, func(r persistence.Block) string { return r.ID })
	out = make([]Block, len(rows))
	for i, r := range rows {
		out[i] = Block{r, r.ActiveAt(now)}
	}
	return out, next, nil
}
