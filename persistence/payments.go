package persistence

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence/money"
)

// Payments: one payment intent per thing paid online (a shop order today;
// an appointment's deposit and a voucher purchase later), the raw log of
// the payment provider's events, a double-entry journal of the money that
// moved, and the exceptions reconciliation leaves for a human.
//
// The rules (which status may follow which, what an approval does to the
// thing paid) live above the store, in actors/service/payments; the store
// applies an intent's change conditionally on the version the caller read,
// so a webhook and the reconciliation racing on one intent produce one
// winner and one ErrStatusMismatch.

// PaymentKind is what an intent pays.
type PaymentKind string

// Payment kinds.
const (
	PaymentOrder           PaymentKind = "order"            // a shop order (SubjectID: order id)
	PaymentDeposit         PaymentKind = "deposit"          // an appointment's deposit (SubjectID: appointment id)
	PaymentVoucherPurchase PaymentKind = "voucher_purchase" // a voucher bought online (SubjectID: the purchase id, the voucher's once issued)
)

// Valid reports whether k is a payment kind.
func (k PaymentKind) Valid() bool {
	return k == PaymentOrder || k == PaymentDeposit || k == PaymentVoucherPurchase
}

// IntentStatus is a stage of a payment intent.
type IntentStatus string

// Intent statuses. Their order (IntentStatus.Rank) is what "never moves
// backwards" means: pending (0) < declined, error, expired (1) < approved
// (2) < voided, refunded (3).
const (
	IntentPending  IntentStatus = "pending"  // waiting for the payer or the provider
	IntentDeclined IntentStatus = "declined" // the provider refused the payment
	IntentError    IntentStatus = "error"    // the provider failed to process it
	IntentExpired  IntentStatus = "expired"  // the thing paid lapsed with no payment
	IntentApproved IntentStatus = "approved" // the money was taken
	IntentVoided   IntentStatus = "voided"   // an approved card payment was voided
	IntentRefunded IntentStatus = "refunded" // an approved payment was given back another way
)

// Rank orders the statuses: an intent may only move to a status of a
// higher rank. Declined, error and expired share a rank (none follows
// another), but an approval still overrides them: a payment the provider
// took is never lost because an earlier attempt of the same reference
// failed or our clock gave up first. -1 for an unknown status.
func (s IntentStatus) Rank() int {
	switch s {
	case IntentPending:
		return 0
	case IntentDeclined, IntentError, IntentExpired:
		return 1
	case IntentApproved:
		return 2
	case IntentVoided, IntentRefunded:
		return 3
	}
	return -1
}

// Valid reports whether s is an intent status.
func (s IntentStatus) Valid() bool { return s.Rank() >= 0 }

// Final reports whether nothing but a higher rank can follow s: every
// status except pending. Reconciliation polls the pending ones.
func (s IntentStatus) Final() bool { return s.Valid() && s != IntentPending }

// IntentMayBecome reports whether an intent in from may move to to.
func IntentMayBecome(from, to IntentStatus) bool {
	return from.Valid() && to.Valid() && to.Rank() > from.Rank()
}

// PaymentIntent is one payment of one thing; its ID is the reference the
// provider knows it by.
type PaymentIntent struct {
	ID          string // ULID; the provider's reference
	Kind        PaymentKind
	SubjectID   string // what is paid: the order, appointment or voucher id
	ClientID    string // who pays
	AmountMinor int64  // COP minor units, > 0
	Currency    string // "COP"
	Status      IntentStatus
	// TransactionID is the provider's transaction attached to the intent
	// ("" until one is); it can change only to an approving transaction.
	TransactionID string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// ExpiresAt is when the thing paid lapses (an order's expires_at);
	// the checkout link is signed to expire then.
	ExpiresAt time.Time
	Version   int64 // 1 when created, +1 per change
}

// CurrencyCOP is the only currency intents take.
const CurrencyCOP = "COP"

