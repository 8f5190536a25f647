package whatsapp

import (
	"net/url"
	"strings"
	"testing"
)

func TestHandshake(t *testing.T) {
	const token = "meatyhamhock"
	for _, tc := range []struct {
		name, query string
		ok          bool
		challenge   string
	}{
		{"spec example", "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", true, "1158201444"},
		{"challenge echoed as received", "hub.mode=subscribe&hub.challenge=00042&hub.verify_token=meatyhamhock", true, "00042"},
		{"wrong token", "hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhocks", false, ""},
		{"wrong mode", "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock", false, ""},
		{"no token", "hub.mode=subscribe&hub.challenge=1", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			ch, ok := Handshake(q, token)
			if ok != tc.ok || ch != tc.challenge {
				t.Fatalf("Handshake = %q, %v; want %q, %v", ch, ok, tc.challenge, tc.ok)
			}
		})
	}
	q, _ := url.ParseQuery("hub.mode=subscribe&hub.challenge=1&hub.verify_token=")
	if _, ok := Handshake(q, ""); ok {
		t.Fatal("an unconfigured verify token accepted an empty one")
	}
}

func TestSignatureVector(t *testing.T) {
	// external-apis.md §1 (computed independently; Meta publishes none).
	const secret = "test_app_secret"
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	const want = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756"
	if got := Signature(secret, body); got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
	if !ValidSignature(secret, body, want) {
		t.Fatal("rejected the vector")
	}
	if !ValidSignature(secret, body, "sha256="+strings.ToUpper(want[7:])) {
		t.Fatal("rejected upper-case hex")
	}
	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
	}{
		"tampered body":  {secret, want, []byte(`{"object":"whatsapp_business_account","entry":[{}]}`)},
		"wrong secret":   {"other", want, body},
		"missing prefix": {secret, want[7:], body},
		"sha1 prefix":    {secret, "sha1=" + want[7:], body},
		"empty header":   {secret, "", body},
		"empty secret":   {"", Signature("", body), body},
	} {
		if ValidSignature(tc.secret, tc.body, tc.header) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzValidSignature(f *testing.F) {
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[]}`), "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		good := Signature("k", body)
		if !ValidSignature("k", body, good) {
			t.Fatal("own signature rejected")
		}
		if ValidSignature("k", body, header) && !strings.EqualFold(header, good) {
			t.Fatalf("accepted foreign header %q", header)
		}
	})
}
