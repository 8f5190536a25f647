package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// orderEvent is the client's order 01JORDER00000000007K3QX2M9 moving to
// status to.
func (f *fixture) orderEvent(to string, version int64, fulfilment string) *messages.OrderChanged {
	return &messages.OrderChanged{OrderId: "01JORDER00000000007K3QX2M9", ClientId: f.client, FromStatus: "pending_payment",
		ToStatus: to, TotalMinor: 5950000, Fulfilment: fulfilment, Version: version}
}

func (f *fixture) bodies() map[string]string {
	out := map[string]string{}
	for _, n := range f.list() {
		out[n.ID] = n.Body
	}
	return out
}

// TestOrderKinds: an order the desk marked paid, shipped and a return
// completed each send their message once, with the order's reference,
// the amount and the fulfilment in the text; an expiry is silent.
func TestOrderKinds(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			for _, ev := range []any{f.orderEvent("paid", 2, "shipping"), f.orderEvent("paid", 2, "shipping"),
				f.orderEvent("fulfilled", 3, "shipping"), f.orderEvent("expired", 2, "pickup"),
				&messages.ReturnProcessed{ReturnId: "r1", OrderId: "01JORDER00000000007K3QX2M9", ClientId: f.client,
					Status: "completed", RefundMinor: 2975000}} {
				var err error
				switch ev := ev.(type) {
				case *messages.OrderChanged:
					err = f.svc.Handle(t.Context(), ev)
				case *messages.ReturnProcessed:
					err = f.svc.Handle(t.Context(), ev)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]string{
				"order:01JORDER00000000007K3QX2M9:paid:v2:whatsapp":      "Recibimos el pago de tu pedido #7K3QX2M9 por $59.500 COP. Te avisaremos cuando lo enviemos.",
				"order:01JORDER00000000007K3QX2M9:fulfilled:v3:whatsapp": "Tu pedido #7K3QX2M9 va en camino. ¡Gracias por tu compra!",
				"return:r1:completed:whatsapp":                           "Recibimos tu devolución del pedido #7K3QX2M9: abonamos $29.750 COP a tu saldo a favor.",
			}
			got := f.bodies()
			if len(got) != len(want) || len(f.sender.messages()) != len(want) {
				t.Fatalf("stored %v, sent %d; want %v", got, len(f.sender.messages()), want)
			}
			for id, body := range want {
				if got[id] != body {
					t.Errorf("%s: %q\nwant %q", id, got[id], body)
				}
			}
		})
	}
}

// TestOrderPaidOnlineIsSilent: an order paid through an approved online
// payment gets no order_paid: the payment's receipt told the client.
func TestOrderPaidOnlineIsSilent(t *testing.T) {
	f := newFixture(t, drivers()["sqlite"], Config{})
	ev := f.orderEvent("paid", 2, "pickup")
	err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
		p, err := tx.PaymentIntentCreate(t.Context(), persistence.PaymentIntent{ID: "pi-1", Kind: persistence.PaymentOrder,
			SubjectID: ev.OrderId, ClientID: f.client, AmountMinor: ev.TotalMinor, Currency: "COP", CreatedAt: f.now,
			ExpiresAt: f.now.Add(time.Hour)})
		if err != nil {
			return err
		}
		_, err = tx.PaymentIntentUpdate(t.Context(), persistence.IntentChange{ID: p.ID, FromVersion: p.Version,
			Status: persistence.IntentApproved, TransactionID: "tx-1", At: f.now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Handle(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if ns := f.list(); len(ns) != 0 {
		t.Fatalf("stored %+v; want nothing (the receipt told)", ns)
	}
}

// TestFollowUpIsMarketing: a completed visit's follow-up is marketing:
// held by quiet hours (Sunday), skipped for a client who turned marketing
// off, while their confirmation still goes.
func TestFollowUpIsMarketing(t *testing.T) {
	f := newFixture(t, drivers()["sqlite"], Config{})
	completed := f.confirmed()
	completed.FromStatus, completed.ToStatus, completed.Version = "confirmed", "completed", 4
	f.now = time.Date(2026, 12, 6, 10, 0, 0, 0, bogota) // a Sunday
	f.svc.deps.QuietHours = MarketingHours{Policy: quiethours.Colombia(bogota)}
	var retry *RetryError
	if err := f.svc.Handle(t.Context(), completed); !errors.As(err, &retry) || retry.After <= 0 {
		t.Fatalf("on a Sunday: %v; want it held until Monday", err)
	}
	if ns := f.list(); len(ns) != 1 || ns[0].Category != persistence.CategoryMarketing || ns[0].Kind != string(KindAppointmentFollowUp) {
		t.Fatalf("stored %+v", ns)
	}

	f.setPreferences(map[string]map[string]bool{"marketing": {"whatsapp": false, "sms": false, "email": false}})
	completed.AppointmentId = "a5"
	if err := f.svc.Handle(t.Context(), completed); err != nil {
		t.Fatalf("opted out: %v; want done", err)
	}
	if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
		t.Fatal(err)
	}
	var skipped bool
	for _, n := range f.list() {
		skipped = skipped || (strings.HasPrefix(n.ID, "appointment:a5:follow_up:") && n.Status == persistence.NotificationSkipped)
	}
	sent := f.sender.messages()
	if !skipped || len(sent) != 1 || sent[0].Purpose != string(KindAppointmentConfirmed) {
		t.Fatalf("stored %+v, sent %+v; want the follow-up skipped and only the confirmation sent", f.list(), sent)
	}
}
