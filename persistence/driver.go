package persistence

import (
	"fmt"
	"time"
)

// Helpers for the SQL layer (persistence/sqlstore), so that it holds only
// SQL and mapping.

// MaxAuditListLimit is the largest AuditListParams.Limit accepted.
const MaxAuditListLimit = 1000

// CanonicalTime is t as every driver stores it: UTC, truncated to
// microseconds (the precision PostgreSQL keeps). The zero time stays zero.
func CanonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CheckLimit returns an error wrapping ErrInvalid unless 1 <= limit <= max
// (max 0: no upper bound). what names the parameter in the message.
func CheckLimit(what string, limit, max int) error {
	if limit < 1 || (max > 0 && limit > max) {
		return fmt.Errorf("persistence: %s limit %d out of range: %w", what, limit, ErrInvalid)
	}
	return nil
}

// StudioVersionConflict is the error StudioPut returns when the stored
// version of s is not s.Version.
func StudioVersionConflict(s Studio) error {
	return VersionConflict("studio", s.ID, s.Version)
}

// VersionConflict is the error an optimistic update of the kind row id
// returns when its stored version is not version, or (version > 0) when the
// row does not exist; for version 0 the row already exists.
func VersionConflict(kind, id string, version int64) error {
	return fmt.Errorf("persistence: %s %q is not at version %d: %w", kind, id, version, ErrConflict)
}
