package privacy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// Rotation re-encrypts, in batches, every personal-data ciphertext that
// is not sealed under the keyring's primary key: users' phones, every
// field of client profiles, the answers stored for Idempotency-Key replays
// (sealed: a profile update's answer holds the whole profile), the
// clients' data keys (which seal shipping addresses, reasons and the
// reasons events carry: rewrapping a key moves all of it) and the TOTP secrets of staff (sealed with the
// same keyring: left behind, they would stop opening once the old key is
// dropped, and every enrolled admin would be locked out). After an operator puts a new key first in
// SPA_PII_KEYS (keeping the old one listed), one pass moves all data to it;
// then the old key can be dropped. Each batch is one transaction that reads
// and rewrites its rows, so a concurrent profile update either commits
// first (and is re-encrypted from its new value) or after (and is sealed
// anew); rows keep their version, so re-encryption never makes a client's
// edit fail with a version conflict.
// Logs and metrics carry table names, counts and key ids, never data.
type Rotation struct {
	store persistence.Store
	keys  *pii.Keyring
	log   *slog.Logger
	met   *rotationMetrics
	// Batch is the rows per transaction (100); Pause the wait between
	// batches (50ms), which keeps the pass from crowding out requests.
	Batch int
	Pause time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Progress counts one pass's rows.
type Progress struct {
	Scanned, Rewritten, Failed int
}

type rotationMetrics struct {
	rows    *prometheus.CounterVec // by table and outcome
	pending prometheus.Gauge
}

// NewRotation returns an unstarted rotation; reg may be nil.
func NewRotation(store persistence.Store, keys *pii.Keyring, log *slog.Logger, reg prometheus.Registerer) (*Rotation, error) {
	if store == nil || keys == nil {
		return nil, errors.New("privacy: PII rotation needs a store and a keyring")
	}
	if log == nil {
		log = slog.Default()
	}
	m := &rotationMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_pii_rotation_rows_total",
			Help: "Rows the PII key rotation examined, by table and outcome (current, rewritten, failed)."}, []string{"table", "outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spa_pii_rotation_running",
			Help: "1 while a PII key-rotation pass is running, 0 when every ciphertext is under the primary key."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rows, m.pending} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return &Rotation{store: store, keys: keys, log: log, met: m, Batch: 100, Pause: 50 * time.Millisecond}, nil
}

// Start runs one pass in the background; Stop ends it. Starting a started
// rotation is a no-op.
func (r *Rotation) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		p, err := r.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			r.log.Info("pii rotation stopped", "primary_key", r.keys.Primary(), "rewritten", p.Rewritten, "scanned", p.Scanned)
		case err != nil:
			r.log.Warn("pii rotation failed; it resumes at the next start", "err", err, "rewritten", p.Rewritten)
		}
	}()
}

// Stop cancels a running pass and waits for it; safe to call twice or
// without Start.
func (r *Rotation) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// RunOnce makes one pass over users, profiles, TOTP factors and stored
// Idempotency-Key answers and returns its counts.
func (r *Rotation) RunOnce(ctx context.Context) (Progress, error) {
	r.met.pending.Set(1)
	var total Progress
	r.log.Info("pii rotation started", "primary_key", r.keys.Primary(), "keys", r.keys.KeyIDs())
	for _, table := range []struct {
		name  string
		batch func(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error)
	}{{"users", r.usersBatch}, {"client_profiles", r.profilesBatch}, {"totp_factors", r.totpBatch},
		{"idempotency_records", r.answersBatch}, {"client_keys", r.clientKeysBatch}} {
		after := ""
		for {
			var next string
			var p Progress
			err := r.store.InTx(ctx, func(tx persistence.Tx) (err error) {
				next, p, err = table.batch(ctx, tx, after)
				return err
			})
			if err != nil {
				return total, err
			}
			r.met.rows.WithLabelValues(table.name, "current").Add(float64(p.Scanned - p.Rewritten - p.Failed))
			r.met.rows.WithLabelValues(table.name, "rewritten").Add(float64(p.Rewritten))
			r.met.rows.WithLabelValues(table.name, "failed").Add(float64(p.Failed))
			total.Scanned, total.Rewritten, total.Failed = total.Scanned+p.Scanned, total.Rewritten+p.Rewritten, total.Failed+p.Failed
			if p.Rewritten > 0 || p.Failed > 0 {
				r.log.Info("pii rotation batch", "table", table.name, "scanned", p.Scanned, "rewritten", p.Rewritten, "failed", p.Failed)
			}
			if next == "" {
				break
			}
			after = next
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(r.Pause):
			}
		}
	}
	r.met.pending.Set(0)
	r.log.Info("pii rotation finished", "primary_key", r.keys.Primary(), "scanned", total.Scanned, "rewritten", total.Rewritten, "failed", total.Failed)
	return total, nil
}

