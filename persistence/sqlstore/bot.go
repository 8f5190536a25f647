package sqlstore

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// The bot's conversations (persistence/bot.go).

const conversationColumns = `phone_key, client_id, memory, owner, waiting_since, staff_id, version, updated_at`

func (t *txn) scanConversation(r row) (persistence.Conversation, error) {
	var c persistence.Conversation
	err := r.Scan(&c.PhoneKey, &c.ClientID, &c.Memory, &c.Owner, t.at(&c.WaitingSince), &c.StaffID, &c.Version, t.at(&c.UpdatedAt))
	return c, err
}

func (t *txn) ConversationGet(ctx context.Context, phoneKey string) (persistence.Conversation, error) {
	c, err := t.scanConversation(t.queryRow(ctx, `SELECT `+conversationColumns+` FROM bot_conversations WHERE phone_key = ?`, phoneKey))
	if err != nil {
		return persistence.Conversation{}, t.mapErr(err)
	}
	return c, nil
}

func (t *txn) ConversationPut(ctx context.Context, c persistence.Conversation) (persistence.Conversation, error) {
	c, err := persistence.NormalizeConversation(c)
	if err != nil {
		return c, err
	}
	var n int
	if c.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO bot_conversations (`+conversationColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (phone_key) DO NOTHING`,
			c.PhoneKey, c.ClientID, c.Memory, c.Owner, t.nullTS(c.WaitingSince), c.StaffID, t.ts(c.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE bot_conversations SET client_id = ?, memory = ?, owner = ?, waiting_since = ?, staff_id = ?,
			version = version + 1, updated_at = ? WHERE phone_key = ? AND version = ?`,
			c.ClientID, c.Memory, c.Owner, t.nullTS(c.WaitingSince), c.StaffID, t.ts(c.UpdatedAt), c.PhoneKey, c.Version)
	}
	if err != nil {
		return c, err
	}
	if n == 0 {
		return c, persistence.VersionConflict("conversation", c.PhoneKey, c.Version)
	}
	c.Version++
	return c, nil
}

func (t *txn) ConversationListHuman(ctx context.Context, limit int) ([]persistence.Conversation, error) {
	if limit <= 0 || limit > 1000 {
		return nil, persistence.ErrInvalid
	}
	// A conversation taken over keeps the time it started waiting, so the
	// list stays in the order clients asked.
	return queryList(ctx, t, t.scanConversation, `SELECT `+conversationColumns+` FROM bot_conversations
		WHERE owner = ? ORDER BY waiting_since, updated_at, phone_key LIMIT ?`, persistence.ConversationHuman, limit)
}

func (t *txn) ConversationDeleteIdle(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, persistence.ErrInvalid
	}
	return t.exec(ctx, `DELETE FROM bot_conversations WHERE phone_key IN (SELECT phone_key FROM bot_conversations
		WHERE owner = ? AND updated_at < ? LIMIT ?)`, persistence.ConversationBot, t.ts(before), limit)
}
