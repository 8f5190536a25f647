package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence/pgtest"
)

// TestClusterBot is issue 18's cluster done-when on three real processes
// and PostgreSQL: "Hola, quiero un masaje mañana a las 3" posted to one
// node gets its proposal; the "Confirmar" tap posted to a node that does
// not host the phone's session actor still confirms (the message reaches
// the actor on its owner); exactly one session actor in the cluster holds
// the conversation; the appointment is in the agenda.
func TestClusterBot(t *testing.T) {
	pgtest.BaseURL(t) // the three-node tests need PostgreSQL
	bin := buildBinary(t)
	fake := whatsappfake.New("bot-cluster-token", "106540352242922")
	t.Cleanup(fake.Close)
	c := startTestCluster(t, bin, func(int) map[string]string { return botEnv(fake, map[string]string{}) })
	w := &botWorld{t: t, fake: fake, secret: botAppSecret, waID: "573005556677", admin: c.admin, a: api{t, c.nodes[0].base}}
	w.a.must(200, "PUT", "/v1/admin/staff/ana", c.admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
		"time_zone": "America/Bogota", "weekly_hours": everyDay("08:00", "18:00"), "active": true, "version": 0})
	w.a.must(200, "PUT", "/v1/admin/services/massage-60", c.admin, map[string]any{"name": "Masaje", "category": "body",
		"duration_minutes": 60, "price_minor": 12000000, "required_skills": []string{"massage"},
		"cancel_cutoff_minutes": 60, "active": true, "version": 0})

	w.post("Hola, quiero un masaje mañana a las 3", "")
	prop := w.waitSent("the proposal", func(m whatsappfake.Sent) bool { return m.Type == "interactive" && m.To == w.waID })
	var confirm string
	for _, b := range prop.Buttons {
		if id, title, _ := strings.Cut(b, "="); title == "Confirmar" {
			confirm = id
		}
	}
	if confirm == "" {
		t.Fatalf("proposal %+v", prop)
	}
	// The node hosting the phone's session actor; the tap goes to another.
	host := -1
	testwait.Until(t, 10*time.Second, "the session actor on one node", func() error {
		var hosts []int
		for i, p := range c.nodes {
			if metric(t, p, "spa_session_actors") > 0 {
				hosts = append(hosts, i)
			}
		}
		if len(hosts) != 1 {
			return fmt.Errorf("session actors on nodes %v", hosts)
		}
		host = hosts[0]
		return nil
	})
	other := (host + 1) % len(c.nodes)
	w.a = api{t, c.nodes[other].base}
	w.post("Confirmar", confirm)
	w.waitSent("the confirmation", func(m whatsappfake.Sent) bool { return strings.Contains(m.Text, "Listo") && m.To == w.waID })

	apt := strings.TrimPrefix(confirm, "confirm:")
	got := w.a.must(200, "GET", "/v1/appointments/"+apt, c.admin, nil)
	if got["status"] != "confirmed" {
		t.Fatalf("appointment %v", got)
	}
	var actors float64
	for _, p := range c.nodes {
		actors += metric(t, p, "spa_session_actors")
	}
	if actors != 1 {
		t.Fatalf("%v session actors across the cluster, want 1", actors)
	}
}
