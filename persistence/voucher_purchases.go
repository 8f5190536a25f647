package persistence

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence/money"
)

// Voucher purchases: a client buys a gift voucher online. The purchase is
// stored first, with a payment intent of kind PaymentVoucherPurchase whose
// subject is the purchase's id; the voucher itself (same id) exists only
// once the payment was approved, so an unpaid purchase has no code anyone
// could spend. Whether a purchase is still payable or void is its
// intent's status: the purchase row keeps only what the intent does not.

// VoucherPurchase is one voucher bought online.
type VoucherPurchase struct {
	ID            string // ULID: the payment intent's subject, and the voucher's id once issued
	ClientID      string // the buyer
	AmountMinor   int64  // the price paid and the voucher's balance (COP minor units)
	RecipientName string // personal text, sealed at rest under the buyer's data key
	Message       string // personal text, sealed like RecipientName
	// Code is the issued voucher's code, "" until issued. The buyer reads
	// it back (they may lose the first answer), so unlike IssueVoucher's
	// codes it is kept, sealed under the buyer's data key; the voucher
	// row keeps only its hash, as for every voucher.
	Code      string
	CreatedAt time.Time
	IssuedAt  time.Time // zero until the approved payment issued the voucher
}

// Issued reports whether the purchase's voucher exists.
func (p VoucherPurchase) Issued() bool { return !p.IssuedAt.IsZero() }

// NormalizeVoucherPurchase checks p for VoucherPurchaseCreate and returns
// it as stored: not issued, times canonical.
func NormalizeVoucherPurchase(p VoucherPurchase) (VoucherPurchase, error) {
	switch {
	case p.ID == "" || len(p.ID) > 64:
		return p, invalidf("voucher purchase: id must be 1 to 64 bytes")
	case p.ClientID == "":
		return p, invalidf("voucher purchase %s: no buyer", p.ID)
	case p.AmountMinor < 1 || !money.Valid(p.AmountMinor):
		return p, invalidf("voucher purchase %s: amount %d is not from 1 to 10^12", p.ID, p.AmountMinor)
	case p.Code != "" || !p.IssuedAt.IsZero():
		return p, invalidf("voucher purchase %s: created issued", p.ID)
	case p.CreatedAt.IsZero():
		return p, invalidf("voucher purchase %s: no creation time", p.ID)
	}
	p.CreatedAt = CanonicalTime(p.CreatedAt)
	return p, nil
}

// CheckVoucherPurchaseIssue refuses a voucher that does not match the
// purchase it issues (ErrInvalid): same id and balance, its code's hash.
func CheckVoucherPurchaseIssue(p VoucherPurchase, v Voucher, code string) error {
	switch {
	case v.ID != p.ID:
		return invalidf("voucher %s does not issue purchase %s", v.ID, p.ID)
	case v.BalanceMinor != p.AmountMinor:
		return invalidf("voucher %s: balance %d is not the %d paid", v.ID, v.BalanceMinor, p.AmountMinor)
	case NormalizeVoucherCode(code) == "" || HashVoucherCode(code) != v.CodeHash:
		return invalidf("voucher %s: the code is not the one hashed", v.ID)
	}
	return nil
}

// VoucherPurchaseStore keeps voucher purchases.
type VoucherPurchaseStore interface {
	// VoucherPurchaseCreate stores a new purchase, not issued
	// (NormalizeVoucherPurchase); ErrConflict if its id exists.
	VoucherPurchaseCreate(ctx context.Context, p VoucherPurchase) error
	// VoucherPurchaseGet returns the purchase, its personal text and code
	// opened, or ErrNotFound.
	VoucherPurchaseGet(ctx context.Context, id string) (VoucherPurchase, error)
	// VoucherPurchaseIssue issues the purchase's voucher: it stores v
	// (as VoucherIssue does) and records code and v.CreatedAt as the
	// purchase's, together, once. v must match the purchase
	// (CheckVoucherPurchaseIssue, else ErrInvalid); ErrConflict when the
	// purchase was issued already, ErrNotFound when there is none.
	VoucherPurchaseIssue(ctx context.Context, v Voucher, code string) (VoucherPurchase, error)
	// VoucherPurchaseList returns a buyer's purchases, newest first (by
	// id), those before beforeID when it is set, at most limit
	// (1..MaxVoucherPurchaseListLimit), opened as VoucherPurchaseGet does.
	VoucherPurchaseList(ctx context.Context, clientID, beforeID string, limit int) ([]VoucherPurchase, error)
	// VoucherGet returns the voucher with id, expired or not, or
	// ErrNotFound.
	VoucherGet(ctx context.Context, id string) (Voucher, error)
}

// MaxVoucherPurchaseListLimit bounds VoucherPurchaseList.
const MaxVoucherPurchaseListLimit = 100
