package whatsapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Inbound is one user message from a webhook, flattened out of Meta's
// entry/changes/value envelope.
type Inbound struct {
	ID            string // wamid: dedupe on it, Meta redelivers on non-200
	From          string // wa_id, digits only (no "+")
	ProfileName   string
	PhoneNumberID string // which of our numbers received it
	Time          time.Time
	Type          string // text, button, interactive, image, ...
	// Text is the text body, a button's text, or an interactive reply's
	// title; Payload is a button payload or an interactive reply id.
	Text, Payload string
}

// StatusUpdate is one delivery status from a webhook. Statuses arrive out of
// order and "delivered" may be skipped when "read" comes first.
type StatusUpdate struct {
	ID          string // wamid of our message
	RecipientID string
	Status      string // sent, delivered, read, failed
	Time        time.Time
	// ErrorCodes are Meta's codes for a failed message (e.g. 131047).
	ErrorCodes []int
}

// Webhook is a parsed notification.
type Webhook struct {
	Messages []Inbound
	Statuses []StatusUpdate
}

// ErrNotWhatsApp is returned for a body whose object is not
// whatsapp_business_account.
var ErrNotWhatsApp = errors.New("whatsapp: not a whatsapp_business_account notification")

type envelope struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Contacts []struct {
					Profile struct {
						Name string `json:"name"`
					} `json:"profile"`
					WaID string `json:"wa_id"`
				} `json:"contacts"`
				Messages []struct {
					From      string `json:"from"`
					ID        string `json:"id"`
					Timestamp string `json:"timestamp"`
					Type      string `json:"type"`
					Text      struct {
						Body string `json:"body"`
					} `json:"text"`
					Button struct {
						Payload string `json:"payload"`
						Text    string `json:"text"`
					} `json:"button"`
					Interactive struct {
						ButtonReply struct {
							ID    string `json:"id"`
							Title string `json:"title"`
						} `json:"button_reply"`
						ListReply struct {
							ID    string `json:"id"`
							Title string `json:"title"`
						} `json:"list_reply"`
					} `json:"interactive"`
				} `json:"messages"`
				Statuses []struct {
					ID          string `json:"id"`
					Status      string `json:"status"`
					Timestamp   string `json:"timestamp"`
					RecipientID string `json:"recipient_id"`
					Errors      []struct {
						Code int `json:"code"`
					} `json:"errors"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// ParseWebhook parses a webhook body. Check ValidSignature on the same raw
// bytes first.
func ParseWebhook(body []byte) (Webhook, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Webhook{}, fmt.Errorf("whatsapp: webhook body: %w", err)
	}
	if env.Object != "whatsapp_business_account" {
		return Webhook{}, ErrNotWhatsApp
	}
	var w Webhook
	for _, e := range env.Entry {
		for _, ch := range e.Changes {
			if ch.Field != "messages" {
				continue
			}
			v := ch.Value
			names := map[string]string{}
			for _, c := range v.Contacts {
				names[c.WaID] = c.Profile.Name
			}
			for _, m := range v.Messages {
				ts, err := unixString(m.Timestamp)
				if err != nil {
					return Webhook{}, err
				}
				in := Inbound{ID: m.ID, From: m.From, ProfileName: names[m.From], PhoneNumberID: v.Metadata.PhoneNumberID, Time: ts, Type: m.Type}
				switch m.Type {
				case "text":
					in.Text = m.Text.Body
				case "button":
					in.Text, in.Payload = m.Button.Text, m.Button.Payload
				case "interactive":
					if r := m.Interactive.ButtonReply; r.ID != "" {
						in.Text, in.Payload = r.Title, r.ID
					} else {
						in.Text, in.Payload = m.Interactive.ListReply.Title, m.Interactive.ListReply.ID
					}
				}
				w.Messages = append(w.Messages, in)
			}
			for _, s := range v.Statuses {
				ts, err := unixString(s.Timestamp)
				if err != nil {
					return Webhook{}, err
				}
				su := StatusUpdate{ID: s.ID, RecipientID: s.RecipientID, Status: s.Status, Time: ts}
				for _, e := range s.Errors {
					su.ErrorCodes = append(su.ErrorCodes, e.Code)
				}
				w.Statuses = append(w.Statuses, su)
			}
		}
	}
	return w, nil
}

// unixString parses Meta's timestamps: a string of Unix seconds.
func unixString(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("whatsapp: bad timestamp %q", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
