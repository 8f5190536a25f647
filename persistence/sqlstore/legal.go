package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Legal documents and consents. The partial unique index
// legal_documents_one_active keeps one active version per slug; two
// activations racing make one of them retry (SERIALIZABLE on PostgreSQL),
// or wait (BEGIN IMMEDIATE on SQLite).

const legalColumns = `slug, version, title, body, active, created_by, created_at, activated_at`

func (t *txn) scanLegal(r row) (persistence.LegalDocument, error) {
	var d persistence.LegalDocument
	err := r.Scan(&d.Slug, &d.Version, &d.Title, &d.Body, &d.Active, &d.CreatedBy, t.at(&d.CreatedAt), t.at(&d.ActivatedAt))
	return d, err
}

func (t *txn) LegalDocumentCreate(ctx context.Context, d persistence.LegalDocument) (persistence.LegalDocument, error) {
	d, err := persistence.NormalizeLegalDocument(d)
	if err != nil {
		return d, err
	}
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM legal_documents WHERE slug = ?`,
		d.Slug).Scan(&d.Version); err != nil {
		return persistence.LegalDocument{}, t.mapErr(err)
	}
	_, err = t.exec(ctx, `INSERT INTO legal_documents (`+legalColumns+`) VALUES (?, ?, ?, ?, false, ?, ?, NULL)`,
		d.Slug, d.Version, d.Title, d.Body, d.CreatedBy, t.ts(d.CreatedAt))
	if err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalDocumentGet(ctx context.Context, slug string, version int64) (persistence.LegalDocument, error) {
	if err := persistence.CheckLegalRef(slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	d, err := t.scanLegal(t.queryRow(ctx, `SELECT `+legalColumns+` FROM legal_documents
		WHERE slug = ? AND version = ?`, slug, version))
	if err != nil {
		return persistence.LegalDocument{}, t.mapErr(err)
	}
	return d, nil
}

func (t *txn) LegalDocumentVersions(ctx context.Context, slug string) ([]persistence.LegalDocument, error) {
	if !persistence.ValidLegalSlug(slug) {
		return nil, persistence.CheckLegalRef(slug, 1)
	}
	return queryList(ctx, t, t.scanLegal, `SELECT `+legalColumns+` FROM legal_documents
		WHERE slug = ? ORDER BY version`, slug)
}

func (t *txn) LegalDocumentActivate(ctx context.Context, slug string, version int64, at time.Time) (persistence.LegalDocument, error) {
	d, err := t.LegalDocumentGet(ctx, slug, version)
	if err != nil || d.Active {
		return d, err
	}
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = false WHERE slug = ? AND active`, slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	d.Active, d.ActivatedAt = true, persistence.CanonicalTime(at)
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = true, activated_at = ? WHERE slug = ? AND version = ?`,
		t.ts(d.ActivatedAt), slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalActive(ctx context.Context) ([]persistence.LegalDocument, error) {
	return queryList(ctx, t, t.scanLegal, `SELECT `+legalColumns+` FROM legal_documents
		WHERE active ORDER BY slug`)
}

const consentColumns = `id, subject_kind, subject_id, slug, version, accepted_at, request_id`

func (t *txn) scanConsent(r row) (persistence.LegalConsent, error) {
	var c persistence.LegalConsent
	var kind string
	err := r.Scan(&c.ID, &kind, &c.SubjectID, &c.Slug, &c.Version, t.at(&c.AcceptedAt), &c.RequestID)
	c.SubjectKind = persistence.ConsentSubjectKind(kind)
	return c, err
}

func (t *txn) LegalConsentAdd(ctx context.Context, c persistence.LegalConsent) (persistence.LegalConsent, bool, error) {
	c, err := persistence.NormalizeLegalConsent(c)
	if err != nil {
		return c, false, err
	}
	// Checked first: a foreign key violation would abort the transaction.
	if _, err := t.LegalDocumentGet(ctx, c.Slug, c.Version); err != nil {
		return persistence.LegalConsent{}, false, err
	}
	n, err := t.exec(ctx, `INSERT INTO legal_consents (`+consentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject_kind, subject_id, slug, version) DO NOTHING`,
		c.ID, string(c.SubjectKind), c.SubjectID, c.Slug, c.Version, t.ts(c.AcceptedAt), c.RequestID)
	if err != nil || n == 1 {
		return c, err == nil, err
	}
	first, err := t.scanConsent(t.queryRow(ctx, `SELECT `+consentColumns+` FROM legal_consents
		WHERE subject_kind = ? AND subject_id = ? AND slug = ? AND version = ?`,
		string(c.SubjectKind), c.SubjectID, c.Slug, c.Version))
	return first, false, t.mapErr(err)
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
	return queryList(ctx, t, t.scanConsent, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
}

func (t *txn) LegalRequired(ctx context.Context, kind persistence.ConsentSubjectKind, subjectID string, slugs []string) ([]persistence.LegalDocument, error) {
	if err := persistence.CheckConsentSubject(kind, subjectID); err != nil {
		return nil, err
	}
	args := []any{string(kind), subjectID}
	filter := ""
	if len(slugs) > 0 {
		filter, args = t.in("d.slug", slugs, args)
		filter = " AND " + filter
	}
	return queryList(ctx, t, t.scanLegal, `SELECT d.slug, d.version, d.title, d.body, d.active, d.created_by,
		d.created_at, d.activated_at FROM legal_documents d WHERE d.active
		AND NOT EXISTS (SELECT 1 FROM legal_consents c WHERE c.subject_kind = ? AND c.subject_id = ?
			AND c.slug = d.slug AND c.version = d.version)`+filter+` ORDER BY d.slug`, args...)
}
