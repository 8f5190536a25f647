package twilio

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestVerifyWebhook: the official form-body vector verifies; a wrong
// token, a missing header, another URL and an oversized body do not.
func TestVerifyWebhook(t *testing.T) {
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	body := []byte("property=value&boolean=true")
	const sig = "NBdBDr/T/lgjI+tlgpXjKZQZs/k="
	form, err := VerifyWebhook(body, sig, "12345", u)
	if err != nil || form.Get("property") != "value" {
		t.Fatalf("official vector: %v %v", form, err)
	}
	for name, c := range map[string]struct {
		body            []byte
		sig, token, url string
		want            error
	}{
		"wrong token":   {body, sig, "54321", u, ErrBadSignature},
		"no header":     {body, "", "12345", u, ErrNoSignature},
		"another URL":   {body, sig, "12345", "https://mycompany.com/other", ErrBadSignature},
		"no URL":        {body, sig, "12345", "", ErrNoAuthToken},
		"oversized":     {[]byte("a=" + strings.Repeat("x", MaxWebhookBytes)), sig, "12345", u, ErrTooLarge},
		"body tampered": {[]byte("property=other&boolean=true"), sig, "12345", u, ErrBadSignature},
	} {
		if _, err := VerifyWebhook(c.body, c.sig, c.token, c.url); !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidWebhook) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestParseStatusAndInbound(t *testing.T) {
	for raw, want := range map[string]string{"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
		"undelivered": "failed", "canceled": "failed", "queued": "", "sending": ""} {
		sc, err := ParseStatus(url.Values{"MessageSid": {"SM1"}, "MessageStatus": {raw}})
		if err != nil || sc.Status != want {
			t.Errorf("%s: %+v %v, want %q", raw, sc, err, want)
		}
	}
	if _, err := ParseStatus(url.Values{"MessageStatus": {"sent"}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("no sid: %v", err)
	}
	m, err := ParseInbound(url.Values{"MessageSid": {"SM2"}, "From": {"whatsapp:+573001234567"}, "Body": {"hola"}})
	if err != nil || m.From != "+573001234567" || m.Channel != "whatsapp" || m.Body != "hola" {
		t.Fatalf("whatsapp: %+v %v", m, err)
	}
	m, err = ParseInbound(url.Values{"MessageSid": {"SM3"}, "From": {"+573001234567"}})
	if err != nil || m.Channel != "sms" {
		t.Fatalf("sms: %+v %v", m, err)
	}
	if _, err := ParseInbound(url.Values{"MessageSid": {"SM4"}, "From": {"whatsapp:3001234567"}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("not E.164: %v", err)
	}
}
