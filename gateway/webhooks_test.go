package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service/inbox"
	"github.com/spa-engine/spa/persistence"
)

const (
	waSecret     = "test_app_secret"
	waVerify     = "meatyhamhock"
	twToken      = "12345"
	twStatusURL  = "https://api.spa.example/v1/webhooks/twilio/status"
	twInboundURL = "https://api.spa.example/v1/webhooks/twilio/inbound"
)

// receiver records what the webhooks hand on; fail makes it refuse.
type receiver struct {
	mu   sync.Mutex
	msgs []inbound.Message
	sts  []inbound.Status
	fail error
}

func (r *receiver) Receive(_ context.Context, m []inbound.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.msgs = append(r.msgs, m...)
	return nil
}

func (r *receiver) ReceiveStatuses(_ context.Context, s []inbound.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.sts = append(r.sts, s...)
	return nil
}

func (r *receiver) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs), len(r.sts)
}

func newWebhookEnv(t *testing.T) (*env, *receiver) {
	rec := &receiver{}
	e := newEnv(t, func(d *Deps) {
		d.Inbox = inbox.New(inbox.Deps{Store: d.Store, Messages: rec, Statuses: rec, Log: d.Logger,
			WhatsApp: inbox.WhatsAppConfig{AppSecret: waSecret, VerifyToken: waVerify},
			Twilio:   inbox.TwilioConfig{AuthToken: twToken, StatusURL: twStatusURL, InboundURL: twInboundURL}})
		d.Config.BodyLimit = 1 << 20
	})
	return e, rec
}

// stored reports whether a body is in the provider event log: a probe
// record in a rolled-back transaction is created only when it is not.
func stored(t *testing.T, st persistence.Store, provider string, body []byte) bool {
	t.Helper()
	probe := errors.New("probe")
	var created bool
	err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		_, created, err = tx.PaymentEventRecord(context.Background(), persistence.PaymentEvent{Key: inbox.EventKey(provider, body),
			Provider: provider, ReceivedAt: time.Now(), Body: []byte("x")})
		if err != nil {
			return err
		}
		return probe
	})
	if !errors.Is(err, probe) {
		t.Fatal(err)
	}
	return !created
}

// waMessage is a Cloud API webhook with one text message sent at ts.
func waMessage(id string, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{`+
		`"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},`+
		`"contacts":[{"profile":{"name":"Sheena"},"wa_id":"573001234567"}],`+
		`"messages":[{"from":"573001234567","id":%q,"timestamp":"%d","type":"text","text":{"body":"hola"}}]}}]}]}`, id, ts.Unix())
}

func waStatus(id, status string, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{`+
		`"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},`+
		`"statuses":[{"id":%q,"status":%q,"timestamp":"%d","recipient_id":"573001234567","errors":[{"code":131047}]}]}}]}]}`, id, status, ts.Unix())
}

func (e *env) postWhatsApp(body []byte, sig string) result {
	e.t.Helper()
	hdr := []string{"Content-Type", "application/json"}
	if sig != "" {
		hdr = append(hdr, whatsapp.SignatureHeader, sig)
	}
	return e.do("POST", "/v1/webhooks/whatsapp", string(body), hdr...)
}

func (e *env) postTwilio(path string, form url.Values, sig string) result {
	e.t.Helper()
	hdr := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if sig != "" {
		hdr = append(hdr, twilio.SignatureHeader, sig)
	}
	return e.do("POST", path, form.Encode(), hdr...)
}

