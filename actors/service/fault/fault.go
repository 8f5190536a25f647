// Package fault is the single table of failures a client may be shown:
// stable codes, their HTTP status and default message. Use-case services
// return these errors without knowing HTTP; gateway/apierr renders them.
//
// Clients branch on the stable code instead of parsing prose. Messages are
// written for the client and never carry internal error text: anything that
// is not already an *Error becomes a generic 500 and is logged instead.
package fault

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Error codes. They are part of the public API contract: add new ones, never
// rename or reuse one.
const (
	CodeBadRequest            = "bad_request"
	CodeValidationFailed      = "validation_failed"
	CodeUnauthenticated       = "unauthenticated"
	CodeForbidden             = "forbidden"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeConflict              = "conflict"
	CodeVersionConflict       = "version_conflict"
	CodeIdempotencyKeyInvalid = "idempotency_key_invalid"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeIdempotencyKeyInUse   = "idempotency_key_in_use"
	CodePayloadTooLarge       = "payload_too_large"
	CodeUnsupportedMediaType  = "unsupported_media_type"
	CodeRequestTimeout        = "request_timeout"
	CodeHeadersTooLarge       = "headers_too_large"
	CodeRateLimited           = "rate_limited"
	CodeUnavailable           = "unavailable"
	CodeTimeout               = "timeout"
	CodeInternal              = "internal"
	CodeSlotTaken             = "slot_taken"
	CodeHoldExpired           = "hold_expired"
	CodeInvalidTransition     = "invalid_transition"
	CodeCutoffPassed          = "cutoff_passed"
	CodeOutOfStock            = "out_of_stock"
	CodeReservationLapsed     = "reservation_lapsed"
	CodeCartClosed            = "cart_closed"
	CodePackageExhausted      = "package_exhausted"
	CodeInsufficientBalance   = "insufficient_balance"
	CodeVoucherAlreadyApplied = "voucher_already_applied"
	CodeNotRedeemable         = "not_redeemable"
	CodeConsentRequired       = "consent_required"
	CodeBlocked               = "blocked"
	CodeOTPLocked             = "otp_locked"
	CodeInvalidCode           = "invalid_code"
	CodeRefreshTokenInvalid   = "refresh_token_invalid"
	CodeMFARequired           = "mfa_required"
	CodeSecondFactorRequired  = "second_factor_required"
	CodeCaptchaRequired       = "captcha_required"
	CodeOrderTransition       = "order_transition_refused"
	CodeNotReturnable         = "not_returnable"
	CodeReturnExceedsOrder    = "return_exceeds_order"
	CodeHoldLimit             = "hold_limit_reached"
	CodeReservationLimit      = "reservation_limit_reached"
	CodeInsufficientCredit    = "insufficient_credit"
	CodeAmountTooLarge        = "amount_too_large"
	// CodeInvalidCharacter: a NUL character or invalid UTF-8 anywhere in
	// the path, query or body (gateway/input.go).
	CodeInvalidCharacter = "invalid_character"
)

