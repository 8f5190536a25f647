package wompi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// The event vector of external-apis.md §3: Wompi's documented event, whose
// correct checksum is 5a18ec5e… (the docs print 3476DDA5…, which is not the
// SHA256 of their own string).
const (
	vectorEventsSecret = "prod_events_OcHnIzeBl5socpwByQ4hA52Em3USQ93Z"
	vectorChecksum     = "5a18ec5e8fdb7df463e9f94774cba8f583ba21bd04a09ceff2ea68a4bc0aefbe"
	vectorTimestamp    = int64(1530291411)
)

// vectorBody is the documented event with the correct checksum.
func vectorBody() string {
	return `{"event":"transaction.updated",
 "data":{"transaction":{"id":"1234-1610641025-49201","amount_in_cents":4490000,"reference":"MZQ3X2DE2SMX",
   "customer_email":"juan.perez@gmail.com","currency":"COP","payment_method_type":"NEQUI","status":"APPROVED",
   "redirect_url":"https://mitienda.com.co/pagos/redireccion","shipping_address":null,"payment_link_id":null,"payment_source_id":null}},
 "environment":"prod",
 "signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"` + vectorChecksum + `"},
 "timestamp":1530291411,"sent_at":"2018-07-20T16:45:05.000Z"}`
}

var vectorNow = time.Unix(vectorTimestamp, 0).Add(time.Minute)

func TestVerifyEventOfficialVector(t *testing.T) {
	ev, err := VerifyEvent([]byte(vectorBody()), vectorChecksum, vectorEventsSecret, vectorNow, 0)
	if err != nil {
		t.Fatalf("VerifyEvent = %v", err)
	}
	tx := ev.Transaction
	if ev.Type != EventTransactionUpdated || tx == nil || tx.ID != "1234-1610641025-49201" ||
		tx.Status != StatusApproved || tx.AmountInCents != 4490000 || tx.Reference != "MZQ3X2DE2SMX" ||
		tx.Currency != "COP" || tx.PaymentMethodType != MethodNequi || tx.PaymentSourceID != 0 {
		t.Fatalf("event = %+v, transaction %+v", ev, tx)
	}
	if ev.Key() != vectorChecksum || ev.Timestamp != vectorTimestamp {
		t.Fatalf("key %s timestamp %d", ev.Key(), ev.Timestamp)
	}
	// Numbers are hashed as written: a float64 decode would have given 4.49e+06.
	if got := ev.Signed["transaction.amount_in_cents"]; got != "4490000" {
		t.Fatalf("signed amount = %q, want 4490000", got)
	}
}

func TestVerifyEventAcceptsUppercaseChecksum(t *testing.T) {
	upper := strings.ToUpper(vectorChecksum)
	body := strings.Replace(vectorBody(), vectorChecksum, upper, 1)
	if _, err := VerifyEvent([]byte(body), upper, vectorEventsSecret, vectorNow, 0); err != nil {
		t.Fatalf("uppercase checksum: %v", err)
	}
}

// sign recomputes the checksum of a body template whose signed values are
// given, and fills "CHECKSUM" in it.
func sign(t *testing.T, body string, secret string, parts ...string) (string, string) {
	t.Helper()
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	h.Write([]byte(secret))
	sum := hex.EncodeToString(h.Sum(nil))
	return strings.Replace(body, "CHECKSUM", sum, 1), sum
}

