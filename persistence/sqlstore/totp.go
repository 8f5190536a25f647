package sqlstore

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// ---- TOTP factors ----

const totpColumns = `user_id, secret_cipher, confirmed_at, last_step, recovery, failures, locked_until, version, created_at, updated_at, enrolment_key`

func (t *txn) TOTPFactorGet(ctx context.Context, userID string) (persistence.TOTPFactor, error) {
	f, err := t.scanTOTPFactor(t.queryRow(ctx, `SELECT `+totpColumns+` FROM totp_factors WHERE user_id = ?`, userID))
	if err != nil {
		return persistence.TOTPFactor{}, t.mapErr(err)
	}
	return f, nil
}

func (t *txn) TOTPFactorListAfter(ctx context.Context, after string, limit int) ([]persistence.TOTPFactor, error) {
	if err := persistence.CheckLimit("totp factor batch", limit, persistence.MaxProfileBatch); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanTOTPFactor, `SELECT `+totpColumns+` FROM totp_factors WHERE user_id > ? ORDER BY user_id LIMIT ?`, after, limit)
}

func (t *txn) scanTOTPFactor(r row) (persistence.TOTPFactor, error) {
	var f persistence.TOTPFactor
	if err := r.Scan(&f.UserID, &f.SecretCipher, t.at(&f.ConfirmedAt), &f.LastStep, &f.Recovery, &f.Failures,
		t.at(&f.LockedUntil), &f.Version, t.at(&f.CreatedAt), t.at(&f.UpdatedAt), &f.EnrolmentKey); err != nil {
		return f, err
	}
	return f, nil
}

func (t *txn) TOTPFactorPut(ctx context.Context, f persistence.TOTPFactor) (persistence.TOTPFactor, error) {
	f, err := persistence.NormalizeTOTPFactor(f)
	if err != nil {
		return f, err
	}
	var n int
	if f.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO totp_factors (`+totpColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING`,
			f.UserID, f.SecretCipher, t.nullTS(f.ConfirmedAt), f.LastStep, f.Recovery, f.Failures,
			t.nullTS(f.LockedUntil), t.ts(f.CreatedAt), t.ts(f.UpdatedAt), f.EnrolmentKey)
	} else {
		n, err = t.exec(ctx, `UPDATE totp_factors SET secret_cipher = ?, confirmed_at = ?, last_step = ?, recovery = ?,
			failures = ?, locked_until = ?, version = version + 1, updated_at = ?, enrolment_key = ?
			WHERE user_id = ? AND version = ?`,
			f.SecretCipher, t.nullTS(f.ConfirmedAt), f.LastStep, f.Recovery, f.Failures,
			t.nullTS(f.LockedUntil), t.ts(f.UpdatedAt), f.EnrolmentKey, f.UserID, f.Version)
	}
	if err != nil {
		return f, err
	}
	if n == 0 {
		return f, persistence.VersionConflict("totp factor", f.UserID, f.Version)
	}
	f.Version++
	return f, nil
}

func (t *txn) TOTPFactorDelete(ctx context.Context, userID string) error {
	n, err := t.exec(ctx, `DELETE FROM totp_factors WHERE user_id = ?`, userID)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

// ---- Second-factor challenges ----

func (t *txn) MFAChallengeCreate(ctx context.Context, c persistence.MFAChallenge) error {
	c, err := persistence.NormalizeMFAChallenge(c)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO mfa_challenges (challenge_hash, user_id, device, user_agent, ip, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.UserID, c.Device, c.UserAgent, c.IP, t.ts(c.CreatedAt), t.ts(c.ExpiresAt), t.nullTS(c.UsedAt))
	return err
}

func (t *txn) MFAChallengeGet(ctx context.Context, hash []byte) (persistence.MFAChallenge, error) {
	var c persistence.MFAChallenge
	err := t.queryRow(ctx, `SELECT challenge_hash, user_id, device, user_agent, ip, created_at, expires_at, used_at
		FROM mfa_challenges WHERE challenge_hash = ?`, hash).
		Scan(&c.Hash, &c.UserID, &c.Device, &c.UserAgent, &c.IP, t.at(&c.CreatedAt), t.at(&c.ExpiresAt), t.at(&c.UsedAt))
	if err != nil {
		return persistence.MFAChallenge{}, t.mapErr(err)
	}
	return c, nil
}

func (t *txn) MFAChallengeUse(ctx context.Context, hash []byte, at time.Time) error {
	n, err := t.exec(ctx, `UPDATE mfa_challenges SET used_at = ? WHERE challenge_hash = ? AND used_at IS NULL`, t.ts(at), hash)
	if err != nil || n > 0 {
		return err
	}
	if _, err := t.MFAChallengeGet(ctx, hash); err != nil {
		return err
	}
	return persistence.ErrConflict
}

func (t *txn) MFAChallengeDeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("mfa challenge cleanup", limit, persistence.MaxProfileBatch); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM mfa_challenges WHERE challenge_hash IN
		(SELECT challenge_hash FROM mfa_challenges WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`,
		t.ts(before), limit)
}

var _ persistence.TOTPStore = (*txn)(nil)
