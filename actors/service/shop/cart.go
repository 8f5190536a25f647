package shop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// ---- Carts ---------------------------------------------------------------------

// A signed-in client has one open cart, found or made by OpenCart; an
// anonymous cart is addressed by an unguessable id and opened with the
// secret token returned once when it is created. Every change goes to the
// cart's actor, which reserves stock with the inventory actors; checkout
// turns the reservations into an order in one transaction. Unknown carts
// and wrong tokens both answer not found, so cart ids cannot be probed.
// Prices are VIP prices for a caller the VIP rule (Deps.VIP) names.

var cartIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// CheckCartID refuses an id that cannot be a cart's as an absent cart
// (the gateway checks path ids first with it).
func CheckCartID(id string) error {
	if !cartIDRE.MatchString(id) {
		return fault.NotFound("cart not found")
	}
	return nil
}

// cartFault maps a cart actor's refusal.
func cartFault(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cart.ErrNotFound):
		return fault.NotFound("cart not found")
	case errors.Is(err, cart.ErrClosed):
		return fault.New(fault.CodeCartClosed, "")
	case errors.Is(err, cart.ErrOutOfStock):
		return fault.New(fault.CodeOutOfStock, "")
	case errors.Is(err, cart.ErrReservationLapsed):
		return fault.New(fault.CodeReservationLapsed, "")
	case errors.Is(err, cart.ErrUnknownVariant):
		return fault.Invalid("", fault.FieldError{Field: "variant", Message: "no such item on sale"})
	case errors.Is(err, cart.ErrEmpty):
		return fault.Conflict("the cart is empty")
	case errors.Is(err, cart.ErrSignInRequired):
		return fault.Unauthenticated("sign in to check out; your cart can be merged into your account")
	case errors.Is(err, cart.ErrExists):
		return fault.Conflict("the cart exists already")
	case errors.Is(err, persistence.ErrInsufficientCredit):
		return fault.New(fault.CodeInsufficientCredit, "")
	case errors.Is(err, money.ErrOutOfRange):
		return fault.New(fault.CodeAmountTooLarge, "the cart's total would exceed 1000000000000 minor units")
	case errors.Is(err, cart.ErrInvalid):
		return fault.Invalid("the cart request is not valid")
	case errors.Is(err, keyed.ErrReused):
		return fault.New(fault.CodeIdempotencyKeyReused, "")
	case errors.Is(err, cart.ErrRetry), errors.Is(err, keyed.ErrElsewhere), errors.Is(err, keyed.ErrUndecided):
		return fault.Unavailable("the cart is busy; retry")
	}
	return err
}

// askCart sends m to a cart's actor with send (a cart.Client method),
// mapping the transport failures every caller shares.
func askCart[M, R any](ctx context.Context, carts *cart.Client, send func(*cart.Client, context.Context, string, M) (R, error), cartID string, m M) (R, error) {
	var zero R
	if carts == nil {
		return zero, fault.Unavailable("the shop's carts are not running on this node")
	}
	r, err := send(carts, ctx, cartID, m)
	if err != nil {
		return zero, fault.Unavailable("the cart did not answer in time; retry")
	}
	return r, nil
}

// askCartView sends m, answered with a cart's view, to the cart's actor
// and turns a refusal in the view into a fault.
func askCartView[M any](ctx context.Context, carts *cart.Client, send func(*cart.Client, context.Context, string, M) (*cart.View, error), cartID string, m M) (*cart.View, error) {
	v, err := askCart(ctx, carts, send, cartID, m)
	if err != nil {
		return nil, err
	}
	if err := cartFault(v.Err); err != nil {
		return nil, err
	}
	return v, nil
}

// CartRef names a cart and, for an anonymous one, carries its token.
type CartRef struct {
	ID    string
	Token string
}

// cartAuth is who is asking, with the cart's token, and whether they get VIP prices.
func (s *Service) cartAuth(by service.Caller, token string) (cart.Auth, bool) {
	return cart.Auth{Subject: by.Subject, Token: token}, !by.Anonymous() && s.vip != nil && s.vip(by.Claims)
}

// OpenedCart is the cart OpenCart found or made.
type OpenedCart struct {
	View *cart.View
	// Created is false when the signed-in caller's open cart was found.
	Created bool
	// Token is a new anonymous cart's secret: show it once.
	Token string
}

