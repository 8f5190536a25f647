package sqlstore

import (
	"context"

	"github.com/spa-engine/spa/persistence"
)

// ---- Client profiles ----

const profileColumns = `user_id, name_cipher, email_cipher, email_index, document_cipher, document_index,
	birth_date_cipher, notes_cipher, language_cipher, time_zone_cipher, anonymised_at, version, created_at, updated_at`

func (t *txn) scanProfile(r row) (persistence.ClientProfile, error) {
	var p persistence.ClientProfile
	if err := r.Scan(&p.UserID, &p.NameCipher, &p.EmailCipher, &p.EmailIndex, &p.DocumentCipher, &p.DocumentIndex,
		&p.BirthDateCipher, &p.NotesCipher, &p.LanguageCipher, &p.TimeZoneCipher, t.at(&p.AnonymisedAt), &p.Version, t.at(&p.CreatedAt), t.at(&p.UpdatedAt)); err != nil {
		return p, err
	}
	return p, nil
}

func (t *txn) ProfileGet(ctx context.Context, userID string) (persistence.ClientProfile, error) {
	p, err := t.scanProfile(t.queryRow(ctx, `SELECT `+profileColumns+` FROM client_profiles WHERE user_id = ?`, userID))
	return p, t.mapErr(err)
}

func (t *txn) ProfilePut(ctx context.Context, p persistence.ClientProfile) (persistence.ClientProfile, error) {
	p, err := persistence.NormalizeProfile(p)
	if err != nil {
		return p, err
	}
	var n int
	if p.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO client_profiles (`+profileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
			ON CONFLICT (user_id) DO NOTHING`,
			p.UserID, p.NameCipher, p.EmailCipher, p.EmailIndex, p.DocumentCipher, p.DocumentIndex,
			p.BirthDateCipher, p.NotesCipher, p.LanguageCipher, p.TimeZoneCipher, t.nullTS(p.AnonymisedAt), t.ts(p.CreatedAt), t.ts(p.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE client_profiles SET name_cipher = ?, email_cipher = ?, email_index = ?,
			document_cipher = ?, document_index = ?, birth_date_cipher = ?, notes_cipher = ?, language_cipher = ?,
			time_zone_cipher = ?, anonymised_at = ?, version = version + 1, updated_at = ? WHERE user_id = ? AND version = ?`,
			p.NameCipher, p.EmailCipher, p.EmailIndex, p.DocumentCipher, p.DocumentIndex,
			p.BirthDateCipher, p.NotesCipher, p.LanguageCipher, p.TimeZoneCipher, t.nullTS(p.AnonymisedAt), t.ts(p.UpdatedAt), p.UserID, p.Version)
	}
	if err != nil {
		return p, err
	}
	if n == 0 {
		return p, persistence.VersionConflict("client profile", p.UserID, p.Version)
	}
	p.Version++
	return p, nil
}

func (t *txn) ProfileReencrypt(ctx context.Context, p persistence.ClientProfile) error {
	if p.UserID == "" {
		return persistence.ErrInvalid
	}
	n, err := t.exec(ctx, `UPDATE client_profiles SET name_cipher = ?, email_cipher = ?, document_cipher = ?,
		birth_date_cipher = ?, notes_cipher = ?, language_cipher = ?, time_zone_cipher = ? WHERE user_id = ? AND version = ?`,
		p.NameCipher, p.EmailCipher, p.DocumentCipher, p.BirthDateCipher, p.NotesCipher, p.LanguageCipher, p.TimeZoneCipher,
		p.UserID, p.Version)
	if err != nil || n > 0 {
		return err
	}
	if _, err := t.ProfileGet(ctx, p.UserID); err != nil {
		return err
	}
	return persistence.VersionConflict("client profile", p.UserID, p.Version)
}

func (t *txn) ProfileFindByDocumentIndex(ctx context.Context, index []byte, limit int) ([]persistence.ClientProfile, error) {
	if err := persistence.CheckLimit("profile find", limit, persistence.MaxProfileBatch); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanProfile, `SELECT `+profileColumns+` FROM client_profiles
		WHERE document_index = ? ORDER BY user_id LIMIT ?`, index, limit)
}

func (t *txn) ProfileListAfter(ctx context.Context, after string, limit int) ([]persistence.ClientProfile, error) {
	if err := persistence.CheckLimit("profile batch", limit, persistence.MaxProfileBatch); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanProfile, `SELECT `+profileColumns+` FROM client_profiles
		WHERE user_id > ? ORDER BY user_id LIMIT ?`, after, limit)
}

func (t *txn) UserListAfter(ctx context.Context, after string, limit int) ([]persistence.User, error) {
	if err := persistence.CheckLimit("user batch", limit, persistence.MaxProfileBatch); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanUser, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

func (t *txn) UserReplacePhoneCipher(ctx context.Context, id string, prev, next []byte) error {
	if len(next) == 0 {
		return persistence.ErrInvalid
	}
	n, err := t.exec(ctx, `UPDATE users SET phone_cipher = ? WHERE id = ? AND phone_cipher = ?`, next, id, prev)
	if err != nil || n > 0 {
		return err
	}
	if _, err := t.UserGet(ctx, id); err != nil {
		return err
	}
	return persistence.VersionConflict("user phone cipher", id, 0)
}

func (t *txn) UserAnonymise(ctx context.Context, p persistence.AnonymiseParams) (persistence.AnonymiseReport, error) {
	p, err := persistence.NormalizeAnonymise(p)
	if err != nil {
		return nil, err
	}
	rep := persistence.AnonymiseReport{}
	at, id, idBytes := t.ts(p.At), p.UserID, []byte(p.UserID)
	n, err := t.exec(ctx, `UPDATE users SET phone_index = ?, phone_cipher = ?, updated_at = ? WHERE id = ?`,
		p.PhoneIndex, []byte{}, at, id)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, t.notFound()
	}
	steps := []struct {
		name  string
		query string
		args  []any
	}{
		{"client_profiles", `UPDATE client_profiles SET name_cipher = NULL, email_cipher = NULL, email_index = NULL,
			document_cipher = NULL, document_index = NULL, birth_date_cipher = NULL, notes_cipher = NULL,
			language_cipher = NULL, time_zone_cipher = NULL, anonymised_at = ?, version = version + 1, updated_at = ? WHERE user_id = ?`, []any{at, at, id}},
		{"login_sessions", `UPDATE login_sessions SET device = '', user_agent = '', ip = '' WHERE user_id = ?`, []any{id}},
		// The second factor of a staff account that is gone, and its
		// pending challenges (device, user agent, IP).
		{"totp_factors", `DELETE FROM totp_factors WHERE user_id = ?`, []any{id}},
		{"mfa_challenges", `DELETE FROM mfa_challenges WHERE user_id = ?`, []any{id}},
		{"appointment_transitions", `UPDATE appointment_transitions SET reason = '' WHERE reason <> ''
			AND appointment_id IN (SELECT id FROM appointments WHERE client_id = ?)`, []any{id}},
		{"returns", `UPDATE returns SET reason = '' WHERE client_id = ? AND reason <> ''`, []any{id}},
		{"credit_grants", `UPDATE credit_grants SET reason = '' WHERE client_id = ? AND reason <> ''`, []any{id}},
		// A saved card of someone who is gone can no longer be charged.
		{"payment_sources", `UPDATE payment_sources SET status = 'voided', label = '', email = '', updated_at = ? WHERE client_id = ?`, []any{at, id}},
		// A voucher bought by the client stays spendable by whoever holds
		// its code; what the purchase says of the recipient goes.
		{"voucher_purchases", `UPDATE voucher_purchases SET recipient_name = '', message = '', code = ''
			WHERE client_id = ? AND (recipient_name <> '' OR message <> '' OR code <> '')`, []any{id}},
		// Sealed under the key destroyed below; emptied all the same.
		{"notifications", `UPDATE notifications SET body = '' WHERE user_id = ? AND body <> ''`, []any{id}},
		// What they wanted to hear goes with them: the defaults again.
		{"notification_preferences", `DELETE FROM notification_preferences WHERE user_id = ?`, []any{id}},
		// The bot's memory of them: what they wrote, the pending proposal.
		{"bot_conversations", `DELETE FROM bot_conversations WHERE client_id = ?`, []any{id}},
		{"audit_log", `UPDATE audit_log SET detail = ?, reason = ''
			WHERE subject = ? OR actor_id = ? OR ` + t.contains("detail"),
			[]any{persistence.AnonymisedAuditDetail, "user/" + id, id, idBytes}},
		{"outbox", `DELETE FROM outbox WHERE published_at IS NOT NULL AND ` + t.contains("payload"), []any{idBytes}},
		{"idempotency_records", `DELETE FROM idempotency_records WHERE scope = ? OR ` + t.contains("response_body"),
			[]any{p.IdempotencyScope, idBytes}},
	}
	for _, s := range steps {
		n, err := t.exec(ctx, s.query, s.args...)
		if err != nil {
			return nil, err
		}
		rep[s.name] = n
	}
	type shipped struct{ id, shipping string }
	orders, err := queryList(ctx, t, func(r row) (shipped, error) {
		var o shipped
		return o, r.Scan(&o.id, &o.shipping)
	}, `SELECT id, shipping FROM orders WHERE client_id = ? AND shipping <> ''`, id)
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		// Opened while the client's key still exists; what is kept (the
		// DANE codes) is stored in the clear, as nothing can open it after.
		addr, err := t.openText(ctx, id, shippingPlace(o.id), o.shipping)
		if err != nil {
			return nil, err
		}
		if _, err := t.exec(ctx, `UPDATE orders SET shipping = ? WHERE id = ?`, persistence.AnonymisedShipping(addr), o.id); err != nil {
			return nil, err
		}
	}
	rep["orders"] = len(orders)
	// Crypto-shredding: without the client's data key, every copy of what
	// was sealed under it (events in the stream, backups) stays closed.
	if rep["client_keys"], err = t.exec(ctx, `DELETE FROM client_keys WHERE client_id = ?`, id); err != nil {
		return nil, err
	}
	delete(t.dataKeys, id)
	return rep, nil
}
