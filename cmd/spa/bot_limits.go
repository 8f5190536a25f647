package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/bot"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/persistence"
)

// The bot's abuse and cost limits (docs/bot.md, Limits; issue 18 item 6,
// in part): per phone, a velocity limit on text messages and a daily cap
// on every message, and global caps over all phones (the bound on what the
// model can cost). They are quota actors like the login-code limits:
// cluster-wide, persisted, so a restart forgets nothing.
//
// They are asked by the inbox's consumer, before the message's turn, not
// by the webhook: each is a quota actor's store write (per phone and per
// global shard), four in a row, which kept the provider waiting and, under
// a burst, past the gateway's timeout (make bench, WhatsApp bot). A
// message over a limit is dropped there without an answer (counted in
// spa_bot_blocked_total{reason}); a limiter that cannot answer fails the
// turn, which is tried again (fail closed, nothing answered meanwhile).
// A turn tried again is counted again: the caps can only be stricter.
var (
	botVelocity       = limiter.Window{Limit: 10, Per: time.Minute}
	botVelocityGlobal = limiter.Window{Limit: 20_000, Per: time.Minute}
	botDaily          = limiter.Window{Limit: 200, Per: 24 * time.Hour}
	botDailyGlobal    = limiter.Window{Limit: 200_000, Per: 24 * time.Hour}
)

// botGate admits inbound messages to the bot within the limits.
type botGate struct {
	velocity, daily *quota.Limiter
	index           *pii.BlindIndex
	metrics         *bot.Metrics
}

func newBotGate(q *quota.Client, index *pii.BlindIndex, met *bot.Metrics, reg prometheus.Registerer) (*botGate, error) {
	g := &botGate{index: index, metrics: met}
	var err error
	if g.velocity, err = quota.NewLimiter(q, quota.LimiterConfig{Name: "bot-velocity", PerKey: botVelocity, Global: botVelocityGlobal}, reg); err != nil {
		return nil, err
	}
	g.daily, err = quota.NewLimiter(q, quota.LimiterConfig{Name: "bot-daily", PerKey: botDaily, Global: botDailyGlobal}, reg)
	return g, err
}

// Admit says whether m is within the limits. A button tap is not held to
// the velocity limit (it answers the bot's own proposal), only to the
// daily cap.
func (g *botGate) Admit(ctx context.Context, m inbound.Message) (bool, error) {
	key := phoneLane(g.index, m.From)
	if m.Payload == "" {
		if ok, err := g.admit(ctx, g.velocity, key, "velocity"); !ok || err != nil {
			return false, err
		}
	}
	return g.admit(ctx, g.daily, key, "daily_cap")
}

func (g *botGate) admit(ctx context.Context, l *quota.Limiter, key, reason string) (bool, error) {
	err := l.Allow(ctx, key)
	var limited *limiter.LimitedError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &limited):
		g.metrics.Blocked(reason)
		return false, nil
	}
	return false, err
}

// Strikes: every message the injection screen refuses is a strike against
// the number, counted in a quota window that decays (3 a day); the strike
// past it blocks the number for a week through the blocklist (audited as
// the admin action it is, by "bot"), after which its messages are handled
// without an answer.
var (
	botStrikes       = limiter.Window{Limit: 3, Per: 24 * time.Hour}
	botStrikesGlobal = limiter.Window{Limit: 1_000_000, Per: 24 * time.Hour}
	botAutoBlock     = 7 * 24 * time.Hour
)

// botStrikes is the bot's Strikes.
type botStrikesCounter struct {
	limiter *quota.Limiter
	legal   *legal.Service
	blocks  *legal.Blocklist
	index   *pii.BlindIndex
	store   persistence.Store
	log     *slog.Logger
}

func newBotStrikes(q *quota.Client, store persistence.Store, blocks *legal.Blocklist, index *pii.BlindIndex,
	log *slog.Logger, reg prometheus.Registerer) (*botStrikesCounter, error) {
	l, err := quota.NewLimiter(q, quota.LimiterConfig{Name: "bot-strikes", PerKey: botStrikes, Global: botStrikesGlobal}, reg)
	if err != nil {
		return nil, err
	}
	return &botStrikesCounter{limiter: l, blocks: blocks, index: index, store: store, log: log,
		legal: legal.New(legal.Deps{Store: store, Blocklist: blocks, Logger: log})}, nil
}

