package payments

import (
	"context"
	"errors"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// ExceptionQuery selects a page of exceptions, newest first.
type ExceptionQuery struct {
	State  string // "": any
	Class  string // "": any
	Before string // cursor: the last id of the previous page
	Limit  int    // 0: 50
}

// ExceptionPage is one page; Next is the cursor of the following one (nil
// at the end).
type ExceptionPage struct {
	Items []persistence.PaymentException
	Next  *string
}

// Exceptions lists exceptions; admin only.
func (s *Service) Exceptions(ctx context.Context, by service.Caller, q ExceptionQuery) (ExceptionPage, error) {
	if err := allow(by, auth.RoleAdmin); err != nil {
		return ExceptionPage{}, err
	}
	var f check.Fields
	if q.State != "" && !persistence.ExceptionState(q.State).Valid() {
		f.Add("state", "must be open, resolved or written_off")
	}
	if q.Class != "" && !persistence.ExceptionClass(q.Class).Valid() {
		f.Add("class", "must be an exception class")
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		f.Add("limit", "must be 1 to 200")
	}
	if len(q.Before) > 64 {
		f.Add("before", "must be a cursor from a previous page")
	}
	if err := f.Err(); err != nil {
		return ExceptionPage{}, err
	}
	var items []persistence.PaymentException
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		items, err = tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{State: persistence.ExceptionState(q.State),
			Class: persistence.ExceptionClass(q.Class), BeforeID: q.Before, Limit: q.Limit + 1})
		return err
	})
	if err != nil {
		return ExceptionPage{}, err
	}
	p := ExceptionPage{Items: items}
	if len(items) > q.Limit {
		p.Items = items[:q.Limit]
		next := p.Items[q.Limit-1].ID
		p.Next = &next
	}
	return p, nil
}

// ResolveInput closes an exception: resolved (dealt with: refunded,
// matched by hand) or written off (the money is given up).
type ResolveInput struct {
	ID       string `json:"-"`
	Reason   string `json:"reason"`
	WriteOff bool   `json:"write_off"`
}

// Resolve closes an open exception in tx, with an audit entry; admin only.
// An exception already closed is 409.
func (s *Service) Resolve(ctx context.Context, tx persistence.Tx, by service.Caller, in ResolveInput) (persistence.PaymentException, error) {
	if err := allow(by, auth.RoleAdmin); err != nil {
		return persistence.PaymentException{}, err
	}
	var f check.Fields
	reason := f.Text("reason", in.Reason, 3, 500)
	if err := f.Err(); err != nil {
		return persistence.PaymentException{}, err
	}
	state := persistence.ExceptionResolved
	if in.WriteOff {
		state = persistence.ExceptionWrittenOff
	}
	now := s.now()
	x, err := tx.PaymentExceptionResolve(ctx, persistence.ExceptionResolve{ID: in.ID, State: state, By: by.Subject, Reason: reason, At: now})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return x, fault.NotFound("exception not found")
	case errors.Is(err, persistence.ErrStatusMismatch):
		return x, fault.Conflict("the exception is already " + string(x.State))
	case err != nil:
		return x, err
	}
	if err := service.Audit(ctx, tx, now, by, "payment.exception_"+string(state), "payment_exception/"+x.ID, reason,
		map[string]any{"class": x.Class, "intent_id": x.IntentID, "transaction_id": x.TransactionID}); err != nil {
		return x, err
	}
	return x, nil
}
