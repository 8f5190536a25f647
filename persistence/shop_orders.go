package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence/money"
)

// Shop orders: orders created at checkout, their returns, and the client
// credit ledger that refunds go to and checkout can spend.
//
// The order state machine itself (which transitions are allowed, who may
// make them, the audit entry each one writes) lives above the store, in
// package actors/order; the store only applies a transition conditionally
// on the status it expects, so two racing transitions cannot both win.

// The specific shop refusals; each wraps ErrRefused.
var (
	// ErrInsufficientCredit: the client's unexpired credit is below the
	// amount to spend.
	ErrInsufficientCredit = fmt.Errorf("persistence: client credit too small: %w", ErrRefused)
	// ErrReturnExceedsOrder: a return asks back more units of a line than
	// were sold and not yet returned.
	ErrReturnExceedsOrder = fmt.Errorf("persistence: return exceeds the units left on the order line: %w", ErrRefused)
)

// ErrStatusMismatch: a conditional transition found the row in another
// status than the one expected. It wraps ErrConflict so callers that only
// know the generic sentinel still see a conflict.
var ErrStatusMismatch = fmt.Errorf("persistence: status changed meanwhile: %w", ErrConflict)

// ---- Orders ------------------------------------------------------------

// OrderStatus is a stage of an order:
// pending_payment → paid | cancelled | expired; paid → fulfilled |
// cancelled | returned | partially_returned; fulfilled → returned |
// partially_returned; partially_returned → returned | partially_returned.
// The allowed transitions are decided in actors/order, not here.
type OrderStatus string

// Order statuses.
const (
	OrderPendingPayment    OrderStatus = "pending_payment"
	OrderPaid              OrderStatus = "paid"
	OrderFulfilled         OrderStatus = "fulfilled"
	OrderCancelled         OrderStatus = "cancelled"
	OrderExpired           OrderStatus = "expired"
	OrderReturned          OrderStatus = "returned"
	OrderPartiallyReturned OrderStatus = "partially_returned"
)

// Valid reports whether s is one of the order statuses.
func (s OrderStatus) Valid() bool {
	switch s {
	case OrderPendingPayment, OrderPaid, OrderFulfilled, OrderCancelled,
		OrderExpired, OrderReturned, OrderPartiallyReturned:
		return true
	}
	return false
}

// Fulfilment is how an order reaches the client.
type Fulfilment string

// Fulfilment methods.
const (
	FulfilmentPickup   Fulfilment = "pickup"   // collected at the studio's front desk
	FulfilmentShipping Fulfilment = "shipping" // sent to Order.Shipping
)

// ShippingAddress is a Colombian delivery address. Department and
// municipality are DANE DIVIPOLA codes (2 and 5 digits); actors/order
// validates them against its embedded list before an order is created.
// Every field is PII except the codes.
type ShippingAddress struct {
	Recipient        string
	Phone            string // E.164
	Line1            string // street and number, e.g. "Calle 10 # 5-51"
	Line2            string // apartment, building; optional
	DepartmentCode   string // e.g. "11" (Bogotá D.C.)
	MunicipalityCode string // e.g. "11001"
	PostalCode       string // 6 digits; optional
	Notes            string // optional delivery notes
}

// OrderLine is one variant on an order, with the price and tax rate in
// force at checkout.
type OrderLine struct {
	ID             string // ULID, assigned by the caller
	VariantID      string
	SKU            string
	Name           string // product and variant name at checkout
	Qty            int    // >= 1
	UnitPriceMinor int64  // tax-exclusive, COP minor units, >= 0
	TaxRateBps     int    // basis points, 0..10000 (1900 is Colombia's general IVA)
	ReservationID  string // the inventory reservation checkout consumed; may be ""
	ReturnedQty    int    // units returned so far, 0..Qty
}

// Order is a client's purchase.
type Order struct {
	ID       string // ULID, assigned by the caller
	ClientID string // the token subject of the buyer
	CartID   string // the cart checked out; "" for an order made at the desk
	Status   OrderStatus
	Lines    []OrderLine // at least one; line IDs unique

	// Totals in COP minor units. SubtotalMinor is the sum of the lines'
	// SubtotalMinor, TaxMinor the sum of their TaxMinor, and TotalMinor =
	// SubtotalMinor + TaxMinor - CreditAppliedMinor: what the client pays.
	SubtotalMinor      int64
	TaxMinor           int64
	CreditAppliedMinor int64 // client credit spent on the order (see CreditSpend)
	TotalMinor         int64

	Fulfilment Fulfilment
	Shipping   ShippingAddress // set when Fulfilment is shipping, empty for pickup

	CreatedAt time.Time
	UpdatedAt time.Time
	// ExpiresAt: a pending_payment order not paid by then expires and
	// restocks. Zero for an order that never expires (made paid at once).
	ExpiresAt time.Time
	Version   int64 // incremented by every stored change; 1 when created
}

