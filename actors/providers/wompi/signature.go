package wompi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ExpirationLayout is how Wompi writes an expiration time
// (2023-06-09T20:28:50.000Z); the signature covers these exact characters.
const ExpirationLayout = "2006-01-02T15:04:05.000Z"

// FormatExpiration renders t (in UTC, milliseconds) the way Wompi expects.
func FormatExpiration(t time.Time) string { return t.UTC().Format(ExpirationLayout) }

// IntegritySignature is the "signature" of a transaction and the
// "signature:integrity" of a checkout: lowercase hex
// SHA256(reference + amountInCents + currency [+ expiration] + secret).
// expiration is the exact string sent with the payment (FormatExpiration),
// or "" when the payment does not expire.
func IntegritySignature(reference string, amountInCents int64, currency, expiration, secret string) string {
	h := sha256.New()
	h.Write([]byte(reference))
	h.Write([]byte(strconv.FormatInt(amountInCents, 10)))
	h.Write([]byte(currency))
	h.Write([]byte(expiration))
	h.Write([]byte(secret))
	return hex.EncodeToString(h.Sum(nil))
}

// MaxReferenceLen bounds a payment reference (our id); Wompi keeps it as text.
const MaxReferenceLen = 255

// checkReference refuses what cannot be a reference of ours: empty, too
// long, or with control characters (which would also reach a log line).
func checkReference(ref string) error {
	if ref == "" || len(ref) > MaxReferenceLen {
		return fmt.Errorf("%w: reference must be 1 to %d bytes", ErrInvalidRequest, MaxReferenceLen)
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: reference has a control character", ErrInvalidRequest)
		}
	}
	return nil
}

// checkMoney refuses a non-positive amount or a currency other than COP.
func checkMoney(amountInCents int64, currency string) error {
	if amountInCents <= 0 {
		return fmt.Errorf("%w: amount_in_cents must be positive", ErrInvalidRequest)
	}
	if currency != CurrencyCOP {
		return fmt.Errorf("%w: currency must be %s", ErrInvalidRequest, CurrencyCOP)
	}
	return nil
}

// Checkout is one web checkout payment.
type Checkout struct {
	Reference     string
	AmountInCents int64
	// RedirectURL is where the page sends the payer back, with ?id=<tx id>
	// appended; treat that id as a hint only (read the transaction).
	RedirectURL string
	// ExpiresAt, if set, ends the payment's validity; it is signed.
	ExpiresAt time.Time
	// CustomerEmail, if set, fills the payer's e-mail on the page.
	CustomerEmail string
}

// CheckoutURL is the web checkout link for c under base (DefaultCheckoutURL,
// or wompifake's page), signed with the integrity secret:
// base?public-key=…&currency=COP&amount-in-cents=…&reference=…&signature:integrity=…[&redirect-url=…][&expiration-time=…].
// The parameter names carry a literal ":" as Wompi documents them, so the
// query is written by hand rather than by url.Values (which would escape it).
func CheckoutURL(base, publicKey, integritySecret string, c Checkout) (string, error) {
	if err := checkReference(c.Reference); err != nil {
		return "", err
	}
	if err := checkMoney(c.AmountInCents, CurrencyCOP); err != nil {
		return "", err
	}
	if publicKey == "" || integritySecret == "" {
		return "", errors.New("wompi: checkout needs the public key and the integrity secret")
	}
	if base == "" {
		base = DefaultCheckoutURL
	}
	if _, err := url.Parse(base); err != nil {
		return "", fmt.Errorf("wompi: checkout base URL: %w", err)
	}
	expiration := ""
	if !c.ExpiresAt.IsZero() {
		expiration = FormatExpiration(c.ExpiresAt)
	}
	sig := IntegritySignature(c.Reference, c.AmountInCents, CurrencyCOP, expiration, integritySecret)

	var q strings.Builder
	add := func(k, v string) {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(k)
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(v))
	}
	add("public-key", publicKey)
	add("currency", CurrencyCOP)
	add("amount-in-cents", strconv.FormatInt(c.AmountInCents, 10))
	add("reference", c.Reference)
	add("signature:integrity", sig)
	if c.RedirectURL != "" {
		add("redirect-url", c.RedirectURL)
	}
	if expiration != "" {
		add("expiration-time", expiration)
	}
	if c.CustomerEmail != "" {
		add("customer-data:email", c.CustomerEmail)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.String(), nil
}
