// Package payments is the use case of paying online through Wompi: one
// payment intent per thing paid (a shop order today; an appointment's
// deposit and a voucher purchase plug in as further Settlers), the
// checkout link a client pays it with, the webhook that learns the outcome,
// the reconciliation that learns what the webhook missed, and the
// exceptions both leave for a human (docs/payments.md).
//
// Every outcome, from the webhook or from reconciliation, goes through one
// function, Service.Apply: idempotent by transaction id and status, forward
// only (an intent's status never moves to a lower rank: a late PENDING or a
// DECLINED after an APPROVED changes nothing), and in one transaction with
// its effect on the thing paid, its ledger movement, its audit entry and
// its outbox event.
package payments

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Provider is what the service needs of Wompi; *wompi.Client is one.
type Provider interface {
	CheckoutURL(wompi.Checkout) (string, error)
	GetTransaction(ctx context.Context, id string) (wompi.Transaction, error)
	FindTransactionsByReference(ctx context.Context, reference string) ([]wompi.Transaction, error)
	VerifyEvent(body []byte, headerChecksum string, now time.Time) (wompi.Event, error)
	// VoidTransaction refunds an approved card payment in full
	// (wompi.ErrNotVoidable for other methods).
	VoidTransaction(ctx context.Context, id string) (wompi.Transaction, error)
}

// Defaults for zero Deps fields.
const (
	// DefaultExpiryGrace is how long after its thing lapsed a pending
	// intent is still left to the provider: the checkout link is signed
	// to expire with it, so only a payment already under way can land
	// after it.
	DefaultExpiryGrace = 15 * time.Minute
	// DefaultRecentWindow: reconciliation also re-reads intents changed
	// this recently, to catch a second approval or a contradicting status.
	DefaultRecentWindow = 24 * time.Hour
	// MinPayWindow: an order expiring sooner than this is not offered a
	// checkout link (the payer could not finish in time).
	MinPayWindow = time.Minute
)

// Deps is what a Service needs.
type Deps struct {
	Store persistence.Store
	// Wompi is nil when payments are not configured: every use case then
	// answers 503.
	Wompi Provider
	// Sealer, when set, seals the raw event bodies at rest (they carry the
	// payer's e-mail).
	Sealer keyed.Sealer
	// RedirectURL is where the checkout page sends the payer back (""
	// for none).
	RedirectURL  string
	ExpiryGrace  time.Duration
	RecentWindow time.Duration
	Metrics      *Metrics
	Log          *slog.Logger
	Now          func() time.Time
}

// Service runs the payment use cases. It is safe for concurrent use.
type Service struct {
	d        Deps
	settlers map[persistence.PaymentKind]Settler
	// deposits confirms and releases appointments (nil: deposits are not
	// taken online; EnableDeposits).
	deposits Appointments
	// follow serialises the follow-ups of one deposit on this node
	// (striped by intent id), so a webhook and reconciliation do not
	// both decide to refund it.
	follow [64]sync.Mutex
}

// New returns a Service with the shop order and voucher purchase settlers
// registered.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.ExpiryGrace <= 0 {
		d.ExpiryGrace = DefaultExpiryGrace
	}
	if d.RecentWindow <= 0 {
		d.RecentWindow = DefaultRecentWindow
	}
	s := &Service{d: d, settlers: map[persistence.PaymentKind]Settler{}}
	s.Register(persistence.PaymentOrder, OrderSettler{})
	s.Register(persistence.PaymentVoucherPurchase, VoucherPurchaseSettler{})
	return s
}

// Register makes st settle approved intents of kind (deposits and voucher
// purchases plug in here).
func (s *Service) Register(kind persistence.PaymentKind, st Settler) { s.settlers[kind] = st }

// Enabled reports whether a provider is configured.
func (s *Service) Enabled() bool { return s != nil && s.d.Wompi != nil }

func (s *Service) now() time.Time { return s.d.Now().UTC() }

var errDisabled = fault.Unavailable("online payments are not configured on this server")

