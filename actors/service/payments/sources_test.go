package payments

import (
	"context"
	"net/http"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

// sourceInput is what a client's device sends to save a card: a token
// from Wompi's tokenizer and the acceptance tokens.
func (f *fixture) sourceInput(number string) SourceInput {
	f.t.Helper()
	ctx := context.Background()
	c, err := wompi.New(wompi.Config{PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity,
		EventsSecret: keys.Events, BaseURL: f.fake.BaseURL(), CheckoutURL: f.fake.CheckoutURL()}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	tok, err := c.TokenizeCard(ctx, wompi.Card{Number: number, CVC: "123", ExpMonth: "08", ExpYear: "28", CardHolder: "Ana Pérez"})
	if err != nil {
		f.t.Fatal(err)
	}
	acc, err := c.AcceptanceTokens(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return SourceInput{Type: wompi.MethodCard, Token: tok.ID, AcceptanceToken: acc.Acceptance,
		AcceptPersonalAuth: acc.PersonalDataAuth, Email: "ana@example.co"}
}

// TestSavedSourcePaysAnOrder: a client saves a card, lists it (label, no
// e-mail in what is shown), pays an order with it without a checkout page
// (the approval comes by event and pays the order), and a second charge of
// the same order answers the first payment without charging twice.
// Another client can neither see nor charge it; voided, it is gone.
func TestSavedSourcePaysAnOrder(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		src, err := f.svc.SaveSource(ctx, ana, f.sourceInput("4242424242424242"))
		if err != nil || src.Label != "CARD 4242" || src.Status != persistence.SourceAvailable || src.ProviderID <= 0 {
			t.Fatalf("SaveSource = %+v, %v", src, err)
		}
		list, err := f.svc.Sources(ctx, ana)
		if err != nil || len(list) != 1 || list[0].ID != src.ID || list[0].Email != "ana@example.co" {
			t.Fatalf("Sources = %+v, %v", list, err)
		}
		if other, err := f.svc.Sources(ctx, bob); err != nil || len(other) != 0 {
			t.Fatalf("another client's sources: %+v, %v", other, err)
		}

		o := f.order("ana")
		if _, err := f.svc.Charge(ctx, bob, persistence.PaymentOrder, o.ID, src.ID, "req-1"); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("another client charging the card: %v", err)
		}
		in, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-1")
		if err != nil || in.AmountMinor != oilTotal || in.Kind != persistence.PaymentOrder {
			t.Fatalf("Charge = %+v, %v", in, err)
		}
		// Asked again before the outcome came: the charge is not sent twice.
		if again, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-1b"); err != nil && servicetest.Code(err) != "order_transition_refused" || err == nil && again.ID != in.ID {
			t.Fatalf("charge asked again: %+v, %v", again, err)
		}
		f.fake.WaitIdle()
		if got := f.orderStatus(o.ID); got != persistence.OrderPaid {
			t.Fatalf("order after the charge: %s", got)
		}
		if _, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-2"); servicetest.Code(err) != "order_transition_refused" {
			t.Fatalf("charging a paid order: %v", err)
		}
		charged := 0
		for _, tx := range f.fake.Transactions() {
			if tx.Reference == in.ID {
				charged++
			}
		}
		if charged != 1 {
			t.Fatalf("%d transactions for one order", charged)
		}

		if err := f.svc.RemoveSource(ctx, bob, src.ID); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("another client voiding the card: %v", err)
		}
		if err := f.svc.RemoveSource(ctx, ana, src.ID); err != nil {
			t.Fatal(err)
		}
		if list, _ := f.svc.Sources(ctx, ana); len(list) != 0 {
			t.Fatalf("a voided source is listed: %+v", list)
		}
		o2 := f.order("ana")
		if _, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o2.ID, src.ID, "req-3"); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("charging a voided source: %v", err)
		}
	})
}

// TestSavedSourceDeclined: a card Wompi declines leaves the order waiting
// for another payment, as a declined checkout does.
func TestSavedSourceDeclined(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		src, err := f.svc.SaveSource(ctx, ana, f.sourceInput("4111111111111111"))
		if err != nil {
			t.Fatal(err)
		}
		o := f.order("ana")
		in, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-1")
		if err != nil {
			t.Fatal(err)
		}
		f.fake.WaitIdle()
		if got := f.intent(in.ID).Status; got != persistence.IntentDeclined {
			t.Fatalf("intent after a declined charge: %s", got)
		}
		if got := f.orderStatus(o.ID); got != persistence.OrderPendingPayment {
			t.Fatalf("order after a declined charge: %s", got)
		}
	})
}

// TestWompiDownAnswers503: saving, charging and voiding a source need
// Wompi; while it does not answer they are 503 with Retry-After, nothing
// is saved, and the charge's payment is left pending (no transaction):
// once Wompi is back, the same request charges it.
func TestWompiDownAnswers503(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		in := f.sourceInput("4242424242424242")
		src, err := f.svc.SaveSource(ctx, ana, in)
		if err != nil {
			t.Fatal(err)
		}
		f.down.Store(true)
		unavailable := func(what string, err error) {
			t.Helper()
			fe, _ := fault.From(err)
			if err == nil || fe.Code != fault.CodeUnavailable || fe.RetryAfter <= 0 || fe.Status != http.StatusServiceUnavailable {
				t.Fatalf("%s while Wompi is down: %v", what, err)
			}
		}
		_, err = f.svc.SaveSource(ctx, ana, f.sourceInput("4242424242424242"))
		unavailable("save", err)
		if list, _ := f.svc.Sources(ctx, ana); len(list) != 1 {
			t.Fatalf("a source was saved while Wompi was down: %d listed", len(list))
		}
		o := f.order("ana")
		_, err = f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-1")
		unavailable("charge", err)
		unavailable("void", f.svc.RemoveSource(ctx, ana, src.ID))
		var live persistence.PaymentIntent
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentOrder, o.ID)
			if err == nil && len(intents) == 1 {
				live = intents[0]
			}
			return err
		})
		if live.Status != persistence.IntentPending || live.TransactionID != "" {
			t.Fatalf("the payment after a charge Wompi never took: %+v", live)
		}

		f.down.Store(false)
		charged, err := f.svc.Charge(ctx, ana, persistence.PaymentOrder, o.ID, src.ID, "req-2")
		if err != nil || charged.ID != live.ID {
			t.Fatalf("charge once Wompi is back: %+v, %v", charged, err)
		}
		f.fake.WaitIdle()
		if got := f.orderStatus(o.ID); got != persistence.OrderPaid {
			t.Fatalf("order: %s", got)
		}
		if n := len(f.fake.Transactions()); n != 1 {
			t.Fatalf("%d transactions at Wompi, want 1", n)
		}
	})
}

// TestSourceInputRefused: bad input is a 422 naming the fields, and only
// clients save sources.
func TestSourceInputRefused(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		_, err := f.svc.SaveSource(ctx, ana, SourceInput{Type: "CASH", Email: "nope"})
		fields := servicetest.Fields(err)
		for _, want := range []string{"type", "token", "acceptance_token", "customer_email"} {
			found := false
			for _, f := range fields {
				found = found || f == want
			}
			if !found {
				t.Errorf("no error for %s in %v", want, fields)
			}
		}
		if _, err := f.svc.SaveSource(ctx, servicetest.As(auth.RoleReceptionist, "desk"), f.sourceInput("4242424242424242")); servicetest.Code(err) != fault.CodeForbidden {
			t.Fatalf("staff saving a source: %v", err)
		}
	})
}
