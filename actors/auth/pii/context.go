package pii

// The authenticated contexts of the engine's sealed columns, in one place:
// the code that seals a value (sign-in, TOTP enrolment, profiles) and the
// code that opens or re-encrypts it (profiles, export, key rotation) must
// name the same context, or the value no longer opens. Each names the
// column and the row's user, so a ciphertext copied to another row or
// column fails to open.

// PhoneContext is the context of users.phone_cipher.
func PhoneContext(userID string) []byte { return []byte("users.phone/" + userID) }

// TOTPSecretContext is the context of totp_factors.secret_cipher.
func TOTPSecretContext(userID string) []byte { return []byte("totp_factors.secret/" + userID) }

// ProfileContext is the context of one field of client_profiles (name,
// email, document, birth_date, notes: the keys of ClientProfile.Ciphers).
func ProfileContext(field, userID string) []byte {
	return []byte("client_profiles." + field + "/" + userID)
}