// Check refuses a malformed intent with an error wrapping ErrInvalid.
func (p PaymentIntent) Check() error {
	switch {
	case p.ID == "" || len(p.ID) > 64:
		return invalidf("payment intent: id must be 1 to 64 bytes")
	case !p.Kind.Valid():
		return invalidf("payment intent %s: unknown kind %q", p.ID, p.Kind)
	case p.SubjectID == "" || p.ClientID == "":
		return invalidf("payment intent %s: empty subject or client", p.ID)
	case p.AmountMinor <= 0 || !money.Valid(p.AmountMinor):
		return invalidf("payment intent %s: amount %d is not a positive amount", p.ID, p.AmountMinor)
	case p.Currency != CurrencyCOP:
		return invalidf("payment intent %s: currency %q", p.ID, p.Currency)
	case !p.Status.Valid():
		return invalidf("payment intent %s: unknown status %q", p.ID, p.Status)
	case p.CreatedAt.IsZero() || p.ExpiresAt.IsZero():
		return invalidf("payment intent %s: zero creation or expiry", p.ID)
	}
	return nil
}

// IntentChange moves an intent: to Status, attaching TransactionID (""
// keeps the attached one), if its version is still FromVersion.
type IntentChange struct {
	ID            string
	FromVersion   int64
	Status        IntentStatus
	TransactionID string
	At            time.Time
}

// IntentListParams selects intents for reconciliation: every one in a
// status of Statuses, or updated at or after UpdatedSince (either
// condition), in id order after AfterID.
type IntentListParams struct {
	Statuses     []IntentStatus
	UpdatedSince time.Time // zero: no "recently changed" condition
	AfterID      string
	Limit        int // 1..MaxPaymentListLimit
}

// MaxPaymentListLimit bounds every payment list.
const MaxPaymentListLimit = 1000

// ---- Events ------------------------------------------------------------

// PaymentEvent is one authentic event of a provider, as received: stored
// before anything is applied, keyed by the event's checksum so a replay is
// recognised. AppliedAt stays zero until an apply committed (a crash or a
// failing store in between leaves it for the redelivery or reconciliation).
// The messaging webhooks (WhatsApp, Twilio) keep their events here too,
// under their own provider and with the payment fields empty
// (actors/service/inbox).
type PaymentEvent struct {
	Key           string // the event's checksum (wompi.Event.Key)
	Provider      string // "wompi"; "whatsapp", "twilio"
	ReceivedAt    time.Time
	Body          []byte // the raw body, sealed by the caller when it can
	TransactionID string // the signed transaction id
	Status        string // the signed status
	AmountMinor   int64  // the signed amount
	Reference     string // unsigned: a hint only
	AppliedAt     time.Time
	Outcome       string // what applying did ("" until applied)
}

// ---- Ledger ------------------------------------------------------------

// Ledger accounts of the payments journal. Each movement debits one and
// credits another by the same amount.
const (
	// AccountWompi is money the provider holds for us (debited when a
	// payment is approved, credited when it is voided or paid out).
	AccountWompi = "wompi"
	// AccountOrders is what approved payments settled of shop orders.
	AccountOrders = "orders"
	// AccountDeposits is what approved payments settled of deposits: the
	// deposits attached to a confirmed appointment. When the appointment is
	// cancelled within the cancellation policy the deposit is refunded
	// from here (to AccountWompi by a void, or to AccountClientCredit);
	// cancelled outside it, or a no-show, it moves to AccountDepositFees.
	AccountDeposits = "deposits"
	// AccountDepositsHeld is an approved deposit not yet attached: its
	// appointment is being confirmed by the staff member's actor, outside
	// the approval's transaction. It moves on to AccountDeposits (attached),
	// or back to AccountWompi (voided) or to AccountClientCredit (refunded
	// as credit) when the appointment could not be confirmed; at rest it
	// is zero.
	AccountDepositsHeld = "deposits_held"
	// AccountClientCredit is money refunded as client credit (the shop's
	// credit ledger, credit_entries, holds each client's balance): we still
	// hold it, and owe it to the client.
	AccountClientCredit = "client_credit"
	// AccountDepositFees is revenue: a deposit the studio keeps because
	// its appointment was cancelled outside the cancellation policy or the
	// client did not come (moved from AccountDeposits, once).
	AccountDepositFees = "deposit_fees"
	// AccountVouchers is what approved payments settled of voucher sales.
	AccountVouchers = "vouchers"
	// AccountSuspense is money received that settles nothing (a payment
	// approved after its order lapsed, a second approval): it waits for a
	// refund or a human, with an exception open.
	AccountSuspense = "suspense"
)

