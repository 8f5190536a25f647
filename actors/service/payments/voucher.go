package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Voucher purchases (docs/payments.md, "Voucher purchases"). A client buys
// a gift voucher online: BuyVoucher stores the purchase and its payment
// intent (kind voucher_purchase, subject the purchase's id) and answers the
// checkout link, as PayOrder does for an order. The voucher does not exist
// until the payment is approved: VoucherPurchaseSettler then issues it, in
// the apply's transaction, with the purchase's id, so an unpaid purchase
// has no code anyone could spend and a voucher is never issued twice (the
// intent is approved once; a second approval of the same reference goes
// to suspense before any settler runs). A declined, failed or expired
// payment leaves the purchase void: nothing was issued, nothing to undo.

// Bounds of a voucher bought online, in COP minor units: from COP 20,000
// to COP 2,000,000, in whole pesos. Wider amounts are issued by an admin
// (booking.IssueVoucher).
const (
	MinVoucherPurchase int64 = 2_000_000
	MaxVoucherPurchase int64 = 200_000_000
)

const (
	// VoucherPurchasePayWindow is how long a purchase waits for its
	// payment; the checkout link is signed to expire with it.
	VoucherPurchasePayWindow = 30 * time.Minute
	// PurchasedVoucherValidity is how long a voucher bought online can be
	// spent, from its payment's approval: a year, as the client credit a
	// refunded deposit becomes.
	PurchasedVoucherValidity = 365 * 24 * time.Hour

	maxRecipientName = 80
	maxGiftMessage   = 500
)

// VoucherPurchaseInput is what a client buys: a voucher of AmountMinor,
// with an optional recipient's name and message for the gift.
type VoucherPurchaseInput struct {
	AmountMinor   int64  `json:"amount_minor"`
	RecipientName string `json:"recipient_name"`
	Message       string `json:"message"`
}

// PurchaseStatus is where a voucher purchase stands, derived from its
// payment and its voucher.
type PurchaseStatus string

// Purchase statuses.
const (
	PurchasePending PurchaseStatus = "pending" // its payment is under way
	PurchaseIssued  PurchaseStatus = "issued"  // paid: the voucher exists, its code is the buyer's to give
	// PurchaseVoid: its payment was declined, failed or expired, so no
	// voucher was issued (an approval that still lands for it, another
	// attempt of the same reference at Wompi, issues it after all: money
	// taken is never dropped).
	PurchaseVoid PurchaseStatus = "void"
)

// VoucherPurchase is a purchase as its buyer sees it.
type VoucherPurchase struct {
	Purchase persistence.VoucherPurchase
	Status   PurchaseStatus
	// Payment is the purchase's payment intent.
	Payment persistence.PaymentIntent
	// Voucher is the issued voucher, with its balance now (nil until
	// issued).
	Voucher *persistence.Voucher
	// CheckoutURL pays Payment (set by BuyVoucher only).
	CheckoutURL string
}

// BuyVoucher starts a purchase of a voucher by the calling client: the
// purchase, its payment intent expiring in VoucherPurchasePayWindow, its
// audit entry, and the checkout link. It runs in tx (the request's
// idempotency transaction, so a retry with the same Idempotency-Key
// answers this purchase again rather than starting another) and calls no
// remote service: the link is signed locally.
func (s *Service) BuyVoucher(ctx context.Context, tx persistence.Tx, by service.Caller, in VoucherPurchaseInput) (VoucherPurchase, error) {
	if err := allow(by, auth.RoleClient); err != nil {
		return VoucherPurchase{}, err
	}
	if !s.Enabled() {
		return VoucherPurchase{}, errDisabled
	}
	var f check.Fields
	switch {
	case in.AmountMinor < MinVoucherPurchase || in.AmountMinor > MaxVoucherPurchase:
		f.Add("amount_minor", fmt.Sprintf("must be from %d to %d (COP minor units)", MinVoucherPurchase, MaxVoucherPurchase))
	case in.AmountMinor%100 != 0:
		f.Add("amount_minor", "must be whole pesos (a multiple of 100 minor units)")
	}
	recipient := f.Text("recipient_name", in.RecipientName, 0, maxRecipientName)
	message := f.Text("message", in.Message, 0, maxGiftMessage)
	if err := f.Err(); err != nil {
		return VoucherPurchase{}, err
	}
	now := s.now()
	p := persistence.VoucherPurchase{ID: ulid.Make().String(), ClientID: by.Subject, AmountMinor: in.AmountMinor,
		RecipientName: recipient, Message: message, CreatedAt: now}
	if err := tx.VoucherPurchaseCreate(ctx, p); err != nil {
		return VoucherPurchase{}, err
	}
	// The recipient and the message are the buyer's personal text: not in
	// the audit log (createIntent audits kind, subject and amount).
	intent, err := s.createIntent(ctx, tx, by, persistence.PaymentIntent{Kind: persistence.PaymentVoucherPurchase, SubjectID: p.ID,
		ClientID: p.ClientID, AmountMinor: p.AmountMinor, CreatedAt: now, ExpiresAt: now.Add(VoucherPurchasePayWindow)}, "voucher_purchase")
	if err != nil {
		return VoucherPurchase{}, err
	}
	url, err := s.checkoutURL(intent)
	if err != nil {
		return VoucherPurchase{}, err
	}
	stored, err := tx.VoucherPurchaseGet(ctx, p.ID)
	if err != nil {
		return VoucherPurchase{}, err
	}
	return VoucherPurchase{Purchase: stored, Status: PurchasePending, Payment: intent, CheckoutURL: url}, nil
}

