package identity

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/auth/totp"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// staff signs phone in, makes the user staff and signs in again (no factor
// yet: straight in).
func (f *fixture) staff(phone string) service.Caller {
	f.t.Helper()
	u := f.signIn(phone)
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserSetRoles(ctx, u.UserID, []string{"client", "staff"}, f.clk.now())
	})
	return f.as(f.signIn(phone))
}

// totpCode is the authenticator's code for secret, offset steps from now.
func (f *fixture) totpCode(secret string, offset int) string {
	f.t.Helper()
	a, err := totp.New(totp.Config{Issuer: "Spa"})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := a.CodeAt(secret, f.clk.now().Add(time.Duration(offset)*30*time.Second))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wrongTOTP is a well-formed code none of the steps accepted now match.
func (f *fixture) wrongTOTP(secret string) string {
	near := map[string]bool{f.totpCode(secret, -1): true, f.totpCode(secret, 0): true, f.totpCode(secret, 1): true}
	for i := 0; ; i++ {
		if c := strings.Repeat(strconv.Itoa(i%10), 6); !near[c] {
			return c
		}
	}
}

// challenge signs phone in with a login code and returns the second
// factor's challenge the answer carries.
func (f *fixture) challenge(phone string) string {
	f.t.Helper()
	_, err := f.svc.SignIn(f.t.Context(), anon, SignInInput{Phone: phone, Code: f.sendCode(phone)})
	fe, _ := fault.From(err)
	d, ok := fe.Details.(MFADetails)
	if fe.Code != fault.CodeMFARequired || !ok || d.ExpiresIn != 300 || d.Challenge == "" {
		f.t.Fatalf("want mfa_required: %v", err)
	}
	return d.Challenge
}

func TestTOTPEnrolVerifyAndReplay(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	staff := f.staff(maria)
	if st, err := f.svc.TOTPStatus(ctx, staff); err != nil || st.Enabled || st.Pending {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	enr, err := f.svc.TOTPEnrol(ctx, staff, "")
	if err != nil || enr.Secret == "" || !strings.HasPrefix(enr.URI, "otpauth://totp/") || strings.Contains(enr.URI, "1234567") {
		t.Fatalf("enrol: %+v, %v", enr, err)
	}
	// Pending: the login code alone still signs in.
	f.signIn(maria)
	_, err = f.svc.TOTPConfirm(ctx, staff, f.wrongTOTP(enr.Secret))
	wantCode(t, err, fault.CodeInvalidCode)
	first := f.totpCode(enr.Secret, 0)
	recovery, err := f.svc.TOTPConfirm(ctx, staff, first[:3]+" "+first[3:]) // as apps show it
	if err != nil || len(recovery) != 10 {
		t.Fatalf("confirm: %v, %v", recovery, err)
	}
	_, err = f.svc.TOTPEnrol(ctx, staff, "")
	wantCode(t, err, fault.CodeConflict)
	if st, _ := f.svc.TOTPStatus(ctx, staff); !st.Enabled || st.RecoveryCodesRemaining != 10 {
		t.Fatalf("status after: %+v", st)
	}

	// Enabled: the login code earns a challenge, no session.
	ch := f.challenge(maria)
	now := f.totpCode(enr.Secret, 0)
	out, err := f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: ch, Code: now})
	if err != nil || out.Role != "staff" {
		t.Fatalf("second step: %+v, %v", out, err)
	}
	// The code was spent on its step: presented again, it is a replay.
	wantCode(t, f.svc.TOTPDisable(ctx, staff, now), fault.CodeInvalidCode)
	// A challenge is single use.
	_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: ch, Code: recovery[0]})
	wantCode(t, err, fault.CodeUnauthenticated)
	// A recovery code works once.
	out, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: f.challenge(maria), Code: recovery[0]})
	if err != nil || out.UserID == "" {
		t.Fatalf("recovery code: %v", err)
	}
	_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: f.challenge(maria), Code: recovery[0]})
	wantCode(t, err, fault.CodeInvalidCode)
	_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Code: "12 34?"})
	if fe, _ := fault.From(err); fe.Code != fault.CodeValidationFailed || len(fe.Details.(map[string]any)["fields"].([]fault.FieldError)) != 2 {
		t.Fatalf("both fields wrong: %v %+v", err, fe.Details)
	}

	// Disabling needs a code; then sign-in needs none.
	f.clk.add(30 * time.Second)
	if err := f.svc.TOTPDisable(ctx, staff, f.totpCode(enr.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	f.signIn(maria)
	actions := map[string]int{}
	for _, e := range f.audit("user/" + staff.Subject) {
		actions[e.Action]++
	}
	if actions["totp.enrol"] != 1 || actions["totp.enable"] != 1 || actions["totp.disable"] != 1 {
		t.Fatalf("audit %v", actions)
	}
	for outcome, want := range map[string]float64{"ok": 3, "recovery": 1, "invalid": 2, "replayed": 1} {
		if got := testutil.ToFloat64(f.svc.totpOutcomes.WithLabelValues(outcome)); got != want {
			t.Errorf("outcome %s = %v, want %v", outcome, got, want)
		}
	}
}

// TestTOTPLockout: five wrong codes lock the factor, even against the
// right code, for Lockout; the next wrong one doubles it.
func TestTOTPLockout(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	staff := f.staff(maria)
	enr, _ := f.svc.TOTPEnrol(ctx, staff, "")
	if _, err := f.svc.TOTPConfirm(ctx, staff, f.totpCode(enr.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	f.clk.add(30 * time.Second)
	ch := f.challenge(maria)
	var err error
	for range 5 {
		_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: ch, Code: f.wrongTOTP(enr.Secret)})
	}
	var w *Wait
	if !errors.As(err, &w) || w.After != 5*time.Minute {
		t.Fatalf("fifth wrong code: %v", err)
	}
	wantCode(t, err, fault.CodeOTPLocked)
	_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: ch, Code: f.totpCode(enr.Secret, 0)})
	if !errors.As(err, &w) || w.After != 5*time.Minute {
		t.Fatalf("right code while locked: %v", err)
	}
	f.clk.add(5 * time.Minute)
	ch = f.challenge(maria)
	_, err = f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: ch, Code: f.wrongTOTP(enr.Secret)})
	if !errors.As(err, &w) || w.After != 10*time.Minute {
		t.Fatalf("sixth wrong code: %v", err)
	}
	// An admin resets the factor; the user signs in with the login code.
	reset := func(uid string) error {
		return f.store.InTx(ctx, func(tx persistence.Tx) error { return f.svc.ResetTOTP(ctx, tx, admin(), uid, "lost phone") })
	}
	if err := reset(staff.Subject); err != nil {
		t.Fatal(err)
	}
	// Without a factor a second reset only reopens the enrolment window;
	// a user who is not there is 404.
	if err := reset(staff.Subject); err != nil {
		t.Fatal(err)
	}
	wantCode(t, reset("01HZZZZZZZZZZZZZZZZZZZZZZZ"), fault.CodeNotFound)
	f.signIn(maria)
	if e := f.audit("user/" + staff.Subject)[0]; e.Action != "totp.reset" || !strings.Contains(string(e.Detail), "lost phone") {
		t.Fatalf("audit %+v", e)
	}
}

