package privacy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// The data-subject rights: an export of everything the engine holds about
// a user, and the right to be forgotten, which scrubs the user's personal
// data everywhere but keeps appointments, orders and the credit ledger
// (records the business must keep) under the user's id, a random ULID that
// then leads to no person.

// RevokeAnonymised is the revocation reason of the sessions of a user who
// was anonymised.
const RevokeAnonymised = "anonymised"

// exportHorizon bounds the appointments an export looks ahead to.
const exportHorizon = 20 * 365 * 24 * time.Hour

// maxReasonLen bounds the free-text reason of an anonymisation.
const maxReasonLen = 200

// Export is everything the engine holds about one user. Store records
// appear as the store keeps them; personal fields appear decrypted.
type Export struct {
	ExportedAt   time.Time
	UserID       string
	User         *ExportedUser // nil: no user row (only records under the id)
	Profile      Profile       // the whole profile, never masked
	Sessions     []persistence.Session
	Appointments []persistence.Appointment
	Waitlist     []persistence.WaitlistEntry
	Packages     []persistence.Package
	Orders       []persistence.Order
	Returns      []persistence.Return
	CreditLedger []persistence.CreditEntry
	// VoucherPurchases are the vouchers the user bought online, without
	// their codes: a code spends money and an admin may read an export;
	// the buyer reads it from the purchase itself.
	VoucherPurchases []persistence.VoucherPurchase
	Consents         []persistence.LegalConsent
	Audit            []persistence.AuditEntry
	// NotificationPreferences are what the user turned off and their
	// channel order; nil when they never set any (the defaults).
	NotificationPreferences *persistence.NotificationPreferences
}

// ExportedUser is the user row of an export, its phone decrypted.
type ExportedUser struct {
	ID        string
	Phone     string
	Roles     []string
	CreatedAt time.Time
}

// Export gathers everything about userID, for the user themself or an
// admin. It is 404 when the engine holds nothing about the id.
func (s *Service) Export(ctx context.Context, by service.Caller, userID string) (Export, error) {
	pc, err := s.codec()
	if err != nil {
		return Export{}, err
	}
	if by.Anonymous() {
		return Export{}, fault.Unauthenticated("")
	}
	if by.Subject != userID && !isAdmin(by) {
		return Export{}, fault.Forbidden("")
	}
	now := s.d.Now().UTC()
	var out Export
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		out = Export{ExportedAt: now, UserID: userID}
		return s.gather(ctx, tx, pc, &out)
	})
	if err != nil {
		return Export{}, err
	}
	if out.User == nil && out.Profile.Version == 0 && len(out.Appointments) == 0 && len(out.Orders) == 0 {
		return Export{}, fault.NotFound("no data about this user")
	}
	return out, nil
}

