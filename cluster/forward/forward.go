// Package forward carries actor messages to the node that owns their
// partition, as NATS request-reply (part of cluster/: it asks partition,
// through the Directory interface, who owns what, and hands requests to the
// actor layer's handlers on the owning node).
//
// A request travels in a messages.ForwardRequest envelope: partition, the
// epoch the sender saw, the caller's deadline, an idempotency key and the
// payload as google.protobuf.Any. The receiver checks that it holds the
// partition (and at an epoch not older than the sender's), finds the
// handler registered for the payload's type URL and answers with a
// messages.ForwardReply. Every failure is a typed *Error in the reply:
// a payload type the receiver does not know (e.g. from a newer build during
// a rolling deploy) is CODE_UNKNOWN_TYPE, never a crash, unlike
// protoactor's gRPC remote. The sender retries NOT_OWNER, UNAVAILABLE and
// missing owners with exponential backoff and full jitter, refreshing
// ownership from the directory first, until the caller's deadline.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/messages"
)

// DefaultSubjectPrefix is the subject prefix of node inboxes: a node named
// n listens on "<prefix>.n".
const DefaultSubjectPrefix = "spa.cluster.fwd"

// DefaultTimeout bounds a Request whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Directory tells who owns which partition; *partition.Manager implements
// it.
type Directory interface {
	// Owner returns the cached owner of p and its epoch.
	Owner(p int) (node string, epoch uint64, ok bool)
	// Refresh reads p's owner from the source of truth.
	Refresh(ctx context.Context, p int) (node string, epoch uint64, ok bool, err error)
	// Holds reports whether this node owns p, and at which epoch.
	Holds(p int) (epoch uint64, ok bool)
}

// Code classifies an *Error; the values are messages.ForwardError codes.
type Code = messages.ForwardError_Code

// Error is a typed failure of a forwarded request, as answered by the
// receiver or decided by the sender.
type Error struct {
	Code    Code
	Message string
	// Owner and Epoch: for CODE_NOT_OWNER, the owner the receiver knew of.
	Owner string
	Epoch uint64
}

// Error describes the failure.
func (e *Error) Error() string {
	s := "forward: " + strings.ToLower(strings.TrimPrefix(e.Code.String(), "CODE_"))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches another *Error with the same code, so errors.Is(err,
// ErrNotOwner) works on any error chain holding an *Error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Owner == ""
}

// Sentinels for errors.Is.
var (
	ErrNotOwner         = &Error{Code: messages.ForwardError_CODE_NOT_OWNER}
	ErrUnknownType      = &Error{Code: messages.ForwardError_CODE_UNKNOWN_TYPE}
	ErrBadRequest       = &Error{Code: messages.ForwardError_CODE_BAD_REQUEST}
	ErrDeadlineExceeded = &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED}
	ErrHandler          = &Error{Code: messages.ForwardError_CODE_HANDLER}
	ErrUnavailable      = &Error{Code: messages.ForwardError_CODE_UNAVAILABLE}
)

// Request is what a handler receives.
type Request struct {
	// Partition is the partition the message belongs to; this node holds
	// it at Epoch, the fencing token for the handler's writes.
	Partition int
	Epoch     uint64
	// IdempotencyKey is stable across the sender's retries.
	IdempotencyKey string
	// Sender is the sending node; Attempt counts its tries from 1.
	Sender  string
	Attempt int
	// Message is the decoded payload.
	Message proto.Message
}

// Handler handles one message type on the owning node. Its ctx carries the
// caller's deadline. A returned *Error is passed to the sender as is; any
// other error becomes CODE_HANDLER.
type Handler func(ctx context.Context, req *Request) (proto.Message, error)

