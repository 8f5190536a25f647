package payments

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Saved payment sources (docs/payments.md, "Saved payment sources"): a
// client saves a card or Nequi account tokenized at Wompi (by Wompi's
// widget, so no card number reaches us) and later pays a deposit or an
// order with it, without a checkout page. Unlike a checkout link, saving,
// removing and charging a source call Wompi, so they are the routes a
// Wompi outage reaches: they answer 503 with Retry-After, and a charge that
// could not be sent leaves its intent pending, to expire with the thing it
// pays or to be found by reconciliation if Wompi did take it.

// SourceProvider is what saved sources need of Wompi besides Provider;
// *wompi.Client is one.
type SourceProvider interface {
	CreatePaymentSource(ctx context.Context, r wompi.PaymentSourceRequest) (wompi.PaymentSource, error)
	VoidPaymentSource(ctx context.Context, id int64) (wompi.PaymentSource, error)
	CreateTransaction(ctx context.Context, r wompi.TransactionRequest) (wompi.Transaction, error)
}

// SourceCharge: our own charge of a saved source, read back from Wompi's
// answer.
const SourceCharge Source = "charge"

// RetryAfterOutage is the Retry-After of a route that needed Wompi while
// it did not answer (about the breaker's open interval).
const RetryAfterOutage = 30 * time.Second

// SourceInput saves a source: the token Wompi's widget gave the client,
// the acceptance tokens the client accepted, and the payer's e-mail
// (Wompi asks it with every charge).
type SourceInput struct {
	Type               string `json:"type"`
	Token              string `json:"token"`
	AcceptanceToken    string `json:"acceptance_token"`
	AcceptPersonalAuth string `json:"accept_personal_auth"`
	Email              string `json:"customer_email"`
}

func (s *Service) sources() (SourceProvider, error) {
	if !s.Enabled() {
		return nil, errDisabled
	}
	sp, ok := s.d.Wompi.(SourceProvider)
	if !ok {
		return nil, fault.Unavailable("saved payment sources are not available on this server")
	}
	return sp, nil
}

// SaveSource saves a client's payment source at Wompi and here.
func (s *Service) SaveSource(ctx context.Context, by service.Caller, in SourceInput) (persistence.PaymentSource, error) {
	if err := allow(by, auth.RoleClient); err != nil {
		return persistence.PaymentSource{}, err
	}
	sp, err := s.sources()
	if err != nil {
		return persistence.PaymentSource{}, err
	}
	var bad []fault.FieldError
	if in.Type != wompi.MethodCard && in.Type != wompi.MethodNequi {
		bad = append(bad, fault.FieldError{Field: "type", Message: "must be CARD or NEQUI"})
	}
	for _, f := range []struct{ name, v string }{{"token", in.Token}, {"acceptance_token", in.AcceptanceToken}} {
		if f.v == "" || len(f.v) > 512 {
			bad = append(bad, fault.FieldError{Field: f.name, Message: "is required (at most 512 characters)"})
		}
	}
	if len(in.AcceptPersonalAuth) > 512 {
		bad = append(bad, fault.FieldError{Field: "accept_personal_auth", Message: "at most 512 characters"})
	}
	if at := strings.IndexByte(in.Email, '@'); at < 1 || at == len(in.Email)-1 || len(in.Email) > 254 {
		bad = append(bad, fault.FieldError{Field: "customer_email", Message: "must be an e-mail address"})
	}
	if len(bad) > 0 {
		return persistence.PaymentSource{}, fault.Invalid("", bad...)
	}
	src, err := sp.CreatePaymentSource(ctx, wompi.PaymentSourceRequest{Type: in.Type, Token: in.Token, CustomerEmail: in.Email,
		AcceptanceToken: in.AcceptanceToken, AcceptPersonalAuth: in.AcceptPersonalAuth})
	if err != nil {
		return persistence.PaymentSource{}, wompiFault(err, "Wompi refused the payment source")
	}
	if src.Status != wompi.SourceAvailable || src.ID <= 0 {
		return persistence.PaymentSource{}, fault.Invalid("Wompi did not make the payment source available (" + src.Status + ")")
	}
	now := s.now()
	var saved persistence.PaymentSource
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		saved, err = tx.PaymentSourceCreate(ctx, persistence.PaymentSource{ID: ulid.Make().String(), ClientID: by.Subject,
			ProviderID: src.ID, Type: src.Type, Label: sourceLabel(src), Email: in.Email, CreatedAt: now})
		if err != nil {
			return err
		}
		return service.Audit(ctx, tx, now, by, "payment_source.saved", "payment_source/"+saved.ID, "",
			map[string]any{"type": saved.Type})
	})
	return saved, err
}

// sourceLabel is what the client knows a source by: its type and the last
// four digits Wompi shows of it.
func sourceLabel(src wompi.PaymentSource) string {
	var pd struct {
		LastFour string `json:"last_four"`
		Brand    string `json:"brand"`
	}
	_ = json.Unmarshal(src.PublicData, &pd)
	label := src.Type
	if pd.Brand != "" {
		label = pd.Brand
	}
	if len(pd.LastFour) == 4 && strings.Trim(pd.LastFour, "0123456789") == "" {
		label += " " + pd.LastFour
	}
	return label
}

