package notifyjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Dead letters (docs/notifications.md, Retries and dead letters): a
// message whose notification died is parked, as a messages.DeadLetter, on
// spa.notify.dead.<kind>.<channel> in the stream SPA_NOTIFY_DLQ, where it
// stays until an admin retries or discards it. A retry publishes the
// message that caused it on spa.notify.retry.<kind>.<channel> (the work
// queue SPA_NOTIFY_RETRY, which the notifications consumer also reads)
// and removes the letter.
const (
	DeadLetterStream = "SPA_NOTIFY_DLQ"
	DeadSubject      = "spa.notify.dead."
	RetryStream      = "SPA_NOTIFY_RETRY"
	RetrySubject     = "spa.notify.retry."
	// HeaderSubject is the subject a requeued message first arrived on
	// (an event's, a due reminder's); HeaderRetries how many times an
	// admin retried it.
	HeaderSubject = "Spa-Notify-Subject"
	HeaderRetries = "Spa-Notify-Retries"
)

// Sealer seals the parked messages (*pii.Keyring): the event that caused
// a dead letter may outlive its retention in the events stream, so it is
// kept sealed like other data at rest.
type Sealer interface {
	Encrypt(plaintext, context []byte) ([]byte, error)
	Decrypt(ciphertext, context []byte) ([]byte, error)
}

// DeadLetters is the notify.DeadLetterQueue on JetStream, and what parks
// letters there.
type DeadLetters struct {
	js    jetstream.JetStream
	dlq   jetstream.Stream
	seal  Sealer
	fetch time.Duration
}

var _ notify.DeadLetterQueue = (*DeadLetters)(nil)

// NewDeadLetters creates (or updates) the dead-letter stream and the
// retry work queue with replicas copies. seal nil keeps parked messages
// as they came (a node without PII keys).
func NewDeadLetters(ctx context.Context, js jetstream.JetStream, replicas int, seal Sealer) (*DeadLetters, error) {
	dlq, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        DeadLetterStream,
			Description: "Notifications that outlasted their retries, with the message that caused them, until an admin retries or discards them",
			Subjects:    []string{DeadSubject + ">"},
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
			// No age or count limit: a dead letter leaves by an admin's
			// action only.
		})
	})
	if err != nil {
		return nil, fmt.Errorf("notifyjs: dead-letter stream: %w", err)
	}
	if _, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        RetryStream,
			Description: "Dead letters an admin retried, waiting for the notifications consumer",
			Subjects:    []string{RetrySubject + ">"},
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
			Retention:   jetstream.WorkQueuePolicy,
		})
	}); err != nil {
		return nil, fmt.Errorf("notifyjs: retry stream: %w", err)
	}
	return &DeadLetters{js: js, dlq: dlq, seal: seal, fetch: 2 * time.Second}, nil
}

// token makes s safe as one subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, s)
}

func sealContext(notificationID string) []byte {
	return []byte("notification-dead-letter/" + notificationID)
}

// Retries is how many times the message was retried by an admin (0 for
// one as first published).
func Retries(h nats.Header) int {
	n, _ := strconv.Atoi(h.Get(HeaderRetries))
	return max(n, 0)
}

// Park parks msg, whose handling found dead's notification dead, as a
// dead letter; parking the same message again (a redelivery after a
// parking whose acknowledgement was lost) is deduplicated by its id,
// dead:<notification>:<retries>.
func (d *DeadLetters) Park(ctx context.Context, msg jetstream.Msg, dead *notify.DeadError) error {
	subject, retries := msg.Subject(), 0
	if h := msg.Headers(); h != nil {
		if s := h.Get(HeaderSubject); s != "" {
			subject = s
		}
		retries = Retries(h)
	}
	n := dead.Notification
	data, sealed := msg.Data(), false
	if d.seal != nil {
		ct, err := d.seal.Encrypt(data, sealContext(n.ID))
		if err != nil {
			return fmt.Errorf("notifyjs: seal the dead letter: %w", err)
		}
		data, sealed = ct, true
	}
	letter := &messages.DeadLetter{NotificationId: n.ID, Kind: n.Kind, Channel: n.Channel, Error: n.LastError,
		Attempts: int32(n.Attempts), FailedAt: timestamppb.New(n.UpdatedAt), Subject: subject, Data: data,
		ErrorClass: dead.Class, QueuedAt: timestamppb.New(n.CreatedAt), Retries: int32(retries), Sealed: sealed}
	b, err := proto.Marshal(letter)
	if err != nil {
		return err
	}
	_, err = d.js.Publish(ctx, DeadSubject+token(n.Kind)+"."+token(n.Channel), b,
		jetstream.WithMsgID(fmt.Sprintf("dead:%s:%d", n.ID, retries)))
	return err
}

func seqOf(id string) (uint64, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("dead letter %q: %w", id, persistence.ErrNotFound)
	}
	return seq, nil
}

func view(seq uint64, data []byte) (notify.DeadLetter, *messages.DeadLetter, error) {
	var m messages.DeadLetter
	if err := proto.Unmarshal(data, &m); err != nil {
		return notify.DeadLetter{}, nil, fmt.Errorf("notifyjs: dead letter %d: %w", seq, err)
	}
	return notify.DeadLetter{ID: strconv.FormatUint(seq, 10), NotificationID: m.NotificationId, Kind: m.Kind,
		Channel: m.Channel, ErrorClass: m.ErrorClass, Error: m.Error, Attempts: int(m.Attempts), Retries: int(m.Retries),
		QueuedAt: m.QueuedAt.AsTime(), DeadAt: m.FailedAt.AsTime()}, &m, nil
}

