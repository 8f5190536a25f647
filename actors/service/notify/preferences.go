package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Preferences (docs/notifications.md, Preferences): a client turns a
// category off on a channel (marketing on WhatsApp, everything on SMS)
// and may order the channels (email first). A message of a category the
// client turned off on every channel that could reach them is not sent:
// its row is recorded `skipped`, with the reason. What the client asked
// for themselves (requested) is never suppressed: their preferences order
// and filter its channels while one of the remaining ones reaches them,
// and when none does it goes by the kind's own order.

// Categories are the notification categories, in the order the API lists them.
func Categories() []persistence.NotificationCategory {
	return []persistence.NotificationCategory{persistence.CategoryBooking, persistence.CategoryPayments, persistence.CategoryMarketing}
}

// requested are the kinds the client asked for with what they did: the
// confirmation of their own booking, the hold of the slot they chose
// (until its deposit is paid) and the slot offered from the waitlist they
// joined. (The login code, the other one, is sent by the
// sign-in path, not through preferences.) Opt-outs never suppress them.
var requested = map[Kind]bool{KindAppointmentConfirmed: true, KindWaitlistOffer: true, KindAppointmentHeld: true}

// Requested reports whether kind is one the client asked for, never
// suppressed by their preferences.
func Requested(kind Kind) bool { return requested[kind] }

// Preferences are a client's notification preferences as they read them.
type Preferences struct {
	// On says, per category and channel, whether the client hears it;
	// every category and channel is present.
	On map[persistence.NotificationCategory]map[sender.Channel]bool
	// ChannelOrder is the client's order, most wanted first; empty: each
	// kind's own order.
	ChannelOrder []sender.Channel
	Version      int64 // 0: never set (the defaults)
	UpdatedAt    time.Time
}

// PreferencesInput replaces a client's preferences: On lists the
// categories and channels to set (one not listed is on), ChannelOrder
// the order (empty: each kind's own), Version the version read (0 when
// none was ever stored).
type PreferencesInput struct {
	On           map[string]map[string]bool
	ChannelOrder []string
	Version      int64
}

// preferencesView turns the stored row into what the client reads.
func preferencesView(p persistence.NotificationPreferences) Preferences {
	v := Preferences{On: map[persistence.NotificationCategory]map[sender.Channel]bool{}, Version: p.Version, UpdatedAt: p.UpdatedAt}
	for _, cat := range Categories() {
		v.On[cat] = map[sender.Channel]bool{}
		for _, ch := range TemplateChannels() {
			v.On[cat][ch] = !optedOut(p, cat, ch)
		}
	}
	for _, ch := range p.ChannelOrder {
		v.ChannelOrder = append(v.ChannelOrder, sender.Channel(ch))
	}
	return v
}

func optedOut(p persistence.NotificationPreferences, cat persistence.NotificationCategory, ch sender.Channel) bool {
	return slices.Contains(p.OptOuts, persistence.NotificationOptOut{Category: cat, Channel: string(ch)})
}

// allowClient: preferences are a client's own.
func allowClient(by service.Caller) error {
	switch {
	case by.Anonymous():
		return fault.Unauthenticated("")
	case by.Role != auth.RoleClient:
		return fault.Forbidden("notification preferences are a client's own")
	}
	return nil
}

// MyPreferences are the caller's preferences: the defaults (everything
// on, each kind's order, version 0) when they never set any.
func MyPreferences(ctx context.Context, st persistence.Store, by service.Caller) (Preferences, error) {
	if err := allowClient(by); err != nil {
		return Preferences{}, err
	}
	var p persistence.NotificationPreferences
	err := st.InTx(ctx, func(tx persistence.Tx) (err error) {
		p, err = loadPreferences(ctx, tx, by.Subject)
		return err
	})
	if err != nil {
		return Preferences{}, err
	}
	return preferencesView(p), nil
}

// loadPreferences is userID's stored row, or the defaults (version 0).
func loadPreferences(ctx context.Context, tx persistence.Tx, userID string) (persistence.NotificationPreferences, error) {
	p, err := tx.NotificationPreferencesGet(ctx, userID)
	if errors.Is(err, persistence.ErrNotFound) {
		return persistence.NotificationPreferences{UserID: userID}, nil
	}
	return p, err
}