// LedgerLine is one side of a movement: a positive amount debited
// (Debit) or credited to an account.
type LedgerLine struct {
	Account     string
	Debit       bool
	AmountMinor int64 // > 0
}

// LedgerMovement is a balanced set of lines: the debits equal the credits.
// Key names the movement so it is written once ("approved/<tx id>"): a
// second post with the same intent and key is ErrConflict.
type LedgerMovement struct {
	ID       string // ULID
	IntentID string
	Key      string
	Memo     string // no PII
	At       time.Time
	Lines    []LedgerLine // at least two
}

// LedgerEntry is a stored line: AmountMinor is signed (debit +, credit −),
// so the entries of a movement, and of the whole journal, sum to zero.
type LedgerEntry struct {
	ID          string
	MovementID  string
	IntentID    string
	Key         string
	Account     string
	AmountMinor int64
	Memo        string
	At          time.Time
}

// Check refuses an unbalanced or malformed movement (ErrInvalid). Sums
// are checked (money.Sum), so no amount can wrap around.
func (m LedgerMovement) Check() error {
	if m.ID == "" || m.IntentID == "" || m.Key == "" || m.At.IsZero() {
		return invalidf("ledger movement: empty id, intent, key or time")
	}
	if len(m.Lines) < 2 {
		return invalidf("ledger movement %s: fewer than two lines", m.ID)
	}
	var debit, credit money.Sum
	for _, l := range m.Lines {
		if l.Account == "" || l.AmountMinor <= 0 || !money.Valid(l.AmountMinor) {
			return invalidf("ledger movement %s: a line needs an account and a positive amount", m.ID)
		}
		if l.Debit {
			debit.Add(l.AmountMinor)
		} else {
			credit.Add(l.AmountMinor)
		}
	}
	d, err1 := debit.Total()
	c, err2 := credit.Total()
	if err1 != nil || err2 != nil || d != c {
		return invalidf("ledger movement %s: debits %d and credits %d do not balance", m.ID, d, c)
	}
	return nil
}

// ---- Exceptions --------------------------------------------------------

// ExceptionClass is why reconciliation (or the webhook) wants a human.
type ExceptionClass string

// Exception classes.
const (
	// ExceptionMissingWebhook: reconciliation applied a change no event
	// announced. Opened resolved: nothing is left to do, it is kept to
	// show how often Wompi's events go missing.
	ExceptionMissingWebhook ExceptionClass = "missing_webhook"
	// ExceptionStatusMismatch: the provider reports a status that
	// contradicts ours (DECLINED after APPROVED), or a payment approved
	// for something no longer payable (the order expired meanwhile).
	ExceptionStatusMismatch ExceptionClass = "status_mismatch"
	// ExceptionAmountMismatch: the transaction's amount or currency is not
	// the intent's; nothing was applied.
	ExceptionAmountMismatch ExceptionClass = "amount_mismatch"
	// ExceptionDuplicateApproval: a second transaction approved for one
	// reference; the second payment waits in suspense for a refund.
	ExceptionDuplicateApproval ExceptionClass = "duplicate_approval"
	// ExceptionOrphan: an event or transaction for a reference we do not
	// know, or an approved intent the provider does not know.
	ExceptionOrphan ExceptionClass = "orphan"
	// ExceptionStalePending: the provider still says PENDING long after
	// the thing paid lapsed.
	ExceptionStalePending ExceptionClass = "stale_pending"
	// ExceptionStaleFollowUp: a deposit approved a while ago is neither
	// attached to its appointment nor refunded (its follow-up keeps
	// failing); reconciliation stops retrying it after its recent window.
	ExceptionStaleFollowUp ExceptionClass = "stale_follow_up"
)