// usersBatch rewrites the phone ciphers of one batch of users; it returns
// the last id seen ("" at the end).
func (r *Rotation) usersBatch(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error) {
	var p Progress
	users, err := tx.UserListAfter(ctx, after, r.Batch)
	if err != nil || len(users) == 0 {
		return "", p, err
	}
	for _, u := range users {
		p.Scanned++
		if !r.keys.NeedsReencrypt(u.PhoneCipher) {
			continue
		}
		next, err := r.keys.Reencrypt(u.PhoneCipher, pii.PhoneContext(u.ID))
		if err != nil { // a key missing from the ring: counted, left as is
			p.Failed++
			continue
		}
		if err := tx.UserReplacePhoneCipher(ctx, u.ID, u.PhoneCipher, next); err != nil {
			return "", p, err
		}
		p.Rewritten++
	}
	return users[len(users)-1].ID, p, nil
}

// totpBatch rewrites the sealed secrets of one batch of TOTP factors. The
// factor was read in this transaction, so its version cannot have moved;
// the rewrite keeps every other field (step, failures, lockout) as read.
func (r *Rotation) totpBatch(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error) {
	var p Progress
	factors, err := tx.TOTPFactorListAfter(ctx, after, r.Batch)
	if err != nil || len(factors) == 0 {
		return "", p, err
	}
	for _, f := range factors {
		p.Scanned++
		if !r.keys.NeedsReencrypt(f.SecretCipher) {
			continue
		}
		next, err := r.keys.Reencrypt(f.SecretCipher, pii.TOTPSecretContext(f.UserID))
		if err != nil {
			p.Failed++
			continue
		}
		f.SecretCipher = next
		if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
			return "", p, err
		}
		p.Rewritten++
	}
	return factors[len(factors)-1].UserID, p, nil
}

// profilesBatch rewrites the fields of one batch of profiles.
func (r *Rotation) profilesBatch(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error) {
	var p Progress
	rows, err := tx.ProfileListAfter(ctx, after, r.Batch)
	if err != nil || len(rows) == 0 {
		return "", p, err
	}
	for _, row := range rows {
		p.Scanned++
		changed, failed := false, false
		for field, ct := range row.Ciphers() {
			if len(*ct) == 0 || !r.keys.NeedsReencrypt(*ct) {
				continue
			}
			next, err := r.keys.Reencrypt(*ct, pii.ProfileContext(field, row.UserID))
			if err != nil {
				failed = true
				continue
			}
			*ct, changed = next, true
		}
		switch {
		case failed:
			p.Failed++
		case changed:
			p.Rewritten++
		}
		if changed {
			// Read in this transaction, so the version cannot have moved.
			if err := tx.ProfileReencrypt(ctx, row); err != nil {
				return "", p, err
			}
		}
	}
	return rows[len(rows)-1].UserID, p, nil
}

// answersBatch reseals one batch of the answers stored for Idempotency-Key
// replays, by the HTTP edge or by an actor (keyed.Seal: their context
// names scope and key). A body is replaced only if it is still the one
// read, so an answer rewritten meanwhile is left to the next pass; an
// answer that expires before a pass reaches it needs none. The cursor is
// scope and key joined by a NUL, which neither holds.
func (r *Rotation) answersBatch(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error) {
	var p Progress
	afterScope, afterKey, _ := strings.Cut(after, "\x00")
	recs, err := tx.IdempotencyList(ctx, time.Now(), afterScope, afterKey, r.Batch)
	if err != nil || len(recs) == 0 {
		return "", p, err
	}
	for _, rec := range recs {
		p.Scanned++
		if len(rec.ResponseBody) == 0 || rec.ResponseBody[0] != pii.Version || !r.keys.NeedsReencrypt(rec.ResponseBody) {
			continue // not sealed (written before sealing was on), or under the primary already
		}
		body, err := keyed.Open(r.keys, rec.Scope, rec.Key, rec.ResponseBody)
		if err != nil {
			p.Failed++
			continue
		}
		next, err := keyed.Seal(r.keys, rec.Scope, rec.Key, body)
		clear(body)
		if err != nil {
			return "", p, err
		}
		ok, err := tx.IdempotencyReseal(ctx, rec.Scope, rec.Key, rec.ResponseBody, next)
		if err != nil {
			return "", p, err
		}
		if ok {
			p.Rewritten++
		}
	}
	last := recs[len(recs)-1]
	return last.Scope + "\x00" + last.Key, p, nil
}

// clientKeysBatch rewraps one batch of client data keys under the primary
// key: what the data keys seal (addresses, reasons, event fields) stays as
// it is, so a rotation costs one row per client.
func (r *Rotation) clientKeysBatch(ctx context.Context, tx persistence.Tx, after string) (string, Progress, error) {
	var p Progress
	keys, err := tx.ClientKeyListAfter(ctx, after, r.Batch)
	if err != nil || len(keys) == 0 {
		return "", p, err
	}
	for _, k := range keys {
		p.Scanned++
		if !r.keys.NeedsReencrypt(k.KeyCipher) {
			continue
		}
		next, err := r.keys.Reencrypt(k.KeyCipher, pii.ClientKeyContext(k.ClientID))
		if err != nil {
			p.Failed++
			continue
		}
		ok, err := tx.ClientKeyReplace(ctx, k.ClientID, k.KeyCipher, next)
		if err != nil {
			return "", p, err
		}
		if ok {
			p.Rewritten++
		}
	}
	return keys[len(keys)-1].ClientID, p, nil
}
