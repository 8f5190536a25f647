package storetest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// fakeSealer is a PersonalSealer for the conformance suite (the real one,
// pii.ClientKeys, lives under actors, which persistence may not import):
// AES-GCM under the data key; a key is "wrapped" by prefixing it, which
// is enough to tell the store keeps what it was given.
type fakeSealer struct{}

func (fakeSealer) NewKey(string) ([]byte, []byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, append([]byte("wrapped:"), k...), err
}

func (fakeSealer) UnwrapKey(_ string, w []byte) ([]byte, error) {
	k, ok := bytes.CutPrefix(w, []byte("wrapped:"))
	if !ok {
		return nil, errors.New("not a wrapped key")
	}
	return k, nil
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func (fakeSealer) Seal(key, context, pt []byte) ([]byte, error) {
	a := gcm(key)
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return a.Seal(nonce, nonce, pt, context), nil
}

func (fakeSealer) Open(key, context, ct []byte) ([]byte, error) {
	a := gcm(key)
	if len(ct) < a.NonceSize() {
		return nil, errors.New("short")
	}
	return a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], context)
}

var personalTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{{"PersonalText", testPersonalText}}

// testPersonalText: with a PersonalSealer, shipping addresses, return and
// credit reasons read back in the clear, are not stored in the clear (a
// handle without the sealer cannot read them), and after the client's
// anonymisation what was sealed under the client's key no longer opens;
// another client's text is untouched.
func testPersonalText(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{Personal: fakeSealer{}})
	u := newProfileUser(t, s, 40)
	other := newProfileUser(t, s, 41)
	o, kept := testOrder("o-sealed", u.ID, 0), testOrder("o-kept", other.ID, 1)
	ret := persistence.Return{ID: "r-sealed", OrderID: o.ID, ClientID: u.ID, Status: persistence.ReturnRequested,
		Reason: "Ana changed her mind", RequestedBy: u.ID, CreatedAt: base.Add(time.Hour),
		Lines: []persistence.ReturnLine{{OrderLineID: o.ID + "-b", Qty: 1}}}
	grant := creditGrantFixture("g-sealed", u.ID, 1000, 0, 600)
	grant.Reason = "goodwill for Ana"
	var event []byte
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		for _, x := range []persistence.Order{o, kept} {
			if err := tx.OrderCreate(ctx, x); err != nil {
				return err
			}
		}
		if err := tx.ReturnCreate(ctx, ret); err != nil {
			return err
		}
		if err := tx.CreditGrant(ctx, grant); err != nil {
			return err
		}
		var sealed bool
		event, sealed, err = tx.PersonalSeal(ctx, u.ID, "events.x/1", []byte("Ana went to Cartagena"))
		if err == nil && (!sealed || bytes.Contains(event, []byte("Cartagena"))) {
			t.Errorf("PersonalSeal: %q sealed %v", event, sealed)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.OrderGet(ctx, o.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "sealed shipping read back", got.Shipping, o.Shipping)
		list, err := tx.OrderList(ctx, persistence.OrderListParams{ClientID: u.ID, Limit: 10})
		if err != nil || len(list) != 1 || list[0].Shipping != o.Shipping {
			t.Errorf("order list: %+v, %v", list, err)
		}
		r, err := tx.ReturnGet(ctx, ret.ID)
		if err != nil || r.Reason != ret.Reason {
			t.Errorf("return reason read back: %q, %v", r.Reason, err)
		}
		gs, err := tx.CreditGrants(ctx, u.ID, base)
		if err != nil || len(gs) != 1 || gs[0].Reason != grant.Reason {
			t.Errorf("grant reason read back: %+v, %v", gs, err)
		}
		pt, err := tx.PersonalOpen(ctx, u.ID, "events.x/1", event)
		if err != nil || string(pt) != "Ana went to Cartagena" {
			t.Errorf("PersonalOpen: %q, %v", pt, err)
		}
		if _, err := tx.PersonalOpen(ctx, u.ID, "events.x/2", event); err == nil {
			t.Error("a sealed value opened at another place")
		}
		keys, err := tx.ClientKeyListAfter(ctx, "", 10)
		if err != nil || len(keys) != 2 { // the two clients whose text was sealed
			t.Errorf("client keys %+v, %v", keys, err)
		}
		return nil
	})
	// At rest the text is not in the clear: a handle without the sealer
	// on the same database does not get it back.
	plain := open(t, persistence.Options{})
	err := txErr(t, plain, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.OrderGet(ctx, o.ID)
		if err == nil && got.Shipping == o.Shipping {
			t.Error("the shipping address is stored in the clear")
		}
		return err
	})
	if err == nil {
		t.Error("a handle without the sealer read a sealed address")
	}

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: bytes.Repeat([]byte{0xbb}, 32),
			IdempotencyScope: "sub:" + u.ID, At: base.Add(2 * time.Hour)})
		if err == nil && rep["client_keys"] != 1 {
			t.Errorf("report %v: want the client's key deleted", rep)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.PersonalOpen(ctx, u.ID, "events.x/1", event); !errors.Is(err, persistence.ErrShredded) {
			t.Errorf("an event sealed before anonymisation: %v, want ErrShredded", err)
		}
		got, err := tx.OrderGet(ctx, o.ID)
		if err != nil || got.Shipping.Line1 != "" || got.Shipping.MunicipalityCode != o.Shipping.MunicipalityCode {
			t.Errorf("shipping after anonymisation: %+v, %v", got.Shipping, err)
		}
		if got, err := tx.OrderGet(ctx, kept.ID); err != nil || got.Shipping != kept.Shipping {
			t.Errorf("the other client's shipping: %+v, %v", got.Shipping, err)
		}
		keys, err := tx.ClientKeyListAfter(ctx, "", 10)
		if err != nil || len(keys) != 1 || keys[0].ClientID != other.ID {
			t.Errorf("client keys after anonymisation %+v, %v", keys, err)
			return err
		}
		// The rotation's rewrap: only while the key is still the one read.
		if ok, err := tx.ClientKeyReplace(ctx, other.ID, []byte("stale"), []byte("x")); ok || err != nil {
			t.Errorf("replace of a stale key: %v, %v", ok, err)
		}
		k, _ := fakeSealer{}.UnwrapKey("", keys[0].KeyCipher)
		if ok, err := tx.ClientKeyReplace(ctx, other.ID, keys[0].KeyCipher, append([]byte("wrapped:"), k...)); !ok || err != nil {
			t.Errorf("replace: %v, %v", ok, err)
		}
		return nil
	})
}
