package main

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/notifyjs"
)

// fakeMsg is a jetstream.Msg with a subject, data and headers.
type fakeMsg struct {
	jetstream.Msg
	subject string
	data    []byte
	header  nats.Header
}

func (m fakeMsg) Subject() string      { return m.subject }
func (m fakeMsg) Data() []byte         { return m.data }
func (m fakeMsg) Headers() nats.Header { return m.header }

// TestCauseOfARetriedLetter: a message's cause is itself, but a retried
// dead letter's is the subject it first came on, so a fallback of a
// retried reminder is handled as a reminder.
func TestCauseOfARetriedLetter(t *testing.T) {
	ev := fakeMsg{subject: "spa.events.appointment_changed", data: []byte("event")}
	if c := causeOf(ev); c.Subject != ev.subject || string(c.Data) != "event" {
		t.Fatalf("an event's cause: %+v", c)
	}
	retried := fakeMsg{subject: notifyjs.RetrySubject + "appointment_reminder_2h.whatsapp", data: []byte("due"),
		header: nats.Header{notifyjs.HeaderSubject: {notifyjs.DueSubject + "a1.appointment_reminder_2h"}}}
	if c := causeOf(retried); c.Subject != notifyjs.DueSubject+"a1.appointment_reminder_2h" || string(c.Data) != "due" {
		t.Fatalf("a retried letter's cause: %+v", c)
	}
	// A fallback that died is parked as its cause, without the check's
	// headers.
	check := fakeMsg{subject: notifyjs.CheckDueSubject + "abc", data: []byte("check"), header: nats.Header{"Nats-Msg-Id": {"x"}}}
	m := causedMsg{Msg: check, cause: notify.Cause{Subject: "spa.events.payment_changed", Data: []byte("event")}}
	if m.Subject() != "spa.events.payment_changed" || string(m.Data()) != "event" || m.Headers() != nil {
		t.Fatalf("parked as %s %q %v", m.Subject(), m.Data(), m.Headers())
	}
}
