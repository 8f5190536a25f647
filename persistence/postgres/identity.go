package postgres

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/persistence"
)

// ---- Users ----

const userColumns = `id, phone_index, phone_cipher, roles, created_at, updated_at`

func scanUser(r rowScanner) (persistence.User, error) {
	var u persistence.User
	var roles string
	var created, updated time.Time
	if err := r.Scan(&u.ID, &u.PhoneIndex, &u.PhoneCipher, &roles, &created, &updated); err != nil {
		return u, err
	}
	u.Roles = strings.Split(roles, ",")
	u.CreatedAt, u.UpdatedAt = ts(created), ts(updated)
	return u, nil
}

func (t *txn) UserCreate(ctx context.Context, u persistence.User) error {
	u, err := persistence.NormalizeUser(u)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.PhoneIndex, u.PhoneCipher, strings.Join(u.Roles, ","), ts(u.CreatedAt), ts(u.UpdatedAt))
	return err
}

func (t *txn) UserGet(ctx context.Context, id string) (persistence.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, mapErr(err)
}

func (t *txn) UserGetByPhoneIndex(ctx context.Context, index []byte) (persistence.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE phone_index = $1`, index))
	return u, mapErr(err)
}

func (t *txn) UserSetRoles(ctx context.Context, id string, roles []string, at time.Time) error {
	if err := persistence.CheckRoles(roles); err != nil {
		return err
	}
	n, err := t.exec(ctx, `UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3`, strings.Join(roles, ","), ts(at), id)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
	}
	return err
}

// ---- OTP state ----

func (t *txn) OTPStateGet(ctx context.Context, phoneKey string) (persistence.OTPState, error) {
	s := persistence.OTPState{PhoneKey: phoneKey}
	var locked *time.Time
	var updated time.Time
	err := t.tx.QueryRow(ctx, `SELECT state, locked_until, version, updated_at FROM otp_states WHERE phone_key = $1`, phoneKey).
		Scan(&s.State, &locked, &s.Version, &updated)
	if err != nil {
		return persistence.OTPState{}, mapErr(err)
	}
	s.LockedUntil, s.UpdatedAt = fromNullTS(locked), ts(updated)
	return s, nil
}

func (t *txn) OTPStatePut(ctx context.Context, s persistence.OTPState) (persistence.OTPState, error) {
	s, err := persistence.NormalizeOTPState(s)
	if err != nil {
		return s, err
	}
	var n int
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO otp_states (phone_key, state, locked_until, version, updated_at)
			VALUES ($1, $2, $3, 1, $4) ON CONFLICT (phone_key) DO NOTHING`,
			s.PhoneKey, s.State, nullTS(s.LockedUntil), ts(s.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE otp_states SET state = $1, locked_until = $2, version = version + 1, updated_at = $3
			WHERE phone_key = $4 AND version = $5`,
			s.State, nullTS(s.LockedUntil), ts(s.UpdatedAt), s.PhoneKey, s.Version)
	}
	if err != nil {
		return s, err
	}
	if n == 0 {
		return s, persistence.VersionConflict("otp state", s.PhoneKey, s.Version)
	}
	s.Version++
	return s, nil
}

// ---- Sessions ----

const sessionColumns = `id, user_id, device, user_agent, ip, created_at, last_seen_at, expires_at, revoked_at, revoke_reason`

func scanSession(r rowScanner) (persistence.Session, error) {
	var s persistence.Session
	var created, seen, expires time.Time
	var revoked *time.Time
	if err := r.Scan(&s.ID, &s.UserID, &s.Device, &s.UserAgent, &s.IP, &created, &seen, &expires, &revoked, &s.RevokeReason); err != nil {
		return s, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.RevokedAt = ts(created), ts(seen), ts(expires), fromNullTS(revoked)
	return s, nil
}

func (t *txn) SessionCreate(ctx context.Context, s persistence.Session) error {
	s, err := persistence.NormalizeSession(s)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO login_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		s.ID, s.UserID, s.Device, s.UserAgent, s.IP, ts(s.CreatedAt), ts(s.LastSeenAt), ts(s.ExpiresAt),
		nullTS(s.RevokedAt), s.RevokeReason)
	return err
}

func (t *txn) SessionGet(ctx context.Context, id string) (persistence.Session, error) {
	s, err := scanSession(t.tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM login_sessions WHERE id = $1`, id))
	return s, mapErr(err)
}