// table is the one place a code is bound to its status and default message,
// so a constructor can never pair a code with the wrong status.
var table = map[string]struct {
	status  int
	message string
}{
	CodeBadRequest:            {http.StatusBadRequest, "the request is malformed"},
	CodeValidationFailed:      {http.StatusUnprocessableEntity, "the request failed validation"},
	CodeUnauthenticated:       {http.StatusUnauthorized, "authentication is required"},
	CodeForbidden:             {http.StatusForbidden, "you are not allowed to do this"},
	CodeNotFound:              {http.StatusNotFound, "resource not found"},
	CodeMethodNotAllowed:      {http.StatusMethodNotAllowed, "method not allowed on this resource"},
	CodeConflict:              {http.StatusConflict, "the request conflicts with the current state"},
	CodeVersionConflict:       {http.StatusConflict, "the resource was changed by someone else; reload and retry"},
	CodeIdempotencyKeyInvalid: {http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters"},
	CodeIdempotencyKeyReused:  {http.StatusUnprocessableEntity, "Idempotency-Key was already used for a different request"},
	CodeIdempotencyKeyInUse:   {http.StatusConflict, "a request with this Idempotency-Key is still being processed"},
	CodePayloadTooLarge:       {http.StatusRequestEntityTooLarge, "request body too large"},
	CodeUnsupportedMediaType:  {http.StatusUnsupportedMediaType, "unsupported content type"},
	CodeRequestTimeout:        {http.StatusRequestTimeout, "the request was not received in time"},
	CodeHeadersTooLarge:       {http.StatusRequestHeaderFieldsTooLarge, "request headers too large"},
	CodeRateLimited:           {http.StatusTooManyRequests, "too many requests; slow down"},
	CodeUnavailable:           {http.StatusServiceUnavailable, "service temporarily unavailable; retry later"},
	CodeTimeout:               {http.StatusGatewayTimeout, "the request took too long"},
	CodeInternal:              {http.StatusInternalServerError, "internal error"},
	CodeSlotTaken:             {http.StatusConflict, "that slot is no longer free; see the alternatives"},
	CodeHoldExpired:           {http.StatusConflict, "the hold expired before it was confirmed; book again"},
	CodeInvalidTransition:     {http.StatusConflict, "the appointment's status does not allow this"},
	CodeCutoffPassed:          {http.StatusConflict, "too close to the start to change it; contact the studio"},
	CodeOutOfStock:            {http.StatusConflict, "not enough units of that item are available"},
	CodeReservationLapsed:     {http.StatusConflict, "an item's reservation lapsed before checkout; review the cart and retry"},
	CodeCartClosed:            {http.StatusConflict, "the cart was checked out, merged or expired"},
	CodePackageExhausted:      {http.StatusConflict, "the package has no sessions left"},
	CodeInsufficientBalance:   {http.StatusConflict, "the voucher's balance is too small"},
	CodeVoucherAlreadyApplied: {http.StatusConflict, "this voucher already pays the appointment with another amount"},
	CodeNotRedeemable:         {http.StatusUnprocessableEntity, "the package cannot pay for this booking"},
	CodeConsentRequired:       {http.StatusPreconditionRequired, "accept the current legal documents first; see details.documents"},
	CodeBlocked:               {http.StatusForbidden, "access from here is blocked; contact the studio"},
	CodeOTPLocked:             {http.StatusTooManyRequests, "too many wrong codes; wait before trying again (see Retry-After)"},
	CodeInvalidCode:           {http.StatusBadRequest, "the code is invalid or has expired; request a new one"},
	CodeRefreshTokenInvalid:   {http.StatusUnauthorized, "the refresh token is invalid, expired or revoked; sign in again"},
	CodeMFARequired:           {http.StatusUnauthorized, "a second factor is required: POST /v1/auth/totp with details.mfa_challenge and an authenticator or recovery code"},
	CodeSecondFactorRequired:  {http.StatusForbidden, "this role needs a second factor: enrol one (POST /v1/me/totp/enrol, then /v1/me/totp/confirm), refresh, and retry"},
	CodeCaptchaRequired:       {http.StatusForbidden, "this number saw too many wrong codes: send a reCAPTCHA token (recaptcha_token) with the request"},
	CodeOrderTransition:       {http.StatusConflict, "the order's status does not allow this"},
	CodeNotReturnable:         {http.StatusConflict, "the order cannot be returned in its status"},
	CodeReturnExceedsOrder:    {http.StatusConflict, "the return asks back more units than are left on the order"},
	CodeInsufficientCredit:    {http.StatusConflict, "the client's credit is too small"},
	CodeAmountTooLarge:        {http.StatusUnprocessableEntity, "an amount or total would exceed 1000000000000 minor units"},
	CodeInvalidCharacter:      {http.StatusBadRequest, "the request holds a NUL character or invalid UTF-8, which no field accepts"},
	CodeHoldLimit:             {http.StatusTooManyRequests, "too many unconfirmed holds; confirm or cancel one, or wait (see Retry-After)"},
	CodeReservationLimit:      {http.StatusTooManyRequests, "too many units reserved; check out, lower a line, or wait (see Retry-After)"},
}

// Error is a failure that is safe to show to the client as is.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable machine-readable code from the table above
	Message string // human-readable, safe for clients
	Details any    // optional structured detail, e.g. per-field validation errors
	// RetryAfter, when positive, is when the request may succeed again:
	// the gateway sends it as Retry-After (whole seconds, at least 1).
	RetryAfter time.Duration
}

