package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// OTP send limits of the cluster (of the node when it runs alone): per
// client IP, and in total (split over the global limiter's shards, each a
// placed quota actor). They are persisted, so a restart forgets nothing.
// The per-number limits live in otp.Policy.
var (
	otpPerIP  = limiter.Window{Limit: 20, Per: time.Hour}
	otpGlobal = limiter.Window{Limit: 2000, Per: time.Hour}
	// Code checks: enough for every sign-in from a shared office IP, far
	// too few to spread guesses over many numbers.
	verifyPerIP  = limiter.Window{Limit: 100, Per: time.Hour}
	verifyGlobal = limiter.Window{Limit: 20000, Per: time.Hour}
)

// accessTTL is the lifetime of an access token minted at sign-in.
const accessTTL = 15 * time.Minute

// identityNode is what sign-in runs on: the session actors, the OTP
// limiter and the follower of revocations.
type identityNode struct {
	sessions    *session.Directory
	limiter     *quota.Limiter
	verify      *quota.Limiter
	revocations jetstream.ConsumeContext
	// sender delivers the notifications (notifications.go) and the bot's
	// answers.
	sender sender.Sender
	// codes delivers login codes: through the notification service's
	// channel rules once it starts (notify.LoginCodes), sender until then.
	codes *notify.LoginCodes
	// providers are the configured provider clients and webhook secrets
	// (the messaging webhooks, webhooks.go).
	providers *providers.Set
	// bot answers the phones' WhatsApp conversations in their session
	// actors, once it starts (bot.go).
	bot lateBot
}

// identityKeys are the secrets of sign-in, each derived from the token
// secret (HKDF-SHA256 with a distinct label), so a node needs no new
// configuration and no key serves two purposes.
type identityKeys struct {
	otp, index, phone []byte
}

func deriveIdentityKeys(tokenSecret []byte) (identityKeys, error) {
	derive := func(label string, n int) ([]byte, error) {
		return hkdf.Key(sha256.New, tokenSecret, nil, "spa identity "+label+" v1", n)
	}
	var k identityKeys
	var err error
	if k.otp, err = derive("otp code hmac", otp.MinKeyLen); err != nil {
		return k, err
	}
	if k.index, err = derive("phone blind index", pii.MinIndexKeyLen); err != nil {
		return k, err
	}
	k.phone, err = derive("phone encryption", pii.KeyLen)
	return k, err
}

// sealingKeyring is the node's keyring for data at rest: profiles,
// phones, and answers stored for Idempotency-Key replays.
func sealingKeyring(cfg config) (*pii.Keyring, error) {
	keys, err := deriveIdentityKeys(cfg.TokenSecret)
	if err != nil {
		return nil, fmt.Errorf("identity keys: %w", err)
	}
	return piiKeyring(cfg, keys.phone) // SPA_PII_KEYS (piikeys.go)
}

