package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Inbound webhooks (../shared/design/external-apis.md §2): Twilio posts a
// form for each message a client sends us and for each status change of a
// message we sent, signed in X-Twilio-Signature over the exact public URL
// it called and every parameter (ValidateSignature). Twilio's form carries
// no timestamp: a replay is recognised by its body alone.

// SignatureHeader is the header Twilio signs its requests in.
const SignatureHeader = "X-Twilio-Signature"

// MaxWebhookBytes caps a webhook body; Twilio's forms are under 2 KiB
// (a message body is at most 1,600 characters).
const MaxWebhookBytes = 16 << 10

// Why a webhook is refused. All wrap ErrInvalidWebhook: answer 401 (413
// for ErrTooLarge) and keep nothing.
var (
	ErrInvalidWebhook = errors.New("twilio: webhook refused")
	ErrNoAuthToken    = fmt.Errorf("%w: no auth token or webhook URL configured", ErrInvalidWebhook)
	ErrNoSignature    = fmt.Errorf("%w: no %s header", ErrInvalidWebhook, SignatureHeader)
	ErrBadSignature   = fmt.Errorf("%w: signature does not match", ErrInvalidWebhook)
	ErrTooLarge       = fmt.Errorf("%w: body over %d bytes", ErrInvalidWebhook, MaxWebhookBytes)
	ErrMalformed      = fmt.Errorf("%w: malformed", ErrInvalidWebhook)
)

// VerifyWebhook checks a form POST Twilio made to fullURL (the public URL
// configured for it) and returns its parameters: the size, then the
// signature over the URL and every parameter, in constant time.
func VerifyWebhook(body []byte, header, authToken, fullURL string) (url.Values, error) {
	switch {
	case len(body) > MaxWebhookBytes:
		return nil, ErrTooLarge
	case authToken == "" || fullURL == "":
		return nil, ErrNoAuthToken
	case header == "":
		return nil, ErrNoSignature
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !ValidateSignature(authToken, fullURL, form, header) {
		return nil, ErrBadSignature
	}
	return form, nil
}

// StatusCallback is one status change of a message we sent.
type StatusCallback struct {
	MessageSID string
	// Status is sent, delivered, read or failed (Twilio's undelivered
	// and canceled are failed); "" for the stages before sent (queued,
	// accepted, sending, scheduled), which say nothing new.
	Status    string
	ErrorCode string
}

// ParseStatus reads a status callback's form.
func ParseStatus(form url.Values) (StatusCallback, error) {
	sc := StatusCallback{MessageSID: form.Get("MessageSid"), ErrorCode: form.Get("ErrorCode")}
	raw := form.Get("MessageStatus")
	if sc.MessageSID == "" || raw == "" {
		return sc, fmt.Errorf("%w: no MessageSid or MessageStatus", ErrMalformed)
	}
	switch raw {
	case "sent", "delivered", "read", "failed":
		sc.Status = raw
	case "undelivered", "canceled":
		sc.Status = "failed"
	}
	return sc, nil
}

// InboundMessage is one message a client sent us, by SMS or WhatsApp.
type InboundMessage struct {
	MessageSID string
	// From is the sender's E.164 number, without Twilio's "whatsapp:".
	From string
	// Channel is "whatsapp" or "sms".
	Channel     string
	Body        string
	ProfileName string
	// ButtonText and ButtonPayload are a quick reply's.
	ButtonText, ButtonPayload string
}

// ParseInbound reads an inbound message's form.
func ParseInbound(form url.Values) (InboundMessage, error) {
	m := InboundMessage{MessageSID: form.Get("MessageSid"), Channel: "sms", Body: form.Get("Body"),
		ProfileName: form.Get("ProfileName"), ButtonText: form.Get("ButtonText"), ButtonPayload: form.Get("ButtonPayload")}
	from := form.Get("From")
	if num, ok := strings.CutPrefix(from, "whatsapp:"); ok {
		m.Channel, from = "whatsapp", num
	}
	m.From = from
	if m.MessageSID == "" || !isE164(m.From) {
		return m, fmt.Errorf("%w: no MessageSid or an E.164 From", ErrMalformed)
	}
	return m, nil
}
