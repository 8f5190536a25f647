package main

import (
	"hash/fnv"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/messages"
)

// notificationLanes is how many messages a notification consumer handles
// at once. One at a time, a node sent ~60 messages/s on PostgreSQL: each
// handling is a few short transactions and a provider call, mostly
// waiting.
const notificationLanes = 8

// lanes run a consumer's handlings on a few goroutines, each message on
// the lane of its key (an event's aggregate, such as one appointment;
// else its subject, one per scheduled reminder), so one appointment's
// messages keep their order while other appointments' go alongside.
type lanes struct{ lane []chan func() }

// newLanes starts n lanes; stop closes them once no handling is in flight.
func (nn *notificationsNode) newLanes(n int) *lanes {
	l := &lanes{lane: make([]chan func(), n)}
	for i := range l.lane {
		ch := make(chan func(), 1)
		l.lane[i] = ch
		go func() {
			for job := range ch {
				job()
			}
		}()
	}
	nn.mu.Lock()
	nn.lanes = append(nn.lanes, l)
	nn.mu.Unlock()
	return l
}

// hand queues msg's handling on its lane; the caller has begun it
// (nn.begin), and it is done when handled or, if the node stops first,
// left unacknowledged for redelivery.
func (l *lanes) hand(nn *notificationsNode, msg jetstream.Msg, handle func(jetstream.Msg)) {
	h := fnv.New32a()
	h.Write([]byte(laneKey(msg)))
	select {
	case l.lane[h.Sum32()%uint32(len(l.lane))] <- func() { defer nn.wait.Done(); handle(msg) }:
	case <-nn.ctx.Done():
		nn.wait.Done()
	}
}

// laneKey is what orders msg: its event's aggregate, else its subject.
func laneKey(msg jetstream.Msg) string {
	var ev messages.Event
	if proto.Unmarshal(msg.Data(), &ev) == nil && ev.GetAggregate() != "" {
		return ev.GetAggregate()
	}
	return msg.Subject()
}

// closeLanes ends the lanes' goroutines (stop, after the handlings).
func (nn *notificationsNode) closeLanes() {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	for _, l := range nn.lanes {
		for _, ch := range l.lane {
			close(ch)
		}
	}
	nn.lanes = nil
}
