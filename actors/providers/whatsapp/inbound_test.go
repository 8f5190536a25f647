package whatsapp

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// officialExample is Meta's incoming text message example (external-apis.md §1).
const officialExample = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{
  "messaging_product":"whatsapp",
  "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
  "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
  "messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
               "timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]}}]}]}`

const statusExample = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
  "messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},
  "statuses":[{"id":"wamid.X","status":"failed","timestamp":"1750263773","recipient_id":"573001234567",
  "pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"},
  "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
             "error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]}}]}]}`

func TestParseWebhookOfficialExample(t *testing.T) {
	w, err := ParseWebhook([]byte(officialExample))
	if err != nil {
		t.Fatal(err)
	}
	want := Inbound{
		ID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", From: "16505551234",
		ProfileName: "Sheena Nelson", PhoneNumberID: "106540352242922",
		Time: time.Unix(1749416383, 0).UTC(), Type: "text", Text: "Does it come in another color?",
	}
	if len(w.Messages) != 1 || w.Messages[0] != want || len(w.Statuses) != 0 {
		t.Fatalf("parsed %+v, want %+v", w, want)
	}
}

func TestParseWebhookStatusAndReplies(t *testing.T) {
	w, err := ParseWebhook([]byte(statusExample))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Statuses) != 1 || w.Statuses[0].Status != "failed" || !slices.Equal(w.Statuses[0].ErrorCodes, []int{131047}) ||
		w.Statuses[0].Time != time.Unix(1750263773, 0).UTC() {
		t.Fatalf("parsed %+v", w)
	}
	const button = `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[
	  {"from":"573001234567","id":"wamid.B","timestamp":"1","type":"button","button":{"payload":"CONFIRM","text":"Confirmar"}},
	  {"from":"573001234567","id":"wamid.I","timestamp":"2","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"slot-3","title":"3:00 pm"}}}]}}]}]}`
	w, err = ParseWebhook([]byte(button))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Messages) != 2 || w.Messages[0].Payload != "CONFIRM" || w.Messages[0].Text != "Confirmar" ||
		w.Messages[1].Payload != "slot-3" || w.Messages[1].Text != "3:00 pm" {
		t.Fatalf("parsed %+v", w.Messages)
	}
}

func TestParseWebhookRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{`,
		"numeric ts":      `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x","timestamp":1}]}}]}]}`,
		"garbage ts":      `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x","timestamp":"soon"}]}}]}]}`,
		"other object":    `{"object":"page","entry":[]}`,
		"negative status": `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"x","timestamp":"-5"}]}}]}]}`,
	} {
		if _, err := ParseWebhook([]byte(body)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	if _, err := ParseWebhook([]byte(`{"object":"page"}`)); !errors.Is(err, ErrNotWhatsApp) {
		t.Errorf("other object: %v, want ErrNotWhatsApp", err)
	}
}

func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(officialExample))
	f.Add([]byte(statusExample))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err != nil {
			return
		}
		for _, m := range w.Messages {
			if m.Time.Location() != time.UTC {
				t.Fatalf("non-UTC time %v", m.Time)
			}
		}
	})
}
