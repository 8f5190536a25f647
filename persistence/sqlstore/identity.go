package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// ---- Users ----

const userColumns = `id, phone_index, phone_cipher, roles, created_at, updated_at, second_factor_due`

func (t *txn) scanUser(r row) (persistence.User, error) {
	var u persistence.User
	var roles string
	if err := r.Scan(&u.ID, &u.PhoneIndex, &u.PhoneCipher, &roles, t.at(&u.CreatedAt), t.at(&u.UpdatedAt), t.at(&u.SecondFactorDue)); err != nil {
		return u, err
	}
	u.Roles = strings.Split(roles, ",")
	return u, nil
}

func (t *txn) UserCreate(ctx context.Context, u persistence.User) error {
	u, err := persistence.NormalizeUser(u)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.PhoneIndex, u.PhoneCipher, strings.Join(u.Roles, ","), t.ts(u.CreatedAt), t.ts(u.UpdatedAt), t.nullTS(u.SecondFactorDue))
	return err
}

func (t *txn) UserGet(ctx context.Context, id string) (persistence.User, error) {
	u, err := t.scanUser(t.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, t.mapErr(err)
}

func (t *txn) UserGetByPhoneIndex(ctx context.Context, index []byte) (persistence.User, error) {
	u, err := t.scanUser(t.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE phone_index = ?`, index))
	return u, t.mapErr(err)
}

func (t *txn) UserSetRoles(ctx context.Context, id string, roles []string, at time.Time) error {
	if err := persistence.CheckRoles(roles); err != nil {
		return err
	}
	n, err := t.exec(ctx, `UPDATE users SET roles = ?, updated_at = ? WHERE id = ?`, strings.Join(roles, ","), t.ts(at), id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) UserSetSecondFactorDue(ctx context.Context, id string, due time.Time) error {
	n, err := t.exec(ctx, `UPDATE users SET second_factor_due = ? WHERE id = ?`, t.nullTS(due), id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

// ---- OTP state ----

func (t *txn) OTPStateGet(ctx context.Context, phoneKey string) (persistence.OTPState, error) {
	s := persistence.OTPState{PhoneKey: phoneKey}
	err := t.queryRow(ctx, `SELECT state, locked_until, version, updated_at FROM otp_states WHERE phone_key = ?`, phoneKey).
		Scan(&s.State, t.at(&s.LockedUntil), &s.Version, t.at(&s.UpdatedAt))
	if err != nil {
		return persistence.OTPState{}, t.mapErr(err)
	}
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
			VALUES (?, ?, ?, 1, ?) ON CONFLICT (phone_key) DO NOTHING`,
			s.PhoneKey, s.State, t.nullTS(s.LockedUntil), t.ts(s.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE otp_states SET state = ?, locked_until = ?, version = version + 1, updated_at = ?
			WHERE phone_key = ? AND version = ?`,
			s.State, t.nullTS(s.LockedUntil), t.ts(s.UpdatedAt), s.PhoneKey, s.Version)
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

const sessionColumns = `id, user_id, device, user_agent, ip, created_at, last_seen_at, expires_at, revoked_at, revoke_reason, second_factor`

func (t *txn) scanSession(r row) (persistence.Session, error) {
	var s persistence.Session
	if err := r.Scan(&s.ID, &s.UserID, &s.Device, &s.UserAgent, &s.IP, t.at(&s.CreatedAt), t.at(&s.LastSeenAt),
		t.at(&s.ExpiresAt), t.at(&s.RevokedAt), &s.RevokeReason, &s.SecondFactor); err != nil {
		return s, err
	}
	return s, nil
}

func (t *txn) SessionCreate(ctx context.Context, s persistence.Session) error {
	s, err := persistence.NormalizeSession(s)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO login_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.UserID, s.Device, s.UserAgent, s.IP, t.ts(s.CreatedAt), t.ts(s.LastSeenAt), t.ts(s.ExpiresAt),
		t.nullTS(s.RevokedAt), s.RevokeReason, s.SecondFactor)
	return err
}

func (t *txn) SessionGet(ctx context.Context, id string) (persistence.Session, error) {
	s, err := t.scanSession(t.queryRow(ctx, `SELECT `+sessionColumns+` FROM login_sessions WHERE id = ?`, id))
	return s, t.mapErr(err)
}

func (t *txn) SessionListByUser(ctx context.Context, userID string, now time.Time, limit int) ([]persistence.Session, error) {
	if err := persistence.CheckLimit("session list", limit, persistence.MaxSessionListLimit); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanSession, `SELECT `+sessionColumns+` FROM login_sessions
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
		ORDER BY last_seen_at DESC, id DESC LIMIT ?`, userID, t.ts(now), limit)
}

func (t *txn) SessionTouch(ctx context.Context, id string, at time.Time, ip, userAgent string) error {
	n, err := t.exec(ctx, `UPDATE login_sessions SET last_seen_at = ?, ip = ?, user_agent = ? WHERE id = ?`,
		t.ts(at), ip, userAgent, id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) SessionSetSecondFactor(ctx context.Context, id string) error {
	n, err := t.exec(ctx, `UPDATE login_sessions SET second_factor = ? WHERE id = ?`, true, id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) SessionRevoke(ctx context.Context, id string, at time.Time, reason string) (bool, error) {
	n, err := t.exec(ctx, `UPDATE login_sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`,
		t.ts(at), reason, id)
	if err != nil || n > 0 {
		return n > 0, err
	}
	if _, err := t.SessionGet(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

func (t *txn) SessionRevokeByUser(ctx context.Context, userID string, at time.Time, reason string) ([]string, error) {
	ids, err := queryList(ctx, t, func(r row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `UPDATE login_sessions SET revoked_at = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id`,
		t.ts(at), reason, userID)
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
	return queryList(ctx, t, func(r row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT id FROM login_sessions WHERE revoked_at >= ? ORDER BY revoked_at DESC LIMIT ?`, t.ts(since), limit)
}

func (t *txn) SessionCountLive(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT count(*) FROM login_sessions WHERE revoked_at IS NULL AND expires_at > ?`, t.ts(now)).Scan(&n)
	return n, t.mapErr(err)
}

// ---- Refresh tokens ----

func (t *txn) RefreshTokenPut(ctx context.Context, rt persistence.RefreshToken) error {
	rt, err := persistence.NormalizeRefreshToken(rt)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, parent_hash, issued_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		rt.Hash, rt.SessionID, rt.ParentHash, t.ts(rt.IssuedAt), t.ts(rt.ExpiresAt), t.nullTS(rt.UsedAt))
	return err
}

func (t *txn) RefreshTokenGet(ctx context.Context, hash []byte) (persistence.RefreshToken, error) {
	var rt persistence.RefreshToken
	err := t.queryRow(ctx, `SELECT token_hash, session_id, parent_hash, issued_at, expires_at, used_at
		FROM refresh_tokens WHERE token_hash = ?`, hash).
		Scan(&rt.Hash, &rt.SessionID, &rt.ParentHash, t.at(&rt.IssuedAt), t.at(&rt.ExpiresAt), t.at(&rt.UsedAt))
	if err != nil {
		return persistence.RefreshToken{}, t.mapErr(err)
	}
	return rt, nil
}

func (t *txn) RefreshTokenUse(ctx context.Context, hash []byte, at time.Time) error {
	n, err := t.exec(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, t.ts(at), hash)
	if err != nil || n > 0 {
		return err
	}
	if _, err := t.RefreshTokenGet(ctx, hash); err != nil {
		return err
	}
	return persistence.ErrRefreshTokenReused
}

var _ persistence.IdentityStore = (*txn)(nil)