// ComputeTotals sets SubtotalMinor, TaxMinor and TotalMinor from the lines
// and CreditAppliedMinor (money.Bill: tax rounded per line). It fails with
// money.ErrOutOfRange when a line or a total is not an amount (0 to
// money.Max); the totals it sets then are not to be used.
func (o *Order) ComputeTotals() (err error) {
	var b money.Bill
	for _, l := range o.Lines {
		b.Line(int64(l.Qty), l.UnitPriceMinor, l.TaxRateBps)
	}
	o.SubtotalMinor, o.TaxMinor, o.TotalMinor, err = b.Totals(o.CreditAppliedMinor)
	return err
}

// Check refuses a malformed order with an error wrapping ErrInvalid.
func (o Order) Check() error {
	switch {
	case o.ID == "":
		return invalidf("order: empty id")
	case o.ClientID == "":
		return invalidf("order %s: empty client id", o.ID)
	case !o.Status.Valid():
		return invalidf("order %s: unknown status %q", o.ID, o.Status)
	case len(o.Lines) == 0:
		return invalidf("order %s: no lines", o.ID)
	case o.Fulfilment != FulfilmentPickup && o.Fulfilment != FulfilmentShipping:
		return invalidf("order %s: unknown fulfilment %q", o.ID, o.Fulfilment)
	case o.Fulfilment == FulfilmentShipping && (o.Shipping.Line1 == "" || o.Shipping.MunicipalityCode == "" || o.Shipping.DepartmentCode == ""):
		return invalidf("order %s: shipping without an address", o.ID)
	case o.Fulfilment == FulfilmentPickup && o.Shipping != (ShippingAddress{}):
		return invalidf("order %s: pickup with a shipping address", o.ID)
	case o.CreatedAt.IsZero():
		return invalidf("order %s: zero created time", o.ID)
	case o.CreditAppliedMinor < 0:
		return invalidf("order %s: negative credit", o.ID)
	}
	seen := make(map[string]bool, len(o.Lines))
	for _, l := range o.Lines {
		switch {
		case l.ID == "" || seen[l.ID]:
			return invalidf("order %s: empty or repeated line id %q", o.ID, l.ID)
		case l.VariantID == "":
			return invalidf("order %s line %s: empty variant id", o.ID, l.ID)
		case l.Qty < 1:
			return invalidf("order %s line %s: quantity %d", o.ID, l.ID, l.Qty)
		case !money.Valid(l.UnitPriceMinor):
			return invalidf("order %s line %s: price %d is not an amount (0 to 10^12)", o.ID, l.ID, l.UnitPriceMinor)
		case l.TaxRateBps < 0 || l.TaxRateBps > 10000:
			return invalidf("order %s line %s: tax rate %d bps", o.ID, l.ID, l.TaxRateBps)
		case l.ReturnedQty < 0 || l.ReturnedQty > l.Qty:
			return invalidf("order %s line %s: returned %d of %d", o.ID, l.ID, l.ReturnedQty, l.Qty)
		}
		seen[l.ID] = true
	}
	want := o
	if err := want.ComputeTotals(); err != nil {
		return invalidf("order %s: a total is not an amount, or credit %d exceeds the amount due: %v", o.ID, o.CreditAppliedMinor, err)
	}
	if want.SubtotalMinor != o.SubtotalMinor || want.TaxMinor != o.TaxMinor || want.TotalMinor != o.TotalMinor {
		return invalidf("order %s: totals %d+%d-%d=%d do not match the lines (%d+%d-%d=%d)", o.ID,
			o.SubtotalMinor, o.TaxMinor, o.CreditAppliedMinor, o.TotalMinor,
			want.SubtotalMinor, want.TaxMinor, o.CreditAppliedMinor, want.TotalMinor)
	}
	return nil
}