// get reads the letter at id's sequence.
func (d *DeadLetters) get(ctx context.Context, id string) (uint64, notify.DeadLetter, *messages.DeadLetter, error) {
	seq, err := seqOf(id)
	if err != nil {
		return 0, notify.DeadLetter{}, nil, err
	}
	raw, err := d.dlq.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, notify.DeadLetter{}, nil, fmt.Errorf("dead letter %s: %w", id, persistence.ErrNotFound)
	case err != nil:
		return 0, notify.DeadLetter{}, nil, err
	case !strings.HasPrefix(raw.Subject, DeadSubject):
		return 0, notify.DeadLetter{}, nil, fmt.Errorf("dead letter %s: %w", id, persistence.ErrNotFound)
	}
	l, m, err := view(seq, raw.Data)
	return seq, l, m, err
}

// Get implements notify.DeadLetterQueue.
func (d *DeadLetters) Get(ctx context.Context, id string) (notify.DeadLetter, error) {
	_, l, _, err := d.get(ctx, id)
	return l, err
}

// List implements notify.DeadLetterQueue: it reads the stream from its
// first letter with an ordered consumer.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]notify.DeadLetter, bool, error) {
	info, err := d.dlq.Info(ctx)
	if err != nil {
		return nil, false, err
	}
	if info.State.Msgs == 0 {
		return nil, false, nil
	}
	last := info.State.LastSeq
	cons, err := d.js.OrderedConsumer(ctx, DeadLetterStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{DeadSubject + ">"}, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return nil, false, err
	}
	var out []notify.DeadLetter
	// A batch asks for no more than the stream holds, so it is full at
	// once instead of waiting out the fetch for letters that do not come
	// (fewer only when letters are removed meanwhile).
	left := int(min(info.State.Msgs, uint64(limit)+1))
	for {
		n := min(256, left)
		left -= n
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(d.fetch))
		if err != nil {
			return nil, false, err
		}
		got, reached := 0, false
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return nil, false, err
			}
			if l, _, err := view(md.Sequence.Stream, msg.Data()); err == nil {
				out = append(out, l)
			}
			reached = reached || md.Sequence.Stream >= last
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, false, err
		}
		switch {
		case len(out) > limit:
			return out[:limit], true, nil
		case reached || got == 0 || left <= 0:
			return out, false, nil
		}
	}
}

// Requeue implements notify.DeadLetterQueue.
func (d *DeadLetters) Requeue(ctx context.Context, id string) error {
	seq, l, m, err := d.get(ctx, id)
	if err != nil {
		return err
	}
	data := m.Data
	if m.Sealed {
		if d.seal == nil {
			return fmt.Errorf("notifyjs: dead letter %s is sealed and this node has no PII keys", id)
		}
		if data, err = d.seal.Decrypt(m.Data, sealContext(m.NotificationId)); err != nil {
			return fmt.Errorf("notifyjs: open dead letter %s: %w", id, err)
		}
	}
	retries := l.Retries + 1
	out := nats.NewMsg(RetrySubject + token(l.Kind) + "." + token(l.Channel))
	out.Data = data
	out.Header.Set(HeaderSubject, m.Subject)
	out.Header.Set(HeaderRetries, strconv.Itoa(retries))
	// The retry's own id: the same retry requeued twice is one message; the
	// notification's stable id still keeps a sent message from going twice.
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("retry:%s:%d", l.NotificationID, retries))
	if _, err := d.js.PublishMsg(ctx, out); err != nil {
		return err
	}
	return d.remove(ctx, seq)
}

// Remove implements notify.DeadLetterQueue.
func (d *DeadLetters) Remove(ctx context.Context, id string) error {
	seq, _, _, err := d.get(ctx, id)
	if err != nil {
		return err
	}
	return d.remove(ctx, seq)
}

func (d *DeadLetters) remove(ctx context.Context, seq uint64) error {
	err := d.dlq.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter %d: %w", seq, persistence.ErrNotFound)
	}
	return err
}

// Depth is the letters parked per kind and channel, with the time the
// oldest of them was parked.
type Depth struct {
	Kind, Channel string
	Count         uint64
	Oldest        time.Time
}

// Depths reads the parked letters per kind and channel from the stream's
// subject counts, and each one's oldest by a direct get: a handful of
// requests whatever the depth.
func (d *DeadLetters) Depths(ctx context.Context) ([]Depth, error) {
	info, err := d.dlq.Info(ctx, jetstream.WithSubjectFilter(DeadSubject+">"))
	if err != nil {
		return nil, err
	}
	var out []Depth
	for subj, n := range info.State.Subjects {
		kind, channel, ok := strings.Cut(strings.TrimPrefix(subj, DeadSubject), ".")
		if !ok || n == 0 {
			continue
		}
		dp := Depth{Kind: kind, Channel: channel, Count: n}
		if raw, err := d.dlq.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj)); err == nil {
			dp.Oldest = raw.Time
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, err
		}
		out = append(out, dp)
	}
	return out, nil
}
