package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
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
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/botjs"
	"github.com/spa-engine/spa/persistence"
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
	inbox *botjs.Inbox
	// gate admits messages to the bot within the limits (bot_limits.go),
	// before their turn.
	gate     *botGate
	consumer *botjs.Consumer
	service  *bot.Service
	// sessions reach the phones' session actors (this node's directory,
	// or the cluster's session router), which hold the conversations.
	sessions *session.Client
	index    *pii.BlindIndex
	// desk is the staff hand-off use case (the gateway's conversations).
	desk *bot.Desk
}

// turnTimeout bounds one message's turn, model and sends included.
const turnTimeout = 2 * time.Minute

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
	if deps.Strikes, err = newBotStrikes(n.quotaClient(), n.store, blocks, idn.Index, n.log, reg); err != nil {
		return err
	}
	deps.Budget = &botBudget{quota: n.quotaClient(), index: idn.Index}
	if set := n.identity.providers; set != nil && set.WhatsApp != nil {
		deps.StaffTemplate = staffTemplate(cfg.NotifyWhatsAppTemplates, set.WhatsApp)
	}
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
	n.identity.bot.b.Store(&bot.Session{S: svc})
	b := &botNode{service: svc, sessions: n.sessionClient(cfg), index: idn.Index}
	b.desk = bot.NewDesk(bot.DeskDeps{Store: n.store, Sessions: b.sessions, Sealer: n.keyring, Now: time.Now})
	lane := func(from string) string { return phoneLane(idn.Index, from) }
	if b.inbox, err = botjs.Open(ctx, js, botjs.Config{Replicas: cfg.Cluster.replicas()}, n.keyring, lane); err != nil {
		return err
	}
	if b.gate, err = newBotGate(n.quotaClient(), idn.Index, met, reg); err != nil {
		return err
	}
	b.consumer, err = botjs.Consume(ctx, js, botjs.Config{Replicas: cfg.Cluster.replicas()}, n.keyring, b.handle, n.log)
	if err != nil {
		return err
	}
	n.bot = b
	return nil
}

// staffTemplate sends a person's reply after the client's 24-hour window
// as the staff_reply template of SPA_WHATSAPP_TEMPLATES, the text its one
// body parameter; nil without one (such a reply is refused with 409).
func staffTemplate(templates map[notify.Kind]notify.WhatsAppTemplate, wa sender.Tracker) func(ctx context.Context, to, text string) error {
	t, ok := templates[notify.KindStaffReply]
	if !ok {
		return nil
	}
	return func(ctx context.Context, to, text string) error {
		_, err := wa.SendTracked(ctx, sender.Message{To: to, Body: text, Channel: sender.ChannelWhatsApp, Purpose: "bot",
			Template: &sender.Template{Name: t.Name, Language: t.Language, Category: t.Category, Params: []string{text}, TTL: t.TTL}})
		return err
	}
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

// handle gives one inbound message to the phone's session actor, which
// answers it with the phone's conversation.
// A message over the limits is handled without an answer.
func (b *botNode) handle(ctx context.Context, m inbound.Message) error {
	ctx, cancel := context.WithTimeout(ctx, turnTimeout)
	defer cancel()
	if ok, err := b.gate.Admit(ctx, m); !ok || err != nil {
		return err
	}
	r := b.sessions.Converse(ctx, phoneLane(b.index, m.From), &session.Converse{Phone: m.From,
		Msg: session.Inbound{ID: m.ID, Time: m.Time, Text: m.Text, Payload: m.Payload}})
	return r.Err
}

// sessionClient is the door to the session actors: this node's directory
// alone, the phone key's owner in a cluster.
func (n *node) sessionClient(cfg config) *session.Client {
	if cfg.Cluster.enabled() && n.cluster != nil && n.cluster.sessions != nil {
		return session.NewClient(n.cluster.sessions)
	}
	return session.NewClient(n.identity.sessions)
}

// stop stops the consumer (what it did not answer stays in the stream).
func (b *botNode) stop() {
	if b != nil {
		b.consumer.Stop()
	}
}

// lateBot is the session actors' bot: they start (with sign-in) before
// the bot exists, and refuse conversations (session.ErrNoBot) until it
// is set.
type lateBot struct{ b atomic.Pointer[bot.Session] }

func (l *lateBot) Turn(ctx context.Context, phone string, in session.Inbound, mem []byte) ([]byte, session.ConversationView, error) {
	b := l.b.Load()
	if b == nil {
		return nil, session.ConversationView{}, session.ErrNoBot
	}
	return b.Turn(ctx, phone, in, mem)
}

func (l *lateBot) Staff(ctx context.Context, phone string, act session.StaffAct, mem []byte) ([]byte, session.ConversationView, error) {
	b := l.b.Load()
	if b == nil {
		return nil, session.ConversationView{}, session.ErrNoBot
	}
	return b.Staff(ctx, phone, act, mem)
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

// desk is the hand-off desk for the gateway (nil without a bot).
func (n *node) desk() *bot.Desk {
	if n.bot == nil {
		return nil
	}
	return n.bot.desk
}

// startBotSweep deletes conversations nobody wrote in for bot.IdleExpiry
// (those a person owns stay until handed back), and hands back to the bot
// the conversations a person left alone for bot.HandoffTimeout, every
// minute.
func (n *node) startBotSweep(ctx context.Context) {
	if n.bot == nil {
		return
	}
	n.every(ctx, time.Minute, "bot conversation sweep", func(ctx context.Context) error {
		return n.store.InTx(ctx, func(tx persistence.Tx) error {
			removed, err := tx.ConversationDeleteIdle(ctx, time.Now().Add(-bot.IdleExpiry), 1000)
			if removed > 0 {
				n.log.Info("idle bot conversations removed", "count", removed)
			}
			return err
		})
	})
	n.every(ctx, time.Minute, "bot hand-off timeout", func(ctx context.Context) error {
		back, err := n.bot.desk.ExpireIdle(ctx, bot.HandoffTimeout)
		if back > 0 {
			n.log.Info("conversations handed back to the bot after the hand-off timeout", "count", back)
		}
		return err
	})
}
