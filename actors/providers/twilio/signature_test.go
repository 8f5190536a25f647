package twilio

import (
	"net/url"
	"testing"
)

// The official vectors from twilio-go's request_validator_test.go, as given
// in external-apis.md §2 (auth token "12345").
const vectorToken = "12345"

func vectorParams() url.Values {
	return url.Values{
		"Digits":                {"1234"},
		"CallSid":               {"CA1234567890ABCDE"},
		"To":                    {"+18005551212"},
		"Caller":                {"+14158675309"},
		"From":                  {"+14158675309"},
		"ReasonConferenceEnded": {"test"},
		"Reason":                {"Participant"},
	}
}

func TestSignatureOfficialVectors(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		params    url.Values
		want      string
	}{
		{"https with params", "https://mycompany.com/myapp.php?foo=1&bar=2", vectorParams(), "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"http with params", "http://mycompany.com/myapp.php?foo=1&bar=2", vectorParams(), "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"form body", "https://mycompany.com/myapp.php?foo=1&bar=2", url.Values{"property": {"value"}, "boolean": {"true"}}, "NBdBDr/T/lgjI+tlgpXjKZQZs/k="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Signature(vectorToken, tc.url, tc.params); got != tc.want {
				t.Fatalf("Signature = %s, want %s", got, tc.want)
			}
			if !ValidateSignature(vectorToken, tc.url, tc.params, tc.want) {
				t.Fatal("ValidateSignature rejected the official signature")
			}
			// Explicit default port: the same signature must validate.
			u, _ := url.Parse(tc.url)
			port := map[string]string{"https": "443", "http": "80"}[u.Scheme]
			u.Host += ":" + port
			if !ValidateSignature(vectorToken, u.String(), tc.params, tc.want) {
				t.Fatalf("ValidateSignature rejected %s", u)
			}
			if ValidateSignature("54321", tc.url, tc.params, tc.want) {
				t.Fatal("accepted with the wrong token")
			}
			tampered := url.Values{}
			for k, v := range tc.params {
				tampered[k] = v
			}
			tampered.Set("Injected", "1")
			if ValidateSignature(vectorToken, tc.url, tampered, tc.want) {
				t.Fatal("accepted with an extra parameter")
			}
		})
	}
}

func TestSignatureSortsKeys(t *testing.T) {
	// The spec gives the signed string; "Reason" sorts before
	// "ReasonConferenceEnded". Hashing the wrong order gives 95+Bu0...
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got := Signature(vectorToken, u+"CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309ReasonConferenceEndedtestReasonParticipantTo+18005551212", nil); got != "95+Bu0JVPi0r/SsESZCVf0dWAjw=" {
		t.Fatalf("wrong-order signature = %s, want the spec's 95+Bu0JVPi0r/SsESZCVf0dWAjw=", got)
	}
	if ValidateSignature(vectorToken, u, vectorParams(), "95+Bu0JVPi0r/SsESZCVf0dWAjw=") {
		t.Fatal("accepted the wrong-order signature")
	}
}

func TestJSONBodySignatureOfficialVector(t *testing.T) {
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	body := []byte(`{"property": "value", "boolean": true}`)
	const sig = "a9nBmqA0ju/hNViExpshrM61xv4="
	if !ValidateJSONSignature(vectorToken, u, body, sig) {
		t.Fatal("rejected the official JSON vector")
	}
	if ValidateJSONSignature(vectorToken, u, []byte(`{"property": "value", "boolean": false}`), sig) {
		t.Fatal("accepted a body that does not match bodySHA256")
	}
	if ValidateJSONSignature(vectorToken, "https://mycompany.com/myapp.php?foo=1&bar=2", body, Signature(vectorToken, "https://mycompany.com/myapp.php?foo=1&bar=2", nil)) {
		t.Fatal("accepted a JSON body without bodySHA256")
	}
}

func TestValidateSignatureRejectsEmpty(t *testing.T) {
	if ValidateSignature("", "https://x.co/", nil, Signature("", "https://x.co/", nil)) {
		t.Fatal("accepted with an empty token")
	}
	if ValidateSignature(vectorToken, "https://x.co/", nil, "") {
		t.Fatal("accepted an empty signature")
	}
}

func FuzzValidateSignature(f *testing.F) {
	f.Add("https://mycompany.com/myapp.php?foo=1&bar=2", "Digits", "1234", "vOEb5UThFn24KEfnOFLQY2AE5FY=")
	f.Add("http://h:80/p", "a", "b", "")
	f.Fuzz(func(t *testing.T, u, k, v, sig string) {
		p := url.Values{k: {v}}
		good := Signature(vectorToken, u, p)
		if !ValidateSignature(vectorToken, u, p, good) {
			t.Fatalf("own signature rejected for %q", u)
		}
		if sig != good && ValidateSignature(vectorToken, u, p, sig) && !portVariantOf(u, p, sig) {
			t.Fatalf("accepted foreign signature %q", sig)
		}
	})
}

// portVariantOf reports whether sig is the signature of a port variant of u
// (which ValidateSignature accepts by design).
func portVariantOf(u string, p url.Values, sig string) bool {
	for _, v := range urlVariants(u) {
		if Signature(vectorToken, v, p) == sig {
			return true
		}
	}
	return false
}
