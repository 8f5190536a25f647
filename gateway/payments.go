package gateway

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/persistence"
)

// Online payments (docs/payments.md): a client asks for the checkout link
// of their order, Wompi posts the outcome to the webhook, admins work the
// exceptions reconciliation leaves. The rules are the payments service's
// (actors/service/payments); these handlers only translate HTTP.

// registerPayments adds the payment routes. Without Deps.Payments they
// answer 503 (payments not configured).
func (s *server) registerPayments(app *fiber.App) {
	svc := s.deps.Payments
	if svc == nil {
		svc = payments.New(payments.Deps{Store: s.deps.Store, Log: s.log})
	}
	anyone := RequireRole(personRoles...)
	admin := RequireRole(auth.RoleAdmin)
	app.Post("/v1/shop/orders/:id/payments", anyone, s.mutate(s.checkout(svc.PayOrder)))
	app.Post("/v1/appointments/:id/payments", anyone, s.mutate(s.checkout(svc.PayDeposit)))
	// Saved sources call Wompi: no store transaction is held open across
	// the call (external), the answer is remembered under the key after.
	client := RequireRole(auth.RoleClient)
	app.Post("/v1/me/payment-sources", client, s.external(s.saveSource(svc)))
	app.Get("/v1/me/payment-sources", client, s.listSources(svc))
	app.Delete("/v1/me/payment-sources/:id", client, s.external(s.removeSource(svc)))
	app.Post("/v1/appointments/:id/payments/charge", client, s.external(s.charge(svc, persistence.PaymentDeposit)))
	app.Post("/v1/shop/orders/:id/payments/charge", client, s.external(s.charge(svc, persistence.PaymentOrder)))
	app.Post("/v1/vouchers/purchases", RequireRole(auth.RoleClient), s.mutate(s.buyVoucher(svc)))
	app.Get("/v1/vouchers/purchases/:id", anyone, s.voucherPurchase(svc))
	app.Get("/v1/me/voucher-purchases", anyone, s.myVoucherPurchases(svc))
	// Public: Wompi signs its events instead of authenticating.
	app.Post("/v1/webhooks/wompi", s.wompiEvent(svc))
	app.Get("/v1/admin/payments/exceptions", admin, s.listPaymentExceptions(svc))
	app.Post("/v1/admin/payments/exceptions/:id/resolve", admin, s.mutate(s.resolvePaymentException(svc)))
}

