package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// paymentTests are the conformance tests of persistence.PaymentStore.
var paymentTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"PaymentIntents", testPaymentIntents},
	{"PaymentIntentRace", testPaymentIntentRace},
	{"PaymentEvents", testPaymentEvents},
	{"PaymentLedger", testPaymentLedger},
	{"PaymentDepositsToSettle", testPaymentDepositsToSettle},
	{"PaymentExceptions", testPaymentExceptions},
	{"PaymentSources", testPaymentSources},
}

func testPaymentSources(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	src := persistence.PaymentSource{ID: newID(), ClientID: "client-1", ProviderID: 3891, Type: "CARD", Label: "VISA 4242",
		Email: "pagador@example.com", CreatedAt: base}
	var stored persistence.PaymentSource
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.PaymentSourceCreate(ctx, src)
		return err
	})
	want := src
	want.Status, want.CreatedAt, want.UpdatedAt = persistence.SourceAvailable, ct(base), ct(base)
	wantEqual(t, "created", stored, want)
	other := src
	other.ID, other.ClientID = newID(), "client-2"
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentSourceCreate(ctx, other)
		return err
	})
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentSourceCreate(ctx, src)
		return err
	})
	wantErr(t, "same id twice", err, persistence.ErrConflict)
	got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.PaymentSource, error) {
		return tx.PaymentSourceGet(ctx, src.ID)
	})
	wantEqual(t, "get", got, want)
	list := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.PaymentSource, error) {
		return tx.PaymentSourceList(ctx, "client-1")
	})
	wantEqual(t, "list", list, []persistence.PaymentSource{want})
	for range 2 { // voiding twice is voiding once
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.PaymentSourceVoid(ctx, src.ID, base.Add(time.Minute))
		})
	}
	got = mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.PaymentSource, error) {
		return tx.PaymentSourceGet(ctx, src.ID)
	})
	wantEqual(t, "voided", got.Status, persistence.SourceVoided)
	list = mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.PaymentSource, error) {
		return tx.PaymentSourceList(ctx, "client-1")
	})
	wantEqual(t, "list after void", len(list), 0)
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.PaymentSourceVoid(ctx, newID(), base) })
	wantErr(t, "void unknown", err, persistence.ErrNotFound)
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentSourceGet(ctx, newID())
		return err
	})
	wantErr(t, "get unknown", err, persistence.ErrNotFound)
}

func newIntent(subject string) persistence.PaymentIntent {
	return persistence.PaymentIntent{ID: newID(), Kind: persistence.PaymentOrder, SubjectID: subject, ClientID: "client-1",
		AmountMinor: 4_990_000, Currency: "COP", CreatedAt: base, ExpiresAt: base.Add(30 * time.Minute)}
}

func testPaymentIntents(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	order := newID()
	p := newIntent(order)
	var stored persistence.PaymentIntent
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.PaymentIntentCreate(ctx, p)
		return err
	})
	want := p
	want.Status, want.Version = persistence.IntentPending, 1
	want.CreatedAt, want.UpdatedAt, want.ExpiresAt = ct(base), ct(base), ct(base.Add(30*time.Minute))
	wantEqual(t, "created", stored, want)

	// A second pending intent for the same order is refused; another
	// order's is not.
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentIntentCreate(ctx, newIntent(order))
		return err
	})
	wantErr(t, "second live intent", err, persistence.ErrConflict)
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		bad := newIntent(newID())
		bad.AmountMinor = 0
		_, err := tx.PaymentIntentCreate(ctx, bad)
		return err
	})
	wantErr(t, "zero amount", err, persistence.ErrInvalid)

	// Forward moves only, conditional on the version.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: p.ID, FromVersion: 1,
			Status: persistence.IntentDeclined, TransactionID: "tx-1", At: base.Add(time.Minute)})
		return err
	})
	if stored.Status != persistence.IntentDeclined || stored.TransactionID != "tx-1" || stored.Version != 2 {
		t.Fatalf("after decline: %+v", stored)
	}
	for _, tc := range []struct {
		what string
		ch   persistence.IntentChange
		want error
	}{
		{"stale version", persistence.IntentChange{ID: p.ID, FromVersion: 1, Status: persistence.IntentApproved, At: base}, persistence.ErrStatusMismatch},
		{"backwards", persistence.IntentChange{ID: p.ID, FromVersion: 2, Status: persistence.IntentPending, At: base}, persistence.ErrInvalid},
		{"same rank", persistence.IntentChange{ID: p.ID, FromVersion: 2, Status: persistence.IntentError, At: base}, persistence.ErrInvalid},
		{"absent", persistence.IntentChange{ID: newID(), FromVersion: 1, Status: persistence.IntentApproved, At: base}, persistence.ErrNotFound},
	} {
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.PaymentIntentUpdate(ctx, tc.ch)
			return err
		})
		wantErr(t, tc.what, err, tc.want)
	}
	// An approval overrides a decline and attaches its transaction; the
	// order may then get a new pending intent (the old one is final).
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: p.ID, FromVersion: 2,
			Status: persistence.IntentApproved, TransactionID: "tx-2", At: base.Add(2 * time.Minute)})
		return err
	})
	if stored.Status != persistence.IntentApproved || stored.TransactionID != "tx-2" || !stored.UpdatedAt.Equal(ct(base.Add(2*time.Minute))) {
		t.Fatalf("after approve: %+v", stored)
	}
	second := newIntent(order)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.PaymentIntentCreate(ctx, second); err != nil {
			return err
		}
		of, err := tx.PaymentIntentsOf(ctx, persistence.PaymentOrder, order)
		if err != nil {
			return err
		}
		if len(of) != 2 || of[0].ID != second.ID || of[1].ID != p.ID {
			t.Fatalf("intents of the order: %+v", of)
		}
		// Reconciliation's selection: pending ones, or changed since.
		got, err := tx.PaymentIntentList(ctx, persistence.IntentListParams{Statuses: []persistence.IntentStatus{persistence.IntentPending}, Limit: 10})
		if err != nil || len(got) != 1 || got[0].ID != second.ID {
			t.Fatalf("pending: %+v, %v", got, err)
		}
		got, err = tx.PaymentIntentList(ctx, persistence.IntentListParams{Statuses: []persistence.IntentStatus{persistence.IntentPending},
			UpdatedSince: base.Add(time.Minute), Limit: 10})
		if err != nil || len(got) != 2 {
			t.Fatalf("pending or recent: %+v, %v", got, err)
		}
		got, err = tx.PaymentIntentList(ctx, persistence.IntentListParams{UpdatedSince: base.Add(time.Hour), Limit: 10})
		if err != nil || len(got) != 0 {
			t.Fatalf("recent only, none: %+v, %v", got, err)
		}
		return nil
	})
}