// OrderListParams selects orders, newest first (ID descending).
type OrderListParams struct {
	ClientID string        // "" for every client
	Status   []OrderStatus // empty for every status
	BeforeID string        // "" from the newest; otherwise orders with ID < BeforeID
	Limit    int           // 1..MaxOrderListLimit
}

// MaxOrderListLimit is the largest OrderListParams.Limit accepted.
const MaxOrderListLimit = 500

// OrderTransition asks to move an order from one status to another.
type OrderTransition struct {
	ID   string
	From OrderStatus // the status the caller read; the move fails if it changed
	To   OrderStatus
	At   time.Time // becomes UpdatedAt
}

// ---- Returns -----------------------------------------------------------

// ReturnStatus is a stage of a return: requested → completed | rejected.
type ReturnStatus string

// Return statuses.
const (
	ReturnRequested ReturnStatus = "requested" // asked by the client, awaiting staff
	ReturnCompleted ReturnStatus = "completed" // goods received, restocked, refunded
	ReturnRejected  ReturnStatus = "rejected"
)

// ReturnLine is a number of units of one order line sent back.
type ReturnLine struct {
	OrderLineID string
	Qty         int  // >= 1
	Damaged     bool // damaged units are not restocked; decided by staff when processing
}

// Return is a request to send back some units of an order.
type Return struct {
	ID          string // ULID, assigned by the caller
	OrderID     string
	ClientID    string // the order's client
	Status      ReturnStatus
	Reason      string // the client's or staff's words
	Lines       []ReturnLine
	RefundMinor int64 // credit granted when completed (lines' subtotal plus tax); 0 until then
	RequestedBy string
	ProcessedBy string // staff subject; "" while requested
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64 // 1 when created
}

// ReturnListParams selects returns, newest first.
type ReturnListParams struct {
	OrderID  string       // "" for every order
	ClientID string       // "" for every client
	Status   ReturnStatus // "" for every status
	BeforeID string
	Limit    int // 1..MaxOrderListLimit
}

// ---- Client credit -----------------------------------------------------

// CreditEntryKind classifies a ledger entry.
type CreditEntryKind string

// Ledger entry kinds. Grant entries add to the balance, use and expiry
// entries take from it, reversal entries give back a use.
const (
	CreditEntryGrant    CreditEntryKind = "grant"
	CreditEntryUse      CreditEntryKind = "use"
	CreditEntryExpiry   CreditEntryKind = "expiry"
	CreditEntryReversal CreditEntryKind = "reversal"
)

// CreditGrant adds credit to a client's balance, usable until ExpiresAt
// (inclusive).
type CreditGrant struct {
	ID          string // ULID, assigned by the caller; also the grant entry's ID
	ClientID    string
	AmountMinor int64  // > 0
	Reason      string // e.g. "return 01J…" or staff's words
	ReturnID    string // the return that refunded it; "" for a manual grant
	GrantedBy   string // principal subject or "system"
	ExpiresAt   time.Time
	CreatedAt   time.Time
	// RemainingMinor is what is left to spend or expire; set by the store
	// (equal to AmountMinor when granted).
	RemainingMinor int64
}

// CreditEntry is one line of a client's credit ledger. AmountMinor is
// signed: positive for grants and reversals, negative for uses and expiry.
type CreditEntry struct {
	ID          string // ULID
	ClientID    string
	GrantID     string
	Kind        CreditEntryKind
	AmountMinor int64
	OrderID     string // for use and reversal entries
	At          time.Time
}

// CreditLedgerParams selects ledger entries, newest first (ID descending).
type CreditLedgerParams struct {
	ClientID string // required
	BeforeID string
	Limit    int // 1..MaxOrderListLimit
}