func (t *txn) SessionListByUser(ctx context.Context, userID string, now time.Time, limit int) ([]persistence.Session, error) {
	if err := persistence.CheckLimit("session list", limit, persistence.MaxSessionListLimit); err != nil {
		return nil, err
	}
	return queryList(ctx, t, scanSession, `SELECT `+sessionColumns+` FROM login_sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY last_seen_at DESC, id DESC LIMIT $3`, userID, ts(now), limit)
}

func (t *txn) SessionTouch(ctx context.Context, id string, at time.Time, ip, userAgent string) error {
	n, err := t.exec(ctx, `UPDATE login_sessions SET last_seen_at = $1, ip = $2, user_agent = $3 WHERE id = $4`,
		ts(at), ip, userAgent, id)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
	}
	return err
}

func (t *txn) SessionRevoke(ctx context.Context, id string, at time.Time, reason string) (bool, error) {
	n, err := t.exec(ctx, `UPDATE login_sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
		ts(at), reason, id)
	if err != nil || n > 0 {
		return n > 0, err
	}
	if _, err := t.SessionGet(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

func (t *txn) SessionRevokeByUser(ctx context.Context, userID string, at time.Time, reason string) ([]string, error) {
	ids, err := queryList(ctx, t, func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `UPDATE login_sessions SET revoked_at = $1, revoke_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL RETURNING id`,
		ts(at), reason, userID)
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order; callers and tests expect a stable one.
	slices.Sort(ids)
	return ids, nil
}

func (t *txn) SessionListRevokedSince(ctx context.Context, since time.Time, limit int) ([]string, error) {
	if err := persistence.CheckLimit("revoked session list", limit, 0); err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT id FROM login_sessions WHERE revoked_at >= $1 ORDER BY revoked_at DESC LIMIT $2`, ts(since), limit)
}

func (t *txn) SessionCountLive(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM login_sessions WHERE revoked_at IS NULL AND expires_at > $1`, ts(now)).Scan(&n)
	return int(n), mapErr(err)
}

// ---- Refresh tokens ----

func (t *txn) RefreshTokenPut(ctx context.Context, rt persistence.RefreshToken) error {
	rt, err := persistence.NormalizeRefreshToken(rt)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, parent_hash, issued_at, expires_at, used_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		rt.Hash, rt.SessionID, rt.ParentHash, ts(rt.IssuedAt), ts(rt.ExpiresAt), nullTS(rt.UsedAt))
	return err
}

func (t *txn) RefreshTokenGet(ctx context.Context, hash []byte) (persistence.RefreshToken, error) {
	var rt persistence.RefreshToken
	var issued, expires time.Time
	var used *time.Time
	err := t.tx.QueryRow(ctx, `SELECT token_hash, session_id, parent_hash, issued_at, expires_at, used_at
		FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&rt.Hash, &rt.SessionID, &rt.ParentHash, &issued, &expires, &used)
	if err != nil {
		return persistence.RefreshToken{}, mapErr(err)
	}
	rt.IssuedAt, rt.ExpiresAt, rt.UsedAt = ts(issued), ts(expires), fromNullTS(used)
	return rt, nil
}

func (t *txn) RefreshTokenUse(ctx context.Context, hash []byte, at time.Time) error {
	n, err := t.exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL`, ts(at), hash)
	if err != nil || n > 0 {
		return err
	}
	if _, err := t.RefreshTokenGet(ctx, hash); err != nil {
		return err
	}
	return persistence.ErrRefreshTokenReused
}

var _ persistence.IdentityStore = (*txn)(nil)