func TestWhatsAppHandshake(t *testing.T) {
	e, _ := newWebhookEnv(t)
	r := e.do("GET", "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="+waVerify, "")
	if r.status != 200 || string(r.body) != "1158201444" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("handshake: %d %q %v", r.status, r.body, r.header)
	}
	for _, q := range []string{"hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
		"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=" + waVerify, "hub.challenge=1"} {
		if r := e.do("GET", "/v1/webhooks/whatsapp?"+q, ""); r.status != 403 {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
}

// TestWhatsAppWebhook: an authentic body is stored and handed on once
// (the same body again is a replay); every forged variant is 401 (413 when
// too large) with nothing stored and nothing handed on.
func TestWhatsAppWebhook(t *testing.T) {
	e, rec := newWebhookEnv(t)
	now := time.Now()
	good := waMessage("wamid.1", now)
	if r := e.postWhatsApp(good, whatsapp.Signature(waSecret, good)); r.status != 200 || r.json(t)["outcome"] != "applied" {
		t.Fatalf("authentic: %d %s", r.status, r.body)
	}
	if m, _ := rec.counts(); m != 1 || rec.msgs[0].From != "+573001234567" || rec.msgs[0].Text != "hola" || rec.msgs[0].ID != "wamid.1" {
		t.Fatalf("handed on %+v", rec.msgs)
	}
	if !stored(t, e.store, inbound.ProviderWhatsApp, good) {
		t.Fatal("the authentic body is not stored")
	}
	if r := e.postWhatsApp(good, whatsapp.Signature(waSecret, good)); r.status != 200 || r.json(t)["outcome"] != "replay" {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	st := waStatus("wamid.out", "read", now)
	if r := e.postWhatsApp(st, whatsapp.Signature(waSecret, st)); r.status != 200 {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	if m, s := rec.counts(); m != 1 || s != 1 || rec.sts[0].Status != "read" || rec.sts[0].MessageID != "wamid.out" || rec.sts[0].ErrorCode != "131047" {
		t.Fatalf("after replay and status: %+v %+v", rec.msgs, rec.sts)
	}

	stale := waMessage("wamid.2", now.Add(-whatsapp.DefaultWebhookWindow-time.Minute))
	future := waMessage("wamid.3", now.Add(time.Hour))
	fresh := waMessage("wamid.4", now)
	huge := append(waMessage("wamid.5", now)[:0:0], waMessage("wamid.5", now)...)
	huge = append(huge[:len(huge)-1], []byte(strings.Repeat(" ", whatsapp.MaxWebhookBytes)+"}")...)
	for name, c := range map[string]struct {
		body   []byte
		sig    string
		status int
	}{
		"bad signature":             {fresh, whatsapp.Signature("another_secret", fresh), 401},
		"missing header":            {fresh, "", 401},
		"signature of another body": {fresh, whatsapp.Signature(waSecret, good), 401},
		"no sha256= prefix":         {fresh, strings.TrimPrefix(whatsapp.Signature(waSecret, fresh), "sha256="), 401},
		"replayed (stale)":          {stale, whatsapp.Signature(waSecret, stale), 401},
		"from the future":           {future, whatsapp.Signature(waSecret, future), 401},
		"oversized":                 {huge, whatsapp.Signature(waSecret, huge), 413},
	} {
		r := e.postWhatsApp(c.body, c.sig)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", name, r.status, r.body, c.status)
		}
		if stored(t, e.store, inbound.ProviderWhatsApp, c.body) {
			t.Errorf("%s: stored", name)
		}
	}
	if m, s := rec.counts(); m != 1 || s != 1 {
		t.Fatalf("forged bodies handed on: %d messages, %d statuses", m, s)
	}
}

// TestWhatsAppWebhookReceiverFails: a receiver's failure answers 5xx and
// leaves the body stored unapplied; the provider's redelivery hands it on.
func TestWhatsAppWebhookReceiverFails(t *testing.T) {
	e, rec := newWebhookEnv(t)
	body := waMessage("wamid.9", time.Now())
	rec.fail = errors.New("down")
	if r := e.postWhatsApp(body, whatsapp.Signature(waSecret, body)); r.status < 500 {
		t.Fatalf("receiver down: %d %s", r.status, r.body)
	}
	if !stored(t, e.store, inbound.ProviderWhatsApp, body) {
		t.Fatal("not stored before it was handed on")
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	if r := e.postWhatsApp(body, whatsapp.Signature(waSecret, body)); r.status != 200 || r.json(t)["outcome"] != "applied" {
		t.Fatalf("redelivery: %d %s", r.status, r.body)
	}
	if m, _ := rec.counts(); m != 1 {
		t.Fatalf("%d messages", m)
	}
}

// TestTwilioWebhooks: status callbacks and inbound messages signed over
// the configured URL are handed on once; forged ones are refused with
// nothing stored.
func TestTwilioWebhooks(t *testing.T) {
	e, rec := newWebhookEnv(t)
	status := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"},
		"To": {"+573001234567"}, "From": {"+15005550006"}, "AccountSid": {"AC1"}}
	if r := e.postTwilio("/v1/webhooks/twilio/status", status, twilio.Signature(twToken, twStatusURL, status)); r.status != 200 {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	in := url.Values{"MessageSid": {"SM2"}, "From": {"whatsapp:+573001234567"}, "To": {"whatsapp:+15005550006"},
		"Body": {"hola"}, "WaId": {"573001234567"}, "SmsStatus": {"received"}}
	r := e.postTwilio("/v1/webhooks/twilio/inbound", in, twilio.Signature(twToken, twInboundURL, in))
	if r.status != 200 || !strings.Contains(string(r.body), "<Response/>") {
		t.Fatalf("inbound: %d %s", r.status, r.body)
	}
	if m, s := rec.counts(); m != 1 || s != 1 || rec.sts[0].Status != "failed" || rec.sts[0].ErrorCode != "30003" ||
		rec.msgs[0].From != "+573001234567" || rec.msgs[0].Channel != "whatsapp" {
		t.Fatalf("handed on %+v %+v", rec.msgs, rec.sts)
	}
	if r := e.postTwilio("/v1/webhooks/twilio/status", status, twilio.Signature(twToken, twStatusURL, status)); r.json(t)["outcome"] != "replay" {
		t.Fatalf("replay: %s", r.body)
	}

	other := url.Values{"MessageSid": {"SM3"}, "MessageStatus": {"delivered"}}
	big := url.Values{"MessageSid": {"SM4"}, "MessageStatus": {"delivered"}, "Body": {strings.Repeat("x", twilio.MaxWebhookBytes)}}
	for name, c := range map[string]struct {
		path   string
		form   url.Values
		sig    string
		status int
	}{
		"bad signature":              {"/v1/webhooks/twilio/status", other, twilio.Signature("54321", twStatusURL, other), 401},
		"missing header":             {"/v1/webhooks/twilio/status", other, "", 401},
		"signed for the other route": {"/v1/webhooks/twilio/status", other, twilio.Signature(twToken, twInboundURL, other), 401},
		"a parameter added":          {"/v1/webhooks/twilio/status", url.Values{"MessageSid": {"SM3"}, "MessageStatus": {"delivered"}, "X": {"1"}}, twilio.Signature(twToken, twStatusURL, other), 401},
		"oversized":                  {"/v1/webhooks/twilio/status", big, twilio.Signature(twToken, twStatusURL, big), 413},
		"inbound forged":             {"/v1/webhooks/twilio/inbound", other, twilio.Signature("54321", twInboundURL, other), 401},
	} {
		r := e.postTwilio(c.path, c.form, c.sig)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", name, r.status, r.body, c.status)
		}
		if stored(t, e.store, inbound.ProviderTwilio, []byte(c.form.Encode())) {
			t.Errorf("%s: stored", name)
		}
	}
	if m, s := rec.counts(); m != 1 || s != 1 {
		t.Fatalf("forged bodies handed on: %d messages, %d statuses", m, s)
	}
}

// TestMessagingWebhooksUnconfigured: a node without the providers'
// secrets refuses every webhook as forged.
func TestMessagingWebhooksUnconfigured(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Config.BodyLimit = 1 << 20 })
	body := waMessage("wamid.1", time.Now())
	if r := e.postWhatsApp(body, whatsapp.Signature("", body)); r.status != 401 {
		t.Fatalf("whatsapp: %d", r.status)
	}
	f := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sent"}}
	if r := e.postTwilio("/v1/webhooks/twilio/status", f, twilio.Signature("", twStatusURL, f)); r.status != 401 {
		t.Fatalf("twilio: %d", r.status)
	}
	if r := e.do("GET", "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=", ""); r.status != 403 {
		t.Fatalf("handshake: %d", r.status)
	}
}