// startIdentity starts the session actors, the limiters and the revocation
// follower, and returns what the gateway needs. tokens gets the node's
// revoked-session set.
func (n *node) startIdentity(ctx context.Context, cfg config, js jetstream.JetStream, reg prometheus.Registerer, tokens *auth.Tokens) (*identity.Node, error) {
	n.identity = &identityNode{}
	keys, err := deriveIdentityKeys(cfg.TokenSecret)
	if err != nil {
		return nil, fmt.Errorf("identity keys: %w", err)
	}
	hasher, err := otp.NewHasher(keys.otp)
	if err != nil {
		return nil, err
	}
	index, err := pii.NewBlindIndex(keys.index)
	if err != nil {
		return nil, err
	}
	keyring := n.keyring // SPA_PII_KEYS (piikeys.go), made before the actors
	// Providers read their own SPA_TWILIO_* / SPA_WHATSAPP_* /
	// SPA_RECAPTCHA_* variables (docs/providers.md).
	set, err := providers.FromEnv(providers.Options{Getenv: cfg.getenv, Registerer: reg, Logger: n.log, Dev: cfg.Mode == modeDev})
	if set != nil {
		n.providerMetrics = set.Metrics // shared with the payment client (payments.go)
		n.identity.sender = set.Sender
		n.identity.providers = set
	}
	switch {
	case errors.Is(err, providers.ErrNoSMSProvider):
		n.log.Warn("no SMS provider configured: sign-in codes cannot be sent (503) until one is", "error", err)
	case err != nil:
		return nil, err
	case cfg.Mode == modeDev:
		n.log.Warn("dev mode: channels without a provider write login codes to this log (sender.LogSink)")
	}
	n.identity.codes = notify.NewLoginCodes(set.Sender)
	met, err := session.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	n.identity.sessions, err = session.NewDirectory(n.actors.Root(), session.Deps{
		Store: n.store, Hasher: hasher, Sender: n.identity.codes, Now: time.Now, Log: n.log, Metrics: met,
		Bot: &n.identity.bot, Sealer: keyring, // the conversation is sealed like profiles
	}, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	// The limits are quota actors placed like the session actors (the
	// cluster's quota router, or this node's directory alone): they hold
	// for the cluster, not per node, and survive restarts.
	q := n.quotaClient()
	n.identity.limiter, err = quota.NewLimiter(q, quota.LimiterConfig{Name: "otp", PerKey: otpPerIP, Global: otpGlobal}, reg)
	if err != nil {
		return nil, err
	}
	n.identity.verify, err = quota.NewLimiter(q, quota.LimiterConfig{Name: "otp-verify", PerKey: verifyPerIP, Global: verifyGlobal}, reg)
	if err != nil {
		return nil, err
	}

	revoked := auth.NewRevokedSessions(accessTTL, time.Now)
	tokens.SetRevocations(revoked)
	// Sessions revoked while this node was down may still have unexpired
	// access tokens; revocations published from now on arrive by NATS.
	if err := loadRecentRevocations(ctx, n.store, revoked); err != nil {
		return nil, err
	}
	n.identity.revocations, err = followRevocations(ctx, js, n.log, func(ev *messages.SessionsRevoked) {
		var at time.Time // zero: now
		if ev.RevokedAt != nil {
			at = ev.RevokedAt.AsTime()
		}
		revoked.Add(at, ev.SessionIds...)
		for _, sid := range ev.SessionIds {
			tokens.ForgetSession(sid)
		}
	})
	if err != nil {
		return nil, err
	}
	// Alone, the node's session directory; in a cluster, the phone key's
	// owner through the session router, which serves forwarded requests
	// from now on.
	var sessions identity.Sessions = n.identity.sessions
	if cfg.Cluster.enabled() && n.cluster != nil && n.cluster.sessions != nil {
		n.cluster.sessionLocal.Set(n.identity.sessions)
		sessions = session.NewClient(n.cluster.sessions)
	}
	return &identity.Node{Sessions: sessions, Limiter: n.identity.limiter, VerifyLimiter: n.identity.verify,
		Index: index, Keyring: keyring, Revoked: revoked, AccessTTL: accessTTL,
		Recaptcha: set.Recaptcha, // checks otp_request when SPA_RECAPTCHA_CONTEXTS lists it
	}, nil
}

// stop stops the follower and the actors; safe on a half-started node.
func (id *identityNode) stop(timeout time.Duration) {
	if id == nil {
		return
	}
	if id.revocations != nil {
		id.revocations.Stop()
	}
	if id.sessions != nil {
		id.sessions.Stop(timeout)
	}
}

func loadRecentRevocations(ctx context.Context, st persistence.Store, revoked *auth.RevokedSessions) error {
	now := time.Now()
	since := now.Add(-accessTTL - auth.Leeway)
	var ids []string
	err := st.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		ids, err = tx.SessionListRevokedSince(ctx, since, 100_000)
		return err
	})
	if err != nil {
		return fmt.Errorf("load revoked sessions: %w", err)
	}
	// Kept as if revoked now: a little longer than needed, never shorter.
	revoked.Add(now, ids...)
	return nil
}

// followRevocations calls fn for every SessionsRevoked event published from
// now on.
func followRevocations(ctx context.Context, js jetstream.JetStream, log *slog.Logger, fn func(*messages.SessionsRevoked)) (jetstream.ConsumeContext, error) {
	if js == nil {
		return nil, errors.New("follow revocations: no JetStream")
	}
	cons, err := js.OrderedConsumer(ctx, outbox.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{messages.Subject(&messages.SessionsRevoked{})},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow revocations: %w", err)
	}
	return cons.Consume(func(msg jetstream.Msg) {
		var ev messages.Event
		var sr messages.SessionsRevoked
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil || ev.Payload.UnmarshalTo(&sr) != nil {
			log.Warn("undecodable revocation event", "subject", msg.Subject())
			return
		}
		fn(&sr)
	})
}

// proxyHeader is the header the client address is read from:
// X-Forwarded-For when load balancers are trusted, none otherwise.
func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return "X-Forwarded-For"
}
