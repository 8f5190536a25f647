package cart

import (
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// The requests a cart actor answers: *View for Create, Get and SetLine,
// *CheckoutReply for Checkout, *SurrenderReply for Surrender. Errors
// travel as values in the replies.

// Auth is who is asking: the signed-in principal's subject ("" when
// anonymous) and the anonymous cart's secret token (as presented). A
// client's cart answers only its owner; an anonymous cart anyone holding
// its token.
type Auth struct {
	Subject string
	Token   string
}

// Create makes the cart: owned by OwnerID, or anonymous with the SHA-256
// TokenHash of its secret token. ErrExists if the cart id is taken.
type Create struct {
	OwnerID   string
	TokenHash []byte
	VIP       bool
}

// Get shows the cart, refreshing its reservations when they are past
// half their life (looking at a cart is activity).
type Get struct {
	Auth Auth
	VIP  bool
}

// SetLine sets the quantity of one variant in the cart (0 removes it),
// reserving or releasing the difference with the variant's inventory
// actor.
type SetLine struct {
	Auth      Auth
	VariantID string
	Qty       int64
	VIP       bool
	// Key, when the client sent an Idempotency-Key, is remembered with the
	// view the change shows (actors/keyed), in the transaction that reads
	// it: a retry under it is answered with that view. (The reservation
	// itself is the variant's actor's write; setting a quantity twice is
	// the same change, so a retry after a crash between the two is safe.)
	Key *keyed.Key
}

// Surrender empties an anonymous cart into the client's cart on sign-in:
// it releases its reservations, marks itself merged into IntoCartID and
// returns what it held, for the client's cart to reserve afresh.
type Surrender struct {
	Auth       Auth
	IntoCartID string
}

// SurrenderReply answers Surrender with the quantities per variant.
type SurrenderReply struct {
	Lines map[string]int64
	Err   error
}

// Checkout turns the cart's reservations into an order, atomically: in
// one store transaction every reservation is consumed (each only if live
// and unexpired), client credit is spent and the order created; if any
// step fails nothing is written. OrderID makes a retry idempotent: a cart
// already checked out under OrderID answers with that order.
type Checkout struct {
	Auth        Auth
	OrderID     string
	Fulfilment  persistence.Fulfilment
	Shipping    persistence.ShippingAddress
	CreditMinor int64 // client credit to apply, at most the amount due
	VIP         bool
	// Key, when the client sent an Idempotency-Key, is remembered with the
	// order in the checkout's transaction.
	Key *keyed.Key
}

// CheckoutReply answers Checkout.
type CheckoutReply struct {
	Order    persistence.Order
	Err      error
	Replayed bool // the answer stored under the request's Key
}

// View is a cart as its owner sees it, priced for them.
type View struct {
	Cart          persistence.Cart
	Lines         []Line
	SubtotalMinor int64
	TaxMinor      int64
	TotalMinor    int64
	Err           error `json:"-"`
	Replayed      bool  `json:"-"` // the answer stored under the request's Key
}

// Line is one variant in a cart.
type Line struct {
	VariantID      string
	ProductID      string
	SKU            string
	Name           string
	Qty            int64
	UnitPriceMinor int64 // the VIP price for VIP clients
	TaxRateBP      int
	ReservationID  string
	ExpiresAt      time.Time // when the reservation lapses unless refreshed
}

// Errors carried in replies.
var (
	// ErrNotFound: there is no such cart (or the caller may not see it:
	// the two are not distinguished, so cart ids cannot be probed).
	ErrNotFound = errors.New("cart: not found")
	// ErrExists: Create for a cart id in use.
	ErrExists = errors.New("cart: already exists")
	// ErrClosed: the cart was checked out, merged or expired.
	ErrClosed = errors.New("cart: closed")
	// ErrEmpty: checkout of a cart with no lines.
	ErrEmpty = errors.New("cart: empty")
	// ErrOutOfStock: the variant has fewer units available than asked.
	ErrOutOfStock = errors.New("cart: out of stock")
	// ErrUnknownVariant: the variant does not exist or is not on sale.
	ErrUnknownVariant = errors.New("cart: unknown or inactive variant")
	// ErrSignInRequired: an anonymous cart cannot be checked out.
	ErrSignInRequired = errors.New("cart: sign in to check out")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("cart: invalid request")
	// ErrRetry: nothing was decided (inventory busy or the store failed).
	ErrRetry = errors.New("cart: not decided; retry")
)

// Answer is what a cart remembers under an idempotency key: the view a
// line change showed, or the order a checkout made.
type Answer struct {
	View  *View              `json:",omitempty"`
	Order *persistence.Order `json:",omitempty"`
}

// refusal builds the reply type msg expects, carrying err.
func refusal(msg any, err error) any {
	switch msg.(type) {
	case *Checkout:
		return &CheckoutReply{Err: err}
	case *Surrender:
		return &SurrenderReply{Err: err}
	default:
		return &View{Err: err}
	}
}