// ExceptionClasses lists every class (for metrics and validation).
var ExceptionClasses = []ExceptionClass{ExceptionMissingWebhook, ExceptionStatusMismatch, ExceptionAmountMismatch,
	ExceptionDuplicateApproval, ExceptionOrphan, ExceptionStalePending, ExceptionStaleFollowUp}

// Valid reports whether c is an exception class.
func (c ExceptionClass) Valid() bool {
	for _, k := range ExceptionClasses {
		if k == c {
			return true
		}
	}
	return false
}

// ExceptionState is open until a human resolves it or writes it off.
type ExceptionState string

// Exception states.
const (
	ExceptionOpen       ExceptionState = "open"
	ExceptionResolved   ExceptionState = "resolved"
	ExceptionWrittenOff ExceptionState = "written_off"
)

// Valid reports whether s is an exception state.
func (s ExceptionState) Valid() bool {
	return s == ExceptionOpen || s == ExceptionResolved || s == ExceptionWrittenOff
}

// PaymentException is one discrepancy for a human. Dedupe makes opening
// it idempotent: reconciliation meets the same discrepancy every pass.
type PaymentException struct {
	ID            string // ULID
	Class         ExceptionClass
	State         ExceptionState
	Dedupe        string // unique: class/reference/transaction, by the caller
	IntentID      string // "" for an orphan event
	Reference     string
	TransactionID string
	AmountMinor   int64  // the provider's amount, when known
	Detail        string // what was seen; no PII
	OpenedAt      time.Time
	ResolvedAt    time.Time
	ResolvedBy    string
	Resolution    string // the human's reason
	Version       int64
}

// ExceptionListParams selects exceptions, newest first.
type ExceptionListParams struct {
	State    ExceptionState // "": any
	Class    ExceptionClass // "": any
	BeforeID string
	Limit    int // 1..MaxPaymentListLimit
}

// ExceptionStat is the open exceptions of one class.
type ExceptionStat struct {
	Class        ExceptionClass
	Open         int
	OldestOpenAt time.Time // zero when none is open
}

// ExceptionResolve closes an open exception.
type ExceptionResolve struct {
	ID     string
	State  ExceptionState // resolved or written_off
	By     string
	Reason string
	At     time.Time
}

// PaymentSourceStatus: a saved source is available until voided.
type PaymentSourceStatus string

// Payment source statuses.
const (
	SourceAvailable PaymentSourceStatus = "available"
	SourceVoided    PaymentSourceStatus = "voided"
)