// testPaymentIntentRace: two writers moving one intent from the same
// version: exactly one wins.
func testPaymentIntentRace(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	p := newIntent(newID())
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentIntentCreate(ctx, p)
		return err
	})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, st := range []persistence.IntentStatus{persistence.IntentApproved, persistence.IntentDeclined} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
				_, err := tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: p.ID, FromVersion: 1, Status: st, At: base})
				return err
			})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want one winner: %v, %v", errs[0], errs[1])
	}
}

func testPaymentEvents(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	e := persistence.PaymentEvent{Key: "abc123", Provider: "wompi", ReceivedAt: base, Body: []byte(`{"x":1}`),
		TransactionID: "tx-1", Status: "APPROVED", AmountMinor: 100, Reference: "ref"}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, created, err := tx.PaymentEventRecord(ctx, e)
		if err != nil || !created {
			t.Fatalf("first record: %v %v", created, err)
		}
		want := e
		want.ReceivedAt = ct(base)
		wantEqual(t, "stored event", got, want)
		again := e
		again.Body = []byte(`{"x":2}`)
		got, created, err = tx.PaymentEventRecord(ctx, again)
		if err != nil || created || string(got.Body) != `{"x":1}` {
			t.Fatalf("replay: %+v %v %v", got, created, err)
		}
		other := persistence.PaymentEvent{Key: "whatsapp/abc", Provider: "whatsapp", ReceivedAt: base, Body: []byte(`{}`)}
		if _, created, err := tx.PaymentEventRecord(ctx, other); err != nil || !created {
			t.Fatalf("another provider's event: %v %v", created, err)
		}
		un, err := tx.PaymentEventListUnapplied(ctx, "wompi", base.Add(time.Second), 10)
		if err != nil || len(un) != 1 || un[0].Key != e.Key {
			t.Fatalf("unapplied: %+v %v", un, err)
		}
		ok, err := tx.PaymentEventMarkApplied(ctx, e.Key, "applied", base.Add(time.Second))
		if err != nil || !ok {
			t.Fatalf("mark: %v %v", ok, err)
		}
		ok, err = tx.PaymentEventMarkApplied(ctx, e.Key, "other", base.Add(2*time.Second))
		if err != nil || ok {
			t.Fatalf("second mark: %v %v", ok, err)
		}
		un, err = tx.PaymentEventListUnapplied(ctx, "wompi", base.Add(time.Hour), 10)
		if err != nil || len(un) != 0 {
			t.Fatalf("unapplied after mark: %+v %v", un, err)
		}
		got, _, _ = tx.PaymentEventRecord(ctx, e)
		if got.Outcome != "applied" || !got.AppliedAt.Equal(ct(base.Add(time.Second))) {
			t.Fatalf("after mark: %+v", got)
		}
		return nil
	})
}

