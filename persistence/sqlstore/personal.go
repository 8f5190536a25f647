package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Personal text about a client, sealed under the client's data key
// (persistence/personal.go). In a TEXT column it is stored as
// sealedTextMark followed by the ciphertext in base64: no JSON address and
// no reason can start with a control character (the services refuse them
// in text), so a value written before sealing was on still reads as it is.
const sealedTextMark = "\x01"

// Places of the sealed columns: the context a value is sealed with names
// its column and row, so a ciphertext copied elsewhere does not open.
func shippingPlace(orderID string) string      { return "orders.shipping/" + orderID }
func returnReasonPlace(returnID string) string { return "returns.reason/" + returnID }
func grantReasonPlace(grantID string) string   { return "credit_grants.reason/" + grantID }
func transitionReasonPlace(id string) string   { return "appointment_transitions.reason/" + id }
func auditReasonPlace(entryID string) string   { return "audit_log.reason/" + entryID }

// dataKey returns clientID's data key, creating it when create is set
// and there is none; ErrShredded when there is none and create is not.
func (t *txn) dataKey(ctx context.Context, clientID string, create bool) ([]byte, error) {
	if k, ok := t.dataKeys[clientID]; ok {
		return k, nil
	}
	var wrapped []byte
	err := t.queryRow(ctx, `SELECT key_cipher FROM client_keys WHERE client_id = ?`, clientID).Scan(&wrapped)
	switch err = t.mapErr(err); {
	case errors.Is(err, persistence.ErrNotFound) && create:
		key, w, err := t.personal.NewKey(clientID)
		if err != nil {
			return nil, err
		}
		// A concurrent first use may have stored one: DO NOTHING, then
		// read back whichever key won (on PostgreSQL the loser's
		// transaction fails serialization and is retried).
		if _, err := t.exec(ctx, `INSERT INTO client_keys (client_id, key_cipher, created_at) VALUES (?, ?, ?)
			ON CONFLICT (client_id) DO NOTHING`, clientID, w, t.ts(time.Now())); err != nil {
			return nil, err
		}
		clear(key)
		return t.dataKey(ctx, clientID, false)
	case errors.Is(err, persistence.ErrNotFound):
		return nil, fmt.Errorf("client %s: %w", clientID, persistence.ErrShredded)
	case err != nil:
		return nil, err
	}
	key, err := t.personal.UnwrapKey(clientID, wrapped)
	if err != nil {
		return nil, fmt.Errorf("client key of %s: %w", clientID, err)
	}
	if t.dataKeys == nil {
		t.dataKeys = map[string][]byte{}
	}
	t.dataKeys[clientID] = key
	return key, nil
}

func (t *txn) PersonalSeal(ctx context.Context, clientID, place string, plaintext []byte) ([]byte, bool, error) {
	if t.personal == nil || len(plaintext) == 0 {
		return plaintext, false, nil
	}
	if clientID == "" {
		return nil, false, fmt.Errorf("%w: personal text sealed for no client", persistence.ErrInvalid)
	}
	key, err := t.dataKey(ctx, clientID, true)
	if err != nil {
		return nil, false, err
	}
	ct, err := t.personal.Seal(key, []byte(place), plaintext)
	return ct, err == nil, err
}

func (t *txn) PersonalOpen(ctx context.Context, clientID, place string, ciphertext []byte) ([]byte, error) {
	if t.personal == nil {
		return nil, errors.New("personal text is sealed and this store has no PersonalSealer")
	}
	key, err := t.dataKey(ctx, clientID, false)
	if err != nil {
		return nil, err
	}
	return t.personal.Open(key, []byte(place), ciphertext)
}

// sealText is v as stored in a TEXT column: sealed under clientID's key
// when the store seals, else v.
func (t *txn) sealText(ctx context.Context, clientID, place, v string) (string, error) {
	ct, sealed, err := t.PersonalSeal(ctx, clientID, place, []byte(v))
	if err != nil || !sealed {
		return v, err
	}
	return sealedTextMark + base64.RawStdEncoding.EncodeToString(ct), nil
}

// openText reverses sealText. Text whose client key was destroyed reads
// as "" (anonymisation scrubs those columns anyway).
func (t *txn) openText(ctx context.Context, clientID, place, stored string) (string, error) {
	b64, sealed := strings.CutPrefix(stored, sealedTextMark)
	if !sealed {
		return stored, nil
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("%s: %w", place, err)
	}
	pt, err := t.PersonalOpen(ctx, clientID, place, ct)
	if errors.Is(err, persistence.ErrShredded) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", place, err)
	}
	return string(pt), nil
}

func (t *txn) ClientKeyListAfter(ctx context.Context, after string, limit int) ([]persistence.ClientKey, error) {
	if err := persistence.CheckLimit("client key list", limit, 0); err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r row) (persistence.ClientKey, error) {
		var k persistence.ClientKey
		return k, r.Scan(&k.ClientID, &k.KeyCipher, t.at(&k.CreatedAt))
	}, `SELECT client_id, key_cipher, created_at FROM client_keys WHERE client_id > ? ORDER BY client_id LIMIT ?`, after, limit)
}

func (t *txn) ClientKeyReplace(ctx context.Context, clientID string, old, next []byte) (bool, error) {
	n, err := t.exec(ctx, `UPDATE client_keys SET key_cipher = ? WHERE client_id = ? AND key_cipher = ?`, next, clientID, old)
	return n == 1, err
}

// openReasons opens the sealed reasons of rows read (returns, grants,
// transitions), in place, after their rows are closed.
func (t *txn) openReasons(ctx context.Context, n int, at func(i int) (clientID, place string, reason *string)) error {
	for i := range n {
		clientID, place, reason := at(i)
		v, err := t.openText(ctx, clientID, place, *reason)
		if err != nil {
			return err
		}
		*reason = v
	}
	return nil
}
