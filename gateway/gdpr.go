package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// The data-subject rights of the GDPR (and Colombia's Ley 1581 de 2012):
// an export of everything the engine holds about a user, and the right to
// be forgotten, which scrubs the user's personal data everywhere but keeps
// appointments, orders and the credit ledger (records the business must
// keep) under the user's id, a random ULID that then leads to no person.
// docs/privacy.md lists every column concerned.

// revokeAnonymised is the revocation reason of the sessions of a user who
// was anonymised.
const revokeAnonymised = "anonymised"

// exportHorizon bounds the appointments an export looks ahead to.
const exportHorizon = 20 * 365 * 24 * time.Hour

// userExport is the body of an export. Store records appear as the store
// keeps them; personal fields appear decrypted.
type userExport struct {
	ExportedAt   time.Time                   `json:"exported_at"`
	UserID       string                      `json:"user_id"`
	User         *exportedUser               `json:"user"`
	Profile      profileJSON                 `json:"profile"`
	Sessions     []persistence.Session       `json:"sessions"`
	Appointments []persistence.Appointment   `json:"appointments"`
	Waitlist     []persistence.WaitlistEntry `json:"waitlist"`
	Packages     []persistence.Package       `json:"packages"`
	Orders       []persistence.Order         `json:"orders"`
	Returns      []persistence.Return        `json:"returns"`
	CreditLedger []persistence.CreditEntry   `json:"credit_ledger"`
	Consents     []persistence.LegalConsent  `json:"consents"`
	Audit        []persistence.AuditEntry    `json:"audit"`
}

