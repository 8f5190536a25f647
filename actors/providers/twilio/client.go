package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

// ErrAuth is wrapped when Twilio refuses our credentials (401/403): a
// configuration problem, reported as sender.ErrUnavailable and not retried.
var ErrAuth = errors.New("twilio: credentials refused")

// APIError is Twilio's error reply. Error() omits Message, which can quote
// the phone number.
type APIError struct {
	Status   int    `json:"status"`
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
}

func (e *APIError) Error() string {
	return "twilio: HTTP " + strconv.Itoa(e.Status) + ", code " + strconv.Itoa(e.Code)
}

// MessageResource is the part of Twilio's Message reply we use.
type MessageResource struct {
	SID         string `json:"sid"`
	AccountSID  string `json:"account_sid"`
	To          string `json:"to"`
	From        string `json:"from"`
	Status      string `json:"status"`
	NumSegments string `json:"num_segments"`
	Direction   string `json:"direction"`
	DateCreated string `json:"date_created"`
}

// Client talks to Twilio. It is a sender.Sender for both channels.
type Client struct {
	cfg    Config
	http   *http.Client
	msgs   *resilient.Caller
	verify *resilient.Caller
}

// New returns a Client; m may be nil.
func New(cfg Config, m *resilient.Metrics) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = DefaultAPIBaseURL
	}
	if cfg.VerifyBaseURL == "" {
		cfg.VerifyBaseURL = DefaultVerifyBaseURL
	}
	cfg.APIBaseURL = strings.TrimRight(cfg.APIBaseURL, "/")
	cfg.VerifyBaseURL = strings.TrimRight(cfg.VerifyBaseURL, "/")
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		cfg:    cfg,
		http:   hc,
		msgs:   resilient.New("twilio", cfg.Policy, m),
		verify: resilient.New("twilio_verify", cfg.Policy, m),
	}, nil
}

// LogValue keeps secrets out of logs if a Client is ever logged.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("account_sid", c.cfg.AccountSID), slog.String("api", c.cfg.APIBaseURL))
}

// Send delivers m by SMS or WhatsApp. Errors wrap sender.ErrRejected or
// sender.ErrUnavailable.
func (c *Client) Send(ctx context.Context, m sender.Message) error {
	_, err := c.SendMessage(ctx, m)
	return err
}

// SendTracked is Send returning the MessageSid, the id Twilio's status
// callbacks name (sender.Tracker).
func (c *Client) SendTracked(ctx context.Context, m sender.Message) (string, error) {
	res, err := c.SendMessage(ctx, m)
	return res.SID, err
}

// SendMessage is Send that also returns Twilio's message resource.
func (c *Client) SendMessage(ctx context.Context, m sender.Message) (MessageResource, error) {
	if !isE164(m.To) {
		return MessageResource{}, fmt.Errorf("%w: twilio: recipient is not an E.164 number", sender.ErrRejected)
	}
	if m.Body == "" {
		return MessageResource{}, fmt.Errorf("%w: twilio: empty body", sender.ErrRejected)
	}
	form := url.Values{}
	switch m.Channel {
	case sender.ChannelSMS, "":
		form.Set("To", m.To)
		if c.cfg.MessagingServiceSID != "" {
			form.Set("MessagingServiceSid", c.cfg.MessagingServiceSID)
		} else if c.cfg.From != "" {
			form.Set("From", c.cfg.From)
		} else {
			return MessageResource{}, fmt.Errorf("%w: twilio: no SMS sender configured (%s)", sender.ErrRejected, EnvFrom)
		}
	case sender.ChannelWhatsApp:
		if c.cfg.WhatsAppFrom == "" {
			return MessageResource{}, fmt.Errorf("%w: twilio: no WhatsApp sender configured (%s)", sender.ErrRejected, EnvWhatsAppFrom)
		}
		form.Set("To", "whatsapp:"+m.To)
		form.Set("From", "whatsapp:"+c.cfg.WhatsAppFrom)
	default:
		return MessageResource{}, fmt.Errorf("%w: twilio: unsupported channel %q", sender.ErrRejected, m.Channel)
	}
	form.Set("Body", m.Body)
	if t := m.Template; t != nil && m.Channel == sender.ChannelWhatsApp {
		// An approved content template (outside the 24-hour window):
		// since 2025-04-01 Twilio wants ContentSid, not the text in Body.
		if err := setTemplate(form, t); err != nil {
			return MessageResource{}, err
		}
	}
	if cb := c.cfg.StatusCallbackURL(); cb != "" {
		form.Set("StatusCallback", cb) // delivery statuses (docs/notifications.md)
	}

	endpoint := c.cfg.APIBaseURL + "/2010-04-01/Accounts/" + url.PathEscape(c.cfg.AccountSID) + "/Messages.json"
	var res MessageResource
	err := c.msgs.Do(ctx, func(ctx context.Context) error {
		return c.post(ctx, endpoint, form, http.StatusCreated, &res)
	})
	return res, senderError(err)
}

// post sends one form POST and decodes a reply with status want into out.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, want int, out any) error {
	body := form.Encode()
	r, err := resilient.HTTP(ctx, c.http, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	})
	if err != nil {
		if r.Status == http.StatusTooManyRequests {
			// Verify's 429s are per-number limits (60202, 60203): waiting
			// seconds does not lift them, so they are final.
			if apiErr := decodeAPIError(r); apiErr.Code == 60202 || apiErr.Code == 60203 {
				return apiErr
			}
		}
		return err
	}
	if r.Status != want {
		return decodeAPIError(r)
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("twilio: decoding reply: %w", err)
	}
	return nil
}

func decodeAPIError(r resilient.Reply) *APIError {
	e := &APIError{}
	_ = json.Unmarshal(r.Body, e) // a non-JSON error still has its status
	e.Status = r.Status
	return e
}

// senderError maps a call's error onto sender's two classes.
func senderError(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *APIError
	switch {
	case errors.Is(err, context.Canceled), resilient.IsTransient(err):
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, err)
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden):
		return fmt.Errorf("%w: %w: %w", sender.ErrUnavailable, ErrAuth, err)
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: %w", sender.ErrRejected, err)
	default: // an undecodable success reply: the message may have gone out
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, err)
	}
}

var _ sender.Tracker = (*Client)(nil)
