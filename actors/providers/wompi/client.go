package wompi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Provider is the metrics label of every Wompi call.
const Provider = "wompi"

// Client talks to Wompi's API. It is safe for concurrent use; make one and
// share it (its breaker is per client).
type Client struct {
	cfg    Config
	env    Environment
	http   *http.Client
	caller *resilient.Caller
}

// New returns a Client; m may be nil (no metrics).
func New(cfg Config, m *resilient.Metrics) (*Client, error) {
	env, err := cfg.environment()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = SandboxBaseURL
		if env == Production {
			cfg.BaseURL = ProductionBaseURL
		}
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.CheckoutURL == "" {
		cfg.CheckoutURL = DefaultCheckoutURL
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, env: env, http: hc, caller: resilient.New(Provider, cfg.Policy, m)}, nil
}

// Environment is sandbox or production, from the keys.
func (c *Client) Environment() Environment { return c.env }

// CloseIdleConnections releases the HTTP client's idle connections (at
// shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// BreakerState is the circuit breaker's state ("closed", "half-open", "open").
func (c *Client) BreakerState() string { return c.caller.State() }

// LogValue keeps the keys out of logs if a Client is ever logged.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("environment", string(c.env)), slog.String("base_url", c.cfg.BaseURL))
}

// CheckoutURL is the signed web checkout link for co (see the function
// CheckoutURL), on the configured checkout page.
func (c *Client) CheckoutURL(co Checkout) (string, error) {
	return CheckoutURL(c.cfg.CheckoutURL, c.cfg.PublicKey, c.cfg.IntegritySecret, co)
}

// VerifyEvent checks an event with the configured events secret and the
// default window (see the function VerifyEvent).
func (c *Client) VerifyEvent(body []byte, headerChecksum string, now time.Time) (Event, error) {
	return VerifyEvent(body, headerChecksum, c.cfg.EventsSecret, now, DefaultEventWindow)
}

// AcceptanceTokens are the merchant's presigned consents. The payer must be
// shown both permalinks (terms, personal data policy) and accept them;
// their tokens then go with the transaction or payment source. Fetch them
// fresh for each payment: they expire.
type AcceptanceTokens struct {
	Acceptance            string
	AcceptancePermalink   string
	PersonalDataAuth      string
	PersonalDataPermalink string
}

