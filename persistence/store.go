// Package persistence is the one set of store interfaces the engine writes
// through. Business logic lives above it; package sqlstore holds the SQL
// and row mapping, written once for both drivers; the driver packages
// (sqlite, postgres) hold what differs (opening, transactions and retries,
// migrations, their dialect); and the conformance suite in storetest runs
// every behaviour against both.
//
// Every read and write happens inside Store.InTx, so a state change, its
// audit entry, its outbox event and its idempotency record commit together.
package persistence

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Drivers translate their native errors into these so
// callers never inspect SQL state codes.
var (
	// ErrNotFound: the addressed row does not exist (or has expired).
	ErrNotFound = errors.New("persistence: not found")
	// ErrConflict: a row with the same identity already exists, or an
	// optimistic version check failed.
	ErrConflict = errors.New("persistence: conflict")
	// ErrUnavailable: the store cannot be reached or is shutting down.
	ErrUnavailable = errors.New("persistence: store unavailable")
	// ErrInvalid: the input is malformed (an empty ID, an end before its
	// start, a negative amount, an unknown status, a limit out of range)
	// and was refused before reaching the database. Retrying the same
	// input cannot succeed.
	ErrInvalid = errors.New("persistence: invalid input")
)

// Dialect names a driver family. Dialect gaps are expressed as methods on
// Store, never as type switches on the driver.
type Dialect string

// The supported dialects.
const (
	DialectSQLite   Dialect = "sqlite"
	DialectPostgres Dialect = "postgres" // PostgreSQL or CockroachDB
)

// Store is a database handle. It is safe for concurrent use.
//
// Every driver stores times in UTC truncated to microseconds (the precision
// PostgreSQL keeps), so a time read back equals CanonicalTime of the time
// written; a zero time stays zero.
type Store interface {
	// InTx runs fn in one transaction (SERIALIZABLE on PostgreSQL and
	// CockroachDB, BEGIN IMMEDIATE on SQLite) and commits it. Retryable
	// serialization failures re-run fn, so fn must have no effects outside
	// the transaction. ctx cancellation aborts the transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Ping reports whether the database answers; it returns ErrUnavailable
	// (wrapped) when it does not.
	Ping(ctx context.Context) error
	// Migrate applies the embedded migrations not yet applied, in version
	// order, and returns the ones it applied. Safe to call from several
	// processes at once.
	Migrate(ctx context.Context) ([]Migration, error)
	// Dialect tells which driver family this is.
	Dialect() Dialect
	// Close releases the handle; calling it twice is harmless.
	Close() error
}

// Tx gives one transaction's view of every bounded context's store.
type Tx interface {
	Pipeliner
	IdempotencyStore
	AuditStore
	OutboxStore
	StudioStore
	BookingStore
	ResourceClaimStore
	OffersStore
	ShopStore
	OrderStore
	LegalStore
	BlockStore
	IdentityStore
	ProfileStore
	TOTPStore
	KioskStore
	ClientKeyStore
	QuotaStore
	PaymentStore
	VoucherPurchaseStore
	NotificationStore
	NotificationTemplateStore
	NotificationPreferenceStore
	ConversationStore
	DeliveryStore
}

// Pipeliner lets a transaction send its writes together.
type Pipeliner interface {
	// Pipelined runs fn, sending the writes it makes that need no answer
	// before the next statement (inserts whose only outcome is success or
	// an error, the epoch check) together, in one round trip on a driver
	// that pipelines (PostgreSQL), when fn returns or before the next read.
	// Their errors are then Pipelined's (or that read's), not the write
	// call's: a group commit wraps each calendar's batch in it, so a
	// failure is still that batch's. After an error the transaction must
	// not commit: writes sent after the failing one may have run. Without
	// pipelining it is fn().
	Pipelined(ctx context.Context, fn func() error) error
}

