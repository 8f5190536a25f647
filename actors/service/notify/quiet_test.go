package notify

import (
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/persistence"
)

func TestMarketingHoursDelaysMarketingOnly(t *testing.T) {
	bogota, err := time.LoadLocation("America/Bogota")
	if err != nil {
		t.Fatal(err)
	}
	m := MarketingHours{Policy: quiethours.Colombia(bogota)}
	sunday := time.Date(2026, 12, 13, 22, 0, 0, 0, bogota)
	monday7 := time.Date(2026, 12, 14, 7, 0, 0, 0, bogota)
	if d := m.Delay(persistence.Notification{Category: persistence.CategoryMarketing}, sunday); d != monday7.Sub(sunday) {
		t.Fatalf("marketing at Sunday 22:00 waits %s, want until Monday 7:00 (%s)", d, monday7.Sub(sunday))
	}
	for _, c := range []persistence.NotificationCategory{persistence.CategoryBooking, persistence.CategoryPayments} {
		if d := m.Delay(persistence.Notification{Category: c}, sunday); d != 0 {
			t.Fatalf("%s at Sunday 22:00 waits %s; transactional messages go at once", c, d)
		}
	}
	if d := m.Delay(persistence.Notification{Category: persistence.CategoryMarketing}, monday7.Add(time.Hour)); d != 0 {
		t.Fatalf("marketing inside the window waits %s", d)
	}
}