// VoucherPurchaseOf returns the caller's purchase id with its payment and,
// once issued, its voucher and code. Only the buyer reads it: for anyone
// else, staff included, it does not exist (404), since the answer carries
// a code that spends money.
func (s *Service) VoucherPurchaseOf(ctx context.Context, by service.Caller, id string) (VoucherPurchase, error) {
	if err := allow(by, personRoles...); err != nil {
		return VoucherPurchase{}, err
	}
	missing := fault.NotFound("voucher purchase not found")
	if id == "" || len(id) > 64 {
		return VoucherPurchase{}, missing
	}
	var out VoucherPurchase
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		p, err := tx.VoucherPurchaseGet(ctx, id)
		if errors.Is(err, persistence.ErrNotFound) {
			return missing
		}
		if err != nil {
			return err
		}
		if p.ClientID != by.Subject {
			return missing
		}
		out, err = purchaseView(ctx, tx, p)
		return err
	})
	return out, err
}

// VoucherPurchasePage is one page of a buyer's purchases, newest first;
// Next is the cursor of the following one (nil at the end).
type VoucherPurchasePage struct {
	Items []VoucherPurchase
	Next  *string
}

// MyVoucherPurchases lists the caller's purchases newest first, each as
// VoucherPurchaseOf answers it (codes included: they are the caller's),
// limit 1 to 50 (0: 20), before the cursor of a previous page.
func (s *Service) MyVoucherPurchases(ctx context.Context, by service.Caller, before string, limit int) (VoucherPurchasePage, error) {
	if err := allow(by, personRoles...); err != nil {
		return VoucherPurchasePage{}, err
	}
	var f check.Fields
	if limit == 0 {
		limit = 20
	}
	if limit < 1 || limit > 50 {
		f.Add("limit", "must be 1 to 50")
	}
	if len(before) > 64 {
		f.Add("before", "must be a cursor from a previous page")
	}
	if err := f.Err(); err != nil {
		return VoucherPurchasePage{}, err
	}
	var page VoucherPurchasePage
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		page = VoucherPurchasePage{Items: []VoucherPurchase{}}
		ps, err := tx.VoucherPurchaseList(ctx, by.Subject, before, limit+1)
		if err != nil {
			return err
		}
		if len(ps) > limit {
			ps = ps[:limit]
			next := ps[limit-1].ID
			page.Next = &next
		}
		for _, p := range ps {
			vp, err := purchaseView(ctx, tx, p)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, vp)
		}
		return nil
	})
	return page, err
}

// purchaseView is p with its payment, its status and, once issued, its
// voucher.
func purchaseView(ctx context.Context, tx persistence.Tx, p persistence.VoucherPurchase) (VoucherPurchase, error) {
	intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentVoucherPurchase, p.ID)
	if err != nil {
		return VoucherPurchase{}, err
	}
	out := VoucherPurchase{Purchase: p, Status: PurchaseVoid}
	if len(intents) > 0 {
		out.Payment = intents[0] // newest first; BuyVoucher makes one
	}
	for _, in := range intents {
		if in.Status == persistence.IntentPending {
			out.Status = PurchasePending
		}
	}
	if p.Issued() {
		v, err := tx.VoucherGet(ctx, p.ID)
		if err != nil {
			return VoucherPurchase{}, err
		}
		out.Status, out.Voucher = PurchaseIssued, &v
	}
	return out, nil
}

// VoucherPurchaseSettler issues the voucher an approved purchase paid for,
// inside the apply's transaction: a bearer voucher (a gift: whoever the
// buyer gives the code to spends it) with the purchase's id, the amount
// paid as its balance, valid PurchasedVoucherValidity from the approval.
// Its code is new, stored hashed in the voucher as every code is, and
// sealed under the buyer's data key in the purchase so the buyer can read
// it again; it is never logged or audited.
type VoucherPurchaseSettler struct{}

// Account is persistence.AccountVouchers: a voucher sold is money we hold
// and owe in services until it is spent or lapses.
func (VoucherPurchaseSettler) Account() string { return persistence.AccountVouchers }

// Settle issues the voucher, or reports why it cannot be (the money then
// waits in suspense with an exception, like any approval that settles
// nothing).
func (VoucherPurchaseSettler) Settle(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, by order.Actor) (bool, string, error) {
	p, err := tx.VoucherPurchaseGet(ctx, in.SubjectID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, "the voucher purchase does not exist", nil
	case err != nil:
		return false, "", err
	case p.ClientID != in.ClientID:
		return false, "the voucher purchase is another client's", nil
	case p.AmountMinor != in.AmountMinor:
		return false, "the voucher purchase's amount is not the amount paid", nil
	case p.Issued():
		return false, "the voucher of this purchase was issued already", nil
	}
	at := in.UpdatedAt
	code := booking.NewVoucherCode()
	v := persistence.Voucher{ID: p.ID, CodeHash: persistence.HashVoucherCode(code), BalanceMinor: p.AmountMinor,
		ExpiresAt: at.Add(PurchasedVoucherValidity), CreatedAt: at, UpdatedAt: at}
	if _, err := tx.VoucherPurchaseIssue(ctx, v, code); err != nil {
		return false, "", err
	}
	if err := auditEntry(ctx, tx, by, "voucher.issue", "voucher/"+v.ID, at, map[string]any{
		"voucher": booking.VoucherView(v), "purchase": "voucher_purchase/" + p.ID, "payment": "payment/" + in.ID}); err != nil {
		return false, "", err
	}
	return true, "", nil
}