// Options are the driver-independent knobs given to a driver's Open.
type Options struct {
	// AfterOutboxCommit, when set, is called after a transaction that
	// appended outbox events has committed, with their ids in the order
	// appended (the callee may keep the slice), so the relay can publish
	// without waiting for its next poll and knows which events are its
	// own node's. It must not block.
	AfterOutboxCommit func(ids []string)
	// Personal, when set, seals personal free text about clients at rest
	// under per-client data keys (personal.go); nil stores it as it is.
	Personal PersonalSealer
	// TxDeadline, when positive, bounds every transaction run through
	// InTx (waiting for a connection included): one that runs past it is
	// ended and fails with ErrUnavailable, so a stuck database (a table
	// locked) answers 503 in seconds instead of holding requests until
	// the HTTP timeout. Zero leaves transactions to their callers'
	// contexts. See TxWatch.
	TxDeadline time.Duration
	// SlowStatement, when positive, is the duration over which a statement
	// is counted as slow (PoolStats.SlowStatements; PostgreSQL driver).
	SlowStatement time.Duration
}

// Migration describes one embedded schema migration.
type Migration struct {
	Version int
	Name    string
}

// ---- Idempotency -------------------------------------------------------

// IdempotencyState is the life stage of an idempotency record.
type IdempotencyState string

// Idempotency record states.
const (
	// IdempotencyInProgress: a request holds the key until LockedUntil.
	IdempotencyInProgress IdempotencyState = "in_progress"
	// IdempotencyCompleted: the first response is stored for replay.
	IdempotencyCompleted IdempotencyState = "completed"
)

// IdempotencyRecord is what is remembered of one Idempotency-Key: by the
// HTTP edge (an HTTP response), or by the actor that decided the request
// (Owner set; the body is the actor's reply, see actors/keyed).
type IdempotencyRecord struct {
	Scope       string // who may reuse the key: the principal, or "anonymous"
	Key         string
	Owner       string // the deciding actor's calendar ("staff/<id>"); "" for the edge
	RequestHash []byte // hash of method, route and canonical body
	State       IdempotencyState
	LockedUntil time.Time // in-progress lease; after it another request may take over
	// Holder is the process holding an in-progress key at the HTTP edge
	// (its incarnation, see gateway/idempotency.Holders): once it is
	// gone a retry takes the key over before LockedUntil. "" otherwise.
	Holder string
	// The first response, set when State is completed.
	ResponseStatus      int
	ResponseContentType string
	ResponseBody        []byte
	CreatedAt           time.Time
	ExpiresAt           time.Time // after it the record is treated as absent
}

// IdempotencyStore keeps idempotency records.
type IdempotencyStore interface {
	// IdempotencyGet returns the record for (scope, key), or ErrNotFound
	// when there is none or it expired before now.
	IdempotencyGet(ctx context.Context, scope, key string, now time.Time) (IdempotencyRecord, error)
	// IdempotencyPut inserts or replaces the record for (Scope, Key).
	IdempotencyPut(ctx context.Context, rec IdempotencyRecord) error
	// IdempotencyClaim inserts rec unless a record for (Scope, Key) that
	// has not expired by rec.CreatedAt exists (an expired one is
	// replaced), and fails with held when one does: the one write of a
	// key an actor answers, in the transaction of the change it answers
	// (pipelined: see Pipeliner).
	IdempotencyClaim(ctx context.Context, rec IdempotencyRecord, held error) error
	// IdempotencyOwned returns the records of owner that expire after now:
	// what an actor's activation replays.
	IdempotencyOwned(ctx context.Context, owner string, now time.Time) ([]IdempotencyRecord, error)
	// IdempotencyList returns up to limit records that expire after now,
	// in (scope, key) order after (afterScope, afterKey): erasure opens
	// the sealed bodies through it, as SQL cannot search them.
	IdempotencyList(ctx context.Context, now time.Time, afterScope, afterKey string, limit int) ([]IdempotencyRecord, error)
	// IdempotencyDelete removes the record; ErrNotFound if absent.
	IdempotencyDelete(ctx context.Context, scope, key string) error
	// IdempotencyReseal replaces the record's response body with body
	// when it is still old (the same answer sealed under another key:
	// the PII key rotation) and reports whether it did; nothing else of
	// the record changes.
	IdempotencyReseal(ctx context.Context, scope, key string, old, body []byte) (bool, error)
	// IdempotencyDeleteExpired removes up to limit records that expired
	// before now and returns how many it removed.
	IdempotencyDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
}

