package whatsapp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

func TestSendButtons(t *testing.T) {
	fake, c := setup(t, resilient.Policy{}, nil)
	fake.Inbound(waPhone, time.Now().Add(-time.Minute))
	id, err := c.SendButtons(context.Background(), phone, "Masaje 60 min, mañana 3:00 pm. ¿Confirmas?",
		[]Button{{ID: "confirm:H1", Title: "Confirmar"}, {ID: "change:H1", Title: "Cambiar"}})
	if err != nil || !strings.HasPrefix(id, "wamid.") {
		t.Fatalf("SendButtons = %q, %v", id, err)
	}
	got := fake.Sent()
	if len(got) != 1 || got[0].Type != "interactive" || !slices.Equal(got[0].Buttons, []string{"confirm:H1=Confirmar", "change:H1=Cambiar"}) {
		t.Fatalf("fake recorded %+v", got)
	}
	for _, bad := range [][]Button{nil, {{ID: "x", Title: strings.Repeat("a", 21)}}, {{ID: "", Title: "a"}},
		{{ID: "1", Title: "a"}, {ID: "2", Title: "b"}, {ID: "3", Title: "c"}, {ID: "4", Title: "d"}}} {
		if _, err := c.SendButtons(context.Background(), phone, "body", bad); !errors.Is(err, sender.ErrRejected) {
			t.Fatalf("buttons %+v: %v, want rejected", bad, err)
		}
	}
	if len(fake.Sent()) != 1 {
		t.Fatal("a refused message reached the provider")
	}
}
