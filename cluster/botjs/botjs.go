// Package botjs is the WhatsApp bot's durable inbox on JetStream
// (docs/bot.md): the messaging webhooks publish each inbound message to
// the work stream SPA_BOT_INBOX and acknowledge the provider at once; a
// consumer hands the messages to the bot, one phone's in the order they
// arrived. A message leaves the stream only when the bot answered it, so a
// node killed after the webhook's ack still answers it (the next consumer
// gets it again).
//
// Subjects are spa.bot.inbox.<lane key>, the lane key a hash of the
// sender's number (its blind index): neither subjects nor logs hold the
// number. Bodies hold the number and what the client wrote, so they are
// sealed with the node's keyring like every other personal datum at rest.
// The provider's message id is the Nats-Msg-Id: a webhook delivered twice
// (Meta redelivers, a node crashed between the publish and the webhook's
// answer) publishes the message once within the duplicate window.
package botjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/cluster/jsretry"
)

// The stream and its consumer.
const (
	Stream        = "SPA_BOT_INBOX"
	SubjectPrefix = "spa.bot.inbox."
	Durable       = "bot"
	// group is the consumer's priority group: with the pinned-client
	// policy one subscriber (one node) at a time receives the messages,
	// so two messages of one phone are never handled on two nodes at
	// once; when it dies another is pinned after PinnedTTL.
	group = "bot"
	// DuplicateWindow is how long a provider message id is remembered.
	// Longer redeliveries are caught by the inbox (the body's hash in the
	// provider event log) and by the conversation's memory of ids seen.
	DuplicateWindow = time.Hour
	// sealScope names what the keyring seals.
	sealScope = "bot_inbox"
	// idHeader carries the message id (the key the body is sealed under).
	idHeader = "Spa-Bot-Msg"
)

// Config tunes the consumer; zero fields take defaults.
type Config struct {
	// Replicas of the stream (the cluster's; 1 alone).
	Replicas int
	// Lanes handle messages concurrently, a phone always on the same lane
	// (32).
	Lanes int
	// AckWait is how long a message may be in hand before JetStream
	// gives it to another subscriber (2m; a lane in progress renews it).
	AckWait time.Duration
	// PinnedTTL is how long a silent pinned subscriber keeps the pin
	// (15s): the pause before another node takes over after a crash.
	PinnedTTL time.Duration
	// Tries is how many times a lane tries a message in place before it
	// lets it go back to the stream, out of order (5); Backoff the first
	// wait between tries (1s, doubled each time).
	Tries   int
	Backoff time.Duration
	// MaxDeliver bounds how often the stream offers a message (20): a
	// message the bot cannot answer at all is dropped (and logged) then.
	MaxDeliver int
}

func (c Config) withDefaults() Config {
	if c.Replicas < 1 {
		c.Replicas = 1
	}
	if c.Lanes <= 0 {
		c.Lanes = 32
	}
	if c.AckWait <= 0 {
		c.AckWait = 2 * time.Minute
	}
	if c.PinnedTTL <= 0 {
		c.PinnedTTL = 15 * time.Second
	}
	if c.Tries <= 0 {
		c.Tries = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 20
	}
	return c
}

// Inbox publishes inbound messages to the stream: the inbound.Receiver the
// messaging webhooks hand messages to.
type Inbox struct {
	js     jetstream.JetStream
	sealer keyed.Sealer
	lane   func(from string) string
}

var _ inbound.Receiver = (*Inbox)(nil)

// Open creates (or updates) the stream and returns its publisher. lane
// maps a sender's number to its lane key (a blind index in hex: subject
// tokens must not hold the number, nor dots); sealer seals the bodies
// (nil: stored as they are, tests only).
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, sealer keyed.Sealer, lane func(from string) string) (*Inbox, error) {
	cfg = cfg.withDefaults()
	_, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        Stream,
			Description: "Inbound WhatsApp messages waiting for the bot",
			Subjects:    []string{SubjectPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy, // gone once answered
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  DuplicateWindow,
			// A conversation older than a day is out of the 24-hour window:
			// answering it would need a template, and the moment is gone.
			MaxAge: 24 * time.Hour,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("botjs: stream: %w", err)
	}
	return &Inbox{js: js, sealer: sealer, lane: lane}, nil
}

// msgID is a message's id in the stream: provider and provider id.
func msgID(m inbound.Message) string { return m.Provider + "/" + m.ID }

// Receive publishes msgs, each once JetStream stored it; an error makes the
// webhook answer 5xx so the provider delivers again. Only WhatsApp
// messages are the bot's (an SMS cannot carry its buttons).
func (b *Inbox) Receive(ctx context.Context, msgs []inbound.Message) error {
	for _, m := range msgs {
		if m.Channel != "whatsapp" || m.ID == "" || m.From == "" {
			continue
		}
		body, err := json.Marshal(m)
		if err != nil {
			return err
		}
		id := msgID(m)
		if body, err = keyed.Seal(b.sealer, sealScope, id, body); err != nil {
			return fmt.Errorf("botjs: seal: %w", err)
		}
		nm := nats.NewMsg(SubjectPrefix + b.lane(m.From))
		nm.Data = body
		nm.Header.Set(jetstream.MsgIDHeader, id)
		nm.Header.Set(idHeader, id)
		if _, err := b.js.PublishMsg(ctx, nm); err != nil {
			return fmt.Errorf("botjs: publish: %w", err)
		}
	}
	return nil
}

