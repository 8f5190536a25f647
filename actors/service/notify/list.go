package notify

import (
	"context"
	"slices"
	"strings"

	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/persistence"
)

// Query selects recent notifications for the admin list.
type Query struct {
	Status persistence.NotificationStatus // "": any
	Kind   Kind                           // "": any
	Limit  int                            // 1..MaxListLimit; 0: DefaultListLimit
}

// The admin list's page sizes.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// Recent lists notifications newest first, bodies opened: the admin's
// view of what was sent (on a dev node, the only place the messages show).
// An unknown status or kind is a validation error naming the field.
func Recent(ctx context.Context, st persistence.Store, q Query) ([]persistence.Notification, error) {
	var f check.Fields
	if q.Status != "" && !q.Status.Valid() {
		f.Add("status", "must be queued, sent, delivered, read, failed, dead or skipped")
	}
	if q.Kind != "" && !slices.Contains(Kinds(), q.Kind) {
		f.Add("kind", "must be one of "+kindNames())
	}
	if q.Limit < 0 {
		f.Add("limit", "must be a positive integer")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	var out []persistence.Notification
	err := st.InTx(ctx, func(tx persistence.Tx) (err error) {
		out, err = tx.NotificationList(ctx, persistence.NotificationListParams{Status: q.Status, Kind: string(q.Kind), Limit: min(q.Limit, MaxListLimit)})
		return err
	})
	return out, err
}

// kindNames lists the kinds for an error message.
func kindNames() string {
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}