// txReceiver takes messages in the transaction that marks the body
// applied; fail makes it refuse (rolling that transaction back).
type txReceiver struct {
	mu      sync.Mutex
	applied []inbound.Message
	fail    error
}

func (r *txReceiver) ApplyMessages(_ context.Context, tx persistence.Tx, m []inbound.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tx == nil {
		return errors.New("no transaction")
	}
	if r.fail != nil {
		return r.fail
	}
	r.applied = append(r.applied, m...)
	return nil
}

// TestWhatsAppWebhookAppliesMessagesInItsTransaction: a receiver in the
// applying transaction (the 24-hour window) that fails leaves the body
// stored and unapplied, so the provider's redelivery applies it; once
// applied, a replay hands it on no more.
func TestWhatsAppWebhookAppliesMessagesInItsTransaction(t *testing.T) {
	rec := &txReceiver{fail: errors.New("down")}
	e := newEnv(t, func(d *Deps) {
		d.Inbox = inbox.New(inbox.Deps{Store: d.Store, MessagesInTx: rec, Log: d.Logger,
			WhatsApp: inbox.WhatsAppConfig{AppSecret: waSecret, VerifyToken: waVerify}})
	})
	body := waMessage("wamid.tx1", time.Now())
	if r := e.postWhatsApp(body, whatsapp.Signature(waSecret, body)); r.status < 500 {
		t.Fatalf("receiver down: %d %s", r.status, r.body)
	}
	if !stored(t, e.store, inbound.ProviderWhatsApp, body) {
		t.Fatal("not stored before it was applied")
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	for i, want := range []string{"applied", "replay"} {
		if r := e.postWhatsApp(body, whatsapp.Signature(waSecret, body)); r.status != 200 || r.json(t)["outcome"] != want {
			t.Fatalf("delivery %d: %d %s, want %s", i+2, r.status, r.body, want)
		}
	}
	if len(rec.applied) != 1 || rec.applied[0].ID != "wamid.tx1" || rec.applied[0].From != "+573001234567" {
		t.Fatalf("applied %+v, want wamid.tx1 once", rec.applied)
	}
}