// AcceptanceTokens reads GET /merchants/info (x-merchant-public-key).
func (c *Client) AcceptanceTokens(ctx context.Context) (AcceptanceTokens, error) {
	var out struct {
		Data struct {
			PresignedAcceptance struct {
				AcceptanceToken string `json:"acceptance_token"`
				Permalink       string `json:"permalink"`
			} `json:"presigned_acceptance"`
			PresignedPersonalDataAuth struct {
				AcceptanceToken string `json:"acceptance_token"`
				Permalink       string `json:"permalink"`
			} `json:"presigned_personal_data_auth"`
		} `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/merchants/info", merchantKey: true, ok: []int{http.StatusOK}}, &out)
	if err != nil {
		return AcceptanceTokens{}, classify(err)
	}
	d := out.Data
	if d.PresignedAcceptance.AcceptanceToken == "" {
		return AcceptanceTokens{}, fmt.Errorf("%w: merchant reply has no acceptance token", ErrUnavailable)
	}
	return AcceptanceTokens{
		Acceptance: d.PresignedAcceptance.AcceptanceToken, AcceptancePermalink: d.PresignedAcceptance.Permalink,
		PersonalDataAuth: d.PresignedPersonalDataAuth.AcceptanceToken, PersonalDataPermalink: d.PresignedPersonalDataAuth.Permalink,
	}, nil
}

// Card is a card to tokenize. In production the payer's browser tokenizes
// (Wompi's widget) so card numbers never reach us; this call is for tests
// and the dev node.
type Card struct {
	Number     string `json:"number"`
	CVC        string `json:"cvc"`
	ExpMonth   string `json:"exp_month"` // "08"
	ExpYear    string `json:"exp_year"`  // "28"
	CardHolder string `json:"card_holder"`
}

// CardToken is a tokenized card (tok_…).
type CardToken struct {
	ID        string `json:"id"`
	Brand     string `json:"brand"`
	LastFour  string `json:"last_four"`
	ExpMonth  string `json:"exp_month"`
	ExpYear   string `json:"exp_year"`
	ExpiresAt string `json:"expires_at"`
}

// TokenizeCard is POST /tokens/cards with the public key.
func (c *Client) TokenizeCard(ctx context.Context, card Card) (CardToken, error) {
	var out struct {
		Status string    `json:"status"`
		Data   CardToken `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/tokens/cards", key: c.cfg.PublicKey, body: card, ok: []int{http.StatusCreated, http.StatusOK}}, &out)
	if err != nil {
		return CardToken{}, classify(err)
	}
	return out.Data, nil
}

// PaymentMethod is how a one-off transaction is paid: CardPayment or
// NequiPayment.
type PaymentMethod struct {
	Type         string `json:"type,omitempty"`
	Token        string `json:"token,omitempty"`
	Installments int    `json:"installments,omitempty"`
	PhoneNumber  string `json:"phone_number,omitempty"`
}

// CardPayment pays with a card token (tok_…) in installments (at least 1).
func CardPayment(token string, installments int) PaymentMethod {
	return PaymentMethod{Type: MethodCard, Token: token, Installments: max(installments, 1)}
}

// NequiPayment pays from a Nequi account (10-digit Colombian mobile).
func NequiPayment(phone string) PaymentMethod {
	return PaymentMethod{Type: MethodNequi, PhoneNumber: phone}
}

// TransactionRequest creates a transaction: a one-off payment (Method, with
// the acceptance tokens) or a recurring charge to a payment source
// (PaymentSourceID, whose consents were given when it was created).
type TransactionRequest struct {
	// Reference is our id for the thing paid; Wompi refuses a reference
	// twice (ErrReferenceInUse).
	Reference     string
	AmountInCents int64
	// Currency must be COP; empty means COP.
	Currency      string
	CustomerEmail string
	Method        PaymentMethod
	// PaymentSourceID charges a saved source (with the private key).
	PaymentSourceID int64
	// Installments for a payment source charge (default 1).
	Installments       int
	AcceptanceToken    string
	AcceptPersonalAuth string
	RedirectURL        string
	// ExpiresAt, if set, is signed and sent as expiration_time.
	ExpiresAt time.Time
}

// wire form of POST /transactions.
type createTransaction struct {
	AcceptanceToken    string         `json:"acceptance_token,omitempty"`
	AcceptPersonalAuth string         `json:"accept_personal_auth,omitempty"`
	AmountInCents      int64          `json:"amount_in_cents"`
	Currency           string         `json:"currency"`
	Signature          string         `json:"signature"`
	CustomerEmail      string         `json:"customer_email"`
	Reference          string         `json:"reference"`
	PaymentMethod      *PaymentMethod `json:"payment_method,omitempty"`
	PaymentSourceID    int64          `json:"payment_source_id,omitempty"`
	Recurrent          bool           `json:"recurrent,omitempty"`
	RedirectURL        string         `json:"redirect_url,omitempty"`
	ExpirationTime     string         `json:"expiration_time,omitempty"`
}

// CreateTransaction is POST /transactions, signed with the integrity
// secret. It returns the new transaction, normally PENDING: its outcome
// comes by event (VerifyEvent) or by GetTransaction.
//
// A retry after a transient failure can find that the first try did create
// the transaction (Wompi answers 422, reference in use): then the
// transaction of that reference with the same amount is returned, so a
// timeout never turns into a refused payment.
func (c *Client) CreateTransaction(ctx context.Context, r TransactionRequest) (Transaction, error) {
	body, key, err := c.transactionBody(r)
	if err != nil {
		return Transaction{}, err
	}
	var out struct {
		Data Transaction `json:"data"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/transactions", key: key, body: body, ok: []int{http.StatusCreated, http.StatusOK}}, &out)
	if err == nil {
		return out.Data, nil
	}
	var retried *afterRetryError
	var apiErr *APIError
	if errors.As(err, &retried) && errors.As(err, &apiErr) && apiErr.Field("reference") {
		if tx, ok := c.findCreated(ctx, body); ok {
			return tx, nil
		}
	}
	return Transaction{}, classify(err)
}

// findCreated looks for the transaction an earlier try of body created.
func (c *Client) findCreated(ctx context.Context, body createTransaction) (Transaction, bool) {
	txs, err := c.FindTransactionsByReference(ctx, body.Reference)
	if err != nil {
		return Transaction{}, false
	}
	for i := len(txs) - 1; i >= 0; i-- {
		tx := txs[i]
		if tx.AmountInCents == body.AmountInCents && tx.Currency == body.Currency &&
			tx.PaymentSourceID == body.PaymentSourceID {
			return tx, true
		}
	}
	return Transaction{}, false
}

// transactionBody checks r and builds the signed wire body and the key to
// send it with.
func (c *Client) transactionBody(r TransactionRequest) (createTransaction, string, error) {
	if r.Currency == "" {
		r.Currency = CurrencyCOP
	}
	if err := checkReference(r.Reference); err != nil {
		return createTransaction{}, "", err
	}
	if err := checkMoney(r.AmountInCents, r.Currency); err != nil {
		return createTransaction{}, "", err
	}
	if !strings.Contains(r.CustomerEmail, "@") {
		return createTransaction{}, "", fmt.Errorf("%w: customer_email is required", ErrInvalidRequest)
	}
	b := createTransaction{
		AmountInCents: r.AmountInCents, Currency: r.Currency, CustomerEmail: r.CustomerEmail,
		Reference: r.Reference, RedirectURL: r.RedirectURL,
		AcceptanceToken: r.AcceptanceToken, AcceptPersonalAuth: r.AcceptPersonalAuth,
	}
	if !r.ExpiresAt.IsZero() {
		b.ExpirationTime = FormatExpiration(r.ExpiresAt)
	}
	b.Signature = IntegritySignature(b.Reference, b.AmountInCents, b.Currency, b.ExpirationTime, c.cfg.IntegritySecret)

	key := c.cfg.PublicKey
	switch {
	case r.PaymentSourceID != 0 && r.Method != (PaymentMethod{}):
		return createTransaction{}, "", fmt.Errorf("%w: pay with a method or a payment source, not both", ErrInvalidRequest)
	case r.PaymentSourceID < 0:
		return createTransaction{}, "", fmt.Errorf("%w: payment_source_id must be positive", ErrInvalidRequest)
	case r.PaymentSourceID > 0:
		// A saved source's consents were given at its creation.
		key = c.cfg.PrivateKey
		b.PaymentSourceID, b.Recurrent = r.PaymentSourceID, true
		b.PaymentMethod = &PaymentMethod{Installments: max(r.Installments, 1)}
	default:
		if r.AcceptanceToken == "" {
			return createTransaction{}, "", fmt.Errorf("%w: acceptance_token is required (AcceptanceTokens)", ErrInvalidRequest)
		}
		m := r.Method
		switch m.Type {
		case MethodCard:
			if m.Token == "" {
				return createTransaction{}, "", fmt.Errorf("%w: a card payment needs a card token", ErrInvalidRequest)
			}
			m.Installments = max(m.Installments, 1)
		case MethodNequi:
			if len(m.PhoneNumber) != 10 || strings.Trim(m.PhoneNumber, "0123456789") != "" {
				return createTransaction{}, "", fmt.Errorf("%w: a Nequi payment needs a 10-digit phone number", ErrInvalidRequest)
			}
		default:
			return createTransaction{}, "", fmt.Errorf("%w: payment method must be CARD or NEQUI", ErrInvalidRequest)
		}
		b.PaymentMethod = &m
	}
	return b, key, nil
}

// GetTransaction is GET /transactions/{id} with the private key.
func (c *Client) GetTransaction(ctx context.Context, id string) (Transaction, error) {
	if id == "" {
		return Transaction{}, fmt.Errorf("%w: empty transaction id", ErrInvalidRequest)
	}
	var out struct {
		Data Transaction `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/transactions/" + url.PathEscape(id), key: c.cfg.PrivateKey, ok: []int{http.StatusOK}}, &out)
	if err != nil {
		return Transaction{}, classify(err)
	}
	return out.Data, nil
}

// FindTransactionsByReference is GET /transactions?reference=… with the
// private key: every transaction of our reference (none is not an error),
// in Wompi's order. Reconciliation reads intents whose event never came
// this way.
func (c *Client) FindTransactionsByReference(ctx context.Context, reference string) ([]Transaction, error) {
	if err := checkReference(reference); err != nil {
		return nil, err
	}
	var out struct {
		Data []Transaction `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/transactions?reference=" + url.QueryEscape(reference), key: c.cfg.PrivateKey, ok: []int{http.StatusOK}}, &out)
	if err != nil {
		return nil, classify(err)
	}
	// Keep exact matches only, whatever filtering Wompi does.
	txs := out.Data[:0]
	for _, tx := range out.Data {
		if tx.Reference == reference {
			txs = append(txs, tx)
		}
	}
	return txs, nil
}

// VoidTransaction is POST /transactions/{id}/void with the private key:
// it cancels an APPROVED card transaction in full (VOIDED), the refund
// Wompi's API allows. Other methods, other statuses or a transaction past
// its void window give ErrNotVoidable: refund those as client credit.
//
// The endpoint and its reply ({"data":{"status":…,"transaction":{…}}}) come
// from a community SDK, not Wompi's public reference; a reply carrying the
// transaction directly under data is accepted too. A retry that finds the
// transaction already VOIDED by its first try returns it.
func (c *Client) VoidTransaction(ctx context.Context, id string) (Transaction, error) {
	if id == "" {
		return Transaction{}, fmt.Errorf("%w: empty transaction id", ErrInvalidRequest)
	}
	var out struct {
		Data json.RawMessage `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/transactions/" + url.PathEscape(id) + "/void", key: c.cfg.PrivateKey, body: struct{}{}, ok: []int{http.StatusCreated, http.StatusOK}}, &out)
	if err != nil {
		var retried *afterRetryError
		if errors.As(err, &retried) {
			if tx, gerr := c.GetTransaction(ctx, id); gerr == nil && tx.Status == StatusVoided {
				return tx, nil
			}
		}
		err = classify(err)
		if errors.Is(err, ErrInvalidRequest) {
			err = fmt.Errorf("%w: %w", ErrNotVoidable, err)
		}
		return Transaction{}, err
	}
	var nested struct {
		Transaction *Transaction `json:"transaction"`
	}
	if json.Unmarshal(out.Data, &nested) == nil && nested.Transaction != nil && nested.Transaction.ID != "" {
		return *nested.Transaction, nil
	}
	var flat Transaction
	if json.Unmarshal(out.Data, &flat) == nil && flat.ID != "" {
		return flat, nil
	}
	// Wompi took the void but said nothing usable: read it back.
	return c.GetTransaction(ctx, id)
}

// PaymentSourceRequest saves a card (type CARD, token tok_…) or a Nequi
// account (type NEQUI, token nequi_…) for recurring charges, with the
// payer's consents.
type PaymentSourceRequest struct {
	Type               string `json:"type"`
	Token              string `json:"token"`
	CustomerEmail      string `json:"customer_email"`
	AcceptanceToken    string `json:"acceptance_token"`
	AcceptPersonalAuth string `json:"accept_personal_auth,omitempty"`
}

// PaymentSource is a saved payment source. Its id is an integer.
type PaymentSource struct {
	ID            int64           `json:"id"`
	Type          string          `json:"type"`
	Status        string          `json:"status"` // AVAILABLE, VOIDED
	CustomerEmail string          `json:"customer_email"`
	PublicData    json.RawMessage `json:"public_data"`
}

// Payment source statuses.
const (
	SourceAvailable = "AVAILABLE"
	SourceVoided    = "VOIDED"
)

// CreatePaymentSource is POST /payment_sources with the private key.
func (c *Client) CreatePaymentSource(ctx context.Context, r PaymentSourceRequest) (PaymentSource, error) {
	switch {
	case r.Type != MethodCard && r.Type != MethodNequi:
		return PaymentSource{}, fmt.Errorf("%w: payment source type must be CARD or NEQUI", ErrInvalidRequest)
	case r.Token == "":
		return PaymentSource{}, fmt.Errorf("%w: payment source needs a token", ErrInvalidRequest)
	case !strings.Contains(r.CustomerEmail, "@"):
		return PaymentSource{}, fmt.Errorf("%w: customer_email is required", ErrInvalidRequest)
	case r.AcceptanceToken == "":
		return PaymentSource{}, fmt.Errorf("%w: acceptance_token is required (AcceptanceTokens)", ErrInvalidRequest)
	}
	var out struct {
		Data PaymentSource `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/payment_sources", key: c.cfg.PrivateKey, body: r, ok: []int{http.StatusCreated, http.StatusOK}}, &out)
	if err != nil {
		return PaymentSource{}, classify(err)
	}
	return out.Data, nil
}

// VoidPaymentSource is PUT /payment_sources/{id}/void with the private
// key: the source can no longer be charged.
func (c *Client) VoidPaymentSource(ctx context.Context, id int64) (PaymentSource, error) {
	if id <= 0 {
		return PaymentSource{}, fmt.Errorf("%w: payment source id must be positive", ErrInvalidRequest)
	}
	var out struct {
		Data PaymentSource `json:"data"`
	}
	err := c.do(ctx, request{method: http.MethodPut, path: fmt.Sprintf("/payment_sources/%d/void", id), key: c.cfg.PrivateKey, ok: []int{http.StatusOK, http.StatusCreated}}, &out)
	if err != nil {
		return PaymentSource{}, classify(err)
	}
	return out.Data, nil
}

// request is one API call.
type request struct {
	method, path string
	// key is sent as Authorization: Bearer; merchantKey sends the public
	// key as x-merchant-public-key instead.
	key         string
	merchantKey bool
	body        any
	ok          []int
}

// afterRetryError marks a final error met on a retry, after an earlier try
// failed transiently: that earlier try may have done the work.
type afterRetryError struct{ err error }

func (e *afterRetryError) Error() string { return e.err.Error() }
func (e *afterRetryError) Unwrap() error { return e.err }

// do runs r through the resilience wrapper and decodes a reply with one of
// r.ok into out. Other replies become *APIError (final).
func (c *Client) do(ctx context.Context, r request, out any) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
		}
	}
	endpoint := c.cfg.BaseURL + r.path
	tries := 0
	return c.caller.Do(ctx, func(ctx context.Context) error {
		tries++
		rep, err := resilient.HTTP(ctx, c.http, func(ctx context.Context) (*http.Request, error) {
			var body io.Reader
			if payload != nil {
				body = bytes.NewReader(payload)
			}
			req, err := http.NewRequestWithContext(ctx, r.method, endpoint, body)
			if err != nil {
				return nil, err
			}
			if r.merchantKey {
				req.Header.Set("x-merchant-public-key", c.cfg.PublicKey)
			} else if r.key != "" {
				req.Header.Set("Authorization", "Bearer "+r.key)
			}
			if payload != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("Accept", "application/json")
			return req, nil
		})
		if err != nil {
			return err
		}
		for _, s := range r.ok {
			if rep.Status == s {
				if err := json.Unmarshal(rep.Body, out); err != nil {
					// The call may have taken effect: say "unknown", not "refused".
					return fmt.Errorf("%w: decoding reply: %v", ErrUnavailable, err)
				}
				return nil
			}
		}
		apiErr := decodeAPIError(rep)
		if tries > 1 {
			return &afterRetryError{err: apiErr}
		}
		return apiErr
	})
}

func decodeAPIError(r resilient.Reply) *APIError {
	var env struct {
		Error APIError `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &env) // a non-JSON error still has its status
	e := env.Error
	e.Status = r.Status
	return &e
}

// classify maps a call's error onto the sentinels.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, context.Canceled), resilient.IsTransient(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden):
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrAuth, err)
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.As(err, &apiErr) && apiErr.Field("reference"):
		return fmt.Errorf("%w: %w: %w", ErrInvalidRequest, ErrReferenceInUse, err)
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}
