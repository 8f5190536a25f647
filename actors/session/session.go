// Package session holds the session actor: the single writer of one phone
// number's login-code state. It owns the otp.State (failures, lockout
// ladder, sends inside their window) and the outstanding otp.Challenge,
// asks package otp every question, and persists the result before it
// answers, so the limits hold across restarts and node moves: the old
// system kept these counters in Redis and let everyone through when Redis
// was down. Here a store that cannot be written means no code is sent
// (fail closed).
//
// Actors are keyed by the phone's blind index (never the number), hosted by
// a Directory that activates them on demand and passivates idle ones. A
// request carries the E.164 number itself, which the actor needs to hash a
// code and to address the message; it is never logged.
//
// The store write and the delivery happen inside Receive: they block only
// this phone's actor, and serialising one phone's requests is the point.
package session

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// Errors in replies. Rate limits and lockouts arrive as *otp.RetryError
// wrapping otp.ErrSendRateLimited or otp.ErrLockedOut.
var (
	// ErrUnavailable: the state could not be loaded or persisted, or the
	// node is shutting down. Nothing was sent.
	ErrUnavailable = errors.New("session: unavailable")
	// ErrDelivery: the code was issued and counted but the sender failed.
	ErrDelivery = errors.New("session: code delivery failed")
)

// RequestCode asks for a new login code to be sent to Phone (E.164).
type RequestCode struct {
	Phone   string
	Channel sender.Channel // empty: the sender's default
	// Network is the caller's source network (otp.NetworkOf) and Captcha
	// whether the caller passed a CAPTCHA (or none is configured): a phone
	// locked for that network gets no code, and one that needs a CAPTCHA
	// (otp.ErrCaptchaRequired) none without it.
	Network string
	Captcha bool
}

// RequestCodeReply answers RequestCode. Err nil means the code went out.
type RequestCodeReply struct {
	// ExpiresIn is the code's lifetime.
	ExpiresIn time.Duration
	Err       error
}

// VerifyCode checks Code against the outstanding challenge of Phone.
type VerifyCode struct {
	Phone string
	Code  string
	// Network and Captcha as in RequestCode: failures are counted per
	// phone and network (docs/identity.md).
	Network string
	Captcha bool
}

// VerifyReply answers VerifyCode. Result is meaningful when Err is nil;
// RetryAfter is set with ResultLocked (the lockout that applies to the
// caller's network).
type VerifyReply struct {
	Result     otp.Result
	RetryAfter time.Duration
	Err        error
}

// DefaultCodeTTL is how long a login code lives (Config.CodeTTL).
const DefaultCodeTTL = 5 * time.Minute

// Config tunes the session actors; zero fields take defaults.
type Config struct {
	Policy       otp.Policy          // DefaultPolicy
	CodeTTL      time.Duration       // DefaultCodeTTL; at most otp.MaxTTL
	IdleAfter    time.Duration       // passivate after this long without a message (5m)
	WriteTimeout time.Duration       // bound on one store transaction (5s)
	SendTimeout  time.Duration       // bound on one delivery (10s)
	TurnTimeout  time.Duration       // bound on one bot turn or staff action (90s)
	Body         func(string) string // the message text for a code
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Policy.MaxFailures == 0 {
		c.Policy = otp.DefaultPolicy()
	}
	def(&c.CodeTTL, DefaultCodeTTL)
	def(&c.IdleAfter, 5*time.Minute)
	def(&c.WriteTimeout, 5*time.Second)
	def(&c.SendTimeout, 10*time.Second)
	def(&c.TurnTimeout, 90*time.Second)
	if c.Body == nil {
		c.Body = func(code string) string { return "Your login code is " + code + ". It expires in a few minutes." }
	}
	return c
}

// Deps are what every session actor of a node shares.
type Deps struct {
	Store   persistence.Store
	Hasher  *otp.Hasher
	Sender  sender.Sender
	Rand    io.Reader // crypto/rand.Reader when nil
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	Config  Config
	// Bot answers the phone's WhatsApp messages (nil: Converse is
	// refused with ErrNoBot); Sealer seals the conversation at rest.
	Bot    Bot
	Sealer keyed.Sealer
}

