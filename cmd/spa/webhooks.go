package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/service/inbox"
)

// The messaging webhooks (docs/notifications.md, Webhooks): the inbox
// service verifies what WhatsApp and Twilio post and hands it to the
// receivers composed here. Inbound messages go to every receiver of the
// Fanout (the notification service, which opens the customer-service
// window; the bot); delivery statuses go to the notification service.

// startInbox builds the inbox service with the providers' webhook secrets
// (none configured: every webhook is refused as forged).
func (n *node) startInbox(reg prometheus.Registerer) (*inbox.Service, error) {
	met, err := inbox.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	d := inbox.Deps{Store: n.store, Sealer: n.keyring, Metrics: met, Log: n.log, Messages: n.inboundReceivers()}
	if st := n.statusReceiver(); st != nil {
		d.Statuses = st
	}
	if set := n.identity.providers; set != nil {
		d.WhatsApp = inbox.WhatsAppConfig{AppSecret: set.WhatsAppWebhook.AppSecret, VerifyToken: set.WhatsAppWebhook.VerifyToken}
		d.Twilio = inbox.TwilioConfig{AuthToken: set.TwilioWebhook.AuthToken,
			StatusURL: set.TwilioWebhook.StatusCallbackURL(), InboundURL: set.TwilioWebhook.InboundURL()}
	}
	return inbox.New(d), nil
}

// inboundReceivers are the receivers of the messages clients send us.
func (n *node) inboundReceivers() inbound.Fanout {
	var f inbound.Fanout
	if n.bot != nil {
		f = append(f, n.bot.inbox) // the bot's durable inbox (bot.go); its limits are asked before each turn
	}
	if n.notifications != nil && n.notifications.svc != nil {
		f = append(f, n.notifications.svc) // opens the 24-hour window (delivery.go)
	}
	return f
}

// statusReceiver takes delivery statuses (nil: none): the notification
// service, which applies them in the transaction that marks their body
// applied (inbox.TxStatusReceiver).
func (n *node) statusReceiver() inbound.StatusReceiver {
	if n.notifications == nil || n.notifications.svc == nil {
		return nil
	}
	return n.notifications.svc
}
