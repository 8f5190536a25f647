package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/bot"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/botjs"
)

// The WhatsApp bot (docs/bot.md): the messaging webhooks hand inbound
// WhatsApp messages to the bot's inbox (a JetStream work stream, see
// cluster/botjs) and acknowledge at once; the inbox's consumer gives each
// message, one phone's in order, to the bot, which answers through the
// WhatsApp sender and books through the same booking service as the API.
// Without SPA_GEMINI_API_KEY the bot runs its deterministic dialogue.

// botNode is the running bot: the inbox the webhooks publish to and its
// consumer.
type botNode struct {
	inbox    *botjs.Inbox
	consumer *botjs.Consumer
	service  *bot.Service
	convs    conversations
}

// conversations hands one message to the bot with its phone's memory,
// one message of a phone at a time.
type conversations interface {
	Converse(ctx context.Context, in bot.Inbound) error
}

// botSender is what the bot answers through: the Cloud API client, or in
// dev mode without one the node's log sink (buttons written as text).
func (n *node) botSender(cfg config) bot.Sender {
	if set := n.identity.providers; set != nil && set.WhatsApp != nil {
		return set.WhatsApp
	}
	if cfg.Mode == modeDev && n.identity.sender != nil {
		return logWhatsApp{out: n.identity.sender}
	}
	return nil
}

// startBot starts the bot over book (the booking service's dependencies)
// and the sign-in node (clients by phone, the phone's blind index).
func (n *node) startBot(ctx context.Context, cfg config, js jetstream.JetStream, reg prometheus.Registerer,
	book booking.Deps, idn *identity.Node) error {
	out := n.botSender(cfg)
	if out == nil {
		n.log.Warn("WhatsApp bot off: no WhatsApp Cloud API client (SPA_WHATSAPP_*)")
		return nil
	}
	met, err := bot.NewMetrics(reg)
	if err != nil {
		return err
	}
	cat := catalogue.NewCache(n.store, 10*time.Second)
	book.Catalogue = cat
	blocks := legal.NewBlocklist(n.store, idn.Index, time.Minute, time.Now, n.log)
	clients := identity.New(identity.Deps{Store: n.store, Node: idn, Logger: n.log, Now: time.Now,
		PhoneBlocked: func(ctx context.Context, e164 string) (bool, error) { return blocks.IsBlocked(ctx, e164, "") }})
	deps := bot.Deps{Booking: booking.New(book), Catalogue: cat, Store: n.store, Clients: clients, Sender: out,
		Metrics: met, Log: n.log, Now: time.Now}
	gcfg, ok, err := gemini.FromEnv(cfg.getenv)
	switch {
	case err != nil:
		return err
	case ok:
		gm, err := gemini.NewMetrics(reg)
		if err != nil {
			return err
		}
		if deps.Model, err = gemini.New(gcfg, n.providerMetrics, gm); err != nil {
			return err
		}
	default:
		n.log.Info("WhatsApp bot: no " + gemini.EnvAPIKey + "; the deterministic dialogue answers")
	}
	svc, err := bot.New(deps)
	if err != nil {
		return err
	}
	b := &botNode{service: svc, convs: newLocalConversations(svc)}
	lane := func(from string) string { return phoneLane(idn.Index, from) }
	if b.inbox, err = botjs.Open(ctx, js, botjs.Config{Replicas: cfg.Cluster.replicas()}, n.keyring, lane); err != nil {
		return err
	}
	b.consumer, err = botjs.Consume(ctx, js, botjs.Config{Replicas: cfg.Cluster.replicas()}, n.keyring, b.handle, n.log)
	if err != nil {
		return err
	}
	n.bot = b
	return nil
}

// phoneLane is a phone's key in the inbox: its blind index in hex (the
// session actor's key), never the number.
func phoneLane(index *pii.BlindIndex, from string) string {
	e164 := from
	if num, err := phone.Parse(from); err == nil {
		e164 = num.E164
	}
	return session.Key(index.Sum(pii.FieldPhone, e164))
}

// handle gives one inbound message to the phone's conversation.
func (b *botNode) handle(ctx context.Context, m inbound.Message) error {
	return b.convs.Converse(ctx, bot.Inbound{ID: m.ID, Phone: m.From, Time: m.Time, Text: m.Text, Payload: m.Payload})
}

// stop stops the consumer (what it did not answer stays in the stream).
func (b *botNode) stop() {
	if b != nil {
		b.consumer.Stop()
	}
}

// localConversations keeps memories in this process, one phone at a time.
type localConversations struct {
	svc   *bot.Service
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	mems  map[string]bot.Memory
}

func newLocalConversations(svc *bot.Service) *localConversations {
	return &localConversations{svc: svc, locks: map[string]*sync.Mutex{}, mems: map[string]bot.Memory{}}
}

func (l *localConversations) Converse(ctx context.Context, in bot.Inbound) error {
	l.mu.Lock()
	lk := l.locks[in.Phone]
	if lk == nil {
		lk = &sync.Mutex{}
		l.locks[in.Phone] = lk
	}
	l.mu.Unlock()
	lk.Lock()
	defer lk.Unlock()
	l.mu.Lock()
	mem := l.mems[in.Phone]
	l.mu.Unlock()
	next, err := l.svc.Handle(ctx, in, mem)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.mems[in.Phone] = next
	l.mu.Unlock()
	return nil
}

// logWhatsApp is the dev bot's sender: the node's log sink, reply buttons
// written after the text.
type logWhatsApp struct{ out sender.Sender }

func (l logWhatsApp) SendText(ctx context.Context, to, body string) (string, error) {
	return "", l.out.Send(ctx, sender.Message{To: to, Body: body, Channel: sender.ChannelWhatsApp, Purpose: "bot"})
}

func (l logWhatsApp) SendButtons(ctx context.Context, to, body string, bs []whatsapp.Button) (string, error) {
	titles := make([]string, len(bs))
	for i, b := range bs {
		titles[i] = fmt.Sprintf("[%s]", b.Title)
	}
	return l.SendText(ctx, to, body+"\n"+strings.Join(titles, " "))
}
