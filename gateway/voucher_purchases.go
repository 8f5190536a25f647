package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/persistence"
)

// Vouchers bought online (docs/payments.md, "Voucher purchases"): a client
// starts a purchase and pays it through Wompi's checkout; the approval
// issues the voucher, whose code the buyer then reads from the purchase.

type voucherPurchaseJSON struct {
	ID            string       `json:"id"`
	Status        string       `json:"status"`
	AmountMinor   int64        `json:"amount_minor"`
	RecipientName string       `json:"recipient_name,omitempty"`
	Message       string       `json:"message,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	IssuedAt      *time.Time   `json:"issued_at,omitempty"`
	Payment       *paymentJSON `json:"payment,omitempty"`
	// Voucher, once issued, carries its code: the buyer's to give.
	Voucher     *booking.VoucherJSON `json:"voucher,omitempty"`
	CheckoutURL string               `json:"checkout_url,omitempty"`
}

func voucherPurchaseView(vp payments.VoucherPurchase) voucherPurchaseJSON {
	p := vp.Purchase
	out := voucherPurchaseJSON{ID: p.ID, Status: string(vp.Status), AmountMinor: p.AmountMinor, RecipientName: p.RecipientName,
		Message: p.Message, CreatedAt: p.CreatedAt.UTC(), IssuedAt: utcOrNil(p.IssuedAt), CheckoutURL: vp.CheckoutURL}
	if vp.Payment.ID != "" {
		pay := paymentView(vp.Payment)
		out.Payment = &pay
	}
	if vp.Voucher != nil {
		v := booking.VoucherView(*vp.Voucher)
		v.Code = p.Code
		out.Voucher = &v
	}
	return out
}

// buyVoucher answers POST /v1/vouchers/purchases: 201 with the pending
// purchase, its payment and the checkout link. A retry with the same
// Idempotency-Key replays this answer instead of starting a second
// purchase.
func (s *server) buyVoucher(svc *payments.Service) func(c *fiber.Ctx, tx persistence.Tx) error {
	return func(c *fiber.Ctx, tx persistence.Tx) error {
		var in payments.VoucherPurchaseInput
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		vp, err := svc.BuyVoucher(c.UserContext(), tx, s.caller(c), in)
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(voucherPurchaseView(vp))
	}
}

// voucherPurchase answers GET /v1/vouchers/purchases/{id} to the buyer
// only (404 for anyone else): the purchase, its payment and, once paid,
// the voucher with its code.
func (s *server) voucherPurchase(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		vp, err := svc.VoucherPurchaseOf(c.UserContext(), s.caller(c), c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(voucherPurchaseView(vp))
	}
}

type voucherPurchasePage struct {
	Purchases []voucherPurchaseJSON `json:"purchases"`
	Next      *string               `json:"next"`
}

// myVoucherPurchases answers GET /v1/me/voucher-purchases?before=&limit=:
// the caller's purchases, newest first.
func (s *server) myVoucherPurchases(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		limit := 0
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				n = -1 // refused like any size out of range
			}
			limit = n
		}
		p, err := svc.MyVoucherPurchases(c.UserContext(), s.caller(c), c.Query("before"), limit)
		if err != nil {
			return err
		}
		return c.JSON(voucherPurchasePage{Purchases: views(p.Items, voucherPurchaseView), Next: p.Next})
	}
}