// SetMyPreferences replaces the caller's preferences in tx after an
// optimistic version check (409 version_conflict) and audits the change
// (notification_preferences.update on user/<id>, with what is off and the
// order: no personal data).
func SetMyPreferences(ctx context.Context, tx persistence.Tx, by service.Caller, in PreferencesInput, now time.Time) (Preferences, error) {
	if err := allowClient(by); err != nil {
		return Preferences{}, err
	}
	next, err := in.check()
	if err != nil {
		return Preferences{}, err
	}
	next.UserID, next.Version, next.UpdatedAt = by.Subject, in.Version, now.UTC()
	cur, err := loadPreferences(ctx, tx, by.Subject)
	if err != nil {
		return Preferences{}, err
	}
	if cur.Version != in.Version {
		return Preferences{}, fault.VersionConflict("")
	}
	stored, err := tx.NotificationPreferencesPut(ctx, next)
	if errors.Is(err, persistence.ErrConflict) {
		return Preferences{}, fault.VersionConflict("")
	}
	if err != nil {
		return Preferences{}, err
	}
	off := make([]string, len(stored.OptOuts))
	for i, o := range stored.OptOuts {
		off[i] = string(o.Category) + ":" + o.Channel
	}
	if err := service.Audit(ctx, tx, now, by, "notification_preferences.update", "user/"+by.Subject, "",
		map[string]any{"off": off, "channel_order": stored.ChannelOrder, "version": stored.Version}); err != nil {
		return Preferences{}, err
	}
	return preferencesView(stored), nil
}

// check validates in into the row to store: every category, channel and
// version named is known, the order names each channel at most once.
func (in PreferencesInput) check() (persistence.NotificationPreferences, error) {
	var f check.Fields
	var p persistence.NotificationPreferences
	channels := TemplateChannels()
	for _, cat := range slices.Sorted(maps.Keys(in.On)) {
		if !slices.Contains(Categories(), persistence.NotificationCategory(cat)) {
			f.Add("categories."+cat, "unknown category: must be booking, payments or marketing")
			continue
		}
		for _, ch := range slices.Sorted(maps.Keys(in.On[cat])) {
			if !slices.Contains(channels, sender.Channel(ch)) {
				f.Add("categories."+cat+"."+ch, "unknown channel: must be whatsapp, sms or email")
				continue
			}
			if !in.On[cat][ch] {
				p.OptOuts = append(p.OptOuts, persistence.NotificationOptOut{Category: persistence.NotificationCategory(cat), Channel: ch})
			}
		}
	}
	for i, ch := range in.ChannelOrder {
		switch {
		case !slices.Contains(channels, sender.Channel(ch)):
			f.Add(fmt.Sprintf("channel_order[%d]", i), "unknown channel: must be whatsapp, sms or email")
		case slices.Contains(in.ChannelOrder[:i], ch):
			f.Add(fmt.Sprintf("channel_order[%d]", i), "names "+ch+" twice")
		}
	}
	p.ChannelOrder = slices.Clone(in.ChannelOrder)
	if in.Version < 0 {
		f.Add("version", "must be the version read (0 when none was stored)")
	}
	return p, f.Err()
}

// route is the channels a message goes through for this client, in
// order, with those that cannot reach them left out, and when the
// client's preferences leave none, why ("" when none could reach them
// anyway, or the kind is requested: then route falls back to the kind's
// own order).
func (s *Service) route(in intent, p prepared) (reachable []sender.Channel, skipped string) {
	ordered := orderChannels(s.channels(in.kind), p.prefs.ChannelOrder)
	cat := categories[in.kind]
	var reach, off []sender.Channel
	for _, ch := range ordered {
		if p.to(ch) == "" {
			continue
		}
		reach = append(reach, ch)
		if optedOut(p.prefs, cat, ch) {
			off = append(off, ch)
			continue
		}
		reachable = append(reachable, ch)
	}
	if len(reachable) > 0 || len(reach) == 0 {
		return reachable, ""
	}
	if requested[in.kind] {
		return reach, ""
	}
	names := make([]string, len(off))
	for i, ch := range off {
		names[i] = string(ch)
	}
	return nil, fmt.Sprintf("the client turned %s off on %s", cat, strings.Join(names, ", "))
}

// orderChannels is kind's channels with the client's order first: the
// channels order names, in its order, then the rest in the kind's.
func orderChannels(kind []sender.Channel, order []string) []sender.Channel {
	if len(order) == 0 {
		return kind
	}
	out := make([]sender.Channel, 0, len(kind))
	for _, ch := range order {
		if slices.Contains(kind, sender.Channel(ch)) {
			out = append(out, sender.Channel(ch))
		}
	}
	for _, ch := range kind {
		if !slices.Contains(out, ch) {
			out = append(out, ch)
		}
	}
	return out
}

// skip records, on the first channel the client's order gives the kind,
// that the client's preferences suppressed the message: skipped, with the
// reason, never sent.
func (s *Service) skip(ctx context.Context, in intent, p prepared, reason string) error {
	ch := orderChannels(s.channels(in.kind), p.prefs.ChannelOrder)[0]
	n := persistence.Notification{ID: in.cause + ":" + string(ch), UserID: in.userID, Kind: string(in.kind),
		Category: categories[in.kind], Channel: string(ch), Status: persistence.NotificationSkipped,
		LastError: reason, CreatedAt: s.deps.Now(), UpdatedAt: s.deps.Now()}
	_, created, err := s.create(ctx, n)
	if err == nil && created {
		s.deps.Log.Info("notification skipped: the client's preferences", "id", n.ID, "kind", in.kind, "reason", reason)
	}
	return err
}