// Config configures a Forwarder.
type Config struct {
	// Node is this node's name (a single NATS subject token). Required.
	Node string
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Directory answers ownership questions. Required.
	Directory Directory
	// SubjectPrefix defaults to DefaultSubjectPrefix.
	SubjectPrefix string
	// MinBackoff and MaxBackoff bound the retry backoff; defaults 20ms
	// and 1s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one try: an owner that does not answer in
	// time (paused, partitioned away) is given up and ownership refreshed,
	// so the request reaches the next owner instead of waiting out the
	// caller's whole deadline at a node that lost the partition. Retried
	// messages must be idempotent (they carry the idempotency key). Zero:
	// one try may take the whole deadline.
	AttemptTimeout time.Duration
	// Logger receives receive-side failures; nil discards.
	Logger *slog.Logger
}

// Forwarder sends requests to partition owners and serves the ones this
// node owns. Its methods are safe for concurrent use.
type Forwarder struct {
	cfg Config
	sub *nats.Subscription
	log *slog.Logger

	mu       sync.RWMutex
	handlers map[string]Handler
	closed   bool
	inflight sync.WaitGroup
}

// New subscribes to this node's inbox and returns the Forwarder. Register
// handlers with Handle before the directory gives this node partitions.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Node == "" || strings.ContainsAny(cfg.Node, ". *>\t\r\n") {
		return nil, fmt.Errorf("forward: node name %q must be one NATS subject token", cfg.Node)
	}
	if cfg.Conn == nil || cfg.Directory == nil {
		return nil, errors.New("forward: Config.Conn and Config.Directory are required")
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 20 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Second, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{cfg: cfg, handlers: map[string]Handler{}, log: cfg.Logger.With("component", "forward", "node", cfg.Node)}
	sub, err := cfg.Conn.Subscribe(f.subject(cfg.Node), f.receive)
	if err != nil {
		return nil, fmt.Errorf("forward: subscribe: %w", err)
	}
	if err := cfg.Conn.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("forward: subscribe: %w", err)
	}
	f.sub = sub
	return f, nil
}

func (f *Forwarder) subject(node string) string { return f.cfg.SubjectPrefix + "." + node }

// TypeURL returns the Any type URL under which messages like m travel.
func TypeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}

// Handle registers h for messages of example's type (replacing any earlier
// handler for it).
func (f *Forwarder) Handle(example proto.Message, h Handler) {
	f.mu.Lock()
	f.handlers[TypeURL(example)] = h
	f.mu.Unlock()
}

// Close stops serving: new requests are answered CODE_UNAVAILABLE (the
// sender retries elsewhere), and Close waits for handlers in flight.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.sub.Drain()
	f.inflight.Wait()
	return err
}