// Sources lists the caller's available payment sources.
func (s *Service) Sources(ctx context.Context, by service.Caller) (list []persistence.PaymentSource, err error) {
	if err := allow(by, auth.RoleClient); err != nil {
		return nil, err
	}
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.PaymentSourceList(ctx, by.Subject)
		return err
	})
	return list, err
}

// RemoveSource voids the caller's source at Wompi, then here.
func (s *Service) RemoveSource(ctx context.Context, by service.Caller, id string) error {
	if err := allow(by, auth.RoleClient); err != nil {
		return err
	}
	sp, err := s.sources()
	if err != nil {
		return err
	}
	src, err := s.ownSource(ctx, by, id)
	if err != nil {
		return err
	}
	if _, err := sp.VoidPaymentSource(ctx, src.ProviderID); err != nil && !errors.Is(err, wompi.ErrNotFound) {
		return wompiFault(err, "Wompi refused to void the payment source")
	}
	now := s.now()
	return s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		if err := tx.PaymentSourceVoid(ctx, src.ID, now); err != nil {
			return err
		}
		return service.Audit(ctx, tx, now, by, "payment_source.voided", "payment_source/"+src.ID, "", nil)
	})
}

// ownSource reads the caller's available source id (404 otherwise, so
// ids cannot be probed).
func (s *Service) ownSource(ctx context.Context, by service.Caller, id string) (src persistence.PaymentSource, err error) {
	if id == "" || len(id) > 64 {
		return src, fault.NotFound("payment source not found")
	}
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		src, err = tx.PaymentSourceGet(ctx, id)
		return err
	})
	if err != nil {
		return src, fault.IfNotFound(err, "payment source")
	}
	if src.ClientID != by.Subject || src.Status != persistence.SourceAvailable {
		return src, fault.NotFound("payment source not found")
	}
	return src, nil
}

// Charge pays what subjectID of kind owes (a held appointment's deposit,
// a pending order) with the caller's saved source: the live intent (made
// as for a checkout link, in its own transaction), then one charge at
// Wompi under the intent's id as reference, applied as Wompi answered it
// (normally PENDING: the outcome comes by event or reconciliation like any
// other). Asked again for an intent already charged (Wompi holds a
// transaction under its reference), it answers the intent without
// charging twice. Wompi not answering is a 503 with Retry-After, the
// intent left pending.
func (s *Service) Charge(ctx context.Context, by service.Caller, kind persistence.PaymentKind, subjectID, sourceID, requestID string) (persistence.PaymentIntent, error) {
	if err := allow(by, auth.RoleClient); err != nil {
		return persistence.PaymentIntent{}, err
	}
	sp, err := s.sources()
	if err != nil {
		return persistence.PaymentIntent{}, err
	}
	src, err := s.ownSource(ctx, by, sourceID)
	if err != nil {
		return persistence.PaymentIntent{}, err
	}
	var in persistence.PaymentIntent
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		var co Checkout
		var err error
		switch kind {
		case persistence.PaymentDeposit:
			co, _, err = s.PayDeposit(ctx, tx, by, subjectID)
		case persistence.PaymentOrder:
			co, _, err = s.PayOrder(ctx, tx, by, subjectID)
		default:
			err = fault.Invalid("this payment cannot be charged to a saved source")
		}
		in = co.Intent
		return err
	})
	if err != nil || in.TransactionID != "" {
		return in, err
	}
	// A charge sent before (still pending, or its answer lost) is at Wompi
	// under the reference: found, it is not sent twice.
	prior, err := s.d.Wompi.FindTransactionsByReference(ctx, in.ID)
	if err != nil {
		return in, wompiFault(err, "Wompi refused to look the payment up")
	}
	if len(prior) > 0 {
		return in, nil
	}
	t, err := sp.CreateTransaction(ctx, wompi.TransactionRequest{Reference: in.ID, AmountInCents: in.AmountMinor,
		Currency: in.Currency, CustomerEmail: src.Email, PaymentSourceID: src.ProviderID, RedirectURL: s.d.RedirectURL})
	if err != nil {
		return in, wompiFault(err, "Wompi refused the charge to the saved payment source")
	}
	if _, err := s.Apply(ctx, Observation{Tx: t, Source: SourceCharge, RequestID: requestID}); err != nil {
		// Charged at Wompi: reconciliation applies it if this did not.
		s.d.Log.Warn("a charge to a saved source was not applied; reconciliation will", "intent", in.ID, "err", err)
	}
	return s.intent(ctx, in.ID)
}

// intent reads an intent back.
func (s *Service) intent(ctx context.Context, id string) (in persistence.PaymentIntent, err error) {
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		in, err = tx.PaymentIntentGet(ctx, id)
		return err
	})
	return in, err
}

// wompiFault is the answer to a call Wompi did not take: 503 with
// Retry-After when it did not answer, 422 with why when it refused.
func wompiFault(err error, refused string) error {
	switch {
	case errors.Is(err, wompi.ErrUnavailable):
		return fault.Unavailable("Wompi is not answering; try again shortly").WithRetryAfter(RetryAfterOutage)
	case errors.Is(err, wompi.ErrInvalidRequest), errors.Is(err, wompi.ErrNotFound), errors.Is(err, wompi.ErrReferenceInUse):
		return fault.Invalid(refused)
	}
	return err
}