func TestVerifyEventRefusals(t *testing.T) {
	good := vectorBody()
	for _, tc := range []struct {
		name   string
		body   string
		header string
		secret string
		now    time.Time
		window time.Duration
		want   error
	}{
		{"forged checksum", good, strings.Repeat("ab", 32), vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"wrong secret", good, vectorChecksum, "prod_events_someoneelse", vectorNow, 0, ErrBadChecksum},
		{"missing header", good, "", vectorEventsSecret, vectorNow, 0, ErrMissingChecksum},
		{"no secret configured", good, vectorChecksum, "", vectorNow, 0, ErrNoEventsSecret},
		{"header differs from body checksum", strings.Replace(good, vectorChecksum, strings.Repeat("0", 64), 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"status changed", strings.Replace(good, `"status":"APPROVED"`, `"status":"DECLINED"`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"amount changed", strings.Replace(good, `4490000`, `4490001`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"amount as float", strings.Replace(good, `4490000`, `4.49e+06`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"timestamp changed", strings.Replace(good, `"timestamp":1530291411`, `"timestamp":1530291412`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"properties reordered", strings.Replace(good, `["transaction.id","transaction.status","transaction.amount_in_cents"]`, `["transaction.status","transaction.id","transaction.amount_in_cents"]`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrBadChecksum},
		{"stale", good, vectorChecksum, vectorEventsSecret, time.Unix(vectorTimestamp, 0).Add(DefaultEventWindow + time.Second), 0, ErrStaleEvent},
		{"stale under a short window", good, vectorChecksum, vectorEventsSecret, vectorNow, 30 * time.Second, ErrStaleEvent},
		{"future", good, vectorChecksum, vectorEventsSecret, time.Unix(vectorTimestamp, 0).Add(-MaxFutureSkew - time.Second), 0, ErrFutureEvent},
		{"not JSON", "nope", vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrMalformedEvent},
		{"trailing data", good + `{}`, vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrMalformedEvent},
		{"timestamp quoted", strings.Replace(good, `"timestamp":1530291411`, `"timestamp":"1530291411"`, 1), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrMalformedEvent},
		{"empty body", "", vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrMalformedEvent},
		{"oversized body", good + strings.Repeat(" ", MaxEventBytes), vectorChecksum, vectorEventsSecret, vectorNow, 0, ErrMalformedEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := VerifyEvent([]byte(tc.body), tc.header, tc.secret, tc.now, tc.window)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("VerifyEvent = %+v, %v; want %v", ev, err, tc.want)
			}
		})
	}
}

func TestVerifyEventPropertiesInGivenOrder(t *testing.T) {
	// Wompi names the properties per event: the order in the body is the
	// order hashed, whatever it is.
	const tmpl = `{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"DECLINED","amount_in_cents":100,"reference":"R"}},
"signature":{"properties":["transaction.amount_in_cents","transaction.status","transaction.id"],"checksum":"CHECKSUM"},"timestamp":1700000000}`
	body, sum := sign(t, tmpl, "test_events_k", "100", "DECLINED", "T1", "1700000000")
	ev, err := VerifyEvent([]byte(body), sum, "test_events_k", time.Unix(1700000000, 0), 0)
	if err != nil {
		t.Fatalf("VerifyEvent = %v", err)
	}
	if ev.Transaction.Status != StatusDeclined || ev.Properties[0] != "transaction.amount_in_cents" {
		t.Fatalf("event %+v", ev)
	}
	// Signed in the documented order instead: refused.
	body2, sum2 := sign(t, tmpl, "test_events_k", "T1", "DECLINED", "100", "1700000000")
	if _, err := VerifyEvent([]byte(body2), sum2, "test_events_k", time.Unix(1700000000, 0), 0); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("checksum over another order = %v, want ErrBadChecksum", err)
	}
}

func TestVerifyEventRefusesAmbiguousOrUnsignedFields(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name  string
		tmpl  string
		parts []string
	}{
		{
			// A second key differing only in case: a struct decode would
			// read "STATUS", the signature covers "status".
			"case twin key",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"DECLINED","STATUS":"APPROVED","amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "DECLINED", "100", "1700000000"},
		},
		{
			"duplicate key",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"DECLINED","status":"APPROVED","amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "APPROVED", "100", "1700000000"},
		},
		{
			"status not signed",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"APPROVED","amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "100", "1700000000"},
		},
		{
			"a fourth signed property",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"APPROVED","amount_in_cents":100,"reference":"5R"}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents","transaction.reference"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "APPROVED", "100", "5R", "1700000000"},
		},
		{
			"unknown status",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"PPROVED","amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "PPROVED", "100", "1700000000"},
		},
		{
			"signed property missing",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "", "100", "1700000000"},
		},
		{
			"signed property is an object",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":{"x":1},"amount_in_cents":100}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "", "100", "1700000000"},
		},
		{
			"amount with a fraction",
			`{"event":"transaction.updated","data":{"transaction":{"id":"T1","status":"APPROVED","amount_in_cents":100.5}},
"signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],"checksum":"CHECKSUM"},"timestamp":1700000000}`,
			[]string{"T1", "APPROVED", "100.5", "1700000000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, sum := sign(t, tc.tmpl, "test_events_k", tc.parts...)
			ev, err := VerifyEvent([]byte(body), sum, "test_events_k", now, 0)
			if !errors.Is(err, ErrMalformedEvent) {
				t.Fatalf("VerifyEvent = %+v, %v; want ErrMalformedEvent", ev, err)
			}
		})
	}
}