// PaymentSource is a client's saved way to pay: a card or Nequi account
// tokenized at the provider, charged without a checkout page.
type PaymentSource struct {
	ID         string // ULID, ours
	ClientID   string
	ProviderID int64  // the provider's id of the source
	Type       string // CARD or NEQUI
	Label      string // what the client knows it by ("VISA 4242"); never a full number
	Email      string // the payer's e-mail, sent with each charge; sealed at rest
	Status     PaymentSourceStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// PaymentStore keeps intents, events, the journal, exceptions and saved
// payment sources.
type PaymentStore interface {
	// PaymentSourceCreate stores s (Status available); ErrConflict if its
	// id exists.
	PaymentSourceCreate(ctx context.Context, s PaymentSource) (PaymentSource, error)
	// PaymentSourceGet returns the source or ErrNotFound.
	PaymentSourceGet(ctx context.Context, id string) (PaymentSource, error)
	// PaymentSourceList returns a client's available sources, oldest first.
	PaymentSourceList(ctx context.Context, clientID string) ([]PaymentSource, error)
	// PaymentSourceVoid marks the source voided at at; ErrNotFound when
	// absent. Voiding a voided source changes nothing.
	PaymentSourceVoid(ctx context.Context, id string, at time.Time) error

	// PaymentIntentCreate inserts p (Status pending, Version 1 are set);
	// ErrConflict if its id exists or another pending intent pays the
	// same kind and subject.
	PaymentIntentCreate(ctx context.Context, p PaymentIntent) (PaymentIntent, error)
	// PaymentIntentGet returns the intent or ErrNotFound.
	PaymentIntentGet(ctx context.Context, id string) (PaymentIntent, error)
	// PaymentIntentsOf returns the intents of one subject, newest first.
	PaymentIntentsOf(ctx context.Context, kind PaymentKind, subjectID string) ([]PaymentIntent, error)
	// PaymentIntentUpdate applies ch if the intent is still at
	// ch.FromVersion and the status may follow (IntentMayBecome);
	// ErrStatusMismatch when the version moved, ErrInvalid for a status
	// that may not follow, ErrNotFound when absent.
	PaymentIntentUpdate(ctx context.Context, ch IntentChange) (PaymentIntent, error)
	// PaymentIntentList selects intents for reconciliation.
	PaymentIntentList(ctx context.Context, p IntentListParams) ([]PaymentIntent, error)
	// PaymentDepositsToSettle selects, for reconciliation, the approved
	// deposit intents whose appointment is cancelled or no_show, was
	// updated at or after since, and whose journal has no movement keyed
	// "fee/<intent id>": deposits of appointments that ended without the
	// service and are neither refunded nor kept yet. In id order after
	// afterID; limit 1..MaxPaymentListLimit.
	PaymentDepositsToSettle(ctx context.Context, since time.Time, afterID string, limit int) ([]PaymentIntent, error)

	// PaymentEventRecord stores e unless an event with its key exists, and
	// returns the stored one with whether this call created it.
	PaymentEventRecord(ctx context.Context, e PaymentEvent) (PaymentEvent, bool, error)
	// PaymentEventMarkApplied sets the event's applied time and outcome
	// unless it is already applied, and reports whether it did.
	PaymentEventMarkApplied(ctx context.Context, key, outcome string, at time.Time) (bool, error)
	// PaymentEventListUnapplied returns provider's events received before
	// before and never applied, oldest first.
	PaymentEventListUnapplied(ctx context.Context, provider string, before time.Time, limit int) ([]PaymentEvent, error)

	// PaymentLedgerPost writes a balanced movement (LedgerMovement.Check);
	// ErrConflict if the intent already has a movement with its key.
	PaymentLedgerPost(ctx context.Context, m LedgerMovement) error
	// PaymentLedgerEntries returns an intent's entries in write order.
	PaymentLedgerEntries(ctx context.Context, intentID string) ([]LedgerEntry, error)
	// PaymentLedgerBalances returns every account's balance (debits minus
	// credits); they sum to zero.
	PaymentLedgerBalances(ctx context.Context) (map[string]int64, error)

	// PaymentExceptionOpen stores x unless one with its Dedupe exists, and
	// returns the stored one with whether this call created it.
	PaymentExceptionOpen(ctx context.Context, x PaymentException) (PaymentException, bool, error)
	// PaymentExceptionGet returns the exception or ErrNotFound.
	PaymentExceptionGet(ctx context.Context, id string) (PaymentException, error)
	// PaymentExceptionList returns exceptions newest first.
	PaymentExceptionList(ctx context.Context, p ExceptionListParams) ([]PaymentException, error)
	// PaymentExceptionResolve closes an open exception; ErrStatusMismatch
	// when it is not open, ErrNotFound when absent.
	PaymentExceptionResolve(ctx context.Context, r ExceptionResolve) (PaymentException, error)
	// PaymentExceptionStats counts open exceptions per class (every class
	// listed, zero included) with the oldest one's time.
	PaymentExceptionStats(ctx context.Context) ([]ExceptionStat, error)
}