// TestTOTPOnlyForUsers: an operator token without a user row holds no
// factor.
func TestTOTPOnlyForUsers(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.TOTPEnrol(t.Context(), admin(), "")
	wantCode(t, err, fault.CodeForbidden)
	wantCode(t, f.svc.TOTPDisable(t.Context(), admin(), "123456"), fault.CodeForbidden)
}

// TestStaffRolesNeedTheSecondFactor (issue 15 item 3): a promoted user's
// login code alone gives tokens without the second factor, good only for
// enrolling, and only within the window that the promotion opened; the
// TOTP step (at enrolment or sign-in) puts the factor in the session's
// tokens, and an admin's reset reopens a closed window.
func TestStaffRolesNeedTheSecondFactor(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	refresh := func(in SignedIn) SignedIn {
		t.Helper()
		out, err := f.svc.Refresh(ctx, anon, RefreshInput{RefreshToken: in.RefreshToken})
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return out
	}
	promote := func(uid string) {
		t.Helper()
		f.tx(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.SetRoles(ctx, tx, admin(), uid, SetRolesInput{Roles: []string{"client", "admin"}, Reason: "promoted"})
			return err
		})
	}

	// A client's token is not concerned.
	client := f.signIn(maria)
	if cl := f.as(client); cl.SecondFactor || SecondFactorRequired(cl.Claims) != nil || !client.EnrolSecondFactorBy.IsZero() {
		t.Fatalf("client: %+v", cl)
	}
	promoted := f.clk.now()
	promote(client.UserID)

	// Promoted: the login code alone gives an admin token without the
	// factor, refused everywhere but the enrolment.
	boss := f.signIn(maria)
	if want := promoted.Add(DefaultTOTPGrace); boss.Role != "admin" || !boss.EnrolSecondFactorBy.Equal(want) {
		t.Fatalf("sign-in after promotion: role %s, enrol by %v (want %v)", boss.Role, boss.EnrolSecondFactorBy, want)
	}
	restricted := f.as(boss)
	wantCode(t, SecondFactorRequired(restricted.Claims), fault.CodeSecondFactorRequired)
	if boss = refresh(boss); f.as(boss).SecondFactor {
		t.Fatal("a refresh added the second factor")
	}
	enr, err := f.svc.TOTPEnrol(ctx, restricted, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TOTPConfirm(ctx, restricted, f.totpCode(enr.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	// Confirming proved the factor in this session: its next refresh
	// carries it.
	boss = refresh(boss)
	if cl := f.as(boss); !cl.SecondFactor || SecondFactorRequired(cl.Claims) != nil || !boss.EnrolSecondFactorBy.IsZero() {
		t.Fatalf("after confirming: %+v", cl)
	}
	// A sign-in passes through the TOTP step and carries it too.
	f.clk.add(time.Minute)
	out, err := f.svc.TOTPSignIn(ctx, anon, TOTPSignInInput{Challenge: f.challenge(maria), Code: f.totpCode(enr.Secret, 0)})
	if err != nil || !f.as(out).SecondFactor || !f.as(refresh(out)).SecondFactor {
		t.Fatalf("TOTP sign-in: %v", err)
	}

	// Another promoted user lets the window pass: the login code alone is
	// refused, and so is enrolling with the token it gave.
	juan := "+573109876543"
	u := f.signIn(juan)
	promote(u.UserID)
	late := f.as(f.signIn(juan))
	f.clk.add(DefaultTOTPGrace)
	_, err = f.svc.SignIn(ctx, anon, SignInInput{Phone: juan, Code: f.sendCode(juan)})
	wantCode(t, err, fault.CodeSecondFactorRequired)
	_, err = f.svc.TOTPEnrol(ctx, late, "")
	wantCode(t, err, fault.CodeSecondFactorRequired)
	// An admin's reset reopens it.
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		return f.svc.ResetTOTP(ctx, tx, admin(), u.UserID, "missed it")
	})
	if again := f.signIn(juan); again.EnrolSecondFactorBy.IsZero() || f.as(again).SecondFactor {
		t.Fatalf("after reset: %+v", again)
	}
}

// TestTOTPEnrolIsKeyed (issue 15 item 9): an enrolment asked again under
// the same id while it is pending answers the same secret (from the sealed
// row) and writes nothing; another id, or none, restarts it.
func TestTOTPEnrolIsKeyed(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	staff := f.staff(maria)
	first, err := f.svc.TOTPEnrol(ctx, staff, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.TOTPEnrol(ctx, staff, "key-1")
	if err != nil || again != first {
		t.Fatalf("same id: %v (a new secret: %v)", err, again.Secret != first.Secret)
	}
	if n := len(f.audit("user/" + staff.Subject)); n != 1 {
		t.Fatalf("%d audit entries, want the first enrolment's only", n)
	}
	other, err := f.svc.TOTPEnrol(ctx, staff, "key-2")
	if err != nil || other.Secret == first.Secret {
		t.Fatalf("another id: %v", err)
	}
	unkeyed, err := f.svc.TOTPEnrol(ctx, staff, "")
	if err != nil || unkeyed.Secret == other.Secret {
		t.Fatalf("no id: %v", err)
	}
	if again, _ := f.svc.TOTPEnrol(ctx, staff, ""); again.Secret == unkeyed.Secret {
		t.Fatal("two unkeyed enrolments answered one secret")
	}
}