// OrderStore keeps orders, returns and the client credit ledger.
//
// Input checks follow BookingStore: malformed input is refused with an
// error wrapping ErrInvalid before any SQL runs, times are stored
// canonical, lists return an empty slice when nothing matches.
type OrderStore interface {
	// OrderCreate stores o (its lines included) at Version 1, after
	// o.Check. ErrConflict if the order ID or a line ID exists, or if
	// o.CartID is not "" and another order already holds that cart.
	OrderCreate(ctx context.Context, o Order) error
	// OrderGet returns the order with its lines (in line ID order), or
	// ErrNotFound.
	OrderGet(ctx context.Context, id string) (Order, error)
	// OrderList returns orders matching p with their lines, newest first.
	OrderList(ctx context.Context, p OrderListParams) ([]Order, error)
	// OrderTransition sets the order's status to t.To if it is t.From,
	// increments Version and returns the stored order. ErrNotFound if the
	// order is absent, ErrStatusMismatch (wrapping ErrConflict) if its
	// status is not t.From. Whether From → To is allowed is the caller's
	// decision; the store only refuses unknown statuses.
	OrderTransition(ctx context.Context, t OrderTransition) (Order, error)
	// OrderListExpired returns up to limit pending_payment orders whose
	// ExpiresAt is not zero and before now, earliest ExpiresAt first.
	OrderListExpired(ctx context.Context, now time.Time, limit int) ([]Order, error)

	// ReturnCreate stores r (Status requested, Version 1) and adds each
	// line's Qty to the order line's ReturnedQty, so units under a pending
	// return cannot be asked back twice. ErrNotFound if the order or a
	// line is absent, ErrReturnExceedsOrder if a line would exceed its
	// Qty, ErrConflict if r.ID exists.
	ReturnCreate(ctx context.Context, r Return) error
	// ReturnGet returns the return or ErrNotFound.
	ReturnGet(ctx context.Context, id string) (Return, error)
	// ReturnList returns returns matching p, newest first.
	ReturnList(ctx context.Context, p ReturnListParams) ([]Return, error)
	// ReturnResolve moves a requested return to completed or rejected,
	// storing its lines' Damaged flags, RefundMinor, ProcessedBy and
	// UpdatedAt from r, and returns it with Version incremented. A
	// rejection takes the lines' units off the order lines' ReturnedQty,
	// so they can be asked back again. ErrNotFound if absent,
	// ErrStatusMismatch if it is not requested.
	ReturnResolve(ctx context.Context, r Return) (Return, error)

	// CreditGrant stores a grant and its ledger entry. ErrConflict if the
	// ID exists.
	CreditGrant(ctx context.Context, g CreditGrant) error
	// CreditSpend takes amount from the client's grants unexpired at now,
	// the soonest to expire first (then oldest), writing one use entry per
	// grant touched with orderID. ErrInsufficientCredit (nothing written)
	// when the balance is below amount; ErrInvalid for amount <= 0.
	CreditSpend(ctx context.Context, clientID string, amount int64, orderID string, now time.Time) error
	// CreditReverse gives back every use made for orderID not yet
	// reversed (to the grants they came from, even expired ones, which
	// then expire at the next CreditExpire), and returns the amount given
	// back; 0 when there was none.
	CreditReverse(ctx context.Context, orderID string, now time.Time) (int64, error)
	// CreditUsed is what uses for orderID spent and was not given back.
	CreditUsed(ctx context.Context, orderID string) (int64, error)
	// CreditBalance returns the client's credit spendable at now.
	CreditBalance(ctx context.Context, clientID string, now time.Time) (int64, error)
	// CreditGrants returns the client's grants with credit left at now,
	// soonest to expire first.
	CreditGrants(ctx context.Context, clientID string, now time.Time) ([]CreditGrant, error)
	// CreditLedger returns ledger entries, newest first.
	CreditLedger(ctx context.Context, p CreditLedgerParams) ([]CreditEntry, error)
	// CreditExpire writes an expiry entry for up to limit grants expired
	// before now with credit left, zeroing what is left, and returns how
	// many it expired.
	CreditExpire(ctx context.Context, now time.Time, limit int) (int, error)
}

// ---- Helpers shared by the drivers ---------------------------------------

// NormalizeOrder checks o and returns it as stored: times canonical,
// Version 1, lines sorted by ID.
func NormalizeOrder(o Order) (Order, error) {
	if err := o.Check(); err != nil {
		return Order{}, err
	}
	o.CreatedAt, o.ExpiresAt = CanonicalTime(o.CreatedAt), CanonicalTime(o.ExpiresAt)
	o.UpdatedAt = CanonicalTime(o.UpdatedAt)
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	o.Version = 1
	o.Lines = append([]OrderLine(nil), o.Lines...)
	sort.Slice(o.Lines, func(i, j int) bool { return o.Lines[i].ID < o.Lines[j].ID })
	return o, nil
}

// CheckOrderList refuses malformed list parameters.
func CheckOrderList(p OrderListParams) error {
	for _, s := range p.Status {
		if !s.Valid() {
			return invalidf("order list: unknown status %q", s)
		}
	}
	return CheckLimit("order list", p.Limit, MaxOrderListLimit)
}