func testPaymentLedger(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	p := newIntent(newID())
	approve := persistence.LedgerMovement{ID: newID(), IntentID: p.ID, Key: "approved/tx-1", Memo: "order paid", At: base,
		Lines: []persistence.LedgerLine{{Account: persistence.AccountWompi, Debit: true, AmountMinor: 4_990_000},
			{Account: persistence.AccountOrders, AmountMinor: 4_990_000}}}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.PaymentLedgerPost(ctx, approve) })

	again := approve
	again.ID = newID()
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.PaymentLedgerPost(ctx, again) })
	wantErr(t, "same key twice", err, persistence.ErrConflict)

	for _, bad := range [][]persistence.LedgerLine{
		{{Account: persistence.AccountWompi, Debit: true, AmountMinor: 10}},                                                       // one line
		{{Account: persistence.AccountWompi, Debit: true, AmountMinor: 10}, {Account: persistence.AccountOrders, AmountMinor: 9}}, // unbalanced
		{{Account: persistence.AccountWompi, Debit: true, AmountMinor: -10}, {Account: persistence.AccountOrders, AmountMinor: -10}},
		{{Account: persistence.AccountWompi, Debit: true, AmountMinor: 1 << 62}, {Account: persistence.AccountOrders, AmountMinor: 1 << 62}},
	} {
		m := persistence.LedgerMovement{ID: newID(), IntentID: p.ID, Key: newID(), At: base, Lines: bad}
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.PaymentLedgerPost(ctx, m) })
		wantErr(t, "bad movement", err, persistence.ErrInvalid)
	}
	void := persistence.LedgerMovement{ID: newID(), IntentID: p.ID, Key: "voided/tx-1", At: base.Add(time.Hour),
		Lines: []persistence.LedgerLine{{Account: persistence.AccountOrders, Debit: true, AmountMinor: 4_990_000},
			{Account: persistence.AccountWompi, AmountMinor: 4_990_000}}}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.PaymentLedgerPost(ctx, void); err != nil {
			return err
		}
		entries, err := tx.PaymentLedgerEntries(ctx, p.ID)
		if err != nil {
			return err
		}
		var sum int64
		for _, e := range entries {
			sum += e.AmountMinor
		}
		if len(entries) != 4 || sum != 0 || entries[0].Key != "approved/tx-1" || entries[0].AmountMinor != 4_990_000 {
			t.Fatalf("entries: %+v", entries)
		}
		bal, err := tx.PaymentLedgerBalances(ctx)
		if err != nil {
			return err
		}
		wantEqual(t, "balances", bal, map[string]int64{persistence.AccountWompi: 0, persistence.AccountOrders: 0})
		return nil
	})
}

// testPaymentDepositsToSettle: approved deposits of appointments cancelled
// or no-show since a time, without a fee movement, in id order and paged;
// not another kind's intents, not a confirmed appointment's, not one whose
// appointment changed before since, not a refunded one, not one kept as a
// fee.
func testPaymentDepositsToSettle(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	since := base.Add(time.Hour)
	type fixture struct {
		status   persistence.AppointmentStatus
		updated  time.Time
		kind     persistence.PaymentKind
		intentTo persistence.IntentStatus
		fee      bool
		want     bool
	}
	fixtures := []fixture{
		{persistence.StatusCancelled, since, persistence.PaymentDeposit, persistence.IntentApproved, false, true},
		{persistence.StatusNoShow, since.Add(time.Minute), persistence.PaymentDeposit, persistence.IntentApproved, false, true},
		{persistence.StatusCancelled, since, persistence.PaymentDeposit, persistence.IntentApproved, false, true},
		{persistence.StatusConfirmed, since, persistence.PaymentDeposit, persistence.IntentApproved, false, false},
		{persistence.StatusCancelled, since.Add(-time.Second), persistence.PaymentDeposit, persistence.IntentApproved, false, false},
		{persistence.StatusCancelled, since, persistence.PaymentOrder, persistence.IntentApproved, false, false},
		{persistence.StatusCancelled, since, persistence.PaymentDeposit, persistence.IntentRefunded, false, false},
		{persistence.StatusNoShow, since, persistence.PaymentDeposit, persistence.IntentApproved, true, false},
	}
	var want []string
	for i, f := range fixtures {
		a := appt(newID(), "ana", at(9+i, 0), at(9+i, 30))
		a.Status, a.UpdatedAt, a.DepositMinor = f.status, f.updated, 20_000
		p := newIntent(a.ID)
		p.Kind = f.kind
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			if err := tx.AppointmentInsert(ctx, a); err != nil {
				return err
			}
			if _, err := tx.PaymentIntentCreate(ctx, p); err != nil {
				return err
			}
			cur, err := tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: p.ID, FromVersion: 1,
				Status: persistence.IntentApproved, TransactionID: "tx-" + p.ID, At: base})
			if err != nil {
				return err
			}
			if f.intentTo != persistence.IntentApproved {
				if _, err := tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: p.ID, FromVersion: cur.Version,
					Status: f.intentTo, At: base}); err != nil {
					return err
				}
			}
			if !f.fee {
				return nil
			}
			return tx.PaymentLedgerPost(ctx, persistence.LedgerMovement{ID: newID(), IntentID: p.ID, Key: "fee/" + p.ID, At: base,
				Lines: []persistence.LedgerLine{{Account: persistence.AccountDeposits, Debit: true, AmountMinor: p.AmountMinor},
					{Account: persistence.AccountDepositFees, AmountMinor: p.AmountMinor}}})
		})
		if f.want {
			want = append(want, p.ID)
		}
	}
	var got []string
	after := ""
	for range len(fixtures) {
		var page []persistence.PaymentIntent
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			page, err = tx.PaymentDepositsToSettle(ctx, since, after, 2)
			return err
		})
		for _, p := range page {
			if p.Status != persistence.IntentApproved || p.Kind != persistence.PaymentDeposit {
				t.Fatalf("selected %+v", p)
			}
			got = append(got, p.ID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	wantEqual(t, "deposits to settle", got, want)
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentDepositsToSettle(ctx, since, "", 0)
		return err
	})
	wantErr(t, "zero limit", err, persistence.ErrInvalid)
}