// ---- Audit log ---------------------------------------------------------

// AuditEntry records who did what to which subject, and why.
type AuditEntry struct {
	ID        string // ULID, assigned by the caller
	At        time.Time
	ActorID   string // the principal's subject, or "system"
	ActorRole string
	Action    string // e.g. "studio.update"
	Subject   string // e.g. "studio/default"
	RequestID string
	Reason    string
	Detail    []byte // JSON document; PII masked
	// ReasonClient, when set, is the client Reason is about (free text in
	// the client's words): the store seals the reason under that client's
	// data key, so anonymisation shreds it (persistence/personal.go).
	ReasonClient string
}

// AuditListParams selects audit entries, newest first.
type AuditListParams struct {
	Subject  string // empty: all subjects
	BeforeID string // empty: from the newest; otherwise entries with ID < BeforeID
	Limit    int    // 1..1000
}

// AuditStore is the append-only audit log.
type AuditStore interface {
	// AuditAppend adds an entry; ErrConflict if the ID exists.
	AuditAppend(ctx context.Context, e AuditEntry) error
	// AuditList returns entries ordered by ID descending.
	AuditList(ctx context.Context, p AuditListParams) ([]AuditEntry, error)
}

// ---- Outbox ------------------------------------------------------------

// OutboxEvent is a domain event waiting to be published to JetStream.
type OutboxEvent struct {
	ID        string // ULID; also the JetStream Nats-Msg-Id, stable across retries
	Subject   string // NATS subject, e.g. "spa.events.studio.updated"
	Type      string // fully qualified protobuf message name of the payload
	Payload   []byte // messages.Event, protobuf-encoded
	CreatedAt time.Time
}

// OutboxStore is the transactional outbox.
type OutboxStore interface {
	// OutboxAppend adds a pending event; ErrConflict if the ID exists.
	OutboxAppend(ctx context.Context, e OutboxEvent) error
	// OutboxPending returns up to limit unpublished events in ID order.
	OutboxPending(ctx context.Context, limit int) ([]OutboxEvent, error)
	// OutboxPendingAmong returns the unpublished events among ids, in ID
	// order: a relay reading only its own node's events, by primary key.
	OutboxPendingAmong(ctx context.Context, ids []string) ([]OutboxEvent, error)
	// OutboxDelete removes the given events, once the stream has
	// acknowledged them: the stream keeps the events, the table only what
	// is still to publish.
	OutboxDelete(ctx context.Context, ids []string) error
	// OutboxCount returns the number of pending events.
	OutboxCount(ctx context.Context) (pending int, err error)
}

// ---- Studio ------------------------------------------------------------

// Studio is the business's own profile: what every rule evaluated in local
// time needs.
type Studio struct {
	ID        string // "default" on a single-studio install
	Name      string
	TimeZone  string // IANA name, e.g. America/Bogota
	Currency  string // ISO 4217, e.g. COP
	Phone     string // E.164, PII
	Email     string // PII
	Version   int64  // optimistic concurrency; 0 means not yet stored
	UpdatedAt time.Time
}

// StudioStore keeps studio profiles.
type StudioStore interface {
	// StudioGet returns the studio, or ErrNotFound.
	StudioGet(ctx context.Context, id string) (Studio, error)
	// StudioPut stores s if the stored version equals s.Version (0: must
	// not exist yet) and returns it with Version incremented. ErrConflict
	// on a version mismatch.
	StudioPut(ctx context.Context, s Studio) (Studio, error)
}
