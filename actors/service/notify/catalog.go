package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Catalog is the templates in force: the embedded version 1 of each kind,
// language and channel, overridden by the version an admin activated.
// The active versions are cached in memory for TTL (and reloaded at once
// on this node after an activation), so sending does not query the store
// per message; another node picks an activation up within TTL.
type Catalog struct {
	store    persistence.Store
	defaults *Templates
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu     sync.Mutex
	active map[templateKey]*Template // activated stored versions
	loaded time.Time                 // zero: load on next use
}

// DefaultCatalogTTL is how long the active templates are cached.
const DefaultCatalogTTL = 30 * time.Second

// CatalogOptions tune a Catalog; zero values take the defaults.
type CatalogOptions struct {
	TTL       time.Duration    // DefaultCatalogTTL
	Templates *Templates       // the embedded ones
	Now       func() time.Time // time.Now
	Log       *slog.Logger     // discard
}

// NewCatalog is the catalog over st. It fails when the embedded templates
// do not load.
func NewCatalog(st persistence.Store, o CatalogOptions) (*Catalog, error) {
	if st == nil {
		return nil, errors.New("notify: the template catalog needs a store")
	}
	if o.Templates == nil {
		t, err := DefaultTemplates()
		if err != nil {
			return nil, err
		}
		o.Templates = t
	}
	if o.TTL <= 0 {
		o.TTL = DefaultCatalogTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{store: st, defaults: o.Templates, ttl: o.TTL, now: o.Now, log: o.Log}, nil
}

// Invalidate makes the next use reload the active versions.
func (c *Catalog) Invalidate() {
	c.mu.Lock()
	c.loaded = time.Time{}
	c.mu.Unlock()
}

// Active is the template sent for kind in lang (the default language when
// lang has none) on ch.
func (c *Catalog) Active(ctx context.Context, kind Kind, lang string, ch sender.Channel) (*Template, error) {
	if !slices.Contains(languages, lang) {
		lang = DefaultLanguage
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded.IsZero() || c.now().Sub(c.loaded) >= c.ttl {
		if err := c.load(ctx); err != nil {
			return nil, err
		}
	}
	if t := c.active[templateKey{kind, lang, ch}]; t != nil {
		return t, nil
	}
	if t := c.defaults.Get(kind, lang, ch); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("notify: no template for %s in %s on %s", kind, lang, ch)
}

// load reads and compiles the activated stored versions (c.mu held). A
// stored version that no longer compiles (its kind's declaration changed
// since it was saved) is logged and its embedded version sent instead.
func (c *Catalog) load(ctx context.Context) error {
	active := map[templateKey]*Template{}
	err := c.store.InTx(ctx, func(tx persistence.Tx) error {
		clear(active)
		as, err := tx.NotificationTemplateActives(ctx)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Version <= 1 {
				continue
			}
			st, err := tx.NotificationTemplateGet(ctx, a.Kind, a.Language, a.Channel, a.Version)
			if err != nil {
				return fmt.Errorf("notify: active template %s/%s/%s v%d: %w", a.Kind, a.Language, a.Channel, a.Version, err)
			}
			t, err := Compile(Kind(st.Kind), st.Language, sender.Channel(st.Channel), st.Version, st.Subject, st.Body)
			if err != nil {
				c.log.Error("active notification template no longer compiles; sending the embedded one",
					"kind", st.Kind, "language", st.Language, "channel", st.Channel, "version", st.Version, "error", describe(err))
				continue
			}
			active[templateKey{t.Kind, t.Language, t.Channel}] = t
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.active, c.loaded = active, c.now()
	return nil
}

// ---- the admin's use cases ----

// TemplateVersion is one version of a template, for the admin.
type TemplateVersion struct {
	Version   int
	Subject   string
	Body      string
	Embedded  bool // version 1, the text in the binary
	CreatedAt time.Time
	CreatedBy string
}

// TemplateInfo is a kind's template in a language on a channel: its
// versions and the one in force.
type TemplateInfo struct {
	Kind      Kind
	Language  string
	Channel   sender.Channel
	Active    int
	Variables []Var
	Versions  []TemplateVersion
}

func requireAdmin(by service.Caller) error {
	if by.Role != auth.RoleAdmin {
		return fault.Forbidden("templates are managed by admins")
	}
	return nil
}

// List is every kind × language × channel with its versions, oldest
// first, and the active one.
func (c *Catalog) List(ctx context.Context, by service.Caller) ([]TemplateInfo, error) {
	if err := requireAdmin(by); err != nil {
		return nil, err
	}
	var stored []persistence.NotificationTemplate
	var actives []persistence.NotificationTemplateActive
	err := c.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if stored, err = tx.NotificationTemplateList(ctx); err != nil {
			return err
		}
		actives, err = tx.NotificationTemplateActives(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	byKey := map[templateKey]*TemplateInfo{}
	var out []*TemplateInfo
	for _, kind := range slices.Sorted(maps.Keys(declared)) {
		for _, lang := range languages {
			for _, ch := range TemplateChannels() {
				d := c.defaults.Get(kind, lang, ch)
				info := &TemplateInfo{Kind: kind, Language: lang, Channel: ch, Active: 1, Variables: Declared(kind),
					Versions: []TemplateVersion{{Version: 1, Subject: d.Subject, Body: d.Body, Embedded: true}}}
				byKey[templateKey{kind, lang, ch}] = info
				out = append(out, info)
			}
		}
	}
	for _, st := range stored {
		if info := byKey[templateKey{Kind(st.Kind), st.Language, sender.Channel(st.Channel)}]; info != nil {
			info.Versions = append(info.Versions, TemplateVersion{Version: st.Version, Subject: st.Subject, Body: st.Body,
				CreatedAt: st.CreatedAt, CreatedBy: st.CreatedBy})
		}
	}
	for _, a := range actives {
		if info := byKey[templateKey{Kind(a.Kind), a.Language, sender.Channel(a.Channel)}]; info != nil {
			info.Active = a.Version
		}
	}
	res := make([]TemplateInfo, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res, nil
}

// Draft is a template's text as the admin writes it.
type Draft struct {
	Subject string // email only
	Body    string
}

// CreateVersion checks d against kind's declaration (a 422 naming the
// field and the variable when it does not fit) and stores it in tx as the
// next version, not yet active; audited. Two admins saving at once compute
// the same version: the second gets a 409 and saves again.
func (c *Catalog) CreateVersion(ctx context.Context, tx persistence.Tx, by service.Caller, kind Kind, lang string, ch sender.Channel, d Draft) (TemplateVersion, error) {
	if err := requireAdmin(by); err != nil {
		return TemplateVersion{}, err
	}
	if _, err := Compile(kind, lang, ch, 0, d.Subject, d.Body); err != nil {
		return TemplateVersion{}, err
	}
	latest, err := tx.NotificationTemplateLatest(ctx, string(kind), lang, string(ch))
	if err != nil {
		return TemplateVersion{}, err
	}
	now := c.now().UTC()
	st := persistence.NotificationTemplate{Kind: string(kind), Language: lang, Channel: string(ch), Version: latest + 1,
		Subject: d.Subject, Body: d.Body, CreatedAt: now, CreatedBy: by.Subject}
	if err := tx.NotificationTemplateCreate(ctx, st); errors.Is(err, persistence.ErrConflict) {
		return TemplateVersion{}, fault.Conflict("another version was saved at the same time; save again")
	} else if err != nil {
		return TemplateVersion{}, err
	}
	v := TemplateVersion{Version: st.Version, Subject: st.Subject, Body: st.Body, CreatedAt: now, CreatedBy: by.Subject}
	return v, service.Audit(ctx, tx, now, by, "notification_template.create", templateSubject(kind, lang, ch), "",
		map[string]any{"version": st.Version})
}

func templateSubject(kind Kind, lang string, ch sender.Channel) string {
	return fmt.Sprintf("notification_template/%s/%s/%s", kind, lang, ch)
}

// version is version of kind in lang on ch, compiled: 1 the embedded one,
// others from the store; 404 when there is no such version.
func (c *Catalog) version(ctx context.Context, tx persistence.Tx, kind Kind, lang string, ch sender.Channel, version int) (*Template, error) {
	if declared[kind] == nil || !slices.Contains(languages, lang) || !slices.Contains(TemplateChannels(), ch) {
		return nil, fault.NotFound("no such template")
	}
	if version == 1 {
		return c.defaults.Get(kind, lang, ch), nil
	}
	st, err := tx.NotificationTemplateGet(ctx, string(kind), lang, string(ch), version)
	if err != nil {
		return nil, fault.IfNotFound(err, fmt.Sprintf("version %d of the template", version))
	}
	return Compile(kind, lang, ch, st.Version, st.Subject, st.Body)
}

// Preview renders a stored version (version > 0) or a draft with the
// kind's sample values in lang, escaped for ch as it would be sent. A
// draft that does not fit the kind is the 422 CreateVersion would give.
func (c *Catalog) Preview(ctx context.Context, by service.Caller, kind Kind, lang string, ch sender.Channel, version int, d *Draft) (Rendered, error) {
	if err := requireAdmin(by); err != nil {
		return Rendered{}, err
	}
	var t *Template
	var err error
	if d != nil {
		t, err = Compile(kind, lang, ch, 0, d.Subject, d.Body)
	} else {
		err = c.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			t, err = c.version(ctx, tx, kind, lang, ch, version)
			return err
		})
	}
	if err != nil {
		return Rendered{}, err
	}
	return t.Render(SampleVars(kind, lang))
}

// Activate makes version (1: the embedded text) the one sent for kind in
// lang on ch, in tx; audited. Call Invalidate once tx committed: this node
// sends it from then on, the others within the catalog's TTL.
func (c *Catalog) Activate(ctx context.Context, tx persistence.Tx, by service.Caller, kind Kind, lang string, ch sender.Channel, version int) error {
	if err := requireAdmin(by); err != nil {
		return err
	}
	if _, err := c.version(ctx, tx, kind, lang, ch, version); err != nil {
		return err
	}
	now := c.now().UTC()
	if err := tx.NotificationTemplateActivate(ctx, persistence.NotificationTemplateActive{Kind: string(kind), Language: lang,
		Channel: string(ch), Version: version, ActivatedAt: now, ActivatedBy: by.Subject}); err != nil {
		return err
	}
	return service.Audit(ctx, tx, now, by, "notification_template.activate", templateSubject(kind, lang, ch), "",
		map[string]any{"version": version})
}
