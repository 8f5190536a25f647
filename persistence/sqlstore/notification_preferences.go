package sqlstore

import (
	"context"
	"strings"

	"github.com/spa-engine/spa/persistence"
)

// Clients' notification preferences (persistence/notification_preferences.go):
// one row per client, the opt-outs as "category:channel" pairs and the
// channel order, each comma-separated.

func (t *txn) NotificationPreferencesGet(ctx context.Context, userID string) (persistence.NotificationPreferences, error) {
	p := persistence.NotificationPreferences{UserID: userID}
	var optOuts, order string
	err := t.queryRow(ctx, `SELECT opt_outs, channel_order, version, updated_at FROM notification_preferences WHERE user_id = ?`,
		userID).Scan(&optOuts, &order, &p.Version, t.at(&p.UpdatedAt))
	if err != nil {
		return p, t.mapErr(err)
	}
	for _, pair := range splitList(optOuts) {
		cat, ch, _ := strings.Cut(pair, ":")
		p.OptOuts = append(p.OptOuts, persistence.NotificationOptOut{Category: persistence.NotificationCategory(cat), Channel: ch})
	}
	p.ChannelOrder = splitList(order)
	return p, nil
}

func (t *txn) NotificationPreferencesPut(ctx context.Context, p persistence.NotificationPreferences) (persistence.NotificationPreferences, error) {
	p, err := persistence.NormalizeNotificationPreferences(p)
	if err != nil {
		return p, err
	}
	pairs := make([]string, len(p.OptOuts))
	for i, o := range p.OptOuts {
		pairs[i] = string(o.Category) + ":" + o.Channel
	}
	optOuts, order := strings.Join(pairs, ","), strings.Join(p.ChannelOrder, ",")
	var n int
	if p.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO notification_preferences (user_id, opt_outs, channel_order, version, updated_at)
			VALUES (?, ?, ?, 1, ?) ON CONFLICT (user_id) DO NOTHING`, p.UserID, optOuts, order, t.ts(p.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE notification_preferences SET opt_outs = ?, channel_order = ?, version = version + 1,
			updated_at = ? WHERE user_id = ? AND version = ?`, optOuts, order, t.ts(p.UpdatedAt), p.UserID, p.Version)
	}
	if err != nil {
		return p, err
	}
	if n == 0 {
		return p, persistence.VersionConflict("notification preferences", p.UserID, p.Version)
	}
	p.Version++
	return p, nil
}

// splitList is a comma-separated column as its items (none for "").
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
