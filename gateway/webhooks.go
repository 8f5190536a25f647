package gateway

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service/inbox"
)

// The messaging webhooks (docs/notifications.md, Webhooks): Meta's
// subscription check and its signed posts, Twilio's status callbacks and
// inbound messages. Public routes: the providers sign instead of
// authenticating. The rules (signature, replay window, stored raw before
// applied) are the inbox service's; these handlers only translate HTTP.

func (s *server) registerMessagingWebhooks(app *fiber.App) {
	svc := s.deps.Inbox
	if svc == nil {
		svc = inbox.New(inbox.Deps{Store: s.deps.Store, Log: s.log})
	}
	app.Get("/v1/webhooks/whatsapp", s.whatsappHandshake(svc))
	app.Post("/v1/webhooks/whatsapp", s.messagingWebhook(whatsapp.MaxWebhookBytes, whatsapp.SignatureHeader, svc.WhatsApp, false))
	app.Post(twilio.StatusCallbackPath, s.messagingWebhook(twilio.MaxWebhookBytes, twilio.SignatureHeader, svc.TwilioStatus, false))
	app.Post(twilio.InboundPath, s.messagingWebhook(twilio.MaxWebhookBytes, twilio.SignatureHeader, svc.TwilioInbound, true))
}

// whatsappHandshake answers Meta's GET with the challenge as plain text
// (403 when the token does not match).
func (s *server) whatsappHandshake(svc *inbox.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q := c.Queries()
		challenge, err := svc.Handshake(map[string][]string{"hub.mode": {q["hub.mode"]},
			"hub.verify_token": {q["hub.verify_token"]}, "hub.challenge": {q["hub.challenge"]}})
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(challenge)
	}
}

// twiml is the empty TwiML reply: Twilio sends nothing back to the client.
const twiml = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// messagingWebhook: 413 over max bytes, 401 when forged, 200 for every
// authentic body (applied, replayed, ignored), 5xx when a receiver failed
// (the provider delivers it again). Twilio's inbound route answers TwiML.
func (s *server) messagingWebhook(max int, header string, handle func(ctx context.Context, body []byte, sig string) (inbox.Outcome, error), asTwiML bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		body := c.Body()
		if len(body) > max {
			return inbox.ErrTooLarge
		}
		out, err := handle(c.UserContext(), body, c.Get(header))
		if err != nil {
			return err
		}
		if asTwiML {
			c.Set(fiber.HeaderContentType, fiber.MIMETextXMLCharsetUTF8)
			return c.SendString(twiml)
		}
		return c.JSON(fiber.Map{"outcome": string(out)})
	}
}
