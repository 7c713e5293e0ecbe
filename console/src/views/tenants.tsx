// The tenant list (status counts for the whole list, search, filters, paging) and the new-tenant form.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { get, post, ApiError } from '../api/client';
import type { Partner, Tenant, TenantCreate, TenantListData, TenantStatus } from '../api/types';
import { PLANS, STATUSES } from '../api/types';
import { Page } from '../App';
import { navigate, setQuery, type Location } from '../router';
import { ErrorBox, Field, Link, Pager, Status, fieldErrors, fmtTime, idempotencyKey, useCursorPages, useLoad, useVisiblePoll, announce } from '../ui/kit';
import { useWho } from '../who';
import { allPartners, forgetPartners, provisioningSummary } from './common';
import { Invitations } from './invitations';

export function TenantList({ loc }: { loc: Location }) {
  const who = useWho();
  return who.operator || who.partnerAdmin ? <AllTenants loc={loc} /> : <MyTenants />;
}

function AllTenants({ loc }: { loc: Location }) {
  const who = useWho();
  const status = (loc.query.get('status') ?? '') as TenantStatus | '';
  const plan = loc.query.get('plan') ?? '';
  const partner = loc.query.get('partner') ?? '';
  const q = loc.query.get('q') ?? '';
  const [typed, setTyped] = useState(q);
  const pages = useCursorPages();
  const [partners, setPartners] = useState<Partner[]>([]);

  useEffect(() => {
    if (who.operator) allPartners().then(setPartners, () => setPartners([]));
  }, [who.operator]);
  // Debounced search, kept in the address (replace, not a new history entry per key).
  useEffect(() => {
    const t = setTimeout(() => {
      if (typed.trim() !== q) setQuery({ q: typed.trim() || undefined });
    }, 300);
    return () => clearTimeout(t);
  }, [typed]);
  useEffect(() => pages.reset(), [status, plan, partner, q]);

  const list = useLoad(
    () => get<TenantListData>('/tenants', { query: { status, plan, partner, q, limit: 25, cursor: pages.cursor } }).then((a) => a.data),
    [status, plan, partner, q, pages.cursor],
  );
  useVisiblePoll(() => void list.reload(true), 5_000);

  const byId = useMemo(() => new Map(partners.map((p) => [p.id, p])), [partners]);
  const counts = list.data?.counts;
  const chips: [TenantStatus | '', string][] = [['', 'all'], ...STATUSES.map((s): [TenantStatus, string] => [s, s])];

  return (
    <Page
      title="Tenants"
      actions={
        <Link to="/tenants/new" class="button primary">
          New tenant
        </Link>
      }
    >
      <Invitations onAnswered={() => void list.reload(true)} />
      <div class="chips" role="group" aria-label="Filter by status (counts for the whole list)">
        {chips.map(([value, label]) => {
          const n = counts ? (value === '' ? counts.all : counts[value]) : null;
          return (
            <button key={label} type="button" class={`count-chip chip-${label}`} aria-pressed={status === value} onClick={() => setQuery({ status: value || undefined })}>
              <span class="count-label">{label}</span> <span class="count" data-status={label}>{n ?? '…'}</span>
            </button>
          );
        })}
      </div>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search (slug or name prefix)">
          {(a) => <input {...a} type="search" name="q" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoComplete="off" />}
        </Field>
        <Field label="Plan">
          {(a) => (
            <select {...a} name="plan" value={plan} onChange={(e) => setQuery({ plan: e.currentTarget.value || undefined })}>
              <option value="">Any plan</option>
              {PLANS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          )}
        </Field>
        {who.operator && (
          <Field label="Partner">
            {(a) => (
              <select {...a} name="partner" value={partner} onChange={(e) => setQuery({ partner: e.currentTarget.value || undefined })}>
                <option value="">Any partner</option>
                {partners.map((p) => (
                  <option key={p.slug} value={p.slug}>
                    {p.name} ({p.slug})
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
      </form>
      <ErrorBox error={list.error} title="Could not load the tenants" />
      <p class="visually-hidden" role="status">
        {list.data ? `${list.data.items.length} tenants shown` : ''}
      </p>
      {list.data && (
        <>
          <table class="cards">
            <caption class="visually-hidden">Tenants{status ? ` with status ${status}` : ''}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Status</th>
                <th scope="col">Plan</th>
                <th scope="col">Partner</th>
                <th scope="col">Owner</th>
                <th scope="col">Provisioning</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((t) => (
                <TenantRow key={t.slug} t={t} partner={t.partner_id ? byId.get(t.partner_id) : undefined} partnerAdmin={who.partnerAdmin} />
              ))}
            </tbody>
          </table>
          {list.data.items.length === 0 && <p class="empty">No tenant matches.</p>}
          <Pager label="Tenant pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />
        </>
      )}
      {list.loading && !list.data && <p role="status">Loading…</p>}
    </Page>
  );
}

function TenantRow({ t, partner, partnerAdmin }: { t: Tenant; partner: Partner | undefined; partnerAdmin: boolean }) {
  const summary = provisioningSummary(t);
  return (
    <tr data-slug={t.slug}>
      <th scope="row" data-label="Name">
        {/* Only operators may open a deleted tenant (anyone else gets 404): no link to nothing. */}
        {partnerAdmin && t.status === 'deleted' ? <span>{t.name}</span> : <Link to={`/tenants/${t.slug}`}>{t.name}</Link>}
      </th>
      <td data-label="Slug">
        <code>{t.slug}</code>
      </td>
      <td data-label="Status">
        <Status value={t.status} />
      </td>
      <td data-label="Plan">{t.plan}</td>
      <td data-label="Partner">
        {partner ? <Link to={`/partners/${partner.slug}`}>{partner.name}</Link> : t.partner_id ? (partnerAdmin ? 'yours' : t.partner_id) : '—'}
      </td>
      <td data-label="Owner" class="wrap">
        {t.owner_email ?? '—'}
      </td>
      <td data-label="Provisioning" class={summary.startsWith('error') ? 'bad' : ''}>
        {/* One child: on a phone the cell is a two-column grid (label, value). */}
        <span>
          {summary.startsWith('error') && <span aria-hidden="true">! </span>}
          {summary}
        </span>
      </td>
      <td data-label="Created">{fmtTime(t.created_at)}</td>
    </tr>
  );
}

/** Tenant owners and admins: the tenants they manage, from their memberships (read again when an
 * invitation is accepted, so a tenant joined shows here at once). */
function MyTenants() {
  const who = useWho();
  return (
    <Page title="My tenants">
      <Invitations />
      {who.invitations.length > 0 && <h2>Tenants you manage</h2>}
      <ul class="plain">
        {who.manages.map((m) => (
          <li key={m.slug}>
            <Link to={`/tenants/${m.slug}`}>{m.slug}</Link> <span class="muted">({m.role})</span>
          </li>
        ))}
      </ul>
    </Page>
  );
}

const TENANT_FIELDS = ['slug', 'name', 'owner_email', 'plan', 'partner', 'domains'];

export function NewTenant() {
  const who = useWho();
  const [form, setForm] = useState({ slug: '', name: '', owner_email: '', plan: 'free', partner: '', domains: '' });
  const [key] = useState(idempotencyKey);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [partners, setPartners] = useState<Partner[]>([]);
  useEffect(() => {
    if (who.operator) allPartners(true).then((ps) => setPartners(ps.filter((p) => p.status === 'active')), () => undefined);
  }, []);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const slugHint = 'Lowercase letters, digits and inner hyphens, 3-40 characters. It never changes and is never released.';
  return (
    <Page title="New tenant" lead={<Link to="/tenants" class="back">← Tenants</Link>}>
      <form
        class="stack"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          setErrors({});
          const body: TenantCreate = { slug: form.slug.trim(), name: form.name.trim(), owner_email: form.owner_email.trim(), plan: form.plan as TenantCreate['plan'] };
          if (form.partner) body.partner = form.partner;
          const domains = form.domains.split(/[\s,]+/).filter(Boolean);
          if (domains.length) body.domains = domains;
          try {
            const a = await post<Tenant>('/tenants', { body, headers: { 'idempotency-key': key } });
            forgetPartners();
            announce(`Tenant ${a.data.slug} created; provisioning started.`);
            navigate(`/tenants/${a.data.slug}/resources`);
          } catch (err) {
            if (err instanceof ApiError && err.code === 'SLUG_TAKEN') setErrors({ slug: err.message });
            else if (err instanceof ApiError && err.code === 'PARTNER_TERMINATED') setErrors({ partner: err.message });
            else {
              const { byField, other } = fieldErrors(err, TENANT_FIELDS);
              setErrors(byField);
              setError(other);
            }
            setBusy(false);
          }
        }}
      >
        <Field label="Slug" hint={slugHint} error={errors.slug}>
          {(a) => <input {...a} name="slug" required pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" minLength={3} maxLength={40} value={form.slug} onInput={set('slug')} autoComplete="off" />}
        </Field>
        <Field label="Name" error={errors.name}>
          {(a) => <input {...a} name="name" required maxLength={100} value={form.name} onInput={set('name')} autoComplete="off" />}
        </Field>
        <Field label="Owner's email" hint="A new person gets an invitation; an existing account is invited too and becomes the owner once it accepts, signed in." error={errors.owner_email}>
          {(a) => <input {...a} name="owner_email" type="email" required value={form.owner_email} onInput={set('owner_email')} autoComplete="off" />}
        </Field>
        <Field label="Plan" error={errors.plan}>
          {(a) => (
            <select {...a} name="plan" value={form.plan} onChange={set('plan')}>
              {PLANS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          )}
        </Field>
        {who.operator && (
          <Field label="Partner (optional)" error={errors.partner}>
            {(a) => (
              <select {...a} name="partner" value={form.partner} onChange={set('partner')}>
                <option value="">No partner</option>
                {partners.map((p) => (
                  <option key={p.slug} value={p.slug}>
                    {p.name} ({p.slug})
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        <Field label="Domains (optional)" hint="Host names, separated by spaces or commas." error={errors.domains}>
          {(a) => <input {...a} name="domains" value={form.domains} onInput={set('domains')} autoComplete="off" />}
        </Field>
        <ErrorBox error={error} title="Could not create the tenant" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create tenant'}
          </button>
          <Link to="/tenants">Cancel</Link>
        </div>
      </form>
    </Page>
  );
}
