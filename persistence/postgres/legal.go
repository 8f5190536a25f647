package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Legal documents and consents. The partial unique index
// legal_documents_one_active keeps one active version per slug; two
// activations racing in SERIALIZABLE transactions make one of them retry.

const legalColumns = `slug, version, title, body, active, created_by, created_at, activated_at`

func scanLegal(r rowScanner) (persistence.LegalDocument, error) {
	var d persistence.LegalDocument
	var created time.Time
	var activated *time.Time
	err := r.Scan(&d.Slug, &d.Version, &d.Title, &d.Body, &d.Active, &d.CreatedBy, &created, &activated)
	d.CreatedAt, d.ActivatedAt = ts(created), fromNullTS(activated)
	return d, err
}

func (t *txn) LegalDocumentCreate(ctx context.Context, d persistence.LegalDocument) (persistence.LegalDocument, error) {
	d, err := persistence.NormalizeLegalDocument(d)
	if err != nil {
		return d, err
	}
	if err := t.tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM legal_documents WHERE slug = $1`,
		d.Slug).Scan(&d.Version); err != nil {
		return persistence.LegalDocument{}, mapErr(err)
	}
	_, err = t.exec(ctx, `INSERT INTO legal_documents (`+legalColumns+`) VALUES ($1, $2, $3, $4, false, $5, $6, NULL)`,
		d.Slug, d.Version, d.Title, d.Body, d.CreatedBy, ts(d.CreatedAt))
	if err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalDocumentGet(ctx context.Context, slug string, version int64) (persistence.LegalDocument, error) {
	if err := persistence.CheckLegalRef(slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	d, err := scanLegal(t.tx.QueryRow(ctx, `SELECT `+legalColumns+` FROM legal_documents
		WHERE slug = $1 AND version = $2`, slug, version))
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
		WHERE slug = $1 ORDER BY version`, slug)
}

func (t *txn) LegalDocumentActivate(ctx context.Context, slug string, version int64, at time.Time) (persistence.LegalDocument, error) {
	d, err := t.LegalDocumentGet(ctx, slug, version)
	if err != nil || d.Active {
		return d, err
	}
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = false WHERE slug = $1 AND active`, slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	d.Active, d.ActivatedAt = true, ts(at)
	if _, err := t.exec(ctx, `UPDATE legal_documents SET active = true, activated_at = $1 WHERE slug = $2 AND version = $3`,
		d.ActivatedAt, slug, version); err != nil {
		return persistence.LegalDocument{}, err
	}
	return d, nil
}

func (t *txn) LegalActive(ctx context.Context) ([]persistence.LegalDocument, error) {
	return queryList(ctx, t, scanLegal, `SELECT `+legalColumns+` FROM legal_documents
		WHERE active ORDER BY slug`)
}

const consentColumns = `id, subject_kind, subject_id, slug, version, accepted_at, request_id`

func scanConsent(r rowScanner) (persistence.LegalConsent, error) {
	var c persistence.LegalConsent
	var kind string
	var accepted time.Time
	err := r.Scan(&c.ID, &kind, &c.SubjectID, &c.Slug, &c.Version, &accepted, &c.RequestID)
	c.SubjectKind, c.AcceptedAt = persistence.ConsentSubjectKind(kind), ts(accepted)
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
	n, err := t.exec(ctx, `INSERT INTO legal_consents (`+consentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (subject_kind, subject_id, slug, version) DO NOTHING`,
		c.ID, string(c.SubjectKind), c.SubjectID, c.Slug, c.Version, ts(c.AcceptedAt), c.RequestID)
	if err != nil || n == 1 {
		return c, err == nil, err
	}
	first, err := scanConsent(t.tx.QueryRow(ctx, `SELECT `+consentColumns+` FROM legal_consents
		WHERE subject_kind = $1 AND subject_id = $2 AND slug = $3 AND version = $4`,
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
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
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
	args = append(args, p.Limit)
	return queryList(ctx, t, scanConsent, q+" ORDER BY id DESC LIMIT $"+strconv.Itoa(len(args)), args...)
}

func (t *txn) LegalRequired(ctx context.Context, kind persistence.ConsentSubjectKind, subjectID string, slugs []string) ([]persistence.LegalDocument, error) {
	if err := persistence.CheckConsentSubject(kind, subjectID); err != nil {
		return nil, err
	}
	args := []any{string(kind), subjectID}
	filter := ""
	if len(slugs) > 0 {
		filter, args = ` AND d.slug = ANY($3)`, append(args, slugs)
	}
	return queryList(ctx, t, scanLegal, `SELECT d.slug, d.version, d.title, d.body, d.active, d.created_by,
		d.created_at, d.activated_at FROM legal_documents d WHERE d.active
		AND NOT EXISTS (SELECT 1 FROM legal_consents c WHERE c.subject_kind = $1 AND c.subject_id = $2
			AND c.slug = d.slug AND c.version = d.version)`+filter+` ORDER BY d.slug`, args...)
}
