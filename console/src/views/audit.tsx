// The audit trail: platform-wide (operators) or one tenant's, with its filters and paging.
import { useEffect, useState } from 'preact/hooks';
import { get } from '../api/client';
import type { AuditEntry, Page as ApiPage } from '../api/types';
import { Page } from '../App';
import { setQuery, type Location } from '../router';
import { CopyButton, ErrorBox, Field, Link, Pager, useCursorPages, useLoad } from '../ui/kit';
import { useWho } from '../who';
import { allPartners, tenantsById } from './common';

export function AuditLog({ loc }: { loc: Location }) {
  return (
    <Page title="Audit log">
      <AuditTable scope={null} loc={loc} />
    </Page>
  );
}

const toUnix = (d: string, end: boolean) => (d ? String(Math.floor(Date.parse(`${d}T${end ? '23:59:59' : '00:00:00'}Z`) / 1000)) : undefined);

export function AuditTable({ scope, loc }: { scope: { tenant: string } | null; loc: Location }) {
  const who = useWho();
  const f = {
    action: loc.query.get('action') ?? '',
    actor: loc.query.get('actor') ?? '',
    from: loc.query.get('from') ?? '',
    to: loc.query.get('to') ?? '',
    tenant: loc.query.get('tenant') ?? '',
    partner: loc.query.get('partner') ?? '',
  };
  const [draft, setDraft] = useState(f);
  // On a phone the six filters would fill the screen before the first entry: folded until asked.
  const [wide] = useState(() => matchMedia('(min-width: 761px)').matches);
  const pages = useCursorPages();
  const key = JSON.stringify(f);
  useEffect(() => {
    pages.reset();
    setDraft(f);
  }, [key]);
  const query = { action: f.action, actor: f.actor, from: toUnix(f.from, false), to: toUnix(f.to, true), limit: 25, cursor: pages.cursor, ...(scope ? {} : { tenant: f.tenant, partner: f.partner }) };
  const list = useLoad(
    () => (scope ? get<ApiPage<AuditEntry>>('/tenants/{slug}/audit', { params: { slug: scope.tenant }, query }) : get<ApiPage<AuditEntry>>('/audit', { query })).then((a) => a.data),
    [key, pages.cursor, scope?.tenant],
  );
  const [names, setNames] = useState<{ tenants: Map<string, { slug: string; name: string }>; partners: Map<string, { slug: string; name: string }> }>({ tenants: new Map(), partners: new Map() });
  useEffect(() => {
    if (!who.operator) return;
    Promise.all([tenantsById(), allPartners()]).then(
      ([tenants, ps]) => setNames({ tenants, partners: new Map(ps.map((p) => [p.id, { slug: p.slug, name: p.name }])) }),
      () => undefined,
    );
  }, [who.operator]);
  const set = (k: keyof typeof f) => (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <>
      {scope && <h2>Audit entries</h2>}
      <details class="filter-box" open={wide || Object.values(f).some(Boolean)}>
        <summary>Filters{Object.values(f).some(Boolean) ? ` (${Object.values(f).filter(Boolean).length} applied)` : ''}</summary>
      <form
        class="filters"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ action: draft.action.trim() || undefined, actor: draft.actor.trim() || undefined, from: draft.from || undefined, to: draft.to || undefined, tenant: draft.tenant.trim() || undefined, partner: draft.partner.trim() || undefined });
        }}
      >
        <Field label="Action">{(a) => <input {...a} name="action" placeholder="tenant.updated" value={draft.action} onInput={set('action')} />}</Field>
        <Field label="Actor (user id)">{(a) => <input {...a} name="actor" value={draft.actor} onInput={set('actor')} />}</Field>
        {!scope && <Field label="Tenant (slug)">{(a) => <input {...a} name="tenant" value={draft.tenant} onInput={set('tenant')} />}</Field>}
        {!scope && <Field label="Partner (slug)">{(a) => <input {...a} name="partner" value={draft.partner} onInput={set('partner')} />}</Field>}
        <Field label="From (UTC date)">{(a) => <input {...a} type="date" name="from" value={draft.from} onInput={set('from')} />}</Field>
        <Field label="To (UTC date)">{(a) => <input {...a} type="date" name="to" value={draft.to} onInput={set('to')} />}</Field>
        <div class="filter-actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <button type="button" onClick={() => setQuery({ action: undefined, actor: undefined, from: undefined, to: undefined, tenant: undefined, partner: undefined })}>
            Clear
          </button>
        </div>
      </form>
      </details>
      <ErrorBox error={list.error} title="Could not load the audit entries" />
      {list.data && list.data.items.length === 0 && <p class="empty">No entry matches.</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="cards audit">
          <thead>
            <tr>
              <th scope="col">When (UTC)</th>
              <th scope="col">Action</th>
              <th scope="col">Actor</th>
              <th scope="col">Tenant</th>
              <th scope="col">Partner</th>
              <th scope="col">Details</th>
              <th scope="col">Request id</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((e) => {
              const t = e.tenant_id ? names.tenants.get(e.tenant_id) : undefined;
              const p = e.partner_id ? names.partners.get(e.partner_id) : undefined;
              return (
                <tr key={e.id}>
                  <td data-label="When">{new Date(e.at * 1000).toISOString().replace('T', ' ').slice(0, 19)}</td>
                  <th scope="row" data-label="Action">
                    <code>{e.action}</code>
                  </th>
                  <td data-label="Actor" class="wrap">
                    {/^[0-]+$/.test(e.actor_user_id) ? 'system' : <code title={e.actor_user_id}>{e.actor_user_id.slice(0, 8)}…</code>}
                  </td>
                  <td data-label="Tenant">{t ? <Link to={`/tenants/${t.slug}`}>{t.slug}</Link> : e.tenant_id ? <code>{e.tenant_id.slice(0, 8)}…</code> : '—'}</td>
                  <td data-label="Partner">{p ? <Link to={`/partners/${p.slug}`}>{p.slug}</Link> : e.partner_id ? <code>{e.partner_id.slice(0, 8)}…</code> : '—'}</td>
                  <td data-label="Details" class="wrap">
                    <code class="details">{JSON.stringify(e.details)}</code>
                  </td>
                  <td data-label="Request id" class="wrap">
                    <code>{e.request_id}</code> <CopyButton text={e.request_id} label="Copy" />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {list.data && <Pager label="Audit pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />}
    </>
  );
}
