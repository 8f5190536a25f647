package identity

import (
	"context"
	"errors"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/persistence"
)

// ClientByPhone is the id of the user whose number is e164, found by its
// blind index; a number never seen becomes a client, exactly as its first
// sign-in would create one. It is the WhatsApp bot's only source of
// identity: WhatsApp proved the sender holds the number, and nothing the
// sender writes can name anyone else. A blocked number is refused
// (fault blocked), as at sign-in.
func (s *Service) ClientByPhone(ctx context.Context, e164 string) (string, error) {
	if err := s.Ready(); err != nil {
		return "", err
	}
	num, err := s.parsePhone(e164)
	if err != nil {
		return "", err
	}
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return "", err
	}
	index := s.node.Index.Sum(pii.FieldPhone, num.E164)
	var id string
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(ctx, index)
		if errors.Is(err, persistence.ErrNotFound) {
			u, err = s.createUser(ctx, tx, index, num, s.now().UTC())
		}
		id = u.ID
		return err
	})
	return id, err
}
