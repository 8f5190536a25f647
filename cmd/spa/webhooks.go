package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/service/inbox"
)

// The messaging webhooks (docs/notifications.md, Webhooks): the inbox
// service verifies what WhatsApp and Twilio post and hands it to the
// receivers composed here. Inbound messages go to the bot's durable inbox,
// then to the notification service, which opens the customer-service
// window in the transaction that marks the body applied, as it applies
// the delivery statuses.

// startInbox builds the inbox service with the providers' webhook secrets
// (none configured: every webhook is refused as forged).
func (n *node) startInbox(reg prometheus.Registerer) (*inbox.Service, error) {
	met, err := inbox.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	d := inbox.Deps{Store: n.store, Sealer: n.keyring, Metrics: met, Log: n.log}
	if n.bot != nil {
		d.Messages = n.bot.inbox // the bot's durable inbox (bot.go); its limits are asked before each turn
	}
	if n.notifications != nil && n.notifications.svc != nil {
		// Opens the 24-hour window (delivery.go) in the transaction that
		// marks the body applied, and takes the delivery statuses there.
		d.MessagesInTx, d.Statuses = n.notifications.svc, n.notifications.svc
	}
	if set := n.identity.providers; set != nil {
		d.WhatsApp = inbox.WhatsAppConfig{AppSecret: set.WhatsAppWebhook.AppSecret, VerifyToken: set.WhatsAppWebhook.VerifyToken}
		d.Twilio = inbox.TwilioConfig{AuthToken: set.TwilioWebhook.AuthToken,
			StatusURL: set.TwilioWebhook.StatusCallbackURL(), InboundURL: set.TwilioWebhook.InboundURL()}
	}
	return inbox.New(d), nil
}
