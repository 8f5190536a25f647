// Package shop holds the shop's use cases, from browsing to returns:
//
//   - the catalogue (catalogue.go): anyone browses categories and products,
//     a product's page shows what the inventory actors say is available;
//     admins put categories, products and variants (audited, optimistic
//     versions);
//   - stock (stock.go): admins see a variant's stock and record receipts,
//     adjustments, damage and returns through its inventory actor;
//   - carts (cart.go): anyone fills a cart (signed in, or anonymous with
//     a token), signed-in people merge an anonymous cart into theirs and
//     check out, which turns the cart actor's reservations into an order;
//   - after checkout (orders.go, credit.go): clients read their orders and
//     credit and ask for returns; the front desk marks orders paid,
//     fulfils, cancels and processes returns; admins grant credit and keep
//     the list of clients who pay VIP prices (StoredVIP is the pricing
//     rule the carts apply, through Deps.VIP).
//
// Money is in COP minor units; client credit is a ledger of grants, uses,
// reversals and expiries. The order state machine, refunds and restocks
// are package actors/order's, reservations and stock the inventory and
// cart actors'; this package adds what a caller may ask and see (roles,
// who may act on which order or cart, input ranges, paging) and maps
// refusals to faults. It is not in the gateway so that the API and other
// channels (the WhatsApp bot, the front-desk tools) apply exactly the same
// rules.
//
// Mutations of the store take the caller's transaction (the gateway's
// idempotency record commits with them). Those that give units back
// return the variants touched; once the transaction committed, pass them
// to Restock so the inventory actors reload. Cart and stock changes happen
// in actors, which write in transactions of their own; their ids (cart
// checkout's order, a stock movement) come from the caller so a retry
// finds the first attempt's effect.
package shop

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Deps is what the Service needs.
type Deps struct {
	Store persistence.Store
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnRestock, when set, is told which variants got units back (a
	// cancelled order, a processed return) so their inventory actors
	// reload their stock; Restock calls it.
	OnRestock func(variantIDs []string)
	// Inventory reaches the inventory actors (one per variant) and Carts
	// the cart actors; nil: the use cases that need them answer
	// unavailable.
	Inventory *inventory.Client
	Carts     *cart.Client
	// VIP says whether a signed-in caller pays VIP prices (nil: nobody);
	// see StoredVIP.
	VIP func(auth.Claims) bool
	// Keys reads answers carts stored under idempotency keys.
	Keys keyed.Config
	// Caps caps what anonymous carts reserve (zero: nothing).
	Caps CartCaps
}

// CartCaps are the hoarding caps of anonymous carts
// (actors/service/caps): units reserved per cart and per client IP, and
// the share of a variant's stock (percent of its units on hand) one cart
// or one IP may reserve, counted cluster-wide by quota actors for TTL
// (the anonymous cart TTL) after a line's last change, and given back
// when a line is lowered or removed or the cart is merged. A limit below
// 1 caps nothing. Signed-in clients are not capped: their number is
// verified and they have one open cart.
type CartCaps struct {
	Guard        *caps.Guard
	PerCart      int64
	PerIP        int64
	SharePercent int64
	TTL          time.Duration
}

// Service runs the shop's use cases.
type Service struct {
	store     persistence.Store
	now       func() time.Time
	onRestock func([]string)
	inventory *inventory.Client
	carts     *cart.Client
	vip       func(auth.Claims) bool
	keys      keyed.Config
	caps      CartCaps
}

// New builds the Service.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Caps.TTL <= 0 {
		d.Caps.TTL = capsTTL
	}
	return &Service{store: d.Store, now: d.Now, onRestock: d.OnRestock, inventory: d.Inventory, carts: d.Carts, vip: d.VIP, keys: d.Keys, caps: d.Caps}
}

// Restock tells the inventory which variants got units back. Call it only
// after the transaction that gave them back committed.
func (s *Service) Restock(variantIDs []string) {
	if len(variantIDs) > 0 && s.onRestock != nil {
		s.onRestock(variantIDs)
	}
}

