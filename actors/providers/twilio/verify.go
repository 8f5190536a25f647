package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spa-engine/spa/actors/providers/sender"
)

// Verify errors. They also wrap sender.ErrRejected or sender.ErrUnavailable.
var (
	// ErrVerifyDisabled: no SPA_TWILIO_VERIFY_SERVICE_SID.
	ErrVerifyDisabled = errors.New("twilio: verify service not configured")
	// ErrVerificationNotFound: no pending verification for that number
	// (expired after 10 minutes, already approved, or too many checks).
	ErrVerificationNotFound = errors.New("twilio: no pending verification")
	// ErrVerifyLimited: Twilio's per-number limits (60202 max check
	// attempts, 60203 max sends in 10 minutes).
	ErrVerifyLimited = errors.New("twilio: verification limit reached")
)

// Verification is Twilio Verify's verification resource.
type Verification struct {
	SID        string `json:"sid"`
	ServiceSID string `json:"service_sid"`
	To         string `json:"to"`
	Channel    string `json:"channel"`
	Status     string `json:"status"` // pending, approved, canceled
	Valid      bool   `json:"valid"`
}

// StartVerification asks Twilio to send a code to to (E.164) over channel
// ("sms" or "whatsapp"), with an optional locale such as "es".
func (c *Client) StartVerification(ctx context.Context, to string, channel sender.Channel, locale string) (Verification, error) {
	if c.cfg.VerifyServiceSID == "" {
		return Verification{}, fmt.Errorf("%w: %w", sender.ErrUnavailable, ErrVerifyDisabled)
	}
	if !isE164(to) {
		return Verification{}, fmt.Errorf("%w: twilio: recipient is not an E.164 number", sender.ErrRejected)
	}
	if channel == "" {
		channel = sender.ChannelSMS
	}
	form := url.Values{"To": {to}, "Channel": {string(channel)}}
	if locale != "" {
		form.Set("Locale", locale)
	}
	var v Verification
	err := c.verify.Do(ctx, func(ctx context.Context) error {
		return c.post(ctx, c.verifyURL("Verifications"), form, http.StatusCreated, &v)
	})
	return v, verifyError(err)
}

// CheckVerification checks code for to. A wrong code is not an error: it
// returns Valid false (Status "pending").
func (c *Client) CheckVerification(ctx context.Context, to, code string) (Verification, error) {
	if c.cfg.VerifyServiceSID == "" {
		return Verification{}, fmt.Errorf("%w: %w", sender.ErrUnavailable, ErrVerifyDisabled)
	}
	form := url.Values{"To": {to}, "Code": {code}}
	var v Verification
	err := c.verify.Do(ctx, func(ctx context.Context) error {
		return c.post(ctx, c.verifyURL("VerificationCheck"), form, http.StatusOK, &v)
	})
	return v, verifyError(err)
}

func (c *Client) verifyURL(resource string) string {
	return c.cfg.VerifyBaseURL + "/Services/" + url.PathEscape(c.cfg.VerifyServiceSID) + "/" + resource
}

func verifyError(err error) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Code {
		case 20404:
			return fmt.Errorf("%w: %w: %w", sender.ErrRejected, ErrVerificationNotFound, err)
		case 60202, 60203:
			return fmt.Errorf("%w: %w: %w", sender.ErrRejected, ErrVerifyLimited, err)
		}
	}
	return senderError(err)
}
