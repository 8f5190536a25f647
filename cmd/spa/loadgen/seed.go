package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// newPlan names the run's world: its id, service, staff and days. Nothing
// exists on the node until seed creates it.
func newPlan(o Options) (*plan, error) {
	bogota, err := time.LoadLocation(zone)
	if err != nil {
		return nil, err
	}
	p := &plan{runID: newRunID(), slots: int(time.Duration(openMinutes) * time.Minute / o.Slot)}
	p.service = p.runID + "-svc"
	today := time.Now().In(bogota)
	first := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, bogota).AddDate(0, 0, 2)
	for d := range o.Days {
		p.days = append(p.days, first.AddDate(0, 0, d))
	}
	for i := range o.Staff {
		p.staff = append(p.staff, fmt.Sprintf("%s-s%04d", p.runID, i))
	}
	if o.Scenario == ScenarioMixed {
		p.churn = p.runID + "-churn"
	}
	return p, nil
}

// seed creates p's service and staff through the admin API, waits until
// the booking path sees them, and warms every calendar with one
// availability read (so both engines start from loaded calendars).
func seed(ctx context.Context, c *client, o Options, p *plan) error {
	skill := "sk-" + p.runID
	all := p.staff
	if p.churn != "" {
		all = append(append([]string(nil), p.staff...), p.churn)
	}

	if _, err := c.must(ctx, http.StatusOK, http.MethodPut, "/v1/admin/services/"+p.service, o.AdminToken, map[string]any{
		"name": "Load test " + p.runID, "category": "loadgen", "duration_minutes": int(o.Slot / time.Minute),
		"price_minor": 5000000, "required_skills": []string{skill}, "deposit_policy": "none", "active": true, "version": 0,
	}); err != nil {
		return err
	}
	hours := []map[string]string{{"start": clock(openFrom), "end": clock(openFrom + openMinutes)}}
	week := map[string]any{}
	for _, d := range []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} {
		week[d] = hours
	}
	if err := parallel(ctx, all, 8, func(id string) error {
		_, err := c.must(ctx, http.StatusOK, http.MethodPut, "/v1/admin/staff/"+id, o.AdminToken, map[string]any{
			"name": "Staff " + id, "skills": []string{skill}, "time_zone": zone, "weekly_hours": week, "active": true, "version": 0,
		})
		return err
	}); err != nil {
		return err
	}

	// The catalogue is cached at the edge: wait until every calendar
	// answers with the day's full grid.
	read := func(id string) (int, error) {
		day := p.days[0]
		path := fmt.Sprintf("/v1/availability?service=%s&staff=%s&from=%s&to=%s", p.service, id,
			day.UTC().Format(time.RFC3339), day.AddDate(0, 0, 1).UTC().Format(time.RFC3339))
		r := c.do(ctx, http.MethodGet, path, "", nil, "")
		if r.err != nil {
			return 0, r.err
		}
		if r.status != http.StatusOK {
			return 0, fmt.Errorf("GET %s = %d %v", path, r.status, r.body())
		}
		slots, _ := r.body()["slots"].([]any)
		return len(slots), nil
	}
	deadline := time.Now().Add(30 * time.Second)
	err := parallel(ctx, all, 8, func(id string) error {
		for {
			n, err := read(id)
			if err == nil && n == p.slots {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("staff %s: %d of %d slots visible after 30s (%v)", id, n, p.slots, err)
			}
			if !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
				return ctx.Err()
			}
		}
	})
	if err != nil {
		return err
	}
	if o.Scenario == ScenarioHot {
		p.freeSlots = p.slots
	}
	return nil
}

func clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// parallel runs fn for every id with at most n at once, returning the
// first error.
func parallel(ctx context.Context, ids []string, n int, fn func(string) error) error {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(id); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
