package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Legal documents and consents. The partial unique index
// legal_documents_one_active keeps one active version per slug; the
// BEGIN IMMEDIATE transaction serialises the deactivate-then-activate pair.

const legalColumns = `slug, version, title, body, active, created_by, created_at, activated_at`

func scanLegal(r rowScanner) (persistence.LegalDocument, error) {
	var d persistence.LegalDocument
	var created int64
	var activated sql.NullInt64
	err := r.Scan(&d.Slug, &d.Version, &d.Title, &d.Body, &d.Active, &d.CreatedBy, &created, &activated)
	d.CreatedAt, d.ActivatedAt = fromMicros(created), fromNullMicros(activated)
	return d, err
}

func (t *txn) LegalDocumentCreate(ctx context.Context, d persistence.LegalDocument) (persistence.LegalDocument, error) {
	d, err := persistence.NormalizeLegalDocument(d)
	if err != nil {
		return d, err
	}
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM legal_documents WHERE slug = ?`,
		d.Slug).Scan(&d.Version); err != nil {
		return persistence.LegalDocument{}, mapErr(err)
	}
	_, err = t.exec(ctx, `INSERT INTO legal_documents (`+legalColumns+`) VALUES (?, ?, ?, ?, 0, ?, ?, NULL)`,
		d.Slug, d.Version, d.Title, d.Body, d.CreatedBy, toMicros(d.CreatedAt))
	if err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalDocumentGet(ctx context.Context, slug string, version int64) (persistence.LegalDocument, error) {
	if err := persistence.CheckLegalRef(slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	d, err := scanLegal(t.tx.QueryRowContext(ctx, `SELECT `+legalColumns+` FROM legal_documents
		WHERE slug = ? AND version = ?`, slug, version))
	if err != nil {
		return persistence.LegalDocument{}, mapErr(err)
	}
	return d, nil
}

func (t *txn) LegalDocumentVersions(ctx context.Context, slug string) ([]persistence.LegalDocument, error) {
	if !persistence.ValidLegalSlug(slug) {
		return nil, persistence.CheckLegalRef(slug, 1)
	}
	return queryList(ctx, t, scanLegal, `SELECT `+legalColumns+` FROM legal_documents
		WHERE slug = ? ORDER BY version`, slug)
}

func (t *txn) LegalDocumentActivate(ctx context.Context, slug string, version int64, at time.Time) (persistence.LegalDocument, error) {
	d, err := t.LegalDocumentGet(ctx, slug, version)
	if err != nil || d.Active {
		return d, err
	}
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = 0 WHERE slug = ? AND active = 1`, slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	d.Active, d.ActivatedAt = true, persistence.CanonicalTime(at)
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = 1, activated_at = ? WHERE slug = ? AND version = ?`,
		toMicros(d.ActivatedAt), slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalActive(ctx context.Context) ([]persistence.LegalDocument, error) {
	return queryList(ctx, t, scanLegal, `SELECT `+legalColumns+` FROM legal_documents
		WHERE active = 1 ORDER BY slug`)
}

const consentColumns = `id, subject_kind, subject_id, slug, version, accepted_at, request_id`

func scanConsent(r rowScanner) (persistence.LegalConsent, error) {
	var c persistence.LegalConsent
	var kind string
	var accepted int64
	err := r.Scan(&c.ID, &kind, &c.SubjectID, &c.Slug, &c.Version, &accepted, &c.RequestID)
	c.SubjectKind, c.AcceptedAt = persistence.ConsentSubjectKind(kind), fromMicros(accepted)
	return c, err
}

func (t *txn) LegalConsentAdd(ctx context.Context, c persistence.LegalConsent) (persistence.LegalConsent, bool, error) {
	c, err := persistence.NormalizeLegalConsent(c)
	if err != nil {
		return c, false, err
	}
	if _, err := t.LegalDocumentGet(ctx, c.Slug, c.Version); err != nil {
		return persistence.LegalConsent{}, false, err
	}
	n, err := t.exec(ctx, `INSERT INTO legal_consents (`+consentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject_kind, subject_id, slug, version) DO NOTHING`,
		c.ID, string(c.SubjectKind), c.SubjectID, c.Slug, c.Version, toMicros(c.AcceptedAt), c.RequestID)
	if err != nil || n == 1 {
		return c, err == nil, err
	}
	first, err := scanConsent(t.tx.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM legal_consents
		WHERE subject_kind = ? AND subject_id = ? AND slug = ? AND version = ?`,
		string(c.SubjectKind), c.SubjectID, c.Slug, c.Version))
	return first, false, mapErr(err)
}

func (t *txn) LegalConsentList(ctx context.Context, p persistence.LegalConsentListParams) ([]persistence.LegalConsent, error) {
	p, err := persistence.NormalizeLegalConsentList(p)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if p.Slug != "" {
		add("slug = ?", p.Slug)
	}
	if p.Version > 0 {
		add("version = ?", p.Version)
	}
	if p.SubjectID != "" {
		add("subject_kind = ?", string(p.SubjectKind))
		add("subject_id = ?", p.SubjectID)
	}
	if p.BeforeID != "" {
		add("id < ?", p.BeforeID)
	}
	q := `SELECT ` + consentColumns + ` FROM legal_consents`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return queryList(ctx, t, scanConsent, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
}

func (t *txn) LegalRequired(ctx context.Context, kind persistence.ConsentSubjectKind, subjectID string, slugs []string) ([]persistence.LegalDocument, error) {
	if err := persistence.CheckConsentSubject(kind, subjectID); err != nil {
		return nil, err
	}
	args := []any{string(kind), subjectID}
	filter := ""
	if len(slugs) > 0 {
		filter = ` AND d.slug IN (` + placeholders(len(slugs)) + `)`
		for _, s := range slugs {
			args = append(args, s)
		}
	}
	return queryList(ctx, t, scanLegal, `SELECT d.slug, d.version, d.title, d.body, d.active, d.created_by,
		d.created_at, d.activated_at FROM legal_documents d WHERE d.active = 1
		AND NOT EXISTS (SELECT 1 FROM legal_consents c WHERE c.subject_kind = ? AND c.subject_id = ?
			AND c.slug = d.slug AND c.version = d.version)`+filter+` ORDER BY d.slug`, args...)
}