var (
	personRoles = []auth.Role{auth.RoleClient, auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
	staffRoles  = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
)

func allow(by service.Caller, roles ...auth.Role) error {
	if by.Anonymous() {
		return fault.Unauthenticated("")
	}
	if !slices.Contains(roles, by.Role) {
		return fault.Forbidden("")
	}
	return nil
}

// Checkout is an intent with the link that pays it.
type Checkout struct {
	Intent persistence.PaymentIntent
	URL    string
}

// PayOrder returns the checkout of the caller's pending_payment order: the
// live intent when there is one (created false), else a new one. The
// client pays their own order; staff may create the link for any order
// (to send it to the client). It runs in tx (the request's idempotency
// transaction) and calls no remote service: the link is signed locally,
// so an outage of Wompi leaves no intent half made.
func (s *Service) PayOrder(ctx context.Context, tx persistence.Tx, by service.Caller, orderID string) (co Checkout, created bool, err error) {
	if err := allow(by, personRoles...); err != nil {
		return co, false, err
	}
	if !s.Enabled() {
		return co, false, errDisabled
	}
	now := s.now()
	o, err := tx.OrderGet(ctx, orderID)
	if err != nil {
		return co, false, fault.IfNotFound(err, "order")
	}
	if o.ClientID != by.Subject && !slices.Contains(staffRoles, by.Role) {
		return co, false, fault.NotFound("order not found")
	}
	switch {
	case o.Status != persistence.OrderPendingPayment:
		return co, false, fault.New(fault.CodeOrderTransition, "the order is "+string(o.Status)+" and takes no payment")
	case o.TotalMinor <= 0:
		return co, false, fault.Conflict("the order has nothing left to pay")
	case !o.ExpiresAt.IsZero() && !now.Add(MinPayWindow).Before(o.ExpiresAt):
		return co, false, fault.New(fault.CodeOrderTransition, "the order expires too soon to be paid online")
	}
	intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentOrder, o.ID)
	if err != nil {
		return co, false, err
	}
	for _, in := range intents {
		switch in.Status {
		case persistence.IntentPending:
			co.Intent, created = in, false
		case persistence.IntentApproved:
			// The order is about to become paid (or waits in suspense for
			// a human): never take a second payment.
			return co, false, fault.Conflict("a payment of this order was already approved")
		}
	}
	if co.Intent.ID == "" {
		expires := o.ExpiresAt
		if expires.IsZero() {
			expires = now.Add(24 * time.Hour)
		}
		if co.Intent, err = s.createIntent(ctx, tx, by, persistence.PaymentIntent{Kind: persistence.PaymentOrder, SubjectID: o.ID,
			ClientID: o.ClientID, AmountMinor: o.TotalMinor, CreatedAt: now, ExpiresAt: expires}, "order"); err != nil {
			return co, false, err
		}
		created = true
	}
	co.URL, err = s.checkoutURL(co.Intent)
	return co, created, err
}

// createIntent stores a new pending intent of in's kind, subject, payer,
// amount and times (COP, a new id) with its audit entry (what it pays
// named as subject/SubjectID): one live intent per thing paid, so a
// concurrent creation of another is a 409 to retry.
func (s *Service) createIntent(ctx context.Context, tx persistence.Tx, by service.Caller, in persistence.PaymentIntent, subject string) (persistence.PaymentIntent, error) {
	in.ID, in.Currency = ulid.Make().String(), persistence.CurrencyCOP
	in, err := tx.PaymentIntentCreate(ctx, in)
	if errors.Is(err, persistence.ErrConflict) {
		return in, fault.Conflict("a payment of this " + strings.ReplaceAll(subject, "_", " ") + " is being created; retry")
	}
	if err != nil {
		return in, err
	}
	return in, service.Audit(ctx, tx, in.CreatedAt, by, "payment.created", "payment/"+in.ID, "",
		map[string]any{"kind": in.Kind, "subject": subject + "/" + in.SubjectID, "amount_minor": in.AmountMinor})
}

// checkoutURL signs in's web-checkout link locally (it calls nothing), to
// expire with the intent.
func (s *Service) checkoutURL(in persistence.PaymentIntent) (string, error) {
	return s.d.Wompi.CheckoutURL(wompi.Checkout{Reference: in.ID, AmountInCents: in.AmountMinor,
		RedirectURL: s.d.RedirectURL, ExpiresAt: in.ExpiresAt})
}
