package wompi

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The integrity vectors of external-apis.md §3: Wompi's documented example
// and the same with an expiration time (computed independently).
const (
	vectorReference = "sk8-438k4-xmxm392-sn2m"
	vectorAmount    = int64(2490000)
	vectorIntegrity = "prod_integrity_Z5mMke9x0k8gpErbDqwrJXMqsI6SFli6"
	vectorExpiry    = "2023-06-09T20:28:50.000Z"
)

func TestIntegritySignatureOfficialVectors(t *testing.T) {
	for _, tc := range []struct {
		name, expiration, want string
	}{
		{"doc example", "", "37c8407747e595535433ef8f6a811d853cd943046624a0ec04662b17bbf33bf5"},
		{"with expiration", vectorExpiry, "e972f58e7de36b283fbb93d9318d39a54ffdff4e8e917b534f30d63c9d7bb89c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IntegritySignature(vectorReference, vectorAmount, CurrencyCOP, tc.expiration, vectorIntegrity); got != tc.want {
				t.Fatalf("IntegritySignature = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFormatExpiration(t *testing.T) {
	at := time.Date(2023, 6, 9, 15, 28, 50, 0, time.FixedZone("COT", -5*3600))
	if got := FormatExpiration(at); got != vectorExpiry {
		t.Fatalf("FormatExpiration = %q, want %q (UTC, milliseconds, Z)", got, vectorExpiry)
	}
}

func TestCheckoutURL(t *testing.T) {
	exp, _ := time.Parse(ExpirationLayout, vectorExpiry)
	raw, err := CheckoutURL("https://checkout.wompi.co/p/", "pub_prod_abc", vectorIntegrity, Checkout{
		Reference: vectorReference, AmountInCents: vectorAmount,
		RedirectURL: "https://spa.example/pay/done?x=1&y=2", ExpiresAt: exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The parameter names keep their literal colon.
	if !strings.Contains(raw, "&signature:integrity=e972f58e7de36b283fbb93d9318d39a54ffdff4e8e917b534f30d63c9d7bb89c") {
		t.Fatalf("URL %s lacks the signed integrity parameter", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"public-key": "pub_prod_abc", "currency": "COP", "amount-in-cents": "2490000",
		"reference": vectorReference, "redirect-url": "https://spa.example/pay/done?x=1&y=2",
		"expiration-time": vectorExpiry,
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if u.Host != "checkout.wompi.co" || u.Path != "/p/" {
		t.Fatalf("URL %s, want the checkout page", raw)
	}

	for _, bad := range []Checkout{
		{Reference: "", AmountInCents: 1},
		{Reference: "r", AmountInCents: 0},
		{Reference: "r", AmountInCents: -5},
		{Reference: "a\nb", AmountInCents: 1},
		{Reference: strings.Repeat("x", MaxReferenceLen+1), AmountInCents: 1},
	} {
		if _, err := CheckoutURL("", "pub_test_x", "test_integrity_x", bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("CheckoutURL(%+v) = %v, want ErrInvalidRequest", bad, err)
		}
	}
}