func testPaymentExceptions(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	x := persistence.PaymentException{ID: newID(), Class: persistence.ExceptionOrphan, State: persistence.ExceptionOpen,
		Dedupe: "orphan/ref/tx-1", Reference: "ref", TransactionID: "tx-1", AmountMinor: 100, Detail: "unknown reference", OpenedAt: base}
	y := persistence.PaymentException{ID: newID(), Class: persistence.ExceptionAmountMismatch, State: persistence.ExceptionOpen,
		Dedupe: "amount/ref2/tx-2", Reference: "ref2", OpenedAt: base.Add(time.Minute)}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, e := range []persistence.PaymentException{x, y} {
			if _, created, err := tx.PaymentExceptionOpen(ctx, e); err != nil || !created {
				t.Fatalf("open %s: %v %v", e.Class, created, err)
			}
		}
		dup := x
		dup.ID = newID()
		got, created, err := tx.PaymentExceptionOpen(ctx, dup)
		if err != nil || created || got.ID != x.ID {
			t.Fatalf("same dedupe: %+v %v %v", got, created, err)
		}
		stats, err := tx.PaymentExceptionStats(ctx)
		if err != nil || len(stats) != len(persistence.ExceptionClasses) {
			t.Fatalf("stats: %+v %v", stats, err)
		}
		for _, st := range stats {
			switch st.Class {
			case persistence.ExceptionOrphan:
				if st.Open != 1 || !st.OldestOpenAt.Equal(ct(base)) {
					t.Fatalf("orphan stat: %+v", st)
				}
			case persistence.ExceptionAmountMismatch:
				if st.Open != 1 {
					t.Fatalf("amount stat: %+v", st)
				}
			default:
				if st.Open != 0 || !st.OldestOpenAt.IsZero() {
					t.Fatalf("%s stat: %+v", st.Class, st)
				}
			}
		}
		list, err := tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{Limit: 1})
		if err != nil || len(list) != 1 || list[0].ID != y.ID {
			t.Fatalf("first page: %+v %v", list, err)
		}
		list, err = tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{BeforeID: y.ID, Limit: 10, Class: persistence.ExceptionOrphan})
		if err != nil || len(list) != 1 || list[0].ID != x.ID {
			t.Fatalf("second page: %+v %v", list, err)
		}
		return nil
	})
	var resolved persistence.PaymentException
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		resolved, err = tx.PaymentExceptionResolve(ctx, persistence.ExceptionResolve{ID: x.ID, State: persistence.ExceptionWrittenOff,
			By: "admin-1", Reason: "test charge", At: base.Add(time.Hour)})
		return err
	})
	if resolved.State != persistence.ExceptionWrittenOff || resolved.ResolvedBy != "admin-1" || resolved.Version != 2 ||
		!resolved.ResolvedAt.Equal(ct(base.Add(time.Hour))) {
		t.Fatalf("resolved: %+v", resolved)
	}
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PaymentExceptionResolve(ctx, persistence.ExceptionResolve{ID: x.ID, State: persistence.ExceptionResolved, At: base})
		return err
	})
	wantErr(t, "resolve twice", err, persistence.ErrStatusMismatch)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{State: persistence.ExceptionOpen, Limit: 10})
		if err != nil || len(list) != 1 || list[0].ID != y.ID {
			t.Fatalf("open list: %+v %v", list, err)
		}
		return nil
	})
}
