// Partners (resellers): the list, a new partner, and one partner's page with its contract,
// tenants (attach, detach), admins and termination.
import { useEffect, useState } from 'preact/hooks';
import { del, get, patch, post, put, ApiError } from '../api/client';
import type { Page as ApiPage, Partner, PartnerAdmin, PartnerCreate, PartnerPatch, PartnerTenantListData, Plan, Tenant, TenantListData } from '../api/types';
import { PLANS, STATUSES } from '../api/types';
import { Page } from '../App';
import { navigate } from '../router';
import { Confirm, ErrorBox, Field, Link, Pager, Status, announce, fieldErrors, fmtAgo, fmtTime, idempotencyKey, useCursorPages, useLoad } from '../ui/kit';
import { allPartners, forgetPartners, planCatalogue } from './common';

export function PartnerList() {
  const pages = useCursorPages();
  const list = useLoad(() => get<ApiPage<Partner>>('/partners', { query: { limit: 25, cursor: pages.cursor } }).then((a) => a.data), [pages.cursor]);
  return (
    <Page
      title="Partners"
      actions={
        <Link to="/partners/new" class="button primary">
          New partner
        </Link>
      }
    >
      <ErrorBox error={list.error} title="Could not load the partners" />
      {list.data && list.data.items.length === 0 && <p class="empty">No partner yet.</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Slug</th>
              <th scope="col">Status</th>
              <th scope="col">Margin</th>
              <th scope="col">Tenants</th>
              <th scope="col">Domain</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((p) => (
              <tr key={p.slug} data-slug={p.slug}>
                <th scope="row" data-label="Name">
                  <Link to={`/partners/${p.slug}`}>{p.name}</Link>
                </th>
                <td data-label="Slug">
                  <code>{p.slug}</code>
                </td>
                <td data-label="Status">
                  <Status value={p.status} />
                </td>
                <td data-label="Margin">{p.margin_pct}%</td>
                <td data-label="Tenants">
                  {/* One child: on a phone the cell is a two-column grid (label, value). */}
                  <span>
                    <span class="tenant-count">{p.tenant_count}</span>
                    <span class="muted"> ({countsText(p.tenant_counts)})</span>
                  </span>
                </td>
                <td data-label="Domain" class="wrap">
                  {p.domain}
                </td>
                <td data-label="Created">{fmtTime(p.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data && <Pager label="Partner pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />}
    </Page>
  );
}

function countsText(c: Record<string, number>): string {
  const parts = STATUSES.filter((s) => c[s]).map((s) => `${c[s]} ${s}`);
  return parts.length ? parts.join(', ') : 'none';
}

function parseObject(raw: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(raw || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

const PARTNER_FIELDS = ['slug', 'name', 'domain', 'margin_pct', 'contact_info', 'billing_info', 'allowed_plans'];

/** The plans a partner's admins may put tenants on (the built-in ones until an operator says). */
const allowedOf = (p: Partner) => [...(p.allowed_plans ?? PLANS)].sort();

export function NewPartner() {
  const [form, setForm] = useState({ slug: '', name: '', domain: '', margin: '0' });
  const [key] = useState(idempotencyKey);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <Page title="New partner" lead={<Link to="/partners" class="back">← Partners</Link>}>
      <form
        class="stack"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setErrors({});
          setError(null);
          const body: PartnerCreate = { slug: form.slug.trim(), name: form.name.trim(), domain: form.domain.trim(), margin_pct: Number(form.margin) };
          try {
            const a = await post<Partner>('/partners', { body, headers: { 'idempotency-key': key } });
            forgetPartners();
            announce(`Partner ${a.data.slug} created.`);
            navigate(`/partners/${a.data.slug}`);
          } catch (err) {
            if (err instanceof ApiError && err.code === 'SLUG_TAKEN') setErrors({ slug: err.message });
            else {
              const { byField, other } = fieldErrors(err, PARTNER_FIELDS);
              setErrors(byField);
              setError(other);
            }
            setBusy(false);
          }
        }}
      >
        <Field label="Slug" hint="Lowercase letters, digits and inner hyphens, 3-40 characters." error={errors.slug}>
          {(a) => <input {...a} name="slug" required value={form.slug} onInput={set('slug')} autoComplete="off" />}
        </Field>
        <Field label="Name" error={errors.name}>
          {(a) => <input {...a} name="name" required value={form.name} onInput={set('name')} autoComplete="off" />}
        </Field>
        <Field label="Domain" hint="The partner's host name, such as partner.example.com." error={errors.domain}>
          {(a) => <input {...a} name="domain" required value={form.domain} onInput={set('domain')} autoComplete="off" />}
        </Field>
        <Field label="Margin (%)" hint="0 to 100, at most two decimals." error={errors.margin_pct}>
          {(a) => <input {...a} name="margin" type="number" min={0} max={100} step="0.01" value={form.margin} onInput={set('margin')} />}
        </Field>
        <ErrorBox error={error} title="Could not create the partner" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create partner'}
          </button>
          <Link to="/partners">Cancel</Link>
        </div>
      </form>
    </Page>
  );
}

export function PartnerPage({ slug }: { slug: string }) {
  const [loaded, setLoaded] = useState<{ p: Partner; etag: string | null } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = async () => {
    try {
      const a = await get<Partner>('/partners/{partner}', { params: { partner: slug } });
      setLoaded({ p: a.data, etag: a.etag ?? a.data.etag });
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    setLoaded(null);
    void load();
  }, [slug]);
  const p = loaded?.p;
  return (
    <Page title={p ? `Partner ${p.name}` : `Partner ${slug}`} lead={<Link to="/partners" class="back">← Partners</Link>} actions={p && <Status value={p.status} />}>
      <ErrorBox error={error} title="Could not load the partner" />
      {loaded && (
        <>
          <PartnerDetails loaded={loaded} onSaved={(p2, etag) => setLoaded({ p: p2, etag })} />
          <PartnerTenants partner={loaded.p} onChanged={load} />
          <PartnerAdmins partner={loaded.p} />
          <Terminate partner={loaded.p} onDone={load} />
        </>
      )}
    </Page>
  );
}

function PartnerDetails({ loaded, onSaved }: { loaded: { p: Partner; etag: string | null }; onSaved: (p: Partner, etag: string | null) => void }) {
  const p = loaded.p;
  const init = () => ({ name: p.name, domain: p.domain, margin: String(p.margin_pct), contact: JSON.stringify(p.contact_info ?? {}, null, 2), billing: JSON.stringify(p.billing_info ?? {}, null, 2) });
  const [form, setForm] = useState(init);
  const [allowed, setAllowed] = useState<string[]>(() => allowedOf(p));
  const [plans, setPlans] = useState<Plan[] | null>(null);
  const [plansError, setPlansError] = useState<unknown>(null);
  useEffect(() => {
    planCatalogue().then(setPlans, setPlansError);
  }, []);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<{ latest: Partner; etag: string | null } | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof ReturnType<typeof init>) => (e: Event) => (setSaved(false), setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value }));
  return (
    <section aria-labelledby="contract-h">
      <h2 id="contract-h">Contract and contact</h2>
      <dl class="facts">
        <dt>Slug</dt>
        <dd>
          <code>{p.slug}</code>
        </dd>
        <dt>Tenants</dt>
        <dd>
          {p.tenant_count} ({countsText(p.tenant_counts)})
        </dd>
        <dt>Created</dt>
        <dd>{fmtTime(p.created_at)}</dd>
      </dl>
      {conflict && (
        <div class="error-box" role="alert">
          <p class="error-title">Someone changed this partner since you opened it (HTTP 412, nothing was saved).</p>
          <ul>
            {(['name', 'domain', 'margin_pct', 'contact_info', 'billing_info', 'allowed_plans', 'status'] as const)
              .filter((k) => JSON.stringify(conflict.latest[k]) !== JSON.stringify(p[k]))
              .map((k) => (
                <li key={k}>
                  <strong>{k}</strong>: now <code>{JSON.stringify(conflict.latest[k])}</code>
                </li>
              ))}
          </ul>
          <button
            type="button"
            class="primary"
            onClick={() => {
              onSaved(conflict.latest, conflict.etag);
              const l = conflict.latest;
              setForm({ name: l.name, domain: l.domain, margin: String(l.margin_pct), contact: JSON.stringify(l.contact_info ?? {}, null, 2), billing: JSON.stringify(l.billing_info ?? {}, null, 2) });
              setAllowed(allowedOf(l));
              setConflict(null);
            }}
          >
            Reload the latest (drop my edits)
          </button>
        </div>
      )}
      <form
        class="stack"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setErrors({});
          setError(null);
          const contact = parseObject(form.contact);
          const billing = parseObject(form.billing);
          if (!contact || !billing) {
            setErrors({ ...(contact ? {} : { contact_info: 'Must be a JSON object.' }), ...(billing ? {} : { billing_info: 'Must be a JSON object.' }) });
            return;
          }
          const body: PartnerPatch = {};
          if (form.name.trim() !== p.name) body.name = form.name.trim();
          if (form.domain.trim() !== p.domain) body.domain = form.domain.trim();
          if (Number(form.margin) !== p.margin_pct) body.margin_pct = Number(form.margin);
          if (JSON.stringify(contact) !== JSON.stringify(p.contact_info ?? {})) body.contact_info = contact;
          if (JSON.stringify(billing) !== JSON.stringify(p.billing_info ?? {})) body.billing_info = billing;
          if ([...allowed].sort().join() !== allowedOf(p).join()) body.allowed_plans = [...allowed].sort();
          if (!Object.keys(body).length) return setSaved(true);
          setBusy(true);
          try {
            const a = await patch<Partner>('/partners/{partner}', { params: { partner: p.slug }, body, headers: loaded.etag ? { 'if-match': loaded.etag } : {} });
            onSaved(a.data, a.etag ?? a.data.etag);
            forgetPartners();
            setSaved(true);
          } catch (err) {
            if (err instanceof ApiError && err.status === 412) {
              const a = await get<Partner>('/partners/{partner}', { params: { partner: p.slug } });
              setConflict({ latest: a.data, etag: a.etag ?? a.data.etag });
            } else {
              const { byField, other } = fieldErrors(err, PARTNER_FIELDS);
              setErrors(byField);
              setError(other);
            }
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label="Name" error={errors.name}>
          {(a) => <input {...a} name="name" value={form.name} onInput={set('name')} />}
        </Field>
        <Field label="Domain" error={errors.domain}>
          {(a) => <input {...a} name="domain" value={form.domain} onInput={set('domain')} />}
        </Field>
        <Field label="Margin (%)" error={errors.margin_pct}>
          {(a) => <input {...a} name="margin" type="number" min={0} max={100} step="0.01" value={form.margin} onInput={set('margin')} />}
        </Field>
        <Field label="Contact info (JSON object)" error={errors.contact_info}>
          {(a) => <textarea {...a} name="contact_info" rows={3} class="mono" value={form.contact} onInput={set('contact')} />}
        </Field>
        <Field label="Billing info (JSON object)" error={errors.billing_info}>
          {(a) => <textarea {...a} name="billing_info" rows={3} class="mono" value={form.billing} onInput={set('billing')} />}
        </Field>
        <AllowedPlans plans={plans} error={plansError} allowed={allowed} fieldError={errors.allowed_plans} onChange={(next) => (setSaved(false), setAllowed(next))} />
        <ErrorBox error={error} title="Could not save" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || p.status === 'terminated'}>
            Save changes
          </button>
          {saved && (
            <span role="status" class="ok-text">
              ✓ Saved
            </span>
          )}
        </div>
      </form>
    </section>
  );
}

/** Which plans of the catalogue this partner's admins may put their tenants on. A retired plan
 * stays ticked if it was, so saving does not take it away unasked. */
function AllowedPlans({ plans, error, allowed, fieldError, onChange }: { plans: Plan[] | null; error: unknown; allowed: string[]; fieldError?: string | undefined; onChange: (next: string[]) => void }) {
  // Ids the partner holds that the catalogue no longer lists are kept and shown as such.
  const known = new Set((plans ?? []).map((x) => x.id));
  const unknown = allowed.filter((id) => !known.has(id));
  return (
    <fieldset class={fieldError ? 'invalid' : undefined} aria-describedby="allowed-plans-hint">
      <legend>Plans this partner may sell</legend>
      <p class="hint" id="allowed-plans-hint">
        Its admins may put their tenants on these plans (while they are active). Operators may use any plan.
      </p>
      <ErrorBox error={error} title="Could not load the plans" />
      {!plans && !error && <p role="status">Loading the plans…</p>}
      {plans && (
        <ul class="plain checks">
          {plans.map((x) => (
            <li key={x.id} class="check">
              <input
                type="checkbox"
                id={`allowed-${x.id}`}
                name="allowed_plans"
                value={x.id}
                checked={allowed.includes(x.id)}
                onChange={(e) => onChange(e.currentTarget.checked ? [...allowed, x.id] : allowed.filter((id) => id !== x.id))}
              />
              <label for={`allowed-${x.id}`}>
                {x.name} <code>{x.id}</code>
                {x.status === 'retired' && <span class="muted"> (retired)</span>}
              </label>
            </li>
          ))}
          {unknown.map((id) => (
            <li key={id} class="check">
              <input type="checkbox" id={`allowed-${id}`} name="allowed_plans" value={id} checked onChange={() => onChange(allowed.filter((a) => a !== id))} />
              <label for={`allowed-${id}`}>
                <code>{id}</code> <span class="muted">(not in the catalogue)</span>
              </label>
            </li>
          ))}
        </ul>
      )}
      {fieldError && (
        <p class="field-error">
          <span aria-hidden="true">✕ </span>
          {fieldError}
        </p>
      )}
    </fieldset>
  );
}

function PartnerTenants({ partner, onChanged }: { partner: Partner; onChanged: () => void }) {
  const pages = useCursorPages();
  const list = useLoad(() => get<PartnerTenantListData>('/partners/{partner}/tenants', { params: { partner: partner.slug }, query: { limit: 25, cursor: pages.cursor } }).then((a) => a.data), [partner.slug, partner.etag, pages.cursor]);
  const [search, setSearch] = useState('');
  const [found, setFound] = useState<Tenant[] | null>(null);
  const [partners, setPartners] = useState<Map<string, Partner>>(new Map());
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState('');
  useEffect(() => {
    allPartners().then((ps) => setPartners(new Map(ps.map((x) => [x.id, x]))), () => undefined);
  }, []);
  useEffect(() => {
    if (!search.trim()) return setFound(null);
    const t = setTimeout(() => {
      get<TenantListData>('/tenants', { query: { q: search.trim(), limit: 10 } }).then((a) => setFound(a.data.items.filter((x) => x.status !== 'deleted')), setError);
    }, 300);
    return () => clearTimeout(t);
  }, [search]);
  const attach = async (slug: string, attach: boolean) => {
    setBusy(slug);
    setError(null);
    try {
      if (attach) await put('/partners/{partner}/tenants/{slug}', { params: { partner: partner.slug, slug } });
      else await del('/partners/{partner}/tenants/{slug}', { params: { partner: partner.slug, slug } });
      announce(`${slug} ${attach ? 'attached' : 'detached'}.`);
      forgetPartners();
      setSearch('');
      // Attaching does not change the partner's ETag (only its counts): reload the list itself.
      void list.reload(true);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy('');
    }
  };
  const counts = list.data?.counts ?? partner.tenant_counts;
  return (
    <section aria-labelledby="ptenants-h">
      <h2 id="ptenants-h">Tenants</h2>
      <p class="counts-line">
        {STATUSES.map((s) => (
          <span key={s} class="count-pill">
            <Status value={s} /> <span data-status={s}>{counts[s] ?? 0}</span>
          </span>
        ))}
      </p>
      <ErrorBox error={list.error ?? error} />
      {list.data && list.data.items.length === 0 && <p class="empty">No tenant attached.</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Slug</th>
              <th scope="col">Status</th>
              <th scope="col">Plan</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((t) => (
              <tr key={t.slug} data-slug={t.slug}>
                <th scope="row" data-label="Name">
                  <Link to={`/tenants/${t.slug}`}>{t.name}</Link>
                </th>
                <td data-label="Slug">
                  <code>{t.slug}</code>
                </td>
                <td data-label="Status">
                  <Status value={t.status} />
                </td>
                <td data-label="Plan">{t.plan}</td>
                <td data-label="Actions">
                  <button type="button" class="small" disabled={busy === t.slug} onClick={() => void attach(t.slug, false)}>
                    Detach<span class="visually-hidden"> {t.slug}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data && <Pager label="Attached tenant pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />}
      <h3>Attach a tenant</h3>
      {partner.status === 'terminated' ? (
        <p class="hint">A terminated partner takes no new tenants.</p>
      ) : (
        <>
          <Field label="Find a tenant by slug or name prefix">
            {(a) => <input {...a} type="search" name="attach-search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} autoComplete="off" />}
          </Field>
          {found && found.length === 0 && <p class="empty">No tenant matches.</p>}
          {found && found.length > 0 && (
            <ul class="plain results" aria-label="Matching tenants">
              {found.map((t) => {
                const other = t.partner_id && t.partner_id !== partner.id ? partners.get(t.partner_id) : undefined;
                const already = t.partner_id === partner.id;
                return (
                  <li key={t.slug} class="result">
                    <span>
                      <strong>{t.name}</strong> <code>{t.slug}</code> <Status value={t.status} />
                      {other && <span class="warn"> moves from partner {other.name}</span>}
                      {t.partner_id && !other && !already && <span class="warn"> moves from another partner</span>}
                    </span>
                    <button type="button" class="small" disabled={already || busy === t.slug} onClick={() => void attach(t.slug, true)}>
                      {already ? 'Attached' : other || t.partner_id ? 'Move here' : 'Attach'}
                      <span class="visually-hidden"> {t.slug}</span>
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function PartnerAdmins({ partner }: { partner: Partner }) {
  const list = useLoad(() => get<ApiPage<PartnerAdmin>>('/partners/{partner}/admins', { params: { partner: partner.slug }, query: { limit: 100 } }).then((a) => a.data), [partner.slug]);
  const [email, setEmail] = useState('');
  const [key, setKey] = useState(idempotencyKey);
  const [emailErr, setEmailErr] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [removing, setRemoving] = useState<PartnerAdmin | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section aria-labelledby="padmins-h">
      <h2 id="padmins-h">Partner admins</h2>
      <ErrorBox error={list.error} />
      {list.data && list.data.items.length === 0 && <p class="empty">No admin yet.</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Status</th>
              <th scope="col">Last sign-in</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((a) => (
              <tr key={a.user_id}>
                <th scope="row" data-label="Email" class="wrap">
                  {a.email}
                </th>
                <td data-label="Status">
                  <Status value={a.status} />
                </td>
                <td data-label="Last sign-in">{fmtAgo(a.last_sign_in_at)}</td>
                <td data-label="Actions">
                  <button type="button" class="small" onClick={() => setRemoving(a)}>
                    Remove<span class="visually-hidden"> {a.email}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={removing !== null}
        title={`Remove ${removing?.email ?? ''} as a partner admin?`}
        confirmLabel="Remove admin"
        danger
        busy={busy}
        error={error}
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          if (!removing) return;
          setBusy(true);
          try {
            await del('/partners/{partner}/admins/{user_id}', { params: { partner: partner.slug, user_id: removing.user_id } });
            setRemoving(null);
            void list.reload(true);
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>They can no longer see or change this partner's tenants. Their account stays.</p>
      </Confirm>
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setEmailErr(null);
          setError(null);
          try {
            await post('/partners/{partner}/admins', { params: { partner: partner.slug }, body: { email: email.trim() }, headers: { 'idempotency-key': key } });
            setEmail('');
            setKey(idempotencyKey());
            announce('Partner admin invited.');
            void list.reload(true);
          } catch (err) {
            if (err instanceof ApiError && (err.code === 'ALREADY_ADMIN' || err.field === 'email')) setEmailErr(err.message);
            else setError(err);
          }
        }}
      >
        <Field label="Invite an admin by email" error={emailErr}>
          {(a) => <input {...a} type="email" name="admin-email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} autoComplete="off" />}
        </Field>
        <button type="submit">Invite</button>
      </form>
      {!removing && <ErrorBox error={error} />}
    </section>
  );
}

function Terminate({ partner, onDone }: { partner: Partner; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const done = partner.status === 'terminated';
  return (
    <section aria-labelledby="pdanger-h" class="danger-zone">
      <h2 id="pdanger-h">Danger zone</h2>
      <div class="danger-row">
        <div>
          <h3>Terminate</h3>
          <p>The partner takes no new tenants; its attached tenants stay attached and keep working.</p>
          {done && (
            <p class="hint" id="why-terminate">
              This partner is already terminated.
            </p>
          )}
        </div>
        <button type="button" class="danger" disabled={done} aria-describedby={done ? 'why-terminate' : undefined} onClick={() => (setTyped(''), setOpen(true))}>
          Terminate
        </button>
      </div>
      <Confirm
        open={open}
        title={`Terminate ${partner.name}?`}
        confirmLabel="Terminate partner"
        danger
        busy={busy}
        error={error}
        disabled={typed !== partner.slug}
        onClose={() => setOpen(false)}
        onConfirm={async () => {
          if (typed !== partner.slug) return;
          setBusy(true);
          try {
            await del('/partners/{partner}', { params: { partner: partner.slug } });
            setOpen(false);
            forgetPartners();
            onDone();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>This cannot be undone from the console.</p>
        <Field label={`Type the slug, ${partner.slug}, to confirm`}>
          {(a) => <input {...a} name="confirm-slug" autoComplete="off" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />}
        </Field>
      </Confirm>
    </section>
  );
}
