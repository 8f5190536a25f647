package pii

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeyLen) }

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func mustKeyring(tb testing.TB, primary string, keys map[string][]byte) *Keyring {
	tb.Helper()
	k, err := NewKeyring(KeyringConfig{Primary: primary, Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

var ctxEmail = []byte("client_profile.email:01HZX")

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustKeyring(t, "k1", map[string][]byte{"k1": key(1)})
	for _, pt := range [][]byte{nil, []byte(""), []byte("maria.perez@example.com"), bytes.Repeat([]byte("nota clínica "), 1000)} {
		ct, err := k.Encrypt(pt, ctxEmail)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 4 && bytes.Contains(ct, pt[:len(pt)/2]) {
			t.Fatal("ciphertext contains plaintext")
		}
		got, err := k.Decrypt(ct, ctxEmail)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt = %q, %v", got, err)
		}
		if id, err := KeyID(ct); err != nil || id != "k1" {
			t.Fatalf("KeyID = %q, %v", id, err)
		}
		if ct[0] != Version {
			t.Fatalf("version byte %d", ct[0])
		}
	}
	// Random nonces: the same value encrypts differently each time.
	a, _ := k.Encrypt([]byte("x"), nil)
	b, _ := k.Encrypt([]byte("x"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions are identical")
	}
}

func TestDecryptFailures(t *testing.T) {
	t.Parallel()
	k1 := mustKeyring(t, "k1", map[string][]byte{"k1": key(1)})
	ct, err := k1.Encrypt([]byte("1.234.567.890"), ctxEmail)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name    string
		ring    *Keyring
		ct      []byte
		context []byte
		wantErr error
	}{
		{"wrong key id", mustKeyring(t, "k2", map[string][]byte{"k2": key(2)}), ct, ctxEmail, ErrUnknownKeyID},
		{"same id, different key", mustKeyring(t, "k1", map[string][]byte{"k1": key(9)}), ct, ctxEmail, ErrDecrypt},
		{"wrong context", k1, ct, []byte("client_profile.email:01HZY"), ErrDecrypt},
		{"missing context", k1, ct, nil, ErrDecrypt},
		{"flipped nonce bit", k1, flip(2 + 2 + 1), ctxEmail, ErrDecrypt},
		{"flipped body bit", k1, flip(len(ct) - 20), ctxEmail, ErrDecrypt},
		{"flipped tag bit", k1, flip(len(ct) - 1), ctxEmail, ErrDecrypt},
		{"truncated", k1, ct[:len(ct)-1], ctxEmail, ErrDecrypt},
		{"extended", k1, append(bytes.Clone(ct), 0), ctxEmail, ErrDecrypt},
		{"header only", k1, ct[:4], ctxEmail, ErrMalformed},
		{"empty", k1, nil, ctxEmail, ErrMalformed},
		{"unknown version", k1, append([]byte{2}, ct[1:]...), ctxEmail, ErrUnsupportedVersion},
		{"zero-length key id", k1, append([]byte{Version, 0}, ct[4:]...), ctxEmail, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pt, err := tt.ring.Decrypt(tt.ct, tt.context)
			if !errors.Is(err, tt.wantErr) || pt != nil {
				t.Fatalf("Decrypt = %q, %v; want %v", pt, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "1.234") {
				t.Fatalf("error leaks plaintext: %v", err)
			}
		})
	}

	// Relabelling a ciphertext with another loaded key's id fails even if
	// the attacker controls which key is tried: the header is authenticated.
	both := mustKeyring(t, "k1", map[string][]byte{"k1": key(1), "k2": key(1)})
	relabelled := bytes.Clone(ct)
	relabelled[3] = '2' // "k1" -> "k2"
	if _, err := both.Decrypt(relabelled, ctxEmail); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("relabelled ciphertext: %v", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	before := mustKeyring(t, "k1", map[string][]byte{"k1": key(1)})
	old, err := before.Encrypt([]byte("+573001234567"), ctxEmail)
	if err != nil {
		t.Fatal(err)
	}
	// Deploy k2 as primary with k1 still loaded.
	after := mustKeyring(t, "k2", map[string][]byte{"k1": key(1), "k2": key(2)})
	if got, err := after.Decrypt(old, ctxEmail); err != nil || string(got) != "+573001234567" {
		t.Fatalf("old data under k1: %q, %v", got, err)
	}
	fresh, err := after.Encrypt([]byte("new"), ctxEmail)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(fresh); id != "k2" {
		t.Fatalf("new data under %q", id)
	}
	if _, err := before.Decrypt(fresh, ctxEmail); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("old node opening k2 data: %v", err)
	}
	// The background job re-encrypts what is not under the primary.
	if !after.NeedsReencrypt(old) || after.NeedsReencrypt(fresh) {
		t.Fatal("NeedsReencrypt wrong")
	}
	re, err := after.Reencrypt(old, ctxEmail)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(re); id != "k2" {
		t.Fatalf("re-encrypted under %q", id)
	}
	same, err := after.Reencrypt(fresh, ctxEmail)
	if err != nil || !bytes.Equal(same, fresh) {
		t.Fatalf("Reencrypt of primary data changed it: %v", err)
	}
	if _, err := after.Reencrypt(old, []byte("other")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Reencrypt with wrong context: %v", err)
	}
	// After the job, k1 can be retired.
	retired := mustKeyring(t, "k2", map[string][]byte{"k2": key(2)})
	if got, err := retired.Decrypt(re, ctxEmail); err != nil || string(got) != "+573001234567" {
		t.Fatalf("after retiring k1: %q, %v", got, err)
	}
	if got := after.KeyIDs(); len(got) != 2 || got[0] != "k1" || got[1] != "k2" || after.Primary() != "k2" {
		t.Fatalf("KeyIDs = %v, Primary = %q", got, after.Primary())
	}
}

func TestNewKeyring(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     KeyringConfig
		wantErr error
	}{
		{"short key", KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": make([]byte, 16)}}, ErrInvalidKey},
		{"empty id", KeyringConfig{Primary: "", Keys: map[string][]byte{"": key(1)}}, ErrInvalidKey},
		{"id with space", KeyringConfig{Primary: "k 1", Keys: map[string][]byte{"k 1": key(1)}}, ErrInvalidKey},
		{"id too long", KeyringConfig{Primary: "k", Keys: map[string][]byte{strings.Repeat("k", MaxKeyIDLen+1): key(1)}}, ErrInvalidKey},
		{"primary missing", KeyringConfig{Primary: "k2", Keys: map[string][]byte{"k1": key(1)}}, ErrNoPrimary},
		{"no keys", KeyringConfig{Primary: "k1"}, ErrNoPrimary},
	}
	for _, tt := range tests {
		_, err := NewKeyring(tt.cfg)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "\x01") {
			t.Errorf("%s: error contains key bytes", tt.name)
		}
	}
	// The keyring copies keys: changing the caller's slice later does not
	// change what it decrypts with.
	src := key(1)
	k := mustKeyring(t, "k1", map[string][]byte{"k1": src})
	ct, _ := k.Encrypt([]byte("x"), nil)
	clear(src)
	if _, err := k.Decrypt(ct, nil); err != nil {
		t.Fatalf("after clearing caller's key: %v", err)
	}
	// Deterministic nonces from an injected source; a failing source fails.
	k, _ = NewKeyring(KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": key(1)}, Rand: seeded(1)})
	k2, _ := NewKeyring(KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": key(1)}, Rand: seeded(1)})
	a, _ := k.Encrypt([]byte("x"), nil)
	b, _ := k2.Encrypt([]byte("x"), nil)
	if !bytes.Equal(a, b) {
		t.Fatal("injected Rand not used")
	}
	broken, _ := NewKeyring(KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": key(1)}, Rand: bytes.NewReader(nil)})
	if _, err := broken.Encrypt([]byte("x"), nil); !errors.Is(err, ErrRandom) {
		t.Fatalf("broken rand: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	k, _ := NewKeyring(KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": key(1)}, Rand: seeded(3)})
	done := make(chan error)
	for range 8 {
		go func() {
			for range 100 {
				ct, err := k.Encrypt([]byte("v"), nil)
				if err == nil {
					_, err = k.Decrypt(ct, nil)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBlindIndex(t *testing.T) {
	t.Parallel()
	if _, err := NewBlindIndex(make([]byte, MinIndexKeyLen-1)); !errors.Is(err, ErrShortIndexKey) {
		t.Fatalf("short key: %v", err)
	}
	b1, _ := NewBlindIndex(key(7))
	b1again, _ := NewBlindIndex(key(7))
	b2, _ := NewBlindIndex(key(8))

	same := []struct {
		f    Field
		a, b string
	}{
		{FieldPhone, "+573001234567", "+57 300 123 4567"},
		{FieldPhone, "+573001234567", " +57-300-123-4567 "},
		{FieldEmail, "Maria.Perez@Example.com", " maria.perez@example.com"},
		{FieldDocument, "1.234.567.890", "1234567890"},
		{FieldDocument, "ab-123 456", "AB123456"},
	}
	for _, tt := range same {
		x, y := b1.Sum(tt.f, tt.a), b1again.Sum(tt.f, tt.b)
		if !bytes.Equal(x, y) || len(x) != 32 {
			t.Errorf("%s: %q and %q index differently", tt.f, tt.a, tt.b)
		}
		if bytes.Equal(x, b2.Sum(tt.f, tt.a)) {
			t.Errorf("%s: index does not depend on the key", tt.f)
		}
	}
	different := []struct {
		fa, fb Field
		a, b   string
	}{
		{FieldPhone, FieldPhone, "+573001234567", "+573001234568"},
		{FieldEmail, FieldEmail, "a@example.com", "b@example.com"},
		{FieldDocument, FieldEmail, "ABC", "abc"},     // domains are separate
		{FieldPhone, FieldDocument, "12345", "12345"}, // even for equal strings
	}
	for _, tt := range different {
		if bytes.Equal(b1.Sum(tt.fa, tt.a), b1.Sum(tt.fb, tt.b)) {
			t.Errorf("%s %q and %s %q collide", tt.fa, tt.a, tt.fb, tt.b)
		}
	}
	// Stable across releases: a stored index must keep matching. This value
	// pins the construction HMAC-SHA256(key, field|0|normalised), computed
	// independently (Python's hmac module).
	const pinned = "64ed494c067489d07aa5273d9c09e2fc8018e2652e6db596a728249b0581307d"
	if got := hex.EncodeToString(b1.Sum(FieldPhone, "+57 300 123 4567")); got != pinned {
		t.Fatalf("phone index = %s, want %s", got, pinned)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	emails := map[string]string{
		"maria.perez@example.com": "m***@e***.com",
		"a@b.co":                  "a***@b***.co",
		" Ana@Spa.com.co ":        "A***@S***.co",
		"ñandú@correo.es":         "ñ***@c***.es",
		"x@localhost":             "x***@***",
		"no-at-sign":              "***",
		"@example.com":            "***",
		"user@":                   "***",
		"":                        "***",
	}
	for in, want := range emails {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
	docs := map[string]string{
		"1.234.567.890": "******7890",
		"AB-123456":     "****3456",
		"1234567":       "*****67",
		"1234":          "**34",
		"123":           "***",
		"":              "***",
	}
	for in, want := range docs {
		if got := MaskDocument(in); got != want {
			t.Errorf("MaskDocument(%q) = %q, want %q", in, got, want)
		}
	}
	if MaskAll("1990-05-17") != "***" {
		t.Error("MaskAll")
	}
}

func FuzzDecrypt(f *testing.F) {
	k := mustKeyring(f, "k2", map[string][]byte{"k1": key(1), "k2": key(2)})
	for _, s := range []string{"", "x", "nota clínica"} {
		ct, err := k.Encrypt([]byte(s), []byte("ctx"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct, []byte("ctx"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{Version}, []byte{})
	f.Add([]byte{Version, 2, 'k', '1'}, []byte{})
	f.Add([]byte{Version, 255}, []byte("ctx"))
	f.Fuzz(func(t *testing.T, ct, context []byte) {
		orig := bytes.Clone(ct)
		pt, err := k.Decrypt(ct, context)
		if !bytes.Equal(ct, orig) {
			t.Fatal("Decrypt modified its input")
		}
		id, idErr := KeyID(ct)
		if err == nil {
			// Only genuine ciphertexts open; they re-encrypt and reopen.
			if idErr != nil || (id != "k1" && id != "k2") {
				t.Fatalf("opened a ciphertext with key id %q (%v)", id, idErr)
			}
			re, err := k.Reencrypt(ct, context)
			if err != nil {
				t.Fatal(err)
			}
			back, err := k.Decrypt(re, context)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("re-encrypted value does not reopen: %v", err)
			}
			return
		}
		if pt != nil {
			t.Fatal("plaintext returned with an error")
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) &&
			!errors.Is(err, ErrUnknownKeyID) && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("unexpected error %v", err)
		}
		_ = k.NeedsReencrypt(ct)
	})
}

// TestContextsAreStable: the contexts are part of the stored data; a change
// would make every sealed phone, TOTP secret and profile field unreadable.
func TestContextsAreStable(t *testing.T) {
	for got, want := range map[string]string{
		string(PhoneContext("u1")):             "users.phone/u1",
		string(TOTPSecretContext("u1")):        "totp_factors.secret/u1",
		string(ProfileContext("notes", "u1")):  "client_profiles.notes/u1",
		string(ProfileContext("email", "u-2")): "client_profiles.email/u-2",
	} {
		if got != want {
			t.Errorf("context %q, want %q", got, want)
		}
	}
}