// Handler answers one message; an error means try again later.
type Handler func(ctx context.Context, m inbound.Message) error

// Consumer hands the stream's messages to a Handler.
type Consumer struct {
	js     jetstream.JetStream
	cfg    Config
	handle Handler
	sealer keyed.Sealer
	log    *slog.Logger
	cc     jetstream.ConsumeContext
	lanes  []chan jetstream.Msg
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Consume starts the durable consumer; Stop ends it. The stream must
// exist (Open).
func Consume(ctx context.Context, js jetstream.JetStream, cfg Config, sealer keyed.Sealer, handle Handler, log *slog.Logger) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cons, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
			Durable:        Durable,
			Description:    "The WhatsApp bot: every inbound message, answered once",
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        cfg.AckWait,
			MaxDeliver:     cfg.MaxDeliver,
			MaxAckPending:  cfg.Lanes * 16,
			Replicas:       cfg.Replicas,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{group},
			PinnedTTL:      cfg.PinnedTTL,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("botjs: consumer: %w", err)
	}
	c := &Consumer{js: js, cfg: cfg, handle: handle, sealer: sealer, log: log, lanes: make([]chan jetstream.Msg, cfg.Lanes)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range c.lanes {
		c.lanes[i] = make(chan jetstream.Msg, 16)
		c.wg.Add(1)
		go c.run(c.lanes[i])
	}
	c.cc, err = cons.Consume(c.dispatch, jetstream.PullPriorityGroup(group),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrPinIDMismatch) {
				log.Debug("bot inbox: consume", "err", err)
			}
		}))
	if err != nil {
		c.cancel()
		c.wg.Wait()
		return nil, fmt.Errorf("botjs: consume: %w", err)
	}
	return c, nil
}

// dispatch puts a message on its phone's lane (blocking while the lane is
// full: back-pressure on the pull).
func (c *Consumer) dispatch(m jetstream.Msg) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.TrimPrefix(m.Subject(), SubjectPrefix)))
	select {
	case c.lanes[h.Sum32()%uint32(len(c.lanes))] <- m:
	case <-c.ctx.Done(): // stopping: JetStream redelivers it
	}
}

// run handles one lane's messages in order.
func (c *Consumer) run(lane chan jetstream.Msg) {
	defer c.wg.Done()
	for {
		select {
		case m := <-lane:
			if c.ctx.Err() == nil {
				c.one(m)
			}
		case <-c.ctx.Done():
			return // what is queued stays unacknowledged: redelivered
		}
	}
}

// one handles a message: tried in place (so the phone's next message
// waits for it), then given back to the stream.
func (c *Consumer) one(m jetstream.Msg) {
	in, err := c.decode(m)
	if err != nil {
		c.log.Warn("bot inbox: undecodable message dropped", "err", err)
		_ = m.Term()
		return
	}
	wait := c.cfg.Backoff
	for try := 1; ; try++ {
		err = c.handle(c.ctx, in)
		if err == nil {
			if err := m.DoubleAck(c.ctx); err != nil && c.ctx.Err() == nil {
				c.log.Warn("bot inbox: ack failed; the message may be answered again", "err", err)
			}
			return
		}
		if c.ctx.Err() != nil {
			return // stopping: redelivered to whoever is pinned next
		}
		meta, _ := m.Metadata()
		if try >= c.cfg.Tries {
			if meta != nil && int(meta.NumDelivered) >= c.cfg.MaxDeliver {
				c.log.Error("bot inbox: message not answered after every delivery; dropped", "err", err)
				_ = m.Term()
				return
			}
			c.log.Warn("bot inbox: message not answered; back to the stream", "err", err, "tries", try)
			_ = m.NakWithDelay(c.cfg.AckWait / 4)
			return
		}
		_ = m.InProgress()
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
			return
		}
		wait *= 2
	}
}

func (c *Consumer) decode(m jetstream.Msg) (inbound.Message, error) {
	var in inbound.Message
	body, err := keyed.Open(c.sealer, sealScope, m.Headers().Get(idHeader), m.Data())
	if err != nil {
		return in, err
	}
	err = json.Unmarshal(body, &in)
	return in, err
}

// Stop stops taking messages and waits for the ones in hand; what was not
// answered stays in the stream.
func (c *Consumer) Stop() {
	if c == nil {
		return
	}
	c.cc.Stop()
	c.cancel()
	c.wg.Wait()
	// Give the pin up, so another subscriber (the next node, this node
	// restarted) takes over now rather than after PinnedTTL.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := c.js.Stream(ctx, Stream); err == nil {
		_ = st.UnpinConsumer(ctx, Durable, group)
	}
}
