package shop

import (
	"context"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// ---- Credit --------------------------------------------------------------------

// Credit is a client's spendable credit and the grants it comes from.
type Credit struct {
	ClientID     string
	BalanceMinor int64
	Grants       []persistence.CreditGrant // with credit left, unexpired
}

// Credit returns a client's credit: the caller's own, or, for staff, any
// client's.
func (s *Service) Credit(ctx context.Context, by service.Caller, client string) (Credit, error) {
	if err := allow(by, personRoles); err != nil {
		return Credit{}, err
	}
	if client != by.Subject {
		if !isStaff(by) {
			return Credit{}, fault.Forbidden("")
		}
		if err := clientID("id", client); err != nil {
			return Credit{}, err
		}
	}
	now := s.now().UTC()
	out := Credit{ClientID: client}
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		gs, err := tx.CreditGrants(ctx, client, now)
		if err != nil {
			return err
		}
		var balance money.Sum
		for _, g := range gs {
			balance.Add(g.RemainingMinor)
		}
		out.Grants = gs
		out.BalanceMinor, err = balance.Total()
		return err
	})
	if err != nil {
		return Credit{}, err
	}
	return out, nil
}

// CreditLedger lists the caller's credit ledger, newest first.
func (s *Service) CreditLedger(ctx context.Context, by service.Caller, p Page) (List[persistence.CreditEntry], error) {
	if err := allow(by, personRoles); err != nil {
		return List[persistence.CreditEntry]{}, err
	}
	limit, err := p.check()
	if err != nil {
		return List[persistence.CreditEntry]{}, err
	}
	return readPage(ctx, s, limit, func(tx persistence.Tx, limit int) ([]persistence.CreditEntry, error) {
		return tx.CreditLedger(ctx, persistence.CreditLedgerParams{ClientID: by.Subject, BeforeID: p.Before, Limit: limit})
	}, func(e persistence.CreditEntry) string { return e.ID })
}

// GrantInput is a manual credit grant.
type GrantInput struct {
	ClientID    string    `json:"client_id"`
	AmountMinor int64     `json:"amount_minor"`
	ExpiresAt   time.Time `json:"expires_at"` // zero: a year (order.DefaultCreditValidity)
	Reason      string    `json:"reason"`
}

// MaxCreditGrant bounds one manual grant (COP 100,000,000 in minor units)
// so a typo cannot mint a fortune.
const MaxCreditGrant = 10_000_000_000

// GrantCredit adds credit to a client's balance in tx, audited; admins
// only.
func (s *Service) GrantCredit(ctx context.Context, tx persistence.Tx, by service.Caller, in GrantInput) (persistence.CreditGrant, error) {
	if err := allow(by, adminRoles); err != nil {
		return persistence.CreditGrant{}, err
	}
	now := s.now().UTC()
	var f check.Fields
	if !check.ClientID.MatchString(in.ClientID) {
		f.Add("client_id", "must be a client id")
	}
	if in.AmountMinor < 1 || in.AmountMinor > MaxCreditGrant {
		f.Add("amount_minor", "must be from 1 to 10000000000 (COP minor units)")
	}
	if !in.ExpiresAt.IsZero() && (!in.ExpiresAt.After(now) || in.ExpiresAt.Sub(now) > 5*365*24*time.Hour) {
		f.Add("expires_at", "must be in the future, within five years")
	}
	reason := f.Text("reason", in.Reason, 3, 500)
	if err := f.Err(); err != nil {
		return persistence.CreditGrant{}, err
	}
	return order.GrantCredit(ctx, tx, order.GrantRequest{ID: ulid.Make().String(), ClientID: in.ClientID,
		AmountMinor: in.AmountMinor, ExpiresAt: in.ExpiresAt.UTC(), Actor: actor(by), Reason: reason, At: now})
}

// ---- VIP pricing ---------------------------------------------------------------

// Admins keep a list of the clients who pay VIP prices
// (persistence.ShopVIPSet); StoredVIP reads it for the carts.

// StoredVIP is the VIP pricing rule backed by the store's VIP list, for
// gateway.Deps.ShopVIP. Only clients can be VIP; a lookup that fails (or
// takes longer than timeout) answers false, so a slow database costs a
// discount, never a sale.
func StoredVIP(store persistence.Store, timeout time.Duration, log *slog.Logger) func(auth.Claims) bool {
	return func(p auth.Claims) bool {
		if p.Role != auth.RoleClient || p.Subject == "" {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var vip bool
		err := store.InTx(ctx, func(tx persistence.Tx) (err error) {
			vip, err = tx.ShopVIPIs(ctx, p.Subject)
			return err
		})
		if err != nil {
			log.Warn("shop: VIP lookup failed; regular prices apply", "err", err) // no subject: it names a client
			return false
		}
		return vip
	}
}

// VIP says whether a client pays VIP prices; admins only. An id that
// cannot be a client's is an absent client.
func (s *Service) VIP(ctx context.Context, by service.Caller, client string) (vip bool, err error) {
	if err := allow(by, adminRoles); err != nil {
		return false, err
	}
	if !check.ClientID.MatchString(client) {
		return false, fault.NotFound("client not found")
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		vip, err = tx.ShopVIPIs(ctx, client)
		return err
	})
	return vip, err
}

// SetVIP marks (vip) or unmarks a client as VIP in tx, audited; admins
// only.
func (s *Service) SetVIP(ctx context.Context, tx persistence.Tx, by service.Caller, client string, vip bool) error {
	if err := allow(by, adminRoles); err != nil {
		return err
	}
	if err := clientID("id", client); err != nil {
		return err
	}
	now := s.now().UTC()
	if err := tx.ShopVIPSet(ctx, client, vip, by.Subject, now); err != nil {
		return err
	}
	action := "shop.vip_revoked"
	if vip {
		action = "shop.vip_granted"
	}
	return service.Audit(ctx, tx, now, by, action, "client/"+client, "", map[string]any{"vip": vip})
}
