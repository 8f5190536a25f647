package whatsapp

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/providers/sender"
)

// Button is one reply button: its id comes back as the tap's payload.
type Button struct {
	ID, Title string
}

// Limits of reply-button messages (external-apis.md §1).
const (
	MaxButtons     = 3
	MaxButtonTitle = 20
	MaxButtonID    = 256
	MaxButtonBody  = 1024
)

// SendButtons sends an interactive reply-button message (only inside the
// 24-hour window) and returns the wamid. Limits are checked here so a bad
// message fails before it reaches Meta.
func (c *Client) SendButtons(ctx context.Context, to, body string, buttons []Button) (string, error) {
	waID, err := waID(to)
	if err != nil {
		return "", err
	}
	if body == "" || utf8.RuneCountInString(body) > MaxButtonBody || len(buttons) == 0 || len(buttons) > MaxButtons {
		return "", fmt.Errorf("%w: whatsapp: buttons need a body of 1-%d characters and 1-%d buttons", sender.ErrRejected, MaxButtonBody, MaxButtons)
	}
	req := interactiveRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: waID, Type: "interactive",
		Interactive: interactive{Type: "button", Body: textOnly{Text: body}}}
	for _, b := range buttons {
		if b.ID == "" || len(b.ID) > MaxButtonID || b.Title == "" || utf8.RuneCountInString(b.Title) > MaxButtonTitle {
			return "", fmt.Errorf("%w: whatsapp: a button needs an id of at most %d bytes and a title of at most %d characters", sender.ErrRejected, MaxButtonID, MaxButtonTitle)
		}
		req.Interactive.Action.Buttons = append(req.Interactive.Action.Buttons, replyButton{Type: "reply", Reply: buttonReply(b)})
	}
	return c.post(ctx, req)
}

type (
	interactiveRequest struct {
		MessagingProduct string      `json:"messaging_product"`
		RecipientType    string      `json:"recipient_type"`
		To               string      `json:"to"`
		Type             string      `json:"type"`
		Interactive      interactive `json:"interactive"`
	}
	interactive struct {
		Type   string   `json:"type"`
		Body   textOnly `json:"body"`
		Action struct {
			Buttons []replyButton `json:"buttons"`
		} `json:"action"`
	}
	textOnly struct {
		Text string `json:"text"`
	}
	replyButton struct {
		Type  string      `json:"type"`
		Reply buttonReply `json:"reply"`
	}
	buttonReply struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
)
