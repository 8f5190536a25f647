package availability

import (
	"fmt"
	"testing"
	"time"
)

// busyDay returns a staff member with 40 back-to-back short appointments on
// monday from 08:00, three free minutes between each, and a free hour at
// the end of a 08:00-21:00 day.
func busyDay(tb testing.TB) Staff {
	s := worker(tb, "ana", "08:00-21:00")
	for i := range 40 {
		start := bog("08:00").Add(time.Duration(i) * 18 * time.Minute)
		s.Busy = append(s.Busy, Busy{Start: start, End: start.Add(15 * time.Minute)})
	}
	return s
}

func BenchmarkStaffDay40Appointments(b *testing.B) {
	s := []Staff{busyDay(b)}
	q := dayQuery(Service{ID: "express", Duration: 15 * time.Minute})
	q.Step = 5 * time.Minute
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Slots(q, s, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// month50 builds 50 staff with split shifts Monday to Saturday and about 8
// one-hour appointments a working day over 30 days.
func month50(tb testing.TB) (Query, []Staff) {
	week := map[time.Weekday][]ClockRange{}
	for d := time.Monday; d <= time.Saturday; d++ {
		week[d] = ranges(tb, "09:00-13:00", "14:00-19:00")
	}
	hours, err := NewWeeklyHours(week)
	if err != nil {
		tb.Fatal(err)
	}
	staff := make([]Staff, 50)
	for i := range staff {
		s := Staff{ID: fmt.Sprintf("staff-%02d", i), Active: true, Location: bogota, Hours: hours, Load: i % 7}
		for day := range 30 {
			d := monday.AddDays(day)
			if d.Weekday() == time.Sunday {
				continue
			}
			for k := range 8 {
				h := []int{9, 10, 11, 12, 14, 15, 16, 17, 18}[(k+i+day)%9]
				start := instant(d, ClockAt(h, 0), bogota)
				s.Busy = append(s.Busy, Busy{Start: start, End: start.Add(time.Hour), BufferAfter: 10 * time.Minute})
			}
		}
		staff[i] = s
	}
	q := Query{
		Service: Service{ID: "massage", Duration: time.Hour, BufferAfter: 10 * time.Minute},
		From:    bog("00:00"),
		To:      bog("00:00").AddDate(0, 0, 30),
		Now:     bog("00:00"),
	}
	return q, staff
}

func BenchmarkMonth50Staff(b *testing.B) {
	q, staff := month50(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Slots(q, staff, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnyStaffMonth50Staff(b *testing.B) {
	q, staff := month50(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnyStaff(q, staff, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFree(b *testing.B) {
	s := busyDay(b)
	q := dayQuery(Service{ID: "express", Duration: 15 * time.Minute})
	q.Step = 5 * time.Minute
	start := bog("20:00") // free: after the last appointment
	if ok, err := Free(q, s, nil, start); !ok || err != nil {
		b.Fatalf("benchmark slot not free: %v %v", ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Free(q, s, nil, start); err != nil {
			b.Fatal(err)
		}
	}
}