// CheckOrderTransition refuses a malformed transition.
func CheckOrderTransition(t OrderTransition) error {
	switch {
	case t.ID == "":
		return invalidf("order transition: empty id")
	case !t.From.Valid() || !t.To.Valid():
		return invalidf("order transition %s: unknown status %q → %q", t.ID, t.From, t.To)
	case t.At.IsZero():
		return invalidf("order transition %s: zero time", t.ID)
	}
	return nil
}

// OrderStatusMismatch is the error of a transition that found the order
// in another status.
func OrderStatusMismatch(id string, want, got OrderStatus) error {
	return fmt.Errorf("order %s is %s, not %s: %w", id, got, want, ErrStatusMismatch)
}

// EncodeShipping and DecodeShipping store a shipping address as JSON text
// ("" for pickup).
func EncodeShipping(a ShippingAddress) string {
	if a == (ShippingAddress{}) {
		return ""
	}
	b, _ := json.Marshal(a) // plain strings: cannot fail
	return string(b)
}

// DecodeShipping is the inverse of EncodeShipping.
func DecodeShipping(s string) (ShippingAddress, error) {
	var a ShippingAddress
	if s == "" {
		return a, nil
	}
	err := json.Unmarshal([]byte(s), &a)
	return a, err
}

// NormalizeReturn checks a new return and returns it as stored: Status
// requested, Version 1, lines sorted by order line ID.
func NormalizeReturn(r Return) (Return, error) {
	switch {
	case r.ID == "" || r.OrderID == "" || r.ClientID == "":
		return Return{}, invalidf("return: empty id, order id or client id")
	case r.Status != ReturnRequested:
		return Return{}, invalidf("return %s: a new return must be requested, not %q", r.ID, r.Status)
	case len(r.Lines) == 0:
		return Return{}, invalidf("return %s: no lines", r.ID)
	case r.CreatedAt.IsZero():
		return Return{}, invalidf("return %s: zero created time", r.ID)
	case r.RefundMinor != 0 || r.ProcessedBy != "":
		return Return{}, invalidf("return %s: refund or processor set before processing", r.ID)
	}
	r.Lines = append([]ReturnLine(nil), r.Lines...)
	sort.Slice(r.Lines, func(i, j int) bool { return r.Lines[i].OrderLineID < r.Lines[j].OrderLineID })
	for i, l := range r.Lines {
		if l.OrderLineID == "" || l.Qty < 1 || (i > 0 && r.Lines[i-1].OrderLineID == l.OrderLineID) {
			return Return{}, invalidf("return %s: line %q: empty, repeated or quantity %d", r.ID, l.OrderLineID, l.Qty)
		}
	}
	r.CreatedAt = CanonicalTime(r.CreatedAt)
	r.UpdatedAt = r.CreatedAt
	r.Version = 1
	return r, nil
}

// ResolveReturn merges a resolution into the stored return: the status,
// refund, processor, time and Damaged flags come from r, everything else
// from stored. The lines of r must name the stored lines.
func ResolveReturn(stored, r Return) (Return, error) {
	switch {
	case r.Status != ReturnCompleted && r.Status != ReturnRejected:
		return Return{}, invalidf("return %s: resolve to %q", r.ID, r.Status)
	case r.ProcessedBy == "" || r.UpdatedAt.IsZero():
		return Return{}, invalidf("return %s: resolved without processor or time", r.ID)
	case r.RefundMinor < 0 || (r.Status == ReturnRejected && r.RefundMinor != 0):
		return Return{}, invalidf("return %s: refund %d", r.ID, r.RefundMinor)
	case stored.Status != ReturnRequested:
		return Return{}, fmt.Errorf("return %s is %s, not requested: %w", r.ID, stored.Status, ErrStatusMismatch)
	}
	damaged := make(map[string]bool, len(r.Lines))
	for _, l := range r.Lines {
		damaged[l.OrderLineID] = l.Damaged
	}
	out := stored
	out.Lines = append([]ReturnLine(nil), stored.Lines...)
	for i := range out.Lines {
		d, ok := damaged[out.Lines[i].OrderLineID]
		if !ok && len(r.Lines) > 0 {
			return Return{}, invalidf("return %s: resolution misses line %s", r.ID, out.Lines[i].OrderLineID)
		}
		out.Lines[i].Damaged = d
	}
	if len(r.Lines) > 0 && len(r.Lines) != len(out.Lines) {
		return Return{}, invalidf("return %s: resolution names lines not in the return", r.ID)
	}
	out.Status, out.RefundMinor, out.ProcessedBy = r.Status, r.RefundMinor, r.ProcessedBy
	out.UpdatedAt = CanonicalTime(r.UpdatedAt)
	out.Version = stored.Version + 1
	return out, nil
}

