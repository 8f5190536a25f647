package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/payments"
)

// TestDepositPaymentConfirms: over HTTP, a client's hold of a service
// with a deposit cannot be confirmed by the client (403); its deposit's
// checkout link (201, only for the hold's client) paid and its approval
// posted to the webhook confirm the appointment.
func TestDepositPaymentConfirms(t *testing.T) {
	fake := wompifake.New(wompiKeys)
	t.Cleanup(fake.Close)
	fake.DefaultDelivery(wompifake.Delivery{Drop: true}) // the test posts events itself
	fake.SetNow(func() time.Time { return bookingNow })
	client, err := wompi.New(wompi.Config{PublicKey: wompiKeys.Public, PrivateKey: wompiKeys.Private,
		IntegritySecret: wompiKeys.Integrity, EventsSecret: wompiKeys.Events, BaseURL: fake.BaseURL(),
		CheckoutURL: fake.CheckoutURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	e := newBookingEnvTB(t, func(d *Deps) {
		d.Payments = payments.New(payments.Deps{Store: d.Store, Wompi: client, Log: d.Logger, Now: d.Now})
		d.Payments.EnableDeposits(booking.New(booking.Deps{Store: d.Store, Calendars: d.Calendars, Logger: d.Logger, Now: d.Now}))
	})
	if r := e.admin("PUT", "/v1/admin/services/peel", `{"name":"Peel","category":"face","duration_minutes":30,"price_minor":8000000,
		"required_skills":["facial"],"deposit_policy":"percent","deposit_value":25,"active":true,"version":0}`); r.status != 200 {
		t.Fatalf("service: %d %s", r.status, r.body)
	}
	maria, juan := e.token("maria", auth.RoleClient), e.token("juan", auth.RoleClient)
	r := e.do("POST", "/v1/appointments", fmt.Sprintf(`{"service_id":"peel","staff_id":"ana","start":%q}`, slotAt(10, 0).Format(time.RFC3339)),
		"Authorization", "Bearer "+maria, "Content-Type", "application/json")
	if r.status != 201 {
		t.Fatalf("hold: %d %s", r.status, r.body)
	}
	ap := decode[appointmentJSON](t, r)
	if r := e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/confirm"); r.status != 403 {
		t.Fatalf("client confirm with a deposit due: %d %s", r.status, r.body)
	}
	if r := e.as(juan, "POST", "/v1/appointments/"+ap.ID+"/payments"); r.status != 404 {
		t.Fatalf("another client's deposit: %d %s", r.status, r.body)
	}
	r = e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/payments")
	if r.status != 201 {
		t.Fatalf("deposit payment: %d %s", r.status, r.body)
	}
	co := decode[checkoutJSON](t, r)
	if co.Payment.Kind != "deposit" || co.Payment.SubjectID != ap.ID || co.Payment.AmountMinor != 2_000_000 || co.CheckoutURL == "" {
		t.Fatalf("checkout %+v", co)
	}
	tx, err := fake.PayCheckout(co.CheckoutURL, wompifake.Approve)
	if err != nil {
		t.Fatal(err)
	}
	body, sum := signedEvent(wompiKeys.Events, tx.ID, "APPROVED", tx.AmountInCents, tx.Reference, bookingNow.Unix())
	if r := e.hook(body, sum); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	if got := decode[appointmentJSON](t, e.as(maria, "GET", "/v1/appointments/"+ap.ID)); got.Status != "confirmed" {
		t.Fatalf("appointment %s after the approval", got.Status)
	}
	if r := e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/payments"); r.status != 409 || r.errCode(t) != "invalid_transition" {
		t.Fatalf("paying a confirmed appointment: %d %s", r.status, r.body)
	}
}
