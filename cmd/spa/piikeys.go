package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/privacy"
)

// piiKeysEnv lists the keys personal data is sealed under, primary first:
// "k2:<base64 of 32 bytes>,k1:<base64>". Unset, a single key derived from
// the token secret ("derived-1") is used, which in dev mode means the key
// persists with data/dev-secrets.json. To rotate: put a new key first and
// keep the old ones listed; a background pass re-encrypts every row, and
// once spa_pii_rotation_running drops to 0 an old key may be removed.
const piiKeysEnv = "SPA_PII_KEYS"

// derivedPIIKeyID is the id startIdentity gives the key derived from the
// token secret. It stays loaded whatever SPA_PII_KEYS says, so data sealed
// before the variable was first set still opens and gets rotated.
const derivedPIIKeyID = "derived-1"

// parsePIIKeys reads SPA_PII_KEYS. Errors name the entry, never its key.
func parsePIIKeys(raw string) (primary string, keys map[string][]byte, err error) {
	keys = map[string][]byte{}
	for i, entry := range strings.Split(raw, ",") {
		id, enc, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || id == "" {
			return "", nil, fmt.Errorf("entry %d: want id:base64-key", i+1)
		}
		if _, dup := keys[id]; dup {
			return "", nil, fmt.Errorf("entry %d: key id %q given twice", i+1, id)
		}
		var key []byte
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(enc); err == nil {
				key = b
				break
			}
		}
		if len(key) != pii.KeyLen {
			return "", nil, fmt.Errorf("entry %d (%q): the key must be base64 of %d random bytes (openssl rand -base64 32)", i+1, id, pii.KeyLen)
		}
		keys[id] = key
		if i == 0 {
			primary = id
		}
	}
	return primary, keys, nil
}

// weakPIIKeys checks each key of SPA_PII_KEYS (raw, parsed into keys) for
// the strength production asks of secrets (weakSecret). The error names
// the entry and its id, never the key.
func weakPIIKeys(raw string, keys map[string][]byte) error {
	for i, entry := range strings.Split(raw, ",") {
		id, _, _ := strings.Cut(strings.TrimSpace(entry), ":")
		if err := weakSecret(keys[id]); err != nil {
			return fmt.Errorf("entry %d (%q): %w (openssl rand -base64 32)", i+1, id, err)
		}
	}
	return nil
}

// piiKeyring is the sign-in keyring: the one SPA_PII_KEYS describes plus
// the key derived from the token secret (derived), or, when the variable
// is unset, that derived key alone.
func piiKeyring(cfg config, derived []byte) (*pii.Keyring, error) {
	raw := ""
	if cfg.getenv != nil {
		raw = strings.TrimSpace(cfg.getenv(piiKeysEnv))
	}
	if raw == "" {
		return pii.NewKeyring(pii.KeyringConfig{Primary: derivedPIIKeyID, Keys: map[string][]byte{derivedPIIKeyID: derived}})
	}
	primary, keys, err := parsePIIKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", piiKeysEnv, err)
	}
	if _, ok := keys[derivedPIIKeyID]; !ok {
		keys[derivedPIIKeyID] = derived
	}
	kr, err := pii.NewKeyring(pii.KeyringConfig{Primary: primary, Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", piiKeysEnv, err)
	}
	return kr, nil
}

// startPIIRotation registers the rotation metrics and, when keys other
// than the primary are loaded, runs one re-encryption pass as a background
// loop of the node (stopped, mid-batch if need be, before the store
// closes; the next start resumes it).
func (n *node) startPIIRotation(ctx context.Context, keys *pii.Keyring, reg prometheus.Registerer) error {
	if keys == nil {
		return errors.New("pii rotation: no keyring")
	}
	rot, err := privacy.NewRotation(n.store, keys, n.log, reg)
	if err != nil {
		return err
	}
	if len(keys.KeyIDs()) < 2 {
		return nil
	}
	n.loops.Add(1)
	go func() {
		defer n.loops.Done()
		if _, err := rot.RunOnce(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("pii rotation failed; it resumes at the next start", "err", err)
		}
	}()
	return nil
}
