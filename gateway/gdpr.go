package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/persistence"
)

// The data-subject rights of the GDPR (and Colombia's Ley 1581 de 2012),
// export and the right to be forgotten: actors/service/privacy decides,
// these handlers decode and render.

// errNoIdentity is the answer of privacy routes on a node without sign-in.
var errNoIdentity = fault.Unavailable("sign-in is not configured on this node")

// userExport is the body of an export. Store records appear as the store
// keeps them; personal fields appear decrypted.
type userExport struct {
	ExportedAt       time.Time                     `json:"exported_at"`
	UserID           string                        `json:"user_id"`
	User             *exportedUser                 `json:"user"`
	Profile          profileJSON                   `json:"profile"`
	Sessions         []persistence.Session         `json:"sessions"`
	Appointments     []persistence.Appointment     `json:"appointments"`
	Waitlist         []persistence.WaitlistEntry   `json:"waitlist"`
	Packages         []persistence.Package         `json:"packages"`
	Orders           []persistence.Order           `json:"orders"`
	Returns          []persistence.Return          `json:"returns"`
	CreditLedger     []persistence.CreditEntry     `json:"credit_ledger"`
	VoucherPurchases []persistence.VoucherPurchase `json:"voucher_purchases"`
	Consents         []persistence.LegalConsent    `json:"consents"`
	Audit            []persistence.AuditEntry      `json:"audit"`
	// NotificationPreferences: null when the user never set any.
	NotificationPreferences *exportedPreferences `json:"notification_preferences"`
}

// exportedPreferences are the user's notification preferences as stored:
// the category:channel pairs turned off and their channel order.
type exportedPreferences struct {
	Off          []string  `json:"off"`
	ChannelOrder []string  `json:"channel_order"`
	Version      int64     `json:"version"`
	UpdatedAt    time.Time `json:"updated_at"`
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
	e, err := s.privacy.Export(c.UserContext(), s.caller(c), uid)
	if err != nil {
		return err
	}
	out := userExport{ExportedAt: e.ExportedAt, UserID: e.UserID, Profile: profileView(e.Profile),
		Sessions: e.Sessions, Appointments: e.Appointments, Waitlist: e.Waitlist, Packages: e.Packages,
		Orders: e.Orders, Returns: e.Returns, CreditLedger: e.CreditLedger, VoucherPurchases: e.VoucherPurchases, Consents: e.Consents, Audit: e.Audit}
	if u := e.User; u != nil {
		out.User = &exportedUser{ID: u.ID, Phone: u.Phone, Roles: u.Roles, CreatedAt: u.CreatedAt}
	}
	if p := e.NotificationPreferences; p != nil {
		x := &exportedPreferences{Off: []string{}, ChannelOrder: append([]string{}, p.ChannelOrder...), Version: p.Version, UpdatedAt: p.UpdatedAt.UTC()}
		for _, o := range p.OptOuts {
			x.Off = append(x.Off, string(o.Category)+":"+o.Channel)
		}
		out.NotificationPreferences = x
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="spa-export-`+uid+`.json"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// anonymiseInput is the body of the anonymise routes.
type anonymiseInput struct {
	Reason  string `json:"reason"`
	Confirm bool   `json:"confirm"`
}

func (s *server) anonymiseMe(c *fiber.Ctx, tx persistence.Tx) error {
	return s.anonymise(c, func(by service.Caller, in privacy.AnonymiseInput) (privacy.Anonymised, error) {
		return s.privacy.AnonymiseMe(c.UserContext(), tx, by, in)
	})
}

func (s *server) anonymiseUser(c *fiber.Ctx, tx persistence.Tx) error {
	return s.anonymise(c, func(by service.Caller, in privacy.AnonymiseInput) (privacy.Anonymised, error) {
		return s.privacy.AnonymiseUser(c.UserContext(), tx, by, c.Params("id"), in)
	})
}

func (s *server) anonymise(c *fiber.Ctx, call func(service.Caller, privacy.AnonymiseInput) (privacy.Anonymised, error)) error {
	if err := s.privacy.Ready(); err != nil {
		return err
	}
	var in anonymiseInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := call(s.caller(c), privacy.AnonymiseInput(in))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user_id": a.UserID, "anonymised_at": a.At, "revoked_sessions": a.RevokedSessions})
}