// Strike counts one strike and blocks the number past the limit.
func (s *botStrikesCounter) Strike(ctx context.Context, e164 string) error {
	err := s.limiter.Allow(ctx, phoneLane(s.index, e164))
	var limited *limiter.LimitedError
	if !errors.As(err, &limited) {
		return err
	}
	until := time.Now().Add(botAutoBlock)
	by := service.Caller{Claims: auth.Claims{Subject: "bot", Role: auth.RoleAdmin}, RequestID: "bot-strikes"}
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		_, err := s.legal.AddBlock(ctx, tx, by, legal.BlockInput{Kind: string(persistence.BlockPhone), Value: e164,
			Reason: "WhatsApp bot: repeated prompt-injection attempts", ExpiresAt: &until})
		return err
	})
	if err != nil {
		return fmt.Errorf("bot: automatic block: %w", err)
	}
	s.blocks.Invalidate()
	s.log.Warn("bot: number blocked after repeated injection attempts", "until", until)
	return nil
}

// The model's cost caps (issue 18 item 6, unbounded consumption): a
// phone's tokens a day, and the studio's spend a day over all phones, in
// US micro-dollars at the model's list price (integers: no float money).
// They are quota windows like the limits above, so a restart or another
// node forgets nothing. A turn may call the model while both of the day's
// counts are under their caps (Allow takes one unit of each); a call's
// usage is added after it with no limit (Spend), so a count passes its cap
// by at most one turn's calls, and the next turn is refused: the
// deterministic dialogue answers it, counted in
// spa_bot_model_budget_refusals_total{cap}.
var (
	botTokensPerPhone = limiter.Window{Limit: 100_000, Per: 24 * time.Hour}
	botSpendGlobal    = limiter.Window{Limit: 20_000_000, Per: 24 * time.Hour} // $20 a day
	// botSpendShards split the global spend over quota actors (a phone's
	// spend goes to one shard, by its key), so the model's calls are not
	// all written by one actor; a full shard refuses its phones while
	// others may have room (the cap can only be stricter).
	botSpendShards = 8
	// List prices of gemini-2.5-flash, micro-dollars per million tokens;
	// thinking is billed as output.
	botPriceInput  int64 = 300_000
	botPriceOutput int64 = 2_500_000
)

// noCap is the limit of a Take that records usage: always granted.
const noCap = int64(1) << 60

// botBudget is the bot's Budget over quota actors.
type botBudget struct {
	quota *quota.Client
	index *pii.BlindIndex
}

func (b *botBudget) keys(phone string) (perPhone, shard string) {
	key := phoneLane(b.index, phone)
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return quota.KeyOf("bot-tokens", key), quota.ShardKey("bot-spend", int(h.Sum32()%uint32(botSpendShards)))
}

// Allow takes one unit under each cap.
func (b *botBudget) Allow(ctx context.Context, phone string) (string, error) {
	perPhone, shard := b.keys(phone)
	r := b.quota.Take(ctx, perPhone, &quota.Take{Units: 1, Limit: int64(botTokensPerPhone.Limit), TTL: botTokensPerPhone.Per})
	switch {
	case r.Err != nil:
		return "", r.Err
	case !r.OK:
		return "phone_tokens", nil
	}
	share := int64(botSpendGlobal.Limit / botSpendShards)
	r = b.quota.Take(ctx, shard, &quota.Take{Units: 1, Limit: share, TTL: botSpendGlobal.Per})
	switch {
	case r.Err != nil:
		return "", r.Err
	case !r.OK:
		return "global_spend", nil
	}
	return "", nil
}

// Spend adds a call's tokens to the phone's day and its price to the
// studio's.
func (b *botBudget) Spend(ctx context.Context, phone string, u gemini.UsageMetadata) error {
	perPhone, shard := b.keys(phone)
	in, out := int64(u.PromptTokenCount), int64(u.CandidatesTokenCount+u.ThoughtsTokenCount)
	if r := b.quota.Take(ctx, perPhone, &quota.Take{Units: in + out, Limit: noCap, TTL: botTokensPerPhone.Per}); r.Err != nil {
		return r.Err
	}
	micros := (in*botPriceInput + out*botPriceOutput + 999_999) / 1_000_000 // rounded up
	if r := b.quota.Take(ctx, shard, &quota.Take{Units: micros, Limit: noCap, TTL: botSpendGlobal.Per}); r.Err != nil {
		return r.Err
	}
	return nil
}