// OpenCart returns the signed-in caller's open cart, making one if
// needed, or makes an anonymous cart with a new token.
func (s *Service) OpenCart(ctx context.Context, by service.Caller) (OpenedCart, error) {
	who, vip := s.cartAuth(by, "")
	if who.Subject != "" {
		var open persistence.Cart
		err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			open, err = tx.CartOpenByOwner(ctx, who.Subject)
			return err
		})
		switch {
		case err == nil:
			v, err := askCartView(ctx, s.carts, (*cart.Client).Get, open.ID, &cart.Get{Auth: who, VIP: vip})
			if err != nil {
				return OpenedCart{}, err
			}
			// A cart left past its time closes when its actor wakes: make
			// a new one then.
			if v.Cart.State == persistence.CartOpen {
				return OpenedCart{View: v}, nil
			}
		case !errors.Is(err, persistence.ErrNotFound):
			return OpenedCart{}, err
		}
	}
	id := randomHex(16)
	create := &cart.Create{OwnerID: who.Subject, VIP: vip}
	var token string
	if who.Subject == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		token = base64.RawURLEncoding.EncodeToString(b)
		create.TokenHash = cart.HashToken(token)
	}
	v, err := askCartView(ctx, s.carts, (*cart.Client).Create, id, create)
	if err != nil {
		return OpenedCart{}, err
	}
	return OpenedCart{View: v, Created: true, Token: token}, nil
}

// randomHex is n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Cart shows a cart to its owner, or to whoever holds its token.
func (s *Service) Cart(ctx context.Context, by service.Caller, ref CartRef) (*cart.View, error) {
	if err := CheckCartID(ref.ID); err != nil {
		return nil, err
	}
	who, vip := s.cartAuth(by, ref.Token)
	return askCartView(ctx, s.carts, (*cart.Client).Get, ref.ID, &cart.Get{Auth: who, VIP: vip})
}

// LineInput sets how many units of a variant a cart holds.
type LineInput struct {
	Cart      CartRef `json:"-"`
	VariantID string  `json:"-"`
	Qty       int64   `json:"qty"`
	// Key is the client's Idempotency-Key (nil: none): the cart
	// remembers its answer under it.
	Key *keyed.Key `json:"-"`
}

// SetLine sets a variant's line to 1 to cart.MaxLineQty units, reserving
// or releasing the difference.
func (s *Service) SetLine(ctx context.Context, by service.Caller, in LineInput) (*cart.View, error) {
	if err := s.checkLine(in); err != nil {
		return nil, err
	}
	if in.Qty < 1 || in.Qty > cart.MaxLineQty {
		return nil, fault.Invalid("", fault.FieldError{Field: "qty", Message: "must be 1 to 99; DELETE the line to remove it"})
	}
	return s.setLine(ctx, by, in)
}

// RemoveLine takes a variant's line out of the cart (in.Qty is ignored).
func (s *Service) RemoveLine(ctx context.Context, by service.Caller, in LineInput) (*cart.View, error) {
	if err := s.checkLine(in); err != nil {
		return nil, err
	}
	in.Qty = 0
	return s.setLine(ctx, by, in)
}

func (s *Service) checkLine(in LineInput) error {
	if err := CheckCartID(in.Cart.ID); err != nil {
		return err
	}
	return slugID("variant", in.VariantID)
}

func (s *Service) setLine(ctx context.Context, by service.Caller, in LineInput) (view *cart.View, err error) {
	who, vip := s.cartAuth(by, in.Cart.Token)
	// The caps first: a reservation the cart makes is always within
	// them. A refusal sets them back before it is answered.
	undo, err := s.takeCartCaps(ctx, who, by.IP, in)
	if err != nil {
		return nil, err
	}
	defer func() {
		var fe *fault.Error
		if undo != nil && errors.As(err, &fe) && fe.Status < 500 {
			undo()
		}
	}()
	v, err := askCart(ctx, s.carts, (*cart.Client).SetLine, in.Cart.ID, &cart.SetLine{Auth: who, VariantID: in.VariantID, Qty: in.Qty,
		VIP: vip, Key: in.Key})
	if err != nil {
		return nil, err // undecided: the caps lapse, or are set on the retry
	}
	if a, found, err := keyed.Resolve[cart.Answer](ctx, s.store, s.keys, in.Key, v.Replayed, v.Err, s.now()); found {
		if err == nil && a.View == nil {
			err = keyed.ErrReused // the key made an order
		}
		return a.View, cartFault(err)
	}
	if err := cartFault(v.Err); err != nil {
		return nil, err
	}
	return v, nil
}

// MergeInput names the anonymous cart to empty into the caller's.
type MergeInput struct {
	Into       CartRef `json:"-"`
	FromCartID string  `json:"from_cart_id"`
	FromToken  string  `json:"from_token"`
}