// ---- Who may ask ---------------------------------------------------------------

var (
	personRoles = []auth.Role{auth.RoleClient, auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
	staffRoles  = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
	adminRoles  = []auth.Role{auth.RoleAdmin}
)

// allow refuses a caller without one of roles (anonymous: 401).
func allow(by service.Caller, roles []auth.Role) error {
	if by.Anonymous() {
		return fault.Unauthenticated("")
	}
	if !slices.Contains(roles, by.Role) {
		return fault.Forbidden("")
	}
	return nil
}

func isStaff(by service.Caller) bool { return slices.Contains(staffRoles, by.Role) }

// actor is by as the order package audits it.
func actor(by service.Caller) order.Actor {
	return order.Actor{ID: by.Subject, Role: string(by.Role), RequestID: by.RequestID}
}

// clientID refuses an id that cannot be a client's.
func clientID(field, id string) error {
	if !check.ClientID.MatchString(id) {
		return fault.Invalid("", fault.FieldError{Field: field, Message: "must be a client id"})
	}
	return nil
}

// ---- Faults --------------------------------------------------------------------

// OrderFault maps the order package's and the store's refusals to the
// faults a client sees; anything else not found is an absent order.
func OrderFault(err error) error {
	var te *order.TransitionError
	var inv order.InvalidAddress
	switch {
	case errors.As(err, &te):
		return fault.New(fault.CodeOrderTransition, te.Error())
	case errors.Is(err, persistence.ErrStatusMismatch):
		return fault.New(fault.CodeOrderTransition, "the order or return changed meanwhile; reload it")
	case errors.Is(err, order.ErrNotReturnable):
		return fault.New(fault.CodeNotReturnable, "")
	case errors.Is(err, persistence.ErrReturnExceedsOrder):
		return fault.New(fault.CodeReturnExceedsOrder, "")
	case errors.Is(err, persistence.ErrInsufficientCredit):
		return fault.New(fault.CodeInsufficientCredit, "")
	case errors.As(err, &inv):
		fields := make([]fault.FieldError, len(inv))
		for i, f := range inv {
			fields[i] = fault.FieldError{Field: "shipping_address." + f.Field, Message: f.Message}
		}
		return fault.Invalid("", fields...)
	}
	return fault.IfNotFound(err, "order")
}

// ---- Pages ---------------------------------------------------------------------

// Page sizes of the order, return and ledger lists.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Page asks for one page of a list, newest first.
type Page struct {
	// Limit is the page size, 1 to MaxLimit (0: DefaultLimit). An edge
	// that cannot read the size it was sent passes -1, which is refused
	// like any size out of range.
	Limit int
	// Before is "" for the first page, else the Next of the page before.
	Before string
}

// List is one page of a list and the cursor of the next (nil: last page).
type List[T any] struct {
	Items []T
	Next  *string
}

// check validates p and returns its limit.
func (p Page) check() (int, error) {
	limit := p.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return 0, fault.Invalid("", fault.FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
	}
	if p.Before != "" {
		if _, err := ulid.ParseStrict(p.Before); err != nil {
			return 0, fault.Invalid("", fault.FieldError{Field: "before", Message: "must be a cursor from a previous page"})
		}
	}
	return limit, nil
}

// readPage reads limit+1 rows with list in a transaction of its own (the
// extra one tells whether another page exists).
func readPage[T any](ctx context.Context, s *Service, limit int, list func(tx persistence.Tx, limit int) ([]T, error), id func(T) string) (List[T], error) {
	var rows []T
	err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		rows, err = list(tx, limit+1)
		return err
	})
	if err != nil {
		return List[T]{}, err
	}
	if len(rows) <= limit {
		return List[T]{Items: rows}, nil
	}
	next := id(rows[limit-1])
	return List[T]{Items: rows[:limit], Next: &next}, nil
}