func (d Deps) withDefaults() (Deps, error) {
	if d.Store == nil || d.Hasher == nil || d.Sender == nil || d.Metrics == nil {
		return d, errors.New("session: Store, Hasher, Sender and Metrics are required")
	}
	d.Config = d.Config.withDefaults()
	if err := d.Config.Policy.Validate(); err != nil {
		return d, err
	}
	if d.Config.CodeTTL > otp.MaxTTL {
		return d, otp.ErrInvalidTTL
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return d, nil
}

// stored is the persisted form of an actor's state.
type stored struct {
	State     otp.State     `json:"state"`
	Challenge otp.Challenge `json:"challenge"`
}

// sessionActor is one activation of a phone's state.
type sessionActor struct {
	deps     Deps
	key      string // blind index, hex
	version  int64
	st       stored
	loadErr  error
	stopping bool
	conv     conversation
	// active: this activation counts in spa_bot_conversations_active.
	active bool
}

func newActor(deps Deps, key string) actor.Producer {
	return func() actor.Actor { return &sessionActor{deps: deps, key: key} }
}

// Receive is the actor's one message switch, lifecycle first.
func (a *sessionActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.deps.Metrics.live.Inc()
		if a.loadErr = a.load(); a.loadErr != nil {
			// Refuse what is queued, then retire, so the next request
			// tries a fresh activation once the store is back.
			a.deps.Log.Warn("session: state did not load", "err", a.loadErr)
			directory.Retire(c, a.key)
		}
		c.SetReceiveTimeout(a.deps.Config.IdleAfter)
	case *actor.Stopped:
		a.deps.Metrics.live.Dec()
		if a.active {
			a.deps.Metrics.conversations.Dec()
		}
	case *actor.ReceiveTimeout:
		directory.Retire(c, a.key)
	case directory.Stop:
		a.stopping = true
		c.Stop(c.Self())
	case *RequestCode:
		if a.usable(c, m) {
			c.Respond(a.requestCode(m))
			a.retireIfStale(c)
		}
	case *VerifyCode:
		if a.usable(c, m) {
			c.Respond(a.verify(m))
			a.retireIfStale(c)
		}
	case *Converse:
		if a.usable(c, m) {
			c.Respond(a.converse(m))
		}
	case *StaffAct:
		if a.usable(c, m) {
			c.Respond(a.staff(m))
		}
	}
}

// usable refuses requests an activation cannot decide: its state did not
// load (or went stale), or it is stopping (then the request goes to the
// next activation).
func (a *sessionActor) usable(c actor.Context, msg any) bool {
	switch {
	case a.loadErr != nil:
		c.Respond(refusal(msg, fmt.Errorf("%w: state not loaded", ErrUnavailable)))
		return false
	case a.stopping:
		if !directory.Handoff(c, a.key) {
			c.Respond(refusal(msg, ErrUnavailable))
		}
		return false
	}
	return true
}

// retireIfStale replaces an activation whose write was refused because
// another activation wrote the phone's state since it loaded.
func (a *sessionActor) retireIfStale(c actor.Context) {
	if a.loadErr != nil {
		directory.Retire(c, a.key)
	}
}

// refusal builds the reply type msg expects, carrying err.
func refusal(msg any, err error) any {
	switch msg.(type) {
	case *VerifyCode:
		return &VerifyReply{Err: err}
	case *Converse:
		return &ConverseReply{Err: err}
	case *StaffAct:
		return &StaffActReply{Err: err}
	}
	return &RequestCodeReply{Err: err}
}