type exportedUser struct {
	ID        string    `json:"id"`
	Phone     string    `json:"phone"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *server) exportMine(c *fiber.Ctx) error {
	p, _ := Principal(c)
	return s.export(c, p.Subject)
}

func (s *server) exportUser(c *fiber.Ctx) error {
	return s.export(c, c.Params("id"))
}

func (s *server) export(c *fiber.Ctx, uid string) error {
	pc, err := s.profileCodec()
	if err != nil {
		return err
	}
	now := s.deps.Now().UTC()
	out := userExport{ExportedAt: now, UserID: uid}
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		out = userExport{ExportedAt: now, UserID: uid}
		u, err := tx.UserGet(ctx, uid)
		switch {
		case err == nil:
			out.User = &exportedUser{ID: u.ID, Roles: u.Roles, CreatedAt: u.CreatedAt}
		case !errors.Is(err, persistence.ErrNotFound):
			return err
		}
		prof, _, err := pc.load(ctx, tx, uid)
		if err != nil {
			return err
		}
		out.Profile = prof.fullView()
		if out.User != nil {
			out.User.Phone = prof.Phone
		}
		if out.Sessions, err = tx.SessionListByUser(ctx, uid, now, persistence.MaxSessionListLimit); err != nil {
			return err
		}
		if out.Appointments, err = tx.AppointmentListByClient(ctx, uid, time.Unix(0, 0).UTC(), now.Add(exportHorizon),
			persistence.MaxAppointmentListLimit); err != nil {
			return err
		}
		if out.Waitlist, err = tx.WaitlistListByClient(ctx, uid, true); err != nil {
			return err
		}
		if out.Packages, err = tx.PackageListByClient(ctx, uid, now, false); err != nil {
			return err
		}
		if out.Orders, err = pages(func(before string) ([]persistence.Order, error) {
			return tx.OrderList(ctx, persistence.OrderListParams{ClientID: uid, BeforeID: before, Limit: persistence.MaxOrderListLimit})
		}, func(o persistence.Order) string { return o.ID }); err != nil {
			return err
		}
		if out.Returns, err = pages(func(before string) ([]persistence.Return, error) {
			return tx.ReturnList(ctx, persistence.ReturnListParams{ClientID: uid, BeforeID: before, Limit: persistence.MaxOrderListLimit})
		}, func(r persistence.Return) string { return r.ID }); err != nil {
			return err
		}
		if out.CreditLedger, err = pages(func(before string) ([]persistence.CreditEntry, error) {
			return tx.CreditLedger(ctx, persistence.CreditLedgerParams{ClientID: uid, BeforeID: before, Limit: persistence.MaxOrderListLimit})
		}, func(e persistence.CreditEntry) string { return e.ID }); err != nil {
			return err
		}
		if out.Consents, err = pages(func(before string) ([]persistence.LegalConsent, error) {
			return tx.LegalConsentList(ctx, persistence.LegalConsentListParams{SubjectKind: persistence.ConsentUser, SubjectID: uid,
				BeforeID: before, Limit: persistence.MaxLegalListLimit})
		}, func(l persistence.LegalConsent) string { return l.ID }); err != nil {
			return err
		}
		out.Audit, err = pages(func(before string) ([]persistence.AuditEntry, error) {
			return tx.AuditList(ctx, persistence.AuditListParams{Subject: "user/" + uid, BeforeID: before, Limit: persistence.MaxAuditListLimit})
		}, func(e persistence.AuditEntry) string { return e.ID })
		return err
	})
	if err != nil {
		return err
	}
	if out.User == nil && out.Profile.Version == 0 && len(out.Appointments) == 0 && len(out.Orders) == 0 {
		return fault.NotFound("no data about this user")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="spa-export-`+uid+`.json"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// pages follows a newest-first list by BeforeID until a page comes back
// empty. maxExportPages bounds it against a store that never ends.
func pages[T any](list func(before string) ([]T, error), id func(T) string) ([]T, error) {
	const maxExportPages = 100
	all := []T{}
	before := ""
	for range maxExportPages {
		page, err := list(before)
		if err != nil || len(page) == 0 {
			return all, err
		}
		all = append(all, page...)
		before = id(page[len(page)-1])
	}
	return all, nil
}

// anonymiseInput is the body of the anonymise routes.
type anonymiseInput struct {
	Reason  string `json:"reason"`
	Confirm bool   `json:"confirm"`
}

func (s *server) anonymiseMe(c *fiber.Ctx, tx persistence.Tx) error {
	p, _ := Principal(c)
	return s.anonymise(c, tx, p.Subject, true)
}

func (s *server) anonymiseUser(c *fiber.Ctx, tx persistence.Tx) error {
	return s.anonymise(c, tx, c.Params("id"), false)
}

func (s *server) anonymise(c *fiber.Ctx, tx persistence.Tx, uid string, self bool) error {
	if _, err := s.profileCodec(); err != nil {
		return err
	}
	var in anonymiseInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if !in.Confirm {
		return fault.Invalid("", fault.FieldError{Field: "confirm", Message: "must be true: anonymisation cannot be undone"})
	}
	reason, err := cleanLabel("reason", in.Reason, maxReasonLen)
	if err != nil {
		return err
	}
	if self {
		reason = strings.TrimSpace("requested by the user. " + reason)
	}
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	_, err = tx.UserGet(ctx, uid)
	if errors.Is(err, persistence.ErrNotFound) {
		return fault.NotFound("no such user")
	}
	if err != nil {
		return err
	}
	pseudo := make([]byte, 32)
	if _, err := rand.Read(pseudo); err != nil {
		return err
	}
	who, _ := Principal(c)
	revoked, err := s.revokeSessions(ctx, tx, uid, nil, revokeAnonymised, who.Subject, RequestID(c), now)
	if err != nil {
		return err
	}
	rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: uid, PhoneIndex: pseudo,
		IdempotencyScope: "sub:" + uid /* idempotency.Scope of the user */, At: now})
	if err != nil {
		return err
	}
	// Appended after the scrub, so it survives it; it holds counts only.
	if err := s.auditReason(c, tx, "user.anonymise", "user/"+uid, reason, map[string]any{"rows": rep, "revoked_sessions": len(revoked)}); err != nil {
		return err
	}
	s.forget(now, revoked...)
	s.log.Info("user anonymised", "user_id", uid, "revoked_sessions", len(revoked), "request_id", RequestID(c))
	return c.JSON(fiber.Map{"user_id": uid, "anonymised_at": now, "revoked_sessions": len(revoked)})
}