// Error implements error; it reads like the client would see it.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New builds an Error for code; an empty msg takes the code's default
// message. An unknown code becomes internal so a typo cannot invent a status.
func New(code, msg string) *Error {
	t, ok := table[code]
	if !ok {
		code, t = CodeInternal, table[CodeInternal]
	}
	if msg == "" {
		msg = t.message
	}
	return &Error{Status: t.status, Code: code, Message: msg}
}

// WithDetails returns a copy of e carrying details, leaving shared values
// such as the package-level defaults untouched.
func (e *Error) WithDetails(details any) *Error {
	c := *e
	c.Details = details
	return &c
}

// WithRetryAfter returns a copy of e that asks the client to wait d.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// FieldError is one entry of a validation_failed answer's details.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Invalid is a 422 validation failure for the given field problems.
func Invalid(msg string, fields ...FieldError) *Error {
	e := New(CodeValidationFailed, msg)
	if len(fields) > 0 {
		e.Details = map[string]any{"fields": fields}
	}
	return e
}

// BadRequest is a 400 for a request that cannot be parsed.
func BadRequest(msg string) *Error { return New(CodeBadRequest, msg) }

// Unauthenticated is a 401: no or unusable credentials.
func Unauthenticated(msg string) *Error { return New(CodeUnauthenticated, msg) }

// Forbidden is a 403: authenticated but not allowed.
func Forbidden(msg string) *Error { return New(CodeForbidden, msg) }

// NotFound is a 404.
func NotFound(msg string) *Error { return New(CodeNotFound, msg) }

// Conflict is a generic 409.
func Conflict(msg string) *Error { return New(CodeConflict, msg) }

// VersionConflict is the 409 of a failed optimistic version check.
func VersionConflict(msg string) *Error { return New(CodeVersionConflict, msg) }

// IfNotFound turns the store's ErrNotFound into a 404 naming what was
// missing; any other error (or nil) passes through.
func IfNotFound(err error, what string) error {
	if errors.Is(err, persistence.ErrNotFound) {
		return NotFound(what + " not found")
	}
	return err
}

// IfVersionConflict turns the store's ErrConflict from a versioned Put into
// a 409 version_conflict carrying the version the caller sent; any other
// error (or nil) passes through.
func IfVersionConflict(err error, version int64) error {
	if errors.Is(err, persistence.ErrConflict) {
		return VersionConflict("").WithDetails(map[string]any{"version": version})
	}
	return err
}

// UnsupportedMediaType is a 415.
func UnsupportedMediaType(msg string) *Error { return New(CodeUnsupportedMediaType, msg) }

// Unavailable is a 503.
func Unavailable(msg string) *Error { return New(CodeUnavailable, msg) }

// Internal is the generic 500. It deliberately takes no message: the cause
// belongs in the log, not in the response.
func Internal() *Error { return New(CodeInternal, "") }

// Codes lists every error code, sorted: the OpenAPI document's enum is
// checked against it.
func Codes() []string {
	out := make([]string, 0, len(table))
	for c := range table {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// From maps any error to the Error the client sees. The second result is
// false when err was not meant for clients (it became internal or an
// infrastructure status), which tells the caller to log the original.
func From(err error) (*Error, bool) {
	if err == nil {
		return nil, true
	}
	if ae, ok := err.(*Error); ok { // the usual case, without errors.As's allocation
		return ae, true
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return New(CodeNotFound, ""), true
	case errors.Is(err, persistence.ErrConflict):
		return New(CodeConflict, ""), true
	case errors.Is(err, persistence.ErrInvalid):
		// The store refused what the handler's validation let through:
		// still the request's fault, but worth a log line.
		return New(CodeValidationFailed, ""), false
	case errors.Is(err, persistence.ErrUnavailable), errors.Is(err, persistence.ErrFenced):
		return New(CodeUnavailable, ""), false
	case errors.Is(err, context.DeadlineExceeded):
		return New(CodeTimeout, ""), false
	case errors.Is(err, context.Canceled):
		// The client usually went away; 503 keeps it out of the 500 budget
		// while still telling a proxy the request did not succeed.
		return New(CodeUnavailable, "request cancelled"), false
	}
	return Internal(), false
}