func (a *sessionActor) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.WriteTimeout)
	defer cancel()
	var rec persistence.OTPState
	err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		rec, err = tx.OTPStateGet(ctx, a.key)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if err := json.Unmarshal(rec.State, &a.st); err != nil {
		// A state we cannot read must not become a fresh one (that would
		// lift a lockout): refuse until an operator looks.
		return fmt.Errorf("session: stored state unreadable: %w", err)
	}
	a.version = rec.Version
	return nil
}

// persist writes next; only once it is durable does the actor adopt it.
func (a *sessionActor) persist(next stored) error {
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.WriteTimeout)
	defer cancel()
	rec := persistence.OTPState{PhoneKey: a.key, State: b, LockedUntil: next.State.LockedUntil,
		Version: a.version, UpdatedAt: a.deps.Now()}
	// saved, not rec: a transaction the store retries (a serialization
	// failure at COMMIT) must write from the same version again.
	var saved persistence.OTPState
	err = a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		saved, err = tx.OTPStatePut(ctx, rec)
		return err
	})
	if err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			// Another activation wrote this phone's state: ours is stale.
			a.loadErr = err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	a.version, a.st = saved.Version, next
	return nil
}

func (a *sessionActor) requestCode(m *RequestCode) *RequestCodeReply {
	now := a.deps.Now()
	met := a.deps.Metrics
	if err := a.deps.Config.Policy.CheckSendFrom(a.st.State, m.Network, m.Captcha, now); err != nil {
		met.request(outcomeOf(err))
		return &RequestCodeReply{Err: err}
	}
	code, ch, err := otp.NewChallenge(a.deps.Hasher, a.deps.Rand, m.Phone, now, a.deps.Config.CodeTTL)
	if err != nil {
		met.request("unavailable")
		return &RequestCodeReply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	// The send is counted before it happens: a failed delivery still
	// spends one of the window's sends, so retries cannot bypass the limit.
	next := stored{State: a.deps.Config.Policy.RecordSend(a.st.State, now), Challenge: ch}
	if err := a.persist(next); err != nil {
		met.request("unavailable")
		return &RequestCodeReply{Err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.SendTimeout)
	defer cancel()
	err = a.deps.Sender.Send(ctx, sender.Message{To: m.Phone, Body: a.deps.Config.Body(code), Channel: m.Channel, Purpose: "otp"})
	if err != nil {
		met.request("delivery_failed")
		a.deps.Log.Warn("session: code delivery failed", "err", err)
		return &RequestCodeReply{Err: fmt.Errorf("%w: %w", ErrDelivery, err)}
	}
	met.request("sent")
	return &RequestCodeReply{ExpiresIn: a.deps.Config.CodeTTL}
}

func (a *sessionActor) verify(m *VerifyCode) *VerifyReply {
	now := a.deps.Now()
	met := a.deps.Metrics
	ch := a.st.Challenge
	st, r := a.deps.Config.Policy.AttemptFrom(a.st.State, &ch, a.deps.Hasher, m.Phone, m.Code, m.Network, m.Captcha, now)
	switch r {
	case otp.ResultLocked:
		met.verification(r.String())
		return &VerifyReply{Result: r, RetryAfter: st.LockedForNetwork(m.Network, now)}
	case otp.ResultCaptchaRequired:
		met.verification(r.String())
		return &VerifyReply{Result: r}
	}
	lockedNow := st.LockedForNetwork(m.Network, now) > 0
	if err := a.persist(stored{State: st, Challenge: ch}); err != nil {
		// The attempt must not go uncounted because the store is down:
		// keep the new state in memory (the next write carries it) and
		// give no answer about the code.
		a.st = stored{State: st, Challenge: ch}
		met.verification("unavailable")
		return &VerifyReply{Err: err}
	}
	if lockedNow {
		met.lockouts.Inc()
	}
	met.verification(r.String())
	return &VerifyReply{Result: r}
}

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, otp.ErrLockedOut):
		return "locked"
	case errors.Is(err, otp.ErrSendRateLimited):
		return "rate_limited"
	case errors.Is(err, otp.ErrCaptchaRequired):
		return "captcha_required"
	}
	return "unavailable"
}
