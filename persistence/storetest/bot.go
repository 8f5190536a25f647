package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// testConversations: none stored is ErrNotFound; the first put creates
// version 1 and reads back as written; a stale version is a conflict; the
// human list holds only conversations a person owns, oldest wait first;
// the idle sweep deletes only the bot's conversations not updated since
// its bound; anonymisation deletes the client's and leaves another's.
func testConversations(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	u, other := newProfileUser(t, s, 72), newProfileUser(t, s, 73)
	get := func(key string) (persistence.Conversation, error) {
		var c persistence.Conversation
		err := s.InTx(context.Background(), func(tx persistence.Tx) (err error) {
			c, err = tx.ConversationGet(context.Background(), key)
			return err
		})
		return c, err
	}
	put := func(c persistence.Conversation) (persistence.Conversation, error) {
		var out persistence.Conversation
		err := s.InTx(context.Background(), func(tx persistence.Tx) (err error) {
			out, err = tx.ConversationPut(context.Background(), c)
			return err
		})
		return out, err
	}
	_, err := get("aa01")
	wantErr(t, "get before any put", err, persistence.ErrNotFound)

	first := persistence.Conversation{PhoneKey: "aa01", ClientID: u.ID, Memory: []byte("sealed-1"), UpdatedAt: base}
	stored, err := put(first)
	if err != nil || stored.Version != 1 {
		t.Fatalf("first put: %+v %v; want version 1", stored, err)
	}
	want := first
	want.Version, want.Owner, want.UpdatedAt = 1, persistence.ConversationBot, ct(base)
	got, err := get("aa01")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "read back", got, want)
	_, err = put(first)
	wantErr(t, "a second first put", err, persistence.ErrConflict)

	waiting := got
	waiting.Owner, waiting.WaitingSince, waiting.Memory, waiting.UpdatedAt = persistence.ConversationHuman, base.Add(2*time.Minute), []byte("sealed-2"), base.Add(2*time.Minute)
	if got, err = put(waiting); err != nil || got.Version != 2 {
		t.Fatalf("update: %+v %v", got, err)
	}
	_, err = put(waiting)
	wantErr(t, "a stale version", err, persistence.ErrConflict)
	_, err = put(persistence.Conversation{PhoneKey: "aa09", Owner: "robot", UpdatedAt: base})
	wantErr(t, "an unknown owner", err, persistence.ErrInvalid)

	// An earlier waiter (another client), and a bot conversation long idle.
	earlier := persistence.Conversation{PhoneKey: "aa02", ClientID: other.ID, Memory: []byte("x"), Owner: persistence.ConversationHuman,
		WaitingSince: base.Add(time.Minute), StaffID: "desk", UpdatedAt: base.Add(3 * time.Minute)}
	idle := persistence.Conversation{PhoneKey: "aa03", ClientID: other.ID, Memory: []byte("y"), UpdatedAt: base.Add(-48 * time.Hour)}
	for _, c := range []persistence.Conversation{earlier, idle} {
		if _, err := put(c); err != nil {
			t.Fatal(err)
		}
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.ConversationListHuman(ctx, 10)
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].PhoneKey != "aa02" || list[1].PhoneKey != "aa01" || list[0].StaffID != "desk" ||
			!list[1].WaitingSince.Equal(ct(base.Add(2*time.Minute))) {
			t.Errorf("human list %+v; want aa02 then aa01", list)
		}
		n, err := tx.ConversationDeleteIdle(ctx, base.Add(-24*time.Hour), 100)
		if err == nil && n != 1 {
			t.Errorf("idle sweep deleted %d; want 1 (aa03)", n)
		}
		return err
	})
	_, err = get("aa03")
	wantErr(t, "the idle conversation after the sweep", err, persistence.ErrNotFound)

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: bytes.Repeat([]byte{0xde}, 32), At: base.Add(time.Hour)})
		if err == nil && rep["bot_conversations"] != 1 {
			t.Errorf("anonymise report %v: want 1 row of bot_conversations", rep)
		}
		return err
	})
	_, err = get("aa01")
	wantErr(t, "the client's conversation after anonymisation", err, persistence.ErrNotFound)
	if _, err := get("aa02"); err != nil {
		t.Fatalf("another client's conversation after anonymisation: %v", err)
	}
}
