package gateway

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The waitlist, packages and vouchers API; the rules are
// actors/service/booking's (offers.go there).

// ---- Waitlist ------------------------------------------------------------------

type waitlistJSON struct {
	ID                   string    `json:"id"`
	ClientID             string    `json:"client_id"`
	ServiceID            string    `json:"service_id"`
	StaffID              string    `json:"staff_id"`
	From                 time.Time `json:"from"`
	To                   time.Time `json:"to"`
	Status               string    `json:"status"`
	OfferedAppointmentID string    `json:"offered_appointment_id"`
	CreatedAt            time.Time `json:"created_at"`
}

func waitlistView(e persistence.WaitlistEntry) waitlistJSON {
	return waitlistJSON{ID: e.ID, ClientID: e.ClientID, ServiceID: e.ServiceID, StaffID: e.StaffID,
		From: e.From.UTC(), To: e.To.UTC(), Status: string(e.Status), OfferedAppointmentID: e.OfferedAppointmentID, CreatedAt: e.CreatedAt.UTC()}
}

type waitlistInput struct {
	ServiceID string    `json:"service_id"`
	StaffID   string    `json:"staff_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	ClientID  string    `json:"client_id"`
}

func (s *server) joinWaitlist(c *fiber.Ctx, tx persistence.Tx) error {
	var in waitlistInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	e, err := s.booking.JoinWaitlist(c.UserContext(), tx, s.caller(c), booking.WaitlistInput(in))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(waitlistView(e))
}

func (s *server) myWaitlist(c *fiber.Ctx) error {
	list, err := s.booking.Waitlist(c.UserContext(), s.caller(c), c.QueryBool("include_closed"))
	if err != nil {
		return err
	}
	out := make([]waitlistJSON, len(list))
	for i, e := range list {
		out[i] = waitlistView(e)
	}
	return c.JSON(fiber.Map{"entries": out})
}

func (s *server) leaveWaitlist(c *fiber.Ctx, tx persistence.Tx) error {
	e, err := s.booking.LeaveWaitlist(c.UserContext(), tx, s.caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(waitlistView(e))
}

// ---- Packages ------------------------------------------------------------------

type packageInput struct {
	ClientID   string    `json:"client_id"`
	Name       string    `json:"name"`
	ServiceIDs []string  `json:"service_ids"`
	Sessions   int       `json:"sessions"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *server) grantPackage(c *fiber.Ctx, tx persistence.Tx) error {
	var in packageInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.booking.GrantPackage(c.UserContext(), tx, s.caller(c), booking.PackageInput(in))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(booking.PackageView(p))
}

func (s *server) myPackages(c *fiber.Ctx) error {
	list, err := s.booking.Packages(c.UserContext(), s.caller(c), c.QueryBool("all"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"packages": views(list, booking.PackageView)})
}

// ---- Vouchers ------------------------------------------------------------------

type voucherInput struct {
	ClientID     string    `json:"client_id"`
	BalanceMinor int64     `json:"balance_minor"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func (s *server) issueVoucher(c *fiber.Ctx, tx persistence.Tx) error {
	var in voucherInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, code, err := s.booking.IssueVoucher(c.UserContext(), tx, s.caller(c), booking.VoucherInput(in))
	if err != nil {
		return err
	}
	view := booking.VoucherView(v)
	// The code is shown in this response only: a replay of the request
	// answers without it (the idempotency record keeps no secrets).
	withoutCode := view
	idempotency.Redact(c, func([]byte) []byte {
		b, _ := json.Marshal(withoutCode)
		return b
	})
	view.Code = code
	return c.Status(fiber.StatusCreated).JSON(view)
}

type codeInput struct {
	Code string `json:"code"`
}

// voucherBalance answers POST /v1/vouchers/balance {code}: the code goes in
// the body, never in a URL that proxies log.
func (s *server) voucherBalance(c *fiber.Ctx) error {
	var in codeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.booking.VoucherBalance(c.UserContext(), s.caller(c), in.Code)
	if err != nil {
		return err
	}
	return c.JSON(booking.VoucherView(v))
}

type voucherPayInput struct {
	Code        string `json:"code"`
	AmountMinor int64  `json:"amount_minor"`
}

// payWithVoucher debits a voucher towards an appointment (its owner or the
// front desk): the appointment is read first (someone else's is a 404
// whatever the body says), then the body.
func (s *server) payWithVoucher(c *fiber.Ctx, tx persistence.Tx) error {
	ctx, by := c.UserContext(), s.caller(c)
	a, err := s.booking.LoadIn(ctx, tx, by, c.Params("id"))
	if err != nil {
		return err
	}
	var in voucherPayInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.booking.PayWithVoucher(ctx, tx, by, a, booking.VoucherPayInput(in))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"debit_id": d.ID, "appointment_id": a.ID, "amount_minor": d.AmountMinor})
}

type creditPayInput struct {
	AmountMinor int64 `json:"amount_minor"`
}

// payWithCredit pays (part of) a held appointment's deposit from the
// client's credit (its owner or the desk); an empty body or amount 0 takes
// as much of what is due as the credit covers.
func (s *server) payWithCredit(c *fiber.Ctx, tx persistence.Tx) error {
	ctx, by := c.UserContext(), s.caller(c)
	a, err := s.booking.LoadIn(ctx, tx, by, c.Params("id"))
	if err != nil {
		return err
	}
	var in creditPayInput
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	p, err := s.booking.PayDepositWithCredit(ctx, tx, by, a, in.AmountMinor)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"appointment_id": a.ID, "applied_minor": p.AppliedMinor, "due_minor": p.DueMinor,
		"credit_balance_minor": p.BalanceMinor})
}
