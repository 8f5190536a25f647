package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

// ErrAuth is wrapped when Meta refuses the access token (HTTP 401, code
// 190): a configuration problem, reported as sender.ErrUnavailable and not
// retried.
var ErrAuth = errors.New("whatsapp: access token refused")

// GraphError is the Graph API error reply. Error() leaves out Message and
// Details, which can quote the phone number.
type GraphError struct {
	Status    int    `json:"-"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode"`
	Type      string `json:"type"`
	Message   string `json:"message"`
	FBTraceID string `json:"fbtrace_id"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

func (e *GraphError) Error() string {
	return "whatsapp: HTTP " + strconv.Itoa(e.Status) + ", code " + strconv.Itoa(e.Code) + " (" + e.Type + ")"
}

// transientCodes are Graph error codes that mean "later": temporary errors,
// throughput limits and service outages (Meta's error-code table).
var transientCodes = map[int]bool{1: true, 2: true, 4: true, 80007: true, 130429: true, 131000: true, 131016: true}

// Template is an approved template send.
type Template struct {
	Name     string
	Language string
	// BodyParams fill the body's {{1}}, {{2}}, ... in order.
	BodyParams []string
}

// Client sends WhatsApp messages. It is a sender.Sender for ChannelWhatsApp.
type Client struct {
	cfg    Config
	http   *http.Client
	caller *resilient.Caller
	url    string
}

// New returns a Client; m may be nil.
func New(cfg Config, m *resilient.Metrics) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		cfg:    cfg,
		http:   hc,
		caller: resilient.New("whatsapp", cfg.Policy, m),
		url:    strings.TrimRight(cfg.BaseURL, "/") + "/" + cfg.APIVersion + "/" + url.PathEscape(cfg.PhoneNumberID) + "/messages",
	}, nil
}

// Send delivers m (E.164 To) as a template when its Purpose has one
// configured, else as free-form text. Errors wrap sender.ErrRejected or
// sender.ErrUnavailable.
func (c *Client) Send(ctx context.Context, m sender.Message) error {
	_, err := c.SendTracked(ctx, m)
	return err
}

// SendTracked is Send returning the wamid, the id Meta's status webhooks
// name (sender.Tracker).
func (c *Client) SendTracked(ctx context.Context, m sender.Message) (string, error) {
	if m.Channel != "" && m.Channel != sender.ChannelWhatsApp {
		return "", fmt.Errorf("%w: whatsapp: cannot send channel %q", sender.ErrRejected, m.Channel)
	}
	if t := m.Template; t != nil {
		// The Cloud API takes no validity per message: a template's TTL
		// is the one it was approved with (docs/notifications.md).
		return c.SendTemplate(ctx, m.To, Template{Name: t.Name, Language: t.Language, BodyParams: t.Params})
	}
	if t, ok := c.cfg.Templates[m.Purpose]; ok {
		return c.SendTemplate(ctx, m.To, Template{Name: t.Name, Language: t.Language, BodyParams: []string{m.Body}})
	}
	return c.SendText(ctx, m.To, m.Body)
}

// SendText sends free-form text to to (E.164) and returns the wamid. Meta
// accepts it even outside the 24-hour window and reports the failure
// (131047) later in a status webhook.
func (c *Client) SendText(ctx context.Context, to, body string) (string, error) {
	waID, err := waID(to)
	if err != nil {
		return "", err
	}
	if body == "" {
		return "", fmt.Errorf("%w: whatsapp: empty body", sender.ErrRejected)
	}
	return c.post(ctx, textRequest{
		MessagingProduct: "whatsapp", RecipientType: "individual", To: waID, Type: "text",
		Text: textBody{PreviewURL: false, Body: body},
	})
}

// SendTemplate sends an approved template and returns the wamid.
func (c *Client) SendTemplate(ctx context.Context, to string, t Template) (string, error) {
	waID, err := waID(to)
	if err != nil {
		return "", err
	}
	if t.Name == "" || t.Language == "" {
		return "", fmt.Errorf("%w: whatsapp: template needs a name and a language", sender.ErrRejected)
	}
	req := templateRequest{MessagingProduct: "whatsapp", To: waID, Type: "template",
		Template: templateBody{Name: t.Name, Language: language{Code: t.Language}}}
	if len(t.BodyParams) > 0 {
		comp := component{Type: "body"}
		for _, p := range t.BodyParams {
			comp.Parameters = append(comp.Parameters, parameter{Type: "text", Text: p})
		}
		req.Template.Components = []component{comp}
	}
	return c.post(ctx, req)
}

// Wire types, field order as in the spec's examples.
type (
	textRequest struct {
		MessagingProduct string   `json:"messaging_product"`
		RecipientType    string   `json:"recipient_type"`
		To               string   `json:"to"`
		Type             string   `json:"type"`
		Text             textBody `json:"text"`
	}
	textBody struct {
		PreviewURL bool   `json:"preview_url"`
		Body       string `json:"body"`
	}
	templateRequest struct {
		MessagingProduct string       `json:"messaging_product"`
		To               string       `json:"to"`
		Type             string       `json:"type"`
		Template         templateBody `json:"template"`
	}
	templateBody struct {
		Name       string      `json:"name"`
		Language   language    `json:"language"`
		Components []component `json:"components,omitempty"`
	}
	language struct {
		Code string `json:"code"`
	}
	component struct {
		Type       string      `json:"type"`
		Parameters []parameter `json:"parameters"`
	}
	parameter struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	sendReply struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
)

func (c *Client) post(ctx context.Context, payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	var wamid string
	err = c.caller.Do(ctx, func(ctx context.Context) error {
		r, err := resilient.HTTP(ctx, c.http, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
			req.Header.Set("Content-Type", "application/json")
			return req, nil
		})
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			ge := &GraphError{}
			var env struct {
				Error *GraphError `json:"error"`
			}
			if json.Unmarshal(r.Body, &env) == nil && env.Error != nil {
				ge = env.Error
			}
			ge.Status = r.Status
			if transientCodes[ge.Code] {
				return resilient.Transient(ge, resilient.RetryAfter(r.Header, time.Now()))
			}
			return ge
		}
		var rep sendReply
		if err := json.Unmarshal(r.Body, &rep); err != nil || len(rep.Messages) == 0 || rep.Messages[0].ID == "" {
			return fmt.Errorf("whatsapp: reply without a message id")
		}
		wamid = rep.Messages[0].ID
		return nil
	})
	return wamid, senderError(err)
}

func senderError(err error) error {
	if err == nil {
		return nil
	}
	var ge *GraphError
	switch {
	case errors.Is(err, context.Canceled), resilient.IsTransient(err):
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, err)
	case errors.As(err, &ge) && (ge.Status == http.StatusUnauthorized || ge.Code == 190):
		return fmt.Errorf("%w: %w: %w", sender.ErrUnavailable, ErrAuth, err)
	case errors.As(err, &ge):
		return fmt.Errorf("%w: %w", sender.ErrRejected, err)
	default:
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, err)
	}
}

// waID turns an E.164 number into the digits-only form the Cloud API uses.
func waID(e164 string) (string, error) {
	d, ok := strings.CutPrefix(e164, "+")
	if !ok || len(d) < 8 || len(d) > 15 || d[0] == '0' || strings.Trim(d, "0123456789") != "" {
		return "", fmt.Errorf("%w: whatsapp: recipient is not an E.164 number", sender.ErrRejected)
	}
	return d, nil
}

var _ sender.Tracker = (*Client)(nil)