type paymentJSON struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	SubjectID     string    `json:"subject_id"`
	ClientID      string    `json:"client_id"`
	Status        string    `json:"status"`
	AmountMinor   int64     `json:"amount_minor"`
	Currency      string    `json:"currency"`
	TransactionID string    `json:"transaction_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

type checkoutJSON struct {
	Payment     paymentJSON `json:"payment"`
	CheckoutURL string      `json:"checkout_url"`
}

func paymentView(p persistence.PaymentIntent) paymentJSON {
	return paymentJSON{ID: p.ID, Kind: string(p.Kind), SubjectID: p.SubjectID, ClientID: p.ClientID, Status: string(p.Status),
		AmountMinor: p.AmountMinor, Currency: p.Currency, TransactionID: p.TransactionID, CreatedAt: p.CreatedAt.UTC(),
		ExpiresAt: p.ExpiresAt.UTC()}
}

// checkout answers the checkout pay makes for the path's id (an order, a
// hold's deposit): 201 with a new intent, 200 with the live one.
func (s *server) checkout(pay func(context.Context, persistence.Tx, service.Caller, string) (payments.Checkout, bool, error)) func(c *fiber.Ctx, tx persistence.Tx) error {
	return func(c *fiber.Ctx, tx persistence.Tx) error {
		co, created, err := pay(c.UserContext(), tx, s.caller(c), c.Params("id"))
		if err != nil {
			return err
		}
		status := fiber.StatusOK
		if created {
			status = fiber.StatusCreated
		}
		return c.Status(status).JSON(checkoutJSON{Payment: paymentView(co.Intent), CheckoutURL: co.URL})
	}
}

// wompiEvent is the webhook: 200 for every authentic event (applied,
// replayed, orphan, stale...), 401 for a forged one, 413 over 64 KiB.
func (s *server) wompiEvent(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		body := c.Body()
		if len(body) > wompi.MaxEventBytes {
			return fault.New(fault.CodePayloadTooLarge, "")
		}
		out, err := svc.Event(c.UserContext(), body, c.Get(wompi.ChecksumHeader), s.caller(c).RequestID)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"outcome": string(out)})
	}
}

type paymentExceptionJSON struct {
	ID            string     `json:"id"`
	Class         string     `json:"class"`
	State         string     `json:"state"`
	IntentID      string     `json:"intent_id,omitempty"`
	Reference     string     `json:"reference"`
	TransactionID string     `json:"transaction_id,omitempty"`
	AmountMinor   int64      `json:"amount_minor"`
	Detail        string     `json:"detail"`
	OpenedAt      time.Time  `json:"opened_at"`
	ResolvedAt    *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy    string     `json:"resolved_by,omitempty"`
	Resolution    string     `json:"resolution,omitempty"`
}

func paymentExceptionView(x persistence.PaymentException) paymentExceptionJSON {
	return paymentExceptionJSON{ID: x.ID, Class: string(x.Class), State: string(x.State), IntentID: x.IntentID,
		Reference: x.Reference, TransactionID: x.TransactionID, AmountMinor: x.AmountMinor, Detail: x.Detail,
		OpenedAt: x.OpenedAt.UTC(), ResolvedAt: utcOrNil(x.ResolvedAt), ResolvedBy: x.ResolvedBy, Resolution: x.Resolution}
}

type paymentExceptionPage struct {
	Exceptions []paymentExceptionJSON `json:"exceptions"`
	Next       *string                `json:"next"`
}

func (s *server) listPaymentExceptions(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q := payments.ExceptionQuery{State: c.Query("state"), Class: c.Query("class"), Before: c.Query("before")}
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				n = -1 // refused like any size out of range
			}
			q.Limit = n
		}
		p, err := svc.Exceptions(c.UserContext(), s.caller(c), q)
		if err != nil {
			return err
		}
		return c.JSON(paymentExceptionPage{Exceptions: views(p.Items, paymentExceptionView), Next: p.Next})
	}
}

func (s *server) resolvePaymentException(svc *payments.Service) func(c *fiber.Ctx, tx persistence.Tx) error {
	return func(c *fiber.Ctx, tx persistence.Tx) error {
		in := payments.ResolveInput{ID: c.Params("id")}
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		x, err := svc.Resolve(c.UserContext(), tx, s.caller(c), in)
		if err != nil {
			return err
		}
		return c.JSON(paymentExceptionView(x))
	}
}

type paymentSourceJSON struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Label     string    `json:"label"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// paymentSourceView leaves the payer's e-mail and Wompi's id out.
func paymentSourceView(p persistence.PaymentSource) paymentSourceJSON {
	return paymentSourceJSON{ID: p.ID, Type: p.Type, Label: p.Label, Status: string(p.Status), CreatedAt: p.CreatedAt.UTC()}
}

func (s *server) saveSource(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in payments.SourceInput
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		src, err := svc.SaveSource(c.UserContext(), s.caller(c), in)
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(paymentSourceView(src))
	}
}

func (s *server) listSources(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		list, err := svc.Sources(c.UserContext(), s.caller(c))
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"payment_sources": views(list, paymentSourceView)})
	}
}

func (s *server) removeSource(svc *payments.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := svc.RemoveSource(c.UserContext(), s.caller(c), c.Params("id")); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

type chargeInput struct {
	PaymentSourceID string `json:"payment_source_id"`
}

func (s *server) charge(svc *payments.Service, kind persistence.PaymentKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in chargeInput
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		by := s.caller(c)
		in2, err := svc.Charge(c.UserContext(), by, kind, c.Params("id"), in.PaymentSourceID, by.RequestID)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"payment": paymentView(in2)})
	}
}
