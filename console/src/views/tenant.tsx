// One tenant, a tab per concern, each tab its own address: overview (details, redirect
// origins), members, resources (provisioning, live), databases, audit, danger zone.
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, get, patch, post, put, ApiError } from '../api/client';
import type { Database, DatabaseRegister, Member, Origins, Page as ApiPage, ReconcileReport, Role, StepStatus, Tenant, TenantPatch } from '../api/types';
import { ROLES } from '../api/types';
import { Page } from '../App';
import { type Location } from '../router';
import { Confirm, ErrorBox, Field, Link, Pager, Status, announce, fieldErrors, fmtAgo, fmtTime, idempotencyKey, useCursorPages, useLoad } from '../ui/kit';
import { OPERATORS_ONLY, useWho, type Who } from '../who';
import { AuditTable } from './audit';
import { allPartners, provisioningSummary } from './common';
import { PlanCard } from './usage';
import { TenantFlagsCard } from './flags';
import { ActAs, ApprovalRequests } from './acting';
import { consoleRoles } from './common';

const TABS: [string, string][] = [
  ['overview', 'Overview'],
  ['members', 'Members'],
  ['resources', 'Resources'],
  ['databases', 'Databases'],
  ['audit', 'Audit'],
  ['danger', 'Danger zone'],
];

interface Loaded {
  tenant: Tenant;
  etag: string | null;
}

/** What this caller may do on this tenant, as the API decides it (DESIGN.md's route table). */
function rights(who: Who, slug: string, t?: Tenant) {
  const manager = who.manages.some((m) => m.slug === slug);
  return {
    operator: who.operator,
    edit: who.operator || who.partnerAdmin || manager,
    // The plan: operators, and the partner admins of the tenant's partner (a partner admin sees
    // only their own partner's tenants, so one with a partner is theirs).
    plan: who.operator || (who.partnerAdmin && !!t?.partner_id),
    members: who.operator || manager,
    databases: who.operator || manager,
    audit: who.operator || manager,
    origins: who.operator || manager,
    owners: who.operator || who.manages.some((m) => m.slug === slug && m.role === 'owner'),
    // Owners answer requests to act as their members; never an operator (who could otherwise
    // approve their own request by joining the tenant), as the API holds.
    decidesApprovals: !who.operator && who.manages.some((m) => m.slug === slug && m.role === 'owner'),
    actAs: who.operator,
  };
}

