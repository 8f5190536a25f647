package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// SignatureHeader is the header Meta signs webhook bodies in.
const SignatureHeader = "X-Hub-Signature-256"

// Handshake answers Meta's subscription check (GET
// ?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...). When ok, reply
// 200 with challenge exactly as received as a text/plain body; otherwise
// reply 403. The token comparison is constant-time.
func Handshake(query url.Values, verifyToken string) (challenge string, ok bool) {
	if verifyToken == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if !hmac.Equal([]byte(query.Get("hub.verify_token")), []byte(verifyToken)) {
		return "", false
	}
	return query.Get("hub.challenge"), true
}

// Signature is the X-Hub-Signature-256 value for body:
// "sha256=" + lowercase hex HMAC-SHA256(appSecret, body).
func Signature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ValidSignature checks header against the raw body bytes (verify before
// parsing the JSON) in constant time.
func ValidSignature(appSecret string, body []byte, header string) bool {
	if appSecret == "" {
		return false
	}
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	want := Signature(appSecret, body)[len("sha256="):]
	return hmac.Equal([]byte(strings.ToLower(got)), []byte(want))
}