// Request sends msg to the owner of partition p and returns its reply. It
// retries while the partition has no reachable owner or the receiver is
// not (or no longer) the owner, with exponential backoff and jitter,
// refreshing ownership before each retry, until ctx's deadline
// (DefaultTimeout when ctx has none). Other failures return at once as
// *Error (errors.Is(err, ErrUnknownType), …).
//
// An attempt that times out may still be decided by a slow owner, so it is
// resent only when idempotencyKey is set, which declares the request safe
// to apply twice (a read, or an operation the actor recognises by its
// ids); otherwise Request returns ErrDeadlineExceeded: the outcome is
// unknown, as for any timeout.
func (f *Forwarder) Request(ctx context.Context, p int, idempotencyKey string, msg proto.Message) (proto.Message, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	payload, err := anypb.New(msg)
	if err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_BAD_REQUEST, Message: err.Error()}
	}
	var last error
	for attempt := 1; ; attempt++ {
		var owner string
		var epoch uint64
		var ok bool
		if attempt == 1 {
			owner, epoch, ok = f.cfg.Directory.Owner(p)
		} else {
			owner, epoch, ok, err = f.cfg.Directory.Refresh(ctx, p)
			if err != nil {
				owner, epoch, ok = f.cfg.Directory.Owner(p)
			}
		}
		if !ok {
			last = &Error{Code: messages.ForwardError_CODE_NOT_OWNER, Message: fmt.Sprintf("partition %d has no owner", p)}
		} else {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if f.cfg.AttemptTimeout > 0 {
				actx, cancel = context.WithTimeout(ctx, f.cfg.AttemptTimeout)
			}
			reply, err := f.send(actx, owner, &messages.ForwardRequest{
				Partition:      int32(p),
				Epoch:          epoch,
				Deadline:       timestamppb.New(deadline),
				Timeout:        durationpb.New(time.Until(deadline)),
				IdempotencyKey: idempotencyKey,
				Payload:        payload,
				Sender:         f.cfg.Node,
				Attempt:        uint32(attempt),
			})
			triedOut := err != nil && ctx.Err() == nil && actx.Err() != nil
			cancel()
			if triedOut {
				if idempotencyKey == "" {
					return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED,
						Message: fmt.Sprintf("%s did not answer within %s; not resent, as it may have applied it", owner, f.cfg.AttemptTimeout)}
				}
				// This try timed out, not the request: another owner may answer.
				err = &Error{Code: messages.ForwardError_CODE_UNAVAILABLE, Message: fmt.Sprintf("%s did not answer within %s", owner, f.cfg.AttemptTimeout)}
			}
			if err == nil {
				return reply, nil
			}
			if !retryable(err) {
				return nil, err
			}
			last = err
		}
		wait := f.backoff(attempt)
		if time.Until(deadline) <= wait {
			return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED,
				Message: fmt.Sprintf("partition %d after %d attempts: %v", p, attempt, last)}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED,
				Message: fmt.Sprintf("partition %d after %d attempts: %v", p, attempt, last)}
		case <-t.C:
		}
	}
}

// backoff is min(MaxBackoff, MinBackoff·2^(attempt-1)) with full jitter
// over its upper half.
func (f *Forwarder) backoff(attempt int) time.Duration {
	d := f.cfg.MinBackoff << min(attempt-1, 20)
	if d <= 0 || d > f.cfg.MaxBackoff {
		d = f.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func retryable(err error) bool {
	return errors.Is(err, ErrNotOwner) || errors.Is(err, ErrUnavailable)
}

// send does one request-reply round trip to node.
func (f *Forwarder) send(ctx context.Context, node string, req *messages.ForwardRequest) (proto.Message, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_BAD_REQUEST, Message: err.Error()}
	}
	m, err := f.cfg.Conn.RequestWithContext(ctx, f.subject(node), b)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &Error{Code: messages.ForwardError_CODE_UNAVAILABLE, Message: "no responder at " + node}
	case ctx.Err() != nil:
		return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED, Message: ctx.Err().Error()}
	case err != nil:
		return nil, &Error{Code: messages.ForwardError_CODE_UNAVAILABLE, Message: err.Error()}
	}
	var reply messages.ForwardReply
	if err := proto.Unmarshal(m.Data, &reply); err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_BAD_REQUEST, Message: "undecodable reply: " + err.Error()}
	}
	if e := reply.GetError(); e != nil {
		return nil, &Error{Code: e.GetCode(), Message: e.GetMessage(), Owner: e.GetOwner(), Epoch: e.GetEpoch()}
	}
	if reply.GetPayload() == nil {
		return nil, nil // the handler returned no message
	}
	out, err := reply.GetPayload().UnmarshalNew()
	if err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_UNKNOWN_TYPE, Message: "reply payload: " + err.Error()}
	}
	return out, nil
}

// receive runs on the subscription's goroutine: it hands each request to
// its own goroutine so a slow handler does not hold up the others.
func (f *Forwarder) receive(m *nats.Msg) {
	f.mu.RLock()
	closed := f.closed
	if !closed {
		f.inflight.Add(1)
	}
	f.mu.RUnlock()
	if closed {
		f.reply(m, nil, &Error{Code: messages.ForwardError_CODE_UNAVAILABLE, Message: f.cfg.Node + " is shutting down"})
		return
	}
	go func() {
		defer f.inflight.Done()
		out, err := f.serve(m)
		f.reply(m, out, err)
	}()
}

