package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// Signature computes X-Twilio-Signature for a request to fullURL (exactly as
// Twilio called it: scheme, host, path, query) with form params:
// base64(HMAC-SHA1(authToken, URL + key1 + value1 + key2 + value2 ...)) with
// keys sorted and the first value of a repeated key, as twilio-go does.
func Signature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k)
		if v := params[k]; len(v) > 0 {
			b.WriteString(v[0])
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidateSignature reports whether signature is valid for a form POST (or
// GET, with params nil) to fullURL. It accepts the URL with and without an
// explicit default port, since proxies disagree on which one Twilio saw.
// Comparison is constant-time.
func ValidateSignature(authToken, fullURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	ok := false
	for _, u := range urlVariants(fullURL) {
		// Check every variant so timing does not reveal which one matched.
		if hmac.Equal([]byte(Signature(authToken, u, params)), []byte(signature)) {
			ok = true
		}
	}
	return ok
}

// ValidateJSONSignature validates a request with a JSON body: the URL
// carries bodySHA256=<hex sha256(body)>, the signature covers the URL alone,
// and the body must hash to that value.
func ValidateJSONSignature(authToken, fullURL string, body []byte, signature string) bool {
	u, err := url.Parse(fullURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	sum := sha256.Sum256(body)
	bodyOK := want != "" && hmac.Equal([]byte(strings.ToLower(want)), []byte(hex.EncodeToString(sum[:])))
	sigOK := ValidateSignature(authToken, fullURL, nil, signature)
	return bodyOK && sigOK
}

// urlVariants is fullURL as given, plus with the default port added or
// removed.
func urlVariants(fullURL string) []string {
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return []string{fullURL}
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return []string{fullURL}
	}
	alt := *u
	if u.Port() == "" {
		alt.Host = u.Host + ":" + def
	} else if u.Port() == def {
		alt.Host = u.Hostname()
	} else {
		return []string{fullURL}
	}
	return []string{fullURL, alt.String()}
}