// CheckReturnList refuses malformed list parameters.
func CheckReturnList(p ReturnListParams) error {
	if p.Status != "" && p.Status != ReturnRequested && p.Status != ReturnCompleted && p.Status != ReturnRejected {
		return invalidf("return list: unknown status %q", p.Status)
	}
	return CheckLimit("return list", p.Limit, MaxOrderListLimit)
}

// NormalizeCreditGrant checks a grant and returns it as stored.
func NormalizeCreditGrant(g CreditGrant) (CreditGrant, error) {
	switch {
	case g.ID == "" || g.ClientID == "":
		return CreditGrant{}, invalidf("credit grant: empty id or client id")
	case g.AmountMinor <= 0 || g.AmountMinor > money.Max:
		return CreditGrant{}, invalidf("credit grant %s: amount %d", g.ID, g.AmountMinor)
	case g.CreatedAt.IsZero() || g.ExpiresAt.IsZero() || !g.ExpiresAt.After(g.CreatedAt):
		return CreditGrant{}, invalidf("credit grant %s: expiry must follow creation", g.ID)
	case g.GrantedBy == "":
		return CreditGrant{}, invalidf("credit grant %s: empty granter", g.ID)
	}
	g.CreatedAt, g.ExpiresAt = CanonicalTime(g.CreatedAt), CanonicalTime(g.ExpiresAt)
	g.RemainingMinor = g.AmountMinor
	return g, nil
}

// CheckCreditSpend refuses a malformed spend.
// AppointmentCreditRef is the reference (the ledger's order id) of credit
// spent on an appointment's deposit: distinct from any order's id.
func AppointmentCreditRef(appointmentID string) string { return "appointment/" + appointmentID }

func CheckCreditSpend(clientID string, amount int64, orderID string, now time.Time) error {
	if clientID == "" || orderID == "" || amount <= 0 || now.IsZero() {
		return invalidf("credit spend: client %q, order %q, amount %d", clientID, orderID, amount)
	}
	return nil
}

// CreditTake is the part of one grant a spend uses.
type CreditTake struct {
	GrantID     string
	AmountMinor int64
}

// AllocateCredit spends amount from grants, which must be the client's
// usable grants in spending order (soonest expiry, then oldest), and
// returns what to take from each. ErrInsufficientCredit when they hold
// less than amount.
func AllocateCredit(grants []CreditGrant, amount int64) ([]CreditTake, error) {
	var takes []CreditTake
	left := amount
	for _, g := range grants {
		if left == 0 {
			break
		}
		take := min(g.RemainingMinor, left)
		if take <= 0 {
			continue
		}
		takes = append(takes, CreditTake{GrantID: g.ID, AmountMinor: take})
		left -= take
	}
	if left > 0 {
		return nil, fmt.Errorf("%d short of %d: %w", left, amount, ErrInsufficientCredit)
	}
	return takes, nil
}

// NewLedgerID returns a fresh ULID stamped with now, for the ledger
// entries a store writes on its own (uses, reversals, expiries).
func NewLedgerID(now time.Time) string {
	return ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
}

// CheckCreditLedger refuses malformed ledger parameters.
func CheckCreditLedger(p CreditLedgerParams) error {
	if p.ClientID == "" {
		return invalidf("credit ledger: empty client id")
	}
	return CheckLimit("credit ledger", p.Limit, MaxOrderListLimit)
}

// OrderMissing is the ErrNotFound of an absent order.
func OrderMissing(id string) error { return fmt.Errorf("order %s: %w", id, ErrNotFound) }

// ReturnExceeds is the refusal of a return line asking back more than is
// left on its order line.
func ReturnExceeds(lineID string, asked, left int) error {
	return fmt.Errorf("order line %s: %d asked back, %d left: %w", lineID, asked, left, ErrReturnExceedsOrder)
}

// ReturnNotRequested is the mismatch of resolving a return already resolved.
func ReturnNotRequested(id string) error {
	return fmt.Errorf("return %s is not requested: %w", id, ErrStatusMismatch)
}