// requestDeadline is when the receiver gives up on req: the time left as
// the sender measured it, counted on this node's clock (skew between the
// nodes does not move it), or the sender's absolute deadline from a sender
// that does not send the time left.
func requestDeadline(req *messages.ForwardRequest) (time.Time, bool) {
	if t := req.GetTimeout(); t != nil {
		return time.Now().Add(t.AsDuration()), true
	}
	if d := req.GetDeadline(); d != nil {
		return d.AsTime(), true
	}
	return time.Time{}, false
}

// serve decodes, checks and dispatches one request. It never panics on
// input: a handler's panic is recovered into CODE_HANDLER as well.
func (f *Forwarder) serve(m *nats.Msg) (out proto.Message, err error) {
	var req messages.ForwardRequest
	if err := proto.Unmarshal(m.Data, &req); err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_BAD_REQUEST, Message: err.Error()}
	}
	p := int(req.GetPartition())
	deadline, ok := requestDeadline(&req)
	if !ok || !time.Now().Before(deadline) {
		return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED, Message: "deadline passed before delivery"}
	}
	epoch, ok := f.cfg.Directory.Holds(p)
	if !ok || req.GetEpoch() > epoch {
		owner, oe, _ := f.cfg.Directory.Owner(p)
		if owner == f.cfg.Node {
			owner, oe = "", 0
		}
		return nil, &Error{Code: messages.ForwardError_CODE_NOT_OWNER,
			Message: fmt.Sprintf("%s does not own partition %d", f.cfg.Node, p), Owner: owner, Epoch: oe}
	}
	url := req.GetPayload().GetTypeUrl()
	f.mu.RLock()
	h := f.handlers[url]
	f.mu.RUnlock()
	if h == nil {
		return nil, &Error{Code: messages.ForwardError_CODE_UNKNOWN_TYPE, Message: fmt.Sprintf("no handler for %q on %s", url, f.cfg.Node)}
	}
	msg, err := req.GetPayload().UnmarshalNew()
	if err != nil {
		return nil, &Error{Code: messages.ForwardError_CODE_UNKNOWN_TYPE, Message: fmt.Sprintf("decode %q: %v", url, err)}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("forward handler panicked", "type", url, "panic", r)
			out, err = nil, &Error{Code: messages.ForwardError_CODE_HANDLER, Message: fmt.Sprintf("handler panicked: %v", r)}
		}
	}()
	out, err = h(ctx, &Request{
		Partition:      p,
		Epoch:          epoch,
		IdempotencyKey: req.GetIdempotencyKey(),
		Sender:         req.GetSender(),
		Attempt:        int(req.GetAttempt()),
		Message:        msg,
	})
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return nil, fe
		}
		if ctx.Err() != nil {
			return nil, &Error{Code: messages.ForwardError_CODE_DEADLINE_EXCEEDED, Message: err.Error()}
		}
		return nil, &Error{Code: messages.ForwardError_CODE_HANDLER, Message: err.Error()}
	}
	return out, nil
}

func (f *Forwarder) reply(m *nats.Msg, out proto.Message, err error) {
	var r messages.ForwardReply
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			fe = &Error{Code: messages.ForwardError_CODE_HANDLER, Message: err.Error()}
		}
		r.Error = &messages.ForwardError{Code: fe.Code, Message: fe.Message, Owner: fe.Owner, Epoch: fe.Epoch}
	} else if out != nil {
		a, aerr := anypb.New(out)
		if aerr != nil {
			r.Error = &messages.ForwardError{Code: messages.ForwardError_CODE_HANDLER, Message: aerr.Error()}
		} else {
			r.Payload = a
		}
	}
	b, merr := proto.Marshal(&r)
	if merr != nil {
		f.log.Error("forward: marshal reply", "err", merr)
		return
	}
	if err := m.Respond(b); err != nil {
		f.log.Warn("forward: reply not sent", "err", err)
	}
}
