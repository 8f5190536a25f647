package notify

import (
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

func TestMarketingHoursDelaysMarketingOnly(t *testing.T) {
	bogota, err := time.LoadLocation("America/Bogota")
	if err != nil {
		t.Fatal(err)
	}
	m := MarketingHours{Policy: quiethours.Colombia(bogota)}
	sunday := time.Date(2026, 12, 13, 22, 0, 0, 0, bogota)
	monday7 := time.Date(2026, 12, 14, 7, 0, 0, 0, bogota)
	if d := m.Delay(persistence.Notification{Category: persistence.CategoryMarketing}, sunday, nil); d != monday7.Sub(sunday) {
		t.Fatalf("marketing at Sunday 22:00 waits %s, want until Monday 7:00 (%s)", d, monday7.Sub(sunday))
	}
	for _, c := range []persistence.NotificationCategory{persistence.CategoryBooking, persistence.CategoryPayments} {
		if d := m.Delay(persistence.Notification{Category: c}, sunday, nil); d != 0 {
			t.Fatalf("%s at Sunday 22:00 waits %s; transactional messages go at once", c, d)
		}
	}
	if d := m.Delay(persistence.Notification{Category: persistence.CategoryMarketing}, monday7.Add(time.Hour), nil); d != 0 {
		t.Fatalf("marketing inside the window waits %s", d)
	}
}

// TestPaymentIntents: approved, declined and refunded (or voided) speak,
// once per intent and status, in the payments category; the rest is
// silent.
func TestPaymentIntents(t *testing.T) {
	for _, c := range []struct {
		to   string
		kind Kind
	}{
		{"approved", KindPaymentApproved}, {"declined", KindPaymentDeclined}, {"refunded", KindPaymentRefunded},
		{"voided", KindPaymentRefunded}, {"pending", ""}, {"error", ""}, {"expired", ""},
	} {
		in, ok := paymentIntent(&messages.PaymentChanged{IntentId: "pi1", ClientId: "c", ToStatus: c.to, Kind: "deposit",
			AmountMinor: 12000050, Currency: "COP"})
		if ok != (c.kind != "") || (ok && (in.kind != c.kind || in.cause != "payment:pi1:"+c.to || categories[in.kind] != persistence.CategoryPayments)) {
			t.Errorf("%s: %+v, %v; want %q", c.to, in, ok, c.kind)
		}
	}
	if _, ok := paymentIntent(&messages.PaymentChanged{IntentId: "pi1", ToStatus: "approved"}); ok {
		t.Error("a payment with no client (a walk-in) has no one to tell")
	}
	v := paymentVars(intent{amountMinor: 12000050, currency: "COP", paid: persistence.PaymentDeposit}, DefaultLanguage)
	if v["Amount"] != "$120.000,50 COP" || v["For"] != "el depósito de tu cita" {
		t.Errorf("es-CO vars %v", v)
	}
	if got := formatMoney(1234500, "COP", LanguageEnglish); got != "$12,345 COP" {
		t.Errorf("en amount %q", got)
	}
}