// Merge moves an anonymous cart's lines into the caller's cart (on
// sign-in): the anonymous cart gives its units back and closes, and the
// client's cart reserves them afresh, adding to its own lines. A line
// whose units went elsewhere meanwhile is left out: the cart returned is
// the truth. Signed-in people only.
func (s *Service) Merge(ctx context.Context, by service.Caller, in MergeInput) (*cart.View, error) {
	if err := allow(by, personRoles); err != nil {
		return nil, err
	}
	if err := CheckCartID(in.Into.ID); err != nil {
		return nil, err
	}
	if !cartIDRE.MatchString(in.FromCartID) || in.FromToken == "" || len(in.FromToken) > 100 {
		return nil, fault.Invalid("", fault.FieldError{Field: "from_cart_id", Message: "an anonymous cart id and its token are required"})
	}
	id := in.Into.ID
	who, vip := s.cartAuth(by, in.Into.Token)
	mine, err := askCartView(ctx, s.carts, (*cart.Client).Get, id, &cart.Get{Auth: who, VIP: vip})
	if err != nil {
		return nil, err
	}
	if mine.Cart.OwnerID == "" || mine.Cart.State != persistence.CartOpen {
		return nil, fault.Conflict("merge into your own open cart")
	}
	sr, err := askCart(ctx, s.carts, (*cart.Client).Surrender, in.FromCartID, &cart.Surrender{Auth: cart.Auth{Token: in.FromToken}, IntoCartID: id})
	if err != nil {
		return nil, err
	}
	if err := cartFault(sr.Err); err != nil {
		return nil, err
	}
	s.releaseCartCaps(in.FromCartID, by.IP, sr.Lines) // the anonymous cart gave its units back
	have := map[string]int64{}
	for _, l := range mine.Lines {
		have[l.VariantID] = l.Qty
	}
	v := mine
	for variant, qty := range sr.Lines {
		next, err := askCart(ctx, s.carts, (*cart.Client).SetLine, id, &cart.SetLine{Auth: who, VariantID: variant, Qty: min(have[variant]+qty, cart.MaxLineQty), VIP: vip})
		if err != nil {
			return nil, err
		}
		if next.Err == nil {
			v = next
		}
	}
	if len(sr.Lines) > 0 && v == mine {
		// Nothing could be reserved again: show the cart as it is.
		v, err = askCart(ctx, s.carts, (*cart.Client).Get, id, &cart.Get{Auth: who, VIP: vip})
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// CheckoutInput turns a cart into an order.
type CheckoutInput struct {
	Cart CartRef
	// OrderID names the order; the gateway derives it from the
	// Idempotency-Key, so a retry after a lost answer finds the same order
	// instead of making a second one ("": a new one).
	OrderID     string
	Fulfilment  string // pickup or shipping
	Shipping    persistence.ShippingAddress
	CreditMinor int64 // client credit to apply
	// Key is the client's Idempotency-Key (nil: none): the cart
	// remembers the order under it, in the checkout's transaction.
	Key *keyed.Key
}

// Checkout turns the caller's cart into an order: in one transaction the
// cart's actor consumes its reservations, spends the credit asked for and
// creates the order. Signed-in people only.
func (s *Service) Checkout(ctx context.Context, by service.Caller, in CheckoutInput) (persistence.Order, error) {
	if err := allow(by, personRoles); err != nil {
		return persistence.Order{}, err
	}
	if err := CheckCartID(in.Cart.ID); err != nil {
		return persistence.Order{}, err
	}
	if in.CreditMinor < 0 {
		return persistence.Order{}, fault.Invalid("", fault.FieldError{Field: "credit_minor", Message: "must not be negative"})
	}
	f := persistence.Fulfilment(in.Fulfilment)
	if f != persistence.FulfilmentPickup && f != persistence.FulfilmentShipping {
		return persistence.Order{}, fault.Invalid("", fault.FieldError{Field: "fulfilment", Message: "must be pickup or shipping"})
	}
	addr, err := order.CheckFulfilment(f, in.Shipping)
	if err != nil {
		return persistence.Order{}, OrderFault(err)
	}
	orderID := in.OrderID
	if orderID == "" {
		orderID = ulid.Make().String()
	}
	who, vip := s.cartAuth(by, in.Cart.Token)
	co, err := askCart(ctx, s.carts, (*cart.Client).Checkout, in.Cart.ID, &cart.Checkout{Auth: who, OrderID: orderID, Fulfilment: f,
		Shipping: addr, CreditMinor: in.CreditMinor, VIP: vip, Key: in.Key})
	if err != nil {
		return persistence.Order{}, err
	}
	if a, found, err := keyed.Resolve[cart.Answer](ctx, s.store, s.keys, in.Key, co.Replayed, co.Err, s.now()); found {
		if err == nil && a.Order == nil {
			err = keyed.ErrReused // the key set a line
		}
		if err != nil {
			return persistence.Order{}, cartFault(err)
		}
		return *a.Order, nil
	}
	if err := cartFault(co.Err); err != nil {
		return persistence.Order{}, err
	}
	return co.Order, nil
}
