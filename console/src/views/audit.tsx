// The audit trail: platform-wide (operators) or one tenant's, with its filters and paging.
// Actors are named by email where the viewer may look them up (operators); an impersonation's
// entries say in words which operator acted as which user, and what they did.
import { useEffect, useState } from 'preact/hooks';
import { get } from '../api/client';
import type { AuditEntry, Member, Page as ApiPage } from '../api/types';
import { Page } from '../App';
import { setQuery, type Location } from '../router';
import { CopyButton, ErrorBox, Field, Link, Pager, useCursorPages, useLoad } from '../ui/kit';
import { useWho } from '../who';
import { allPartners, tenantsById, userEmail } from './common';

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
  // Emails by user id: the actors and the users acted as. Operators may read every user; a
  // tenant's owners and admins its members (who the users acted as are).
  const [emails, setEmails] = useState<Map<string, string>>(new Map());
  const [members, setMembers] = useState<Map<string, string> | null>(null);
  useEffect(() => {
    if (!scope) return;
    get<ApiPage<Member>>('/tenants/{slug}/users', { params: { slug: scope.tenant }, query: { limit: 100 } }).then(
      (a) => setMembers(new Map(a.data.items.map((m) => [m.user_id, m.email]))),
      () => setMembers(new Map()),
    );
  }, [scope?.tenant]);
  useEffect(() => {
    if (!list.data) return;
    const ids = new Set<string>();
    for (const e of list.data.items) {
      if (!SYSTEM.test(e.actor_user_id)) ids.add(e.actor_user_id);
      const acted = actedAs(e);
      if (acted) ids.add(acted);
    }
    for (const id of ids) {
      const known = members?.get(id);
      if (known) setEmails((m) => (m.get(id) === known ? m : new Map(m).set(id, known)));
      else if (who.operator && !emails.has(id)) void userEmail(id).then((email) => email && setEmails((m) => new Map(m).set(id, email)));
    }
  }, [list.data, who.operator, members]);
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
              const acting = impersonationOf(e, (id) => emails.get(id) ?? null);
              return (
                <tr key={e.id} data-action={e.action}>
                  <td data-label="When">{new Date(e.at * 1000).toISOString().replace('T', ' ').slice(0, 19)}</td>
                  <th scope="row" data-label="Action">
                    <code>{e.action}</code>
                  </th>
                  <td data-label="Actor" class="wrap">
                    <span>
                      <Actor id={e.actor_user_id} email={emails.get(e.actor_user_id) ?? acting?.operatorEmail ?? null} me={who.userId} />
                      {acting?.byOperator && <span class="tag actor-kind">operator</span>}
                    </span>
                  </td>
                  <td data-label="Tenant">{t ? <Link to={`/tenants/${t.slug}`}>{t.slug}</Link> : e.tenant_id ? <code>{e.tenant_id.slice(0, 8)}…</code> : '—'}</td>
                  <td data-label="Partner">{p ? <Link to={`/partners/${p.slug}`}>{p.slug}</Link> : e.partner_id ? <code>{e.partner_id.slice(0, 8)}…</code> : '—'}</td>
                  <td data-label="Details" class="wrap">
                    {acting ? (
                      <div class="acting-entry">
                        <p>{acting.sentence}</p>
                        {acting.reason && <p class="muted">Reason: “{acting.reason}”</p>}
                        <details>
                          <summary>All details</summary>
                          <code class="details">{JSON.stringify(e.details)}</code>
                        </details>
                      </div>
                    ) : (
                      <code class="details">{JSON.stringify(e.details)}</code>
                    )}
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

const SYSTEM = /^[0-]+$/;

function Actor({ id, email, me }: { id: string; email: string | null; me: string }) {
  if (SYSTEM.test(id)) return <>system</>;
  if (email) {
    // A narrow column breaks the address at its @ rather than inside a word.
    const at = email.lastIndexOf('@');
    return (
      <span title={id}>
        {at > 0 ? (
          <>
            {email.slice(0, at)}
            <wbr />
            {email.slice(at)}
          </>
        ) : (
          email
        )}
        {id === me ? ' (you)' : ''}
      </span>
    );
  }
  return <code title={id}>{id.slice(0, 8)}…</code>;
}

/** An impersonation entry in words: the operator is the entry's actor; its details name the user
 * acted as (by email when they carry it) and, for each request, what was asked. */
/** The user an impersonation entry names (its details' `user_id`). */
function actedAs(e: AuditEntry): string | null {
  if (!e.action.startsWith('impersonation.')) return null;
  const id = (e.details as Record<string, unknown> | null)?.user_id;
  return typeof id === 'string' ? id : null;
}

function impersonationOf(e: AuditEntry, email: (id: string) => string | null): { sentence: string; reason: string | null; operatorEmail: string | null; byOperator: boolean } | null {
  if (!e.action.startsWith('impersonation.')) return null;
  const d = (e.details ?? {}) as Record<string, unknown>;
  const text = (...keys: string[]) => {
    for (const k of keys) if (typeof d[k] === 'string' && d[k]) return d[k] as string;
    return null;
  };
  const userId = actedAs(e);
  const user = text('user_email', 'email') ?? (userId ? email(userId) ?? `user ${userId.slice(0, 8)}…` : 'a member');
  const access = d.write === true || d.scope === 'write' ? 'read and write' : d.write === false || d.scope === 'read' ? 'read-only' : null;
  const method = text('method');
  const path = text('path', 'resource');
  const status = typeof d.status === 'number' ? d.status : null;
  const sentence = (() => {
    switch (e.action) {
      case 'impersonation.started':
        return `Started acting as ${user}${access ? `, ${access}` : ''}.`;
      case 'impersonation.request':
        return `As ${user}: ${[method, path].filter(Boolean).join(' ') || 'a request'}${d.refused === true ? ' — refused' : status !== null ? ` (answered ${status})` : ''}.`;
      case 'impersonation.ended': {
        const why = text('why');
        return `${why === 'stopped' || !why ? 'Stopped' : 'Ended'} acting as ${user}${why && why !== 'stopped' ? ` (${why.replace(/_/g, ' ')})` : ''}.`;
      }
      case 'impersonation.approval_requested':
        return `Asked the owners to act as ${user} with write access.`;
      case 'impersonation.approved':
        return `An owner approved acting as ${user} with write access.`;
      case 'impersonation.declined':
        return `An owner declined acting as ${user}.`;
      default:
        return `${e.action.slice('impersonation.'.length).replace(/_/g, ' ')}: ${user}.`;
    }
  })();
  // An owner answers approvals; the operator is the actor of everything else.
  const byOperator = e.action !== 'impersonation.approved' && e.action !== 'impersonation.declined';
  return { sentence, reason: text('reason'), operatorEmail: byOperator ? text('operator_email') : null, byOperator };
}
