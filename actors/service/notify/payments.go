package notify

import (
	"fmt"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// The payment kinds: the client hears that their money was taken, that a
// payment was refused (so they can try again), and that it was given back.
const (
	KindPaymentApproved Kind = "payment_approved"
	KindPaymentDeclined Kind = "payment_declined"
	KindPaymentRefunded Kind = "payment_refunded"
)

// The payment kinds' variables: the amount, and what it paid for.
var (
	varAmount = Var{"Amount", TypeMoney, "$120.000 COP"}
	varFor    = Var{"For", TypeText, "el depósito de tu cita"}
)

// paymentIntent is the message a payment intent's change asks for, if
// any: approved, declined and refunded speak (a voided card payment is
// refunded too, as the client sees it); pending, error and expired are
// silent (an error is the provider's, not the client's, and an expiry is
// the order's or the hold's to tell). An intent reaches each status once
// (statuses only move forward), so the status is in the cause.
func paymentIntent(ev *messages.PaymentChanged) (intent, bool) {
	in := intent{userID: ev.ClientId, amountMinor: ev.AmountMinor, currency: ev.Currency, paid: persistence.PaymentKind(ev.Kind)}
	switch persistence.IntentStatus(ev.ToStatus) {
	case persistence.IntentApproved:
		in.kind = KindPaymentApproved
	case persistence.IntentDeclined:
		in.kind = KindPaymentDeclined
	case persistence.IntentRefunded, persistence.IntentVoided:
		in.kind = KindPaymentRefunded
	default:
		return in, false
	}
	in.cause = fmt.Sprintf("payment:%s:%s", ev.IntentId, ev.ToStatus)
	return in, ev.ClientId != "" && ev.IntentId != ""
}

// paymentVars are a payment kind's variables in lang.
func paymentVars(in intent, lang string) Vars {
	return Vars{"Amount": formatMoney(in.amountMinor, in.currency, lang), "For": paidFor(in.paid, lang)}
}

// paidFor names what a payment paid for, as the client calls it.
func paidFor(k persistence.PaymentKind, lang string) string {
	en := lang == LanguageEnglish
	switch k {
	case persistence.PaymentOrder:
		return map[bool]string{false: "tu pedido", true: "your order"}[en]
	case persistence.PaymentDeposit:
		return map[bool]string{false: "el depósito de tu cita", true: "your appointment's deposit"}[en]
	case persistence.PaymentVoucherPurchase:
		return map[bool]string{false: "tu bono de regalo", true: "your gift voucher"}[en]
	}
	return map[bool]string{false: "tu compra", true: "your purchase"}[en]
}

// formatMoney is an amount in minor units (cents) as "$120.000 COP"
// (es-CO) or "$120,000 COP" (en), with the cents only when there are
// some. Integer arithmetic throughout: money is never a float.
func formatMoney(minor int64, currency, lang string) string {
	tag := language.MustParse("es-CO")
	if lang == LanguageEnglish {
		tag = language.English
	}
	p := message.NewPrinter(tag)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := p.Sprintf("%d", minor/100)
	if cents := minor % 100; cents != 0 {
		sep := ","
		if lang == LanguageEnglish {
			sep = "."
		}
		s += fmt.Sprintf("%s%02d", sep, cents)
	}
	return fmt.Sprintf("%s$%s %s", sign, s, currency)
}
