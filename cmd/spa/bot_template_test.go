package main

import (
	"testing"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/service/notify"
)

// TestStaffTemplate: with staff_reply in SPA_WHATSAPP_TEMPLATES, a
// person's reply outside the window reaches the Cloud API as that
// template, the text its one body parameter; without it there is none
// (the desk refuses such a reply).
func TestStaffTemplate(t *testing.T) {
	fake := whatsappfake.New("tpl-token", "106540352242922")
	t.Cleanup(fake.Close)
	fake.ApproveTemplate("respuesta_equipo", "es", 1)
	wa, err := whatsapp.New(whatsapp.Config{Token: "tpl-token", PhoneNumberID: "106540352242922", BaseURL: fake.URL,
		APIVersion: "v23.0", Policy: resilient.Policy{Attempts: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	templates, err := notify.ParseWhatsAppTemplates("staff_reply=respuesta_equipo:es:utility")
	if err != nil {
		t.Fatal(err)
	}
	if staffTemplate(map[notify.Kind]notify.WhatsAppTemplate{}, wa) != nil {
		t.Fatal("a staff template without one configured")
	}
	send := staffTemplate(templates, wa)
	if err := send(t.Context(), "+573001234567", "¿Sigues interesada en la cita?"); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 || sent[0].Type != "template" || sent[0].Template != "respuesta_equipo" || sent[0].Language != "es" ||
		len(sent[0].Params) != 1 || sent[0].Params[0] != "¿Sigues interesada en la cita?" || sent[0].To != "573001234567" {
		t.Fatalf("sent %+v", sent)
	}
	if _, err := notify.ParseWhatsAppTemplates("staff_reply=respuesta_equipo:es:authentication"); err == nil {
		t.Fatal("an authentication template accepted for staff replies")
	}
}