export function TenantPage({ slug, tab, loc }: { slug: string; tab: string; loc: Location }) {
  const who = useWho();
  const [state, setState] = useState<Loaded | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = async () => {
    try {
      const a = await get<Tenant>('/tenants/{slug}', { params: { slug } });
      setState({ tenant: a.data, etag: a.etag ?? a.data.etag });
      setError(null);
      return a.data;
    } catch (e) {
      setError(e);
      return null;
    }
  };
  useEffect(() => {
    setState(null);
    void load();
  }, [slug]);
  const label = TABS.find(([k]) => k === tab)?.[1] ?? 'Overview';
  const t = state?.tenant;
  const r = rights(who, slug, t);
  return (
    <Page
      title={t ? `${t.name}: ${label}` : `Tenant ${slug}`}
      lead={
        // Acting as a member, this tenant is all there is.
        who.acting ? undefined : (
          <Link to="/tenants" class="back">
            ← Tenants
          </Link>
        )
      }
      actions={t && <Status value={t.status} />}
    >
      {t && (
        <p class="subtitle">
          <code>{t.slug}</code> · plan {t.plan} · {provisioningSummary(t)}
        </p>
      )}
      <nav class="tabs" aria-label="Tenant sections">
        <ul>
          {TABS.map(([k, l]) => (
            <li key={k}>
              <Link to={`/tenants/${slug}/${k}`} aria-current={k === tab ? 'page' : undefined}>
                {l}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <ErrorBox error={error} title="Could not load the tenant" />
      {state && (
        <section class="tab-panel" aria-label={label}>
          {tab === 'overview' && <Overview loaded={state} setLoaded={setState} reload={load} can={r} />}
          {tab === 'members' && (r.members ? <Members tenant={state.tenant} canOwners={r.owners} canActAs={r.actAs} /> : <NotAllowed what="members" />)}
          {tab === 'resources' && <Resources tenant={state.tenant} reload={load} operator={r.operator} />}
          {tab === 'databases' && (r.databases ? <Databases tenant={state.tenant} /> : <NotAllowed what="databases" />)}
          {tab === 'audit' && (r.audit ? <AuditTable scope={{ tenant: slug }} loc={loc} /> : <NotAllowed what="audit entries" />)}
          {tab === 'danger' && <Danger tenant={state.tenant} reload={load} operator={r.operator} />}
        </section>
      )}
    </Page>
  );
}

function NotAllowed({ what }: { what: string }) {
  return <p class="notice">Only operators and this tenant's owners and admins may see its {what}.</p>;
}

// ---------------------------------------------------------------- overview

function Overview({ loaded, setLoaded, reload, can }: { loaded: Loaded; setLoaded: (l: Loaded) => void; reload: () => Promise<Tenant | null>; can: ReturnType<typeof rights> }) {
  const t = loaded.tenant;
  const initial = () => ({ name: t.name, domains: (t.domains ?? []).join('\n'), billing: JSON.stringify(t.billing_info ?? {}, null, 2) });
  const [form, setForm] = useState(initial);
  const [base, setBase] = useState<Tenant>(t);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<{ latest: Tenant; etag: string | null; changed: ('name' | 'plan' | 'domains' | 'billing_info' | 'status')[] } | null>(null);
  const set = (k: keyof ReturnType<typeof initial>) => (e: Event) => {
    setSaved(false);
    setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError(null);
    setSaved(false);
    let billing: Record<string, unknown>;
    try {
      billing = JSON.parse(form.billing || '{}');
      if (typeof billing !== 'object' || billing === null || Array.isArray(billing)) throw new Error();
    } catch {
      setErrors({ billing_info: 'Must be a JSON object, such as {"vat": "DE123"}.' });
      return;
    }
    const body: TenantPatch = {};
    if (form.name.trim() !== base.name) body.name = form.name.trim();
    const domains = form.domains.split(/[\s,]+/).filter(Boolean);
    if (domains.join(',') !== (base.domains ?? []).join(',')) body.domains = domains;
    if (JSON.stringify(billing) !== JSON.stringify(base.billing_info ?? {})) body.billing_info = billing;
    if (!Object.keys(body).length) {
      setSaved(true);
      return;
    }
    setBusy(true);
    try {
      const a = await patch<Tenant>('/tenants/{slug}', { params: { slug: t.slug }, body, headers: loaded.etag ? { 'if-match': loaded.etag } : {} });
      setLoaded({ tenant: a.data, etag: a.etag ?? a.data.etag });
      setBase(a.data);
      setSaved(true);
      announce('Tenant saved.');
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        const a = await get<Tenant>('/tenants/{slug}', { params: { slug: t.slug } });
        const latest = a.data;
        const changed = (['name', 'plan', 'domains', 'billing_info', 'status'] as const).filter((k) => JSON.stringify(latest[k]) !== JSON.stringify(base[k]));
        setConflict({ latest, etag: a.etag ?? latest.etag, changed });
      } else {
        const { byField, other } = fieldErrors(err, ['name', 'domains', 'billing_info']);
        setErrors(byField);
        setError(other);
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {/* Something for an owner to answer comes first (nothing shows when nothing waits). */}
      {can.decidesApprovals && <ApprovalRequests slug={t.slug} />}
      <h2>Details</h2>
      <dl class="facts">
        <dt>Owner</dt>
        <dd>{t.owner_email ?? '—'}</dd>
        <dt>Partner</dt>
        <dd>
          <PartnerName id={t.partner_id} />
        </dd>
        <dt>Created</dt>
        <dd>{fmtTime(t.created_at)}</dd>
        <dt>Updated</dt>
        <dd>{fmtTime(t.updated_at)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{t.id}</code>
        </dd>
      </dl>
      <PlanCard
        tenant={t}
        etag={loaded.etag}
        canChange={can.plan}
        onChanged={(tenant, etag) => {
          setLoaded({ tenant, etag });
          // The plan is not in the form: the details' base follows it, so a later 412 does not
          // name the plan as changed by someone else.
          setBase((b) => ({ ...b, plan: tenant.plan }));
        }}
      />
      <TenantFlagsCard slug={t.slug} />
      <h2>Edit details</h2>
      {conflict && (
        <div class="error-box" role="alert">
          <p class="error-title">Someone changed this tenant since you opened it (HTTP 412, nothing was saved).</p>
          <p>Changed meanwhile: {conflict.changed.length ? conflict.changed.join(', ') : 'only its version'}.</p>
          <ul>
            {conflict.changed.map((k) => (
              <li key={k}>
                <strong>{k}</strong>: now <code>{JSON.stringify(conflict.latest[k])}</code> (was <code>{JSON.stringify(base[k])}</code>)
              </li>
            ))}
          </ul>
          <div class="actions">
            <button
              type="button"
              class="primary"
              onClick={() => {
                setLoaded({ tenant: conflict.latest, etag: conflict.etag });
                setBase(conflict.latest);
                const l = conflict.latest;
                setForm({ name: l.name, domains: (l.domains ?? []).join('\n'), billing: JSON.stringify(l.billing_info ?? {}, null, 2) });
                setConflict(null);
              }}
            >
              Reload the latest (drop my edits)
            </button>
            <button
              type="button"
              onClick={() => {
                setLoaded({ tenant: conflict.latest, etag: conflict.etag });
                setBase(conflict.latest);
                setConflict(null);
              }}
            >
              Keep my edits on top of the latest
            </button>
          </div>
        </div>
      )}
      <form class="stack" onSubmit={save} noValidate>
        <fieldset disabled={!can.edit}>
          <legend>Name, domains and billing info</legend>
          {!can.edit && <p class="hint">Only operators, this tenant's partner admins, owners and admins may edit it.</p>}
          <Field label="Name" error={errors.name}>
            {(a) => <input {...a} name="name" value={form.name} onInput={set('name')} maxLength={100} required />}
          </Field>
          <Field label="Domains" hint="One host name per line." error={errors.domains}>
            {(a) => <textarea {...a} name="domains" rows={3} value={form.domains} onInput={set('domains')} />}
          </Field>
          <Field label="Billing info (JSON object)" error={errors.billing_info}>
            {(a) => <textarea {...a} name="billing_info" rows={4} class="mono" value={form.billing} onInput={set('billing')} />}
          </Field>
          <ErrorBox error={error} title="Could not save" />
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Saving…' : 'Save changes'}
            </button>
            {saved && (
              <span role="status" class="ok-text">
                ✓ Saved
              </span>
            )}
          </div>
        </fieldset>
      </form>
      {can.origins && <RedirectOrigins slug={t.slug} canEdit={can.owners} />}
      <p class="muted">
        Reload: <button type="button" class="small" onClick={() => void reload()}>Refresh from the API</button>
      </p>
    </>
  );
}

function PartnerName({ id }: { id: string | null }) {
  const who = useWho();
  const [name, setName] = useState<{ slug: string; name: string } | null>(null);
  useEffect(() => {
    if (!id || !who.operator) return;
    allPartners().then((ps) => {
      const p = ps.find((x) => x.id === id);
      setName(p ? { slug: p.slug, name: p.name } : null);
    }, () => undefined);
  }, [id]);
  if (!id) return <>none</>;
  return name ? <Link to={`/partners/${name.slug}`}>{name.name}</Link> : <code>{id}</code>;
}

/** Owners and operators edit the list; admins read it (the API refuses them the PUT). */
function RedirectOrigins({ slug, canEdit }: { slug: string; canEdit: boolean }) {
  const [list, setList] = useState<string[] | null>(null);
  const [draft, setDraft] = useState('');
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    get<Origins>('/tenants/{slug}/redirect-origins', { params: { slug } }).then((a) => setList(a.data.origins ?? []), setLoadError);
  }, [slug]);
  const move = (i: number, d: number) => {
    if (!list) return;
    const next = [...list];
    const [x] = next.splice(i, 1);
    next.splice(i + d, 0, x!);
    setList(next);
    setSaved(false);
  };
  return (
    <section aria-labelledby="origins-h">
      <h2 id="origins-h">Redirect origins</h2>
      <p class="hint">Where this tenant's mailed links may point, in order; the first is primary. https only (plain http locally).</p>
      {!canEdit && <p class="hint">Only this tenant's owners and platform operators change its redirect origins.</p>}
      <ErrorBox error={loadError} title="Could not load the origins" />
      {list && list.length > 0 && (
        <ol class="origins">
          {list.map((o, i) => (
            <li key={o}>
              <code>{o}</code> {i === 0 && <span class="tag">primary</span>}
              {canEdit && (
                <span class="row-actions">
                  <button type="button" class="small" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move ${o} up`}>
                    ↑
                  </button>
                  <button type="button" class="small" disabled={i === list.length - 1} onClick={() => move(i, 1)} aria-label={`Move ${o} down`}>
                    ↓
                  </button>
                  <button type="button" class="small" onClick={() => (setList(list.filter((x) => x !== o)), setSaved(false))} aria-label={`Remove ${o}`}>
                    Remove
                  </button>
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
      {list && list.length === 0 && <p class="muted">None: mailed links use the platform's own origin.</p>}
      {canEdit && (
        <>
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (draft.trim() && list) setList([...list, draft.trim()]);
              setDraft('');
              setSaved(false);
            }}
          >
            <Field label="Add an origin">
              {(a) => <input {...a} name="origin" placeholder="https://app.example.com" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />}
            </Field>
            <button type="submit">Add</button>
          </form>
          <ErrorBox error={error} title="Could not save the origins" />
          <div class="actions">
            <button
              type="button"
              class="primary"
              disabled={busy || !list}
              onClick={async () => {
                setBusy(true);
                setError(null);
                try {
                  const a = await put<Origins>('/tenants/{slug}/redirect-origins', { params: { slug }, body: { origins: list } });
                  setList(a.data.origins ?? []);
                  setSaved(true);
                } catch (e) {
                  setError(e);
                } finally {
                  setBusy(false);
                }
              }}
            >
              Save origins
            </button>
            {saved && (
              <span role="status" class="ok-text">
                ✓ Saved
              </span>
            )}
          </div>
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- members

/** Whether an operator may act as a member ('yes'), or why not. */
type ActAsAnswer = 'yes' | 'self' | 'operator' | 'partner admin' | null;

function Members({ tenant, canOwners, canActAs }: { tenant: Tenant; canOwners: boolean; canActAs: boolean }) {
  const who = useWho();
  const pages = useCursorPages();
  // Operators and partner admins cannot be acted as (the API refuses): no button, a word instead.
  const [roles, setRoles] = useState<{ operators: Set<string>; partnerAdmins: Set<string> } | null>(null);
  useEffect(() => {
    if (canActAs) consoleRoles().then(setRoles, () => setRoles({ operators: new Set(), partnerAdmins: new Set() }));
  }, [canActAs]);
  const actAs = (m: Member): ActAsAnswer =>
    !canActAs || !roles ? null : m.user_id === who.userId ? 'self' : roles?.operators.has(m.user_id) ? 'operator' : roles?.partnerAdmins.has(m.user_id) ? 'partner admin' : 'yes';
  const list = useLoad(() => get<ApiPage<Member>>('/tenants/{slug}/users', { params: { slug: tenant.slug }, query: { limit: 25, cursor: pages.cursor } }).then((a) => a.data), [tenant.slug, pages.cursor]);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [key, setKey] = useState(idempotencyKey);
  const [inviteErr, setInviteErr] = useState<unknown>(null);
  const [emailErr, setEmailErr] = useState<string | null>(null);
  const [invited, setInvited] = useState('');
  const [busy, setBusy] = useState(false);
  const choosable = canOwners ? ROLES : ROLES.filter((r) => r !== 'owner');
  const seatsTaken = inviteErr instanceof ApiError && inviteErr.code === 'SEAT_LIMIT';
  return (
    <>
      <h2>Members</h2>
      <ErrorBox error={list.error} title="Could not load the members" />
      {list.data && (
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Last sign-in</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((m) => (
              <MemberRow key={m.user_id} m={m} slug={tenant.slug} roles={choosable} canOwners={canOwners} actAs={actAs(m)} onChanged={() => void list.reload(true)} />
            ))}
          </tbody>
        </table>
      )}
      {list.data && <Pager label="Member pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />}
      <h2>Invite someone</h2>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setInviteErr(null);
          setEmailErr(null);
          setInvited('');
          try {
            await post('/tenants/{slug}/users', { params: { slug: tenant.slug }, body: { email: email.trim(), role }, headers: { 'idempotency-key': key } });
            setInvited(email.trim());
            setEmail('');
            setKey(idempotencyKey());
            void list.reload(true);
          } catch (err) {
            if (err instanceof ApiError && (err.code === 'ALREADY_MEMBER' || err.field === 'email')) setEmailErr(err.message);
            else setInviteErr(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label="Email" error={emailErr} hint="Someone new gets an invitation by mail; an existing account is invited too and joins once it accepts, signed in.">
          {(a) => <input {...a} type="email" name="invite-email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} autoComplete="off" />}
        </Field>
        <Field label="Role" hint={canOwners ? undefined : 'Only owners and operators may make someone an owner.'}>
          {(a) => (
            <select {...a} name="invite-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              {choosable.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
        <ErrorBox error={inviteErr} title={seatsTaken ? "No seat left on this tenant's plan" : 'Could not invite'} />
        {seatsTaken && (
          <p class="hint">
            Members and pending invitations both take a seat. The plan and its usage are on the <Link to={`/tenants/${tenant.slug}/overview`}>overview</Link>; operators and the tenant's
            partner admins can move it to a larger plan, and removing a member or withdrawing an invitation frees a seat.
          </p>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Inviting…' : 'Invite'}
          </button>
          {invited && (
            <span role="status" class="ok-text">
              ✓ {invited} invited
            </span>
          )}
        </div>
      </form>
    </>
  );
}

function MemberRow({ m, slug, roles, canOwners, actAs, onChanged }: { m: Member; slug: string; roles: Role[]; canOwners: boolean; actAs: ActAsAnswer; onChanged: () => void }) {
  const [role, setRole] = useState<Role>(m.role);
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const ownerLocked = m.role === 'owner' && !canOwners;
  return (
    <tr data-email={m.email}>
      <th scope="row" data-label="Email" class="wrap">
        <span>
          {m.email}
          {/* Who cannot be acted as, and why there is no "Act as" on their row. */}
          {(actAs === 'operator' || actAs === 'partner admin') && <span class="tag member-kind">{actAs}</span>}
          {actAs === 'self' && <span class="tag member-kind">you</span>}
        </span>
      </th>
      <td data-label="Role">
        <label class="visually-hidden" for={`role-${m.user_id}`}>
          Role of {m.email}
        </label>
        <select id={`role-${m.user_id}`} value={role} disabled={ownerLocked} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          {(ownerLocked ? ROLES : roles).map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>{' '}
        {role !== m.role && (
          <button
            type="button"
            class="small primary"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await patch('/tenants/{slug}/users/{user_id}', { params: { slug, user_id: m.user_id }, body: { role } });
                announce(`${m.email} is now ${role}.`);
                onChanged();
              } catch (e) {
                setError(e);
                setRole(m.role);
              } finally {
                setBusy(false);
              }
            }}
          >
            Save role
          </button>
        )}
        {error !== null && <InlineError error={error} />}
      </td>
      <td data-label="Status">
        <Status value={m.status} />
      </td>
      <td data-label="Last sign-in">{fmtAgo(m.last_sign_in_at)}</td>
      <td data-label="Actions">
        <span class="row-buttons">
          {actAs === 'yes' && <ActAs slug={slug} member={m} />}
          <button type="button" class="small" disabled={ownerLocked} title={ownerLocked ? 'Only owners and operators may remove an owner.' : undefined} onClick={() => setConfirm(true)}>
            Remove<span class="visually-hidden"> {m.email}</span>
          </button>
        </span>
        <Confirm
          open={confirm}
          title={`Remove ${m.email}?`}
          confirmLabel="Remove member"
          danger
          busy={busy}
          error={null}
          onClose={() => setConfirm(false)}
          onConfirm={async () => {
            setBusy(true);
            setError(null);
            try {
              await del('/tenants/{slug}/users/{user_id}', { params: { slug, user_id: m.user_id } });
              setConfirm(false);
              announce(`${m.email} removed.`);
              onChanged();
            } catch (e) {
              setConfirm(false);
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          <p>They lose access to this tenant at once. Their account stays.</p>
        </Confirm>
      </td>
    </tr>
  );
}

function InlineError({ error }: { error: unknown }) {
  const e = error instanceof ApiError ? error : null;
  return (
    <p class="field-error" role="alert">
      <span aria-hidden="true">✕ </span>
      {e?.code === 'LAST_OWNER' ? 'This is the last owner: add another owner first. ' : ''}
      {e ? `${e.message} (${e.code}, request ${e.requestId})` : String(error)}
    </p>
  );
}

// ---------------------------------------------------------------- resources

/** What a step's public reason code means, for callers who are not shown its recorded text. */
const REASONS: Record<NonNullable<StepStatus['reason']>, string> = {
  failed: 'Failed — an operator can see the cause',
  retrying: 'Retrying after a transient failure',
};

/** The steps' table. Only operators get a step's recorded text and artifact (the API leaves
 * them out for anyone else, who gets a reason code instead), so only they get that column. */
function StepTable({ steps, caption, artifacts }: { steps: Record<string, StepStatus>; caption: string; artifacts: boolean }) {
  // The order they run in, then any later ones by name.
  const order = ['storage', 'secrets', 'invitation'];
  const rank = (n: string) => (order.includes(n) ? order.indexOf(n) : order.length);
  const entries = Object.entries(steps ?? {}).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  if (!entries.length) return <p class="muted">No steps recorded yet.</p>;
  return (
    <table class="cards steps">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Step</th>
          <th scope="col">State</th>
          <th scope="col">Message</th>
          <th scope="col">Attempts</th>
          <th scope="col">At</th>
          {artifacts && <th scope="col">Artifact</th>}
        </tr>
      </thead>
      <tbody>
        {entries.map(([name, s]) => (
          <tr key={name} data-step={name}>
            <th scope="row" data-label="Step">
              {name}
            </th>
            <td data-label="State">
              <Status value={s.state} />
            </td>
            <td data-label="Message" class="wrap">
              {s.message ?? (s.reason ? REASONS[s.reason] ?? s.reason : '—')}
            </td>
            <td data-label="Attempts">{s.attempts}</td>
            <td data-label="At">{fmtTime(s.at)}</td>
            {artifacts && (
              <td data-label="Artifact" class="wrap">
                {s.artifact ? <code>{s.artifact}</code> : '—'}
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Resources({ tenant, reload, operator }: { tenant: Tenant; reload: () => Promise<Tenant | null>; operator: boolean }) {
  const canReconcile = operator;
  const [report, setReport] = useState<ReconcileReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const delay = useRef(1000);
  const last = useRef(provisioningSummary(tenant) + tenant.status);
  // Live while a run is going: poll every second, then back off (up to 30 s) once settled.
  useEffect(() => {
    // A deleted tenant shown without its offboarding (as anyone but an operator may get it) has
    // nothing to follow.
    const busyNow = tenant.status === 'provisioning' || tenant.run != null || (tenant.status === 'deleted' && !!tenant.offboarding && !tenant.offboarding.retired_at);
    delay.current = busyNow ? 1000 : Math.min(delay.current * 2, 30_000);
    const t = setTimeout(async () => {
      if (document.visibilityState !== 'visible') return void reload();
      const next = await reload();
      if (next) {
        const now = provisioningSummary(next) + next.status;
        if (now !== last.current) announce(`Provisioning: ${provisioningSummary(next)}; status ${next.status}.`);
        last.current = now;
      }
    }, delay.current);
    return () => clearTimeout(t);
  }, [tenant]);
  const r = report?.tenants?.[0];
  return (
    <>
      <h2>Provisioning</h2>
      <p>
        Status <Status value={tenant.status} /> · {provisioningSummary(tenant)} · {tenant.provisioned ? 'every step settled' : 'not settled'}
      </p>
      <StepTable steps={tenant.provisioning ?? {}} caption="Provisioning steps" artifacts={operator} />
      <h3>Run lease</h3>
      {tenant.run ? (
        <p>
          Held by <code>{tenant.run.id}</code> ({tenant.run.mode}) since {fmtTime(tenant.run.since)}, until {fmtTime(tenant.run.until)}.
        </p>
      ) : (
        <p class="muted">No run holds this tenant.</p>
      )}
      {tenant.offboarding && (
        <>
          <h3>Offboarding</h3>
          <dl class="facts">
            <dt>Deleted</dt>
            <dd>{fmtTime(tenant.offboarding.deleted_at)}</dd>
            <dt>Restorable until</dt>
            <dd>{fmtTime(tenant.offboarding.purge_after)}</dd>
            <dt>Status before</dt>
            <dd>{tenant.offboarding.previous_status ?? '—'}</dd>
            <dt>Retired</dt>
            <dd>{fmtTime(tenant.offboarding.retired_at)}</dd>
            <dt>Purged</dt>
            <dd>{fmtTime(tenant.offboarding.purged_at)}</dd>
          </dl>
          <StepTable steps={tenant.offboarding.steps ?? {}} caption="Offboarding steps" artifacts={operator} />
        </>
      )}
      <h3>Reconcile</h3>
      <p class="hint">Re-drives unfinished, failed or drifted provisioning now and waits for the run (up to a minute).</p>
      <div class="actions">
        <button
          type="button"
          class="primary"
          disabled={!canReconcile || busy}
          aria-describedby={canReconcile ? undefined : 'reconcile-why'}
          onClick={async () => {
            setBusy(true);
            setError(null);
            setReport(null);
            try {
              const a = await post<ReconcileReport>('/tenants/{slug}/reconcile', { params: { slug: tenant.slug } });
              setReport(a.data);
              announce(`Reconcile: ${a.data.summary ?? 'done'}.`);
              await reload();
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? 'Reconciling…' : 'Reconcile now'}
        </button>
        {!canReconcile && (
          <span id="reconcile-why" class="hint">
            {OPERATORS_ONLY}
          </span>
        )}
      </div>
      <ErrorBox error={error} title="The reconcile failed" />
      {report && (
        <div class="report" role="status">
          <h4>Reconcile report</h4>
          <p>
            <strong>{report.summary}</strong> · {report.tenants_checked ?? 0} checked · {report.runs_started ?? 0} runs started · {report.elapsed_ms ?? 0} ms
          </p>
          {r && (
            <dl class="facts">
              <dt>Action</dt>
              <dd>{r.action}</dd>
              <dt>Reasons</dt>
              <dd>{(r.reasons ?? (r.reason ? [r.reason] : [])).join('; ') || '—'}</dd>
              <dt>Execution</dt>
              <dd>{r.execution ? `${r.execution} (${r.execution_status ?? '?'})` : '—'}</dd>
              <dt>Status</dt>
              <dd>
                {r.status_before} → {r.status_after ?? r.status_before}
              </dd>
              {r.error && (
                <>
                  <dt>Error</dt>
                  <dd>{r.error}</dd>
                </>
              )}
            </dl>
          )}
          {report.error && <p class="bad">{report.error}</p>}
        </div>
      )}
    </>
  );
}

// ---------------------------------------------------------------- databases

function Databases({ tenant }: { tenant: Tenant }) {
  const list = useLoad(() => get<ApiPage<Database>>('/tenants/{slug}/databases', { params: { slug: tenant.slug }, query: { limit: 100 } }).then((a) => a.data), [tenant.slug]);
  const [name, setName] = useState('');
  const [conn, setConn] = useState('');
  const [ca, setCa] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [connErr, setConnErr] = useState<string | null>(null);
  const [caErr, setCaErr] = useState<string | null>(null);
  const [removing, setRemoving] = useState<Database | null>(null);
  const [removeErr, setRemoveErr] = useState<unknown>(null);
  const split = (host: string) => {
    const m = /^(.*):(\d+)\/(.*)$/.exec(host);
    return m ? { host: m[1]!, port: m[2]!, db: m[3]! } : { host, port: '—', db: '—' };
  };
  return (
    <>
      <h2>Registered databases</h2>
      <ErrorBox error={list.error} title="Could not load the databases" />
      {list.data && list.data.items.length === 0 && <p class="empty">None registered.</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Host</th>
              <th scope="col">Port</th>
              <th scope="col">Database</th>
              <th scope="col">TLS mode</th>
              <th scope="col">CA certificate</th>
              <th scope="col">Registered</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((d) => {
              const s = split(d.host);
              return (
                <tr key={d.id} data-db={d.id}>
                  <th scope="row" data-label="Name">
                    {d.name}
                  </th>
                  <td data-label="Host">{s.host}</td>
                  <td data-label="Port">{s.port}</td>
                  <td data-label="Database">{s.db}</td>
                  <td data-label="TLS mode">
                    <code>{d.sslmode}</code>
                  </td>
                  <td data-label="CA certificate">{d.ca_certificate ? 'held' : 'none'}</td>
                  <td data-label="Registered">{fmtTime(d.created_at)}</td>
                  <td data-label="Actions">
                    <button type="button" class="small" onClick={() => (setRemoveErr(null), setRemoving(d))}>
                      Remove<span class="visually-hidden"> {d.name}</span>
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <Confirm
        open={removing !== null}
        title={`Remove database ${removing?.name ?? ''}?`}
        confirmLabel="Remove database"
        danger
        busy={busy}
        error={removeErr}
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          if (!removing) return;
          setBusy(true);
          try {
            await del('/tenants/{slug}/databases/{db_id}', { params: { slug: tenant.slug, db_id: removing.id } });
            setRemoving(null);
            announce('Database removed.');
            void list.reload(true);
          } catch (e) {
            setRemoveErr(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>Queries through it stop at once and its pooled connections are closed. The database itself is not touched.</p>
      </Confirm>
      <h2>Register a database</h2>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          setConnErr(null);
          setCaErr(null);
          try {
            // The CA only when one was pasted: empty means the public roots.
            const body: DatabaseRegister = { name: name.trim(), engine: 'postgres', connection_string: conn, ...(ca.trim() ? { ca_certificate: ca } : {}) };
            await post('/tenants/{slug}/databases', { params: { slug: tenant.slug }, body });
            setName('');
            setConn('');
            setCa('');
            announce('Database registered.');
            void list.reload(true);
          } catch (err) {
            // DATABASE_TLS_REQUIRED (422) lands on the string (sslmode is in it); DATABASE_LIMIT (409) in the box.
            if (err instanceof ApiError && err.field === 'ca_certificate') setCaErr(`${err.message} (${err.code})`);
            else if (err instanceof ApiError && (err.status === 422 || err.field === 'connection_string')) setConnErr(`${err.message} (${err.code})`);
            else setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label="Name">
          {(a) => <input {...a} name="db-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} autoComplete="off" />}
        </Field>
        <Field label="Connection string" hint="postgres://user:password@host:5432/dbname?sslmode=verify-full (the default; also require, or verify-ca with a CA certificate below). It is tested, then stored sealed; it is never shown again." error={connErr}>
          {(a) => <input {...a} name="connection-string" type="password" required autoComplete="off" value={conn} onInput={(e) => setConn(e.currentTarget.value)} />}
        </Field>
        <Field label="CA certificate (PEM)" hint="Optional: only for a private CA; leave empty for public certificates (verify-full by default)." error={caErr}>
          {(a) => (
            <textarea
              {...a}
              name="ca-certificate"
              rows={4}
              class="mono"
              maxLength={65536}
              spellcheck={false}
              autoComplete="off"
              value={ca}
              onInput={(e) => setCa(e.currentTarget.value)}
            />
          )}
        </Field>
        <ErrorBox error={error} title="Could not register" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Testing the connection…' : 'Register'}
          </button>
        </div>
      </form>
    </>
  );
}

// ---------------------------------------------------------------- danger zone

function Danger({ tenant, reload, operator }: { tenant: Tenant; reload: () => Promise<Tenant | null>; operator: boolean }) {
  const [open, setOpen] = useState<'suspend' | 'resume' | 'delete' | 'restore' | null>(null);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const s = tenant.status;
  const now = Date.now() / 1000;
  const off = tenant.offboarding;
  const restorable = s === 'deleted' && off && !off.purged_at && (off.purge_after ?? 0) > now;
  const offboarding = s === 'deleted' && !!off && !off.purged_at && (tenant.run != null || !off.retired_at);
  // While a run holds the tenant the buttons' answers change on their own: follow it.
  useEffect(() => {
    if (tenant.run == null && s !== 'provisioning' && !offboarding) return;
    const t = setTimeout(() => void reload(), 1500);
    return () => clearTimeout(t);
  }, [tenant]);
  const why = (ok: boolean, reason: string) => (!operator ? OPERATORS_ONLY : ok ? null : reason);
  const reasons = {
    suspend: why(s === 'active' || s === 'provisioning', `Only an active or provisioning tenant can be suspended; this one is ${s}.`),
    resume: why(s === 'suspended', `Only a suspended tenant can be resumed; this one is ${s}.`),
    delete: why(s !== 'deleted', 'This tenant is already deleted.'),
    restore: why(
      !!restorable && !offboarding,
      s !== 'deleted'
        ? `Only a deleted tenant can be restored; this one is ${s}.`
        : offboarding
          ? 'Offboarding is still running (its files and secret are being retired); restoring opens when it finishes.'
          : 'The recovery window has passed: it cannot be restored.',
    ),
  };
  const act = async (what: NonNullable<typeof open>) => {
    setBusy(true);
    setError(null);
    try {
      if (what === 'delete') await del('/tenants/{slug}', { params: { slug: tenant.slug } });
      else await post(`/tenants/{slug}/${what}` as '/tenants/{slug}/suspend', { params: { slug: tenant.slug } });
      setOpen(null);
      setTyped('');
      const past = { suspend: 'suspended', resume: 'resumed', delete: 'deleted', restore: 'restored' }[what];
      setDone(`Tenant ${past}.`);
      announce(`Tenant ${past}.`);
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const row = ({ what, label, text }: { what: NonNullable<typeof open>; label: string; text: string }) => (
    <div class="danger-row" key={what}>
      <div>
        <h3>{label}</h3>
        <p>{text}</p>
        {reasons[what] && (
          <p class="hint" id={`why-${what}`}>
            {reasons[what]}
          </p>
        )}
      </div>
      <button type="button" class={what === 'delete' ? 'danger' : ''} disabled={!!reasons[what]} aria-describedby={reasons[what] ? `why-${what}` : undefined} onClick={() => (setError(null), setTyped(''), setOpen(what))}>
        {label}
      </button>
    </div>
  );
  return (
    <>
      <h2>Danger zone</h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      {row({ what: "suspend", label: "Suspend", text: "Members are refused on this tenant's routes until it is resumed." })}
      {row({ what: "resume", label: "Resume", text: "Members get their access back, their earlier sessions included." })}
      {row({ what: "delete", label: "Delete", text: "A soft delete: its files are retired and its secret scheduled for deletion; it can be restored within the recovery window." })}
      {row({
        what: "restore",
        label: "Restore",
        text: off && !off.purged_at ? `Brings it back to ${off.previous_status ?? 'its earlier status'}. Possible until ${fmtTime(off.purge_after)}.` : 'Brings a deleted tenant back within its recovery window.',
      })}
      <Confirm open={open === 'suspend'} title={`Suspend ${tenant.name}?`} confirmLabel="Suspend tenant" danger busy={busy} error={error} onClose={() => setOpen(null)} onConfirm={() => void act('suspend')}>
        <p>What happens to its members:</p>
        <ul>
          <li>every member gets 403 TENANT_SUSPENDED on this tenant's routes, at once;</li>
          <li>a user whose every tenant is suspended can no longer sign in or refresh, and their access tokens stop working;</li>
          <li>operators and partner admins are not held. Resuming restores everything, sessions included.</li>
        </ul>
      </Confirm>
      <Confirm open={open === 'resume'} title={`Resume ${tenant.name}?`} confirmLabel="Resume tenant" busy={busy} error={error} onClose={() => setOpen(null)} onConfirm={() => void act('resume')}>
        <p>Its members get their access back at once, their earlier sessions included.</p>
      </Confirm>
      <Confirm
        open={open === 'delete'}
        title={`Delete ${tenant.name}?`}
        confirmLabel="Delete tenant"
        danger
        busy={busy}
        error={error}
        disabled={typed !== tenant.slug}
        onClose={() => setOpen(null)}
        onConfirm={() => typed === tenant.slug && void act('delete')}
      >
        <p>
          Members lose access; its files are tagged for expiry and its secret is scheduled for deletion. It can be restored until its recovery window passes (the deadline is shown here once
          it is deleted); after that everything is purged. The slug is never released.
        </p>
        <Field label={`Type the slug, ${tenant.slug}, to confirm`}>
          {(a) => <input {...a} name="confirm-slug" autoComplete="off" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />}
        </Field>
      </Confirm>
      <Confirm open={open === 'restore'} title={`Restore ${tenant.name}?`} confirmLabel="Restore tenant" busy={busy} error={error} onClose={() => setOpen(null)} onConfirm={() => void act('restore')}>
        <p>
          It goes back to provisioning while its files and secret come back, then to {off?.previous_status ?? 'its earlier status'}. The owner is not invited again.
        </p>
      </Confirm>
    </>
  );
}