// gather fills out with the records of out.UserID read in tx.
func (s *Service) gather(ctx context.Context, tx persistence.Tx, pc Codec, out *Export) error {
	uid, now := out.UserID, out.ExportedAt
	u, err := tx.UserGet(ctx, uid)
	switch {
	case err == nil:
		out.User = &ExportedUser{ID: u.ID, Roles: u.Roles, CreatedAt: u.CreatedAt}
	case !errors.Is(err, persistence.ErrNotFound):
		return err
	}
	if out.Profile, _, err = pc.Load(ctx, tx, uid); err != nil {
		return err
	}
	if out.User != nil {
		out.User.Phone = out.Profile.Phone
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
	if out.VoucherPurchases, err = pages(func(before string) ([]persistence.VoucherPurchase, error) {
		return tx.VoucherPurchaseList(ctx, uid, before, persistence.MaxVoucherPurchaseListLimit)
	}, func(p persistence.VoucherPurchase) string { return p.ID }); err != nil {
		return err
	}
	for i := range out.VoucherPurchases {
		out.VoucherPurchases[i].Code = ""
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
	if err != nil {
		return err
	}
	prefs, err := tx.NotificationPreferencesGet(ctx, uid)
	switch {
	case err == nil:
		out.NotificationPreferences = &prefs
	case !errors.Is(err, persistence.ErrNotFound):
		return err
	}
	return nil
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

// AnonymiseInput confirms an anonymisation. Confirm must be true: it
// cannot be undone.
type AnonymiseInput struct {
	Reason  string
	Confirm bool
}

// Anonymised is the outcome of an anonymisation.
type Anonymised struct {
	UserID          string
	At              time.Time
	RevokedSessions int
}

// AnonymiseMe erases the caller's own personal data in tx; the audit
// reason says the user asked.
func (s *Service) AnonymiseMe(ctx context.Context, tx persistence.Tx, by service.Caller, in AnonymiseInput) (Anonymised, error) {
	if by.Anonymous() {
		return Anonymised{}, fault.Unauthenticated("")
	}
	return s.anonymise(ctx, tx, by, by.Subject, in, true)
}

// AnonymiseUser is an admin erasing a user's personal data in tx.
func (s *Service) AnonymiseUser(ctx context.Context, tx persistence.Tx, by service.Caller, userID string, in AnonymiseInput) (Anonymised, error) {
	if !isAdmin(by) {
		return Anonymised{}, fault.Forbidden("")
	}
	return s.anonymise(ctx, tx, by, userID, in, false)
}

// anonymise ends every session of uid, scrubs its personal data from every
// table (persistence.Tx.UserAnonymise; docs/privacy.md lists them) and
// audits the act with counts only, all in tx.
func (s *Service) anonymise(ctx context.Context, tx persistence.Tx, by service.Caller, uid string, in AnonymiseInput, self bool) (Anonymised, error) {
	if _, err := s.codec(); err != nil {
		return Anonymised{}, err
	}
	if !in.Confirm {
		return Anonymised{}, fault.Invalid("", fault.FieldError{Field: "confirm", Message: "must be true: anonymisation cannot be undone"})
	}
	given, ok := cleanText(in.Reason, maxReasonLen)
	if !ok {
		return Anonymised{}, fault.Invalid("", fault.FieldError{Field: "reason", Message: "at most 200 characters of text"})
	}
	// The request's free-text reason is not kept: it is words about the
	// person being erased ("ticket 42: Zoraida asked by phone"), and the
	// audit entry that records the erasure outlives it. The entry says who
	// asked and whether a reason was given, nothing more.
	reason := "erased by an admin"
	if self {
		reason = "requested by the user"
	}
	now := s.d.Now().UTC()
	_, err := tx.UserGet(ctx, uid)
	if errors.Is(err, persistence.ErrNotFound) {
		return Anonymised{}, fault.NotFound("no such user")
	}
	if err != nil {
		return Anonymised{}, err
	}
	// The user's phone index becomes random bytes: the unique column keeps
	// a value no number hashes to, so the number signs up afresh.
	pseudo := make([]byte, 32)
	if _, err := rand.Read(pseudo); err != nil {
		return Anonymised{}, err
	}
	revoked, err := s.d.Sessions.EndSessions(ctx, tx, by, uid, RevokeAnonymised, now)
	if err != nil {
		return Anonymised{}, err
	}
	rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: uid, PhoneIndex: pseudo,
		IdempotencyScope: "sub:" + uid /* idempotency.Scope of the user */, At: now})
	if err != nil {
		return Anonymised{}, err
	}
	if rep["idempotency_records"], err = s.forgetAnswers(ctx, tx, uid, now, rep["idempotency_records"]); err != nil {
		return Anonymised{}, err
	}
	// Appended after the scrub, so it survives it; it holds counts only.
	if err := service.Audit(ctx, tx, s.d.Now(), by, "user.anonymise", "user/"+uid, reason,
		map[string]any{"rows": rep, "revoked_sessions": len(revoked), "reason_given": given != ""}); err != nil {
		return Anonymised{}, err
	}
	s.d.Sessions.Forget(now, revoked...)
	s.d.Logger.Info("user anonymised", "user_id", uid, "revoked_sessions", len(revoked), "request_id", by.RequestID)
	return Anonymised{UserID: uid, At: now, RevokedSessions: len(revoked)}, nil
}

// answersPage is how many stored answers forgetAnswers opens per query.
const answersPage = 500

// forgetAnswers deletes the answers stored for Idempotency-Key replays
// that mention the user, other callers' included (staff booking for a
// client): their bodies are sealed, so SQL cannot search them, and each
// is opened here — at most a replay window's worth (SPA_IDEMPOTENCY_TTL).
// It returns deleted plus the number it deleted.
func (s *Service) forgetAnswers(ctx context.Context, tx persistence.Tx, uid string, now time.Time, deleted int) (int, error) {
	needle := []byte(uid)
	var afterScope, afterKey string
	for {
		recs, err := tx.IdempotencyList(ctx, now, afterScope, afterKey, answersPage)
		if err != nil {
			return deleted, err
		}
		for _, r := range recs {
			body, err := keyed.Open(s.sealer(), r.Scope, r.Key, r.ResponseBody)
			if err != nil {
				return deleted, fmt.Errorf("stored answer %s: %w", r.Key, err)
			}
			if !bytes.Contains(body, needle) {
				continue
			}
			if err := tx.IdempotencyDelete(ctx, r.Scope, r.Key); err != nil {
				return deleted, err
			}
			deleted++
		}
		if len(recs) < answersPage {
			return deleted, nil
		}
		afterScope, afterKey = recs[len(recs)-1].Scope, recs[len(recs)-1].Key
	}
}

// sealer is the keyring as keyed opens with it (nil: none configured).
func (s *Service) sealer() keyed.Sealer {
	if s.d.Keys == nil {
		return nil
	}
	return s.d.Keys
}
