package persistence

import (
	"context"
	"net/netip"
	"time"
)

// ---- Blocklist ---------------------------------------------------------

// BlockKind says what a block matches.
type BlockKind string

// Block kinds. Phone and document blocks ("persona non grata") hold a keyed
// blind index of the normalised value, never the value itself.
const (
	BlockIP       BlockKind = "ip"       // Value: a canonical CIDR prefix, e.g. 203.0.113.0/24
	BlockPhone    BlockKind = "phone"    // Value: hex blind index of the E.164 number
	BlockDocument BlockKind = "document" // Value: hex blind index of the document number
)

// Block refuses a caller until it expires or is removed.
type Block struct {
	ID        string // ULID
	Kind      BlockKind
	Value     string
	Label     string // shown to admins: the prefix, or a masked value
	Reason    string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: until removed
}

// ActiveAt reports whether b still blocks at now.
func (b Block) ActiveAt(now time.Time) bool { return b.ExpiresAt.IsZero() || b.ExpiresAt.After(now) }

// BlockListParams selects blocks, newest first.
type BlockListParams struct {
	Kind     BlockKind // empty: every kind
	ActiveAt time.Time // set: only blocks not expired at this instant
	BeforeID string    // empty: from the newest
	Limit    int       // 1..MaxBlockListLimit
}

// MaxBlockListLimit is the largest BlockListParams.Limit accepted; it is
// also the most IP blocks a node keeps in memory.
const MaxBlockListLimit = 10000

// BlockStore keeps the blocklist.
//
// Malformed input (an unknown kind, an IP block whose value is not a
// canonical prefix, an empty value or reason, an expiry not after the
// creation, a limit out of range) is refused with ErrInvalid.
type BlockStore interface {
	// BlockAdd stores b. ErrConflict if an unexpired block of the same kind
	// and value exists; an expired one is replaced.
	BlockAdd(ctx context.Context, b Block) error
	// BlockGet returns one block (expired or not), or ErrNotFound.
	BlockGet(ctx context.Context, id string) (Block, error)
	// BlockRemove deletes a block; ErrNotFound if absent.
	BlockRemove(ctx context.Context, id string) error
	// BlockList returns blocks ordered by ID descending.
	BlockList(ctx context.Context, p BlockListParams) ([]Block, error)
	// BlockFind returns the block of kind and value in force at now, or
	// ErrNotFound.
	BlockFind(ctx context.Context, kind BlockKind, value string, now time.Time) (Block, error)
}

// ValidBlockKind reports whether k is a known kind.
func ValidBlockKind(k BlockKind) bool {
	return k == BlockIP || k == BlockPhone || k == BlockDocument
}

// NormalizeBlock checks a block about to be added.
func NormalizeBlock(b Block) (Block, error) {
	if err := checkID("block", b.ID); err != nil {
		return b, err
	}
	if !ValidBlockKind(b.Kind) {
		return b, invalidf("block kind %q", b.Kind)
	}
	if b.Value == "" || b.Reason == "" {
		return b, invalidf("block needs a value and a reason")
	}
	if b.Kind == BlockIP {
		p, err := netip.ParsePrefix(b.Value)
		if err != nil || p.Masked() != p || p.Addr().Is4In6() {
			return b, invalidf("block IP value %q is not a canonical prefix", b.Value)
		}
	}
	b.CreatedAt, b.ExpiresAt = CanonicalTime(b.CreatedAt), CanonicalTime(b.ExpiresAt)
	if !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(b.CreatedAt) {
		return b, invalidf("block expiry not after its creation")
	}
	return b, nil
}

// NormalizeBlockList checks list parameters.
func NormalizeBlockList(p BlockListParams) (BlockListParams, error) {
	if err := CheckLimit("block list", p.Limit, MaxBlockListLimit); err != nil {
		return p, err
	}
	if p.Kind != "" && !ValidBlockKind(p.Kind) {
		return p, invalidf("block kind %q", p.Kind)
	}
	p.ActiveAt = CanonicalTime(p.ActiveAt)
	return p, nil
}
