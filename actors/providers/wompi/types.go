package wompi

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Status is a transaction's status. A transaction starts PENDING; APPROVED,
// DECLINED, VOIDED (cards only) and ERROR are final.
type Status string

const (
	StatusPending  Status = "PENDING"
	StatusApproved Status = "APPROVED"
	StatusDeclined Status = "DECLINED"
	StatusVoided   Status = "VOIDED"
	StatusError    Status = "ERROR"
)

// Final reports whether s can no longer change, except APPROVED → VOIDED.
func (s Status) Final() bool {
	switch s {
	case StatusApproved, StatusDeclined, StatusVoided, StatusError:
		return true
	}
	return false
}

// known reports whether s is one of Wompi's statuses.
func (s Status) known() bool { return s == StatusPending || s.Final() }

// Payment method types.
const (
	MethodCard  = "CARD"
	MethodNequi = "NEQUI"
)

// Transaction is the part of Wompi's transaction resource we use.
type Transaction struct {
	ID                string `json:"id"`
	CreatedAt         string `json:"created_at"`
	FinalizedAt       string `json:"finalized_at"`
	Reference         string `json:"reference"`
	AmountInCents     int64  `json:"amount_in_cents"`
	Currency          string `json:"currency"`
	CustomerEmail     string `json:"customer_email"`
	PaymentMethodType string `json:"payment_method_type"`
	Status            Status `json:"status"`
	StatusMessage     string `json:"status_message"`
	// PaymentSourceID is 0 when the transaction was not charged to a
	// payment source.
	PaymentSourceID int64  `json:"payment_source_id"`
	RedirectURL     string `json:"redirect_url"`
	PaymentLinkID   string `json:"payment_link_id"`
}

// Sentinel errors. Every error from a Client call wraps exactly one of
// ErrInvalidRequest, ErrNotFound or ErrUnavailable; ErrReferenceInUse,
// ErrNotVoidable and ErrAuth add detail.
var (
	// ErrInvalidRequest: Wompi (422/400, INPUT_VALIDATION_ERROR) or our own
	// checks refused the request. Sending it again is useless.
	ErrInvalidRequest = errors.New("wompi: invalid request")
	// ErrReferenceInUse: a transaction with this reference exists (422 on
	// "reference"). Wraps ErrInvalidRequest.
	ErrReferenceInUse = errors.New("wompi: reference already used")
	// ErrNotVoidable: the transaction cannot be voided (not a card, not
	// APPROVED, or past the void window). Wraps ErrInvalidRequest; refund
	// another way (client credit).
	ErrNotVoidable = errors.New("wompi: transaction cannot be voided")
	// ErrNotFound: no such transaction or payment source (404).
	ErrNotFound = errors.New("wompi: not found")
	// ErrUnavailable: Wompi did not answer usefully (network, timeout, 429,
	// 5xx, open breaker) or refused our keys (ErrAuth). Try later; the
	// gateway answers 503 with Retry-After.
	ErrUnavailable = errors.New("wompi: unavailable")
	// ErrAuth: Wompi refused our key (401/403): a configuration problem,
	// never retried. Wraps ErrUnavailable.
	ErrAuth = errors.New("wompi: key refused")
)

// APIError is Wompi's error reply {"error":{"type":…,"reason":…,"messages":{…}}}.
// Error() names the status, the type and the refused fields only: a
// reason or message can quote what was sent (an e-mail).
type APIError struct {
	Status int    `json:"-"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
	// Messages maps each refused field to Wompi's explanation (usually a
	// list of strings, sometimes nested per sub-field).
	Messages map[string]json.RawMessage `json:"messages"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wompi: HTTP ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Type != "" {
		b.WriteString(", ")
		b.WriteString(e.Type)
	}
	if len(e.Messages) > 0 {
		fields := make([]string, 0, len(e.Messages))
		for f := range e.Messages {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		b.WriteString(" (")
		b.WriteString(strings.Join(fields, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// Field reports whether Wompi refused field.
func (e *APIError) Field(field string) bool {
	_, ok := e.Messages[field]
	return ok
}