// An authentic event of another type is reported as such, with its data,
// so the webhook can answer 200 and ignore it.
func TestVerifyEventOtherTypes(t *testing.T) {
	const tmpl = `{"event":"nequi_token.updated","data":{"nequi_token":{"id":"nequi_test_1","status":"APPROVED","active":true}},
"signature":{"properties":["nequi_token.id","nequi_token.status","nequi_token.active"],"checksum":"CHECKSUM"},"timestamp":1700000000}`
	body, sum := sign(t, tmpl, "test_events_k", "nequi_test_1", "APPROVED", "true", "1700000000")
	ev, err := VerifyEvent([]byte(body), sum, "test_events_k", time.Unix(1700000000, 0), 0)
	if !errors.Is(err, ErrUnsupportedEvent) || errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("VerifyEvent = %v, want ErrUnsupportedEvent (answer 200, apply nothing)", err)
	}
	if ev.Type != EventNequiTokenUpdated || ev.Transaction != nil || !strings.Contains(string(ev.Data), "nequi_test_1") {
		t.Fatalf("event %+v", ev)
	}
}

// FuzzVerifyEvent mutates an authentic body (the official vector) and its
// header. VerifyEvent must never panic, and must never accept a body whose
// signed values or timestamp differ from the original's, nor one whose
// transaction says something other than what was signed.
func FuzzVerifyEvent(f *testing.F) {
	good := vectorBody()
	f.Add([]byte(good), vectorChecksum)
	f.Add([]byte(strings.ToUpper(good)), vectorChecksum)
	f.Add([]byte(strings.Replace(good, `"status":"APPROVED"`, `"status":"APPROVED","Status":"DECLINED"`, 1)), vectorChecksum)
	f.Add([]byte(strings.Replace(good, `4490000`, `4490000.0`, 1)), vectorChecksum)
	f.Add([]byte(strings.Replace(good, `"reference":"MZQ3X2DE2SMX"`, `"reference":"OTHER"`, 1)), vectorChecksum)
	f.Add([]byte(`{"data":{"transaction":{"id":"1234-1610641025-49201APPROVED4490000"}},"signature":{"properties":["transaction.id"],"checksum":"`+vectorChecksum+`"},"timestamp":1530291411}`), vectorChecksum)
	f.Add([]byte(`{}`), "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		ev, err := VerifyEvent(body, header, vectorEventsSecret, vectorNow, 0)
		if errors.Is(err, ErrUnsupportedEvent) {
			if ev.Transaction != nil {
				t.Fatalf("an unsupported event carries a transaction: %+v", ev)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error %v does not wrap ErrInvalidEvent", err)
			}
			return
		}
		// Accepted: then it is the original event in all that is signed.
		want := map[string]string{"transaction.id": "1234-1610641025-49201", "transaction.status": "APPROVED", "transaction.amount_in_cents": "4490000"}
		if ev.Timestamp != vectorTimestamp || len(ev.Signed) != len(want) {
			t.Fatalf("accepted a body with other signed fields: %+v", ev)
		}
		for k, v := range want {
			if ev.Signed[k] != v {
				t.Fatalf("accepted %s = %q, signed %q", k, ev.Signed[k], v)
			}
		}
		if ev.Type == EventTransactionUpdated {
			tx := ev.Transaction
			if tx == nil || tx.ID != want["transaction.id"] || tx.Status != StatusApproved || tx.AmountInCents != 4490000 {
				t.Fatalf("accepted a transaction that differs from the signed one: %+v", tx)
			}
		}
	})
}
