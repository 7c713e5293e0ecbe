// The plan catalogue (operators): the list with each limit in human units, a new plan, and one
// plan's page (name, limits and features edited under If-Match, retire and reactivate, delete).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, del, get, patch, post } from '../api/client';
import type { Entitlements, Plan, PlanCreate, PlanDeleted, PlanListData, PlanPatch } from '../api/types';
import { Page } from '../App';
import { navigate } from '../router';
import { Confirm, ErrorBox, Field, Link, Status, announce, fmtBytes, fmtTime, useLoad } from '../ui/kit';
import { forgetPlans } from './common';

type LimitKey = keyof Entitlements;

interface LimitSpec {
  key: LimitKey;
  label: string;
  bytes: boolean;
  hint: string;
  /** Always a number (the largest upload); the others may be empty: unlimited. */
  required?: boolean;
}

/** The plan's limits, in the order forms and the list show them. */
const LIMITS: LimitSpec[] = [
  { key: 'seats', label: 'Seats', bytes: false, hint: 'Members of a tenant, pending invitations included.' },
  { key: 'stored_bytes', label: 'Storage', bytes: true, hint: "All of a tenant's files together." },
  { key: 'stored_objects', label: 'Objects', bytes: false, hint: 'Files a tenant may hold.' },
  { key: 'databases', label: 'Databases', bytes: false, hint: 'Registered databases (the query plane).' },
  { key: 'max_upload_bytes', label: 'Largest upload', bytes: true, hint: 'One file, from 1 byte to 5 GB. Always set.', required: true },
  { key: 'partner_tenants', label: 'Tenants per partner', bytes: false, hint: 'How many tenants on this plan one partner may hold (recorded; the platform does not enforce it yet).' },
];

/** A limit in words: a count, or bytes in KB, MB, GB; null is "Unlimited". */
export function limitText(v: number | null | undefined, bytes: boolean): string {
  if (v === null || v === undefined) return 'Unlimited';
  return bytes ? fmtBytes(v) : v.toLocaleString('en-US');
}

// ---------------------------------------------------------------- the form's draft

const UNITS = [
  ['bytes', 1],
  ['KB', 1024],
  ['MB', 1024 ** 2],
  ['GB', 1024 ** 3],
  ['TB', 1024 ** 4],
] as const;
type Unit = (typeof UNITS)[number][0];

interface LimitDraft {
  amount: string;
  unit: Unit;
}

interface Draft {
  id: string;
  name: string;
  limits: Record<LimitKey, LimitDraft>;
  /** One feature name per line (commas and spaces separate too). */
  features: string;
}

/** A byte count in the largest unit that holds it exactly (1073741824 is "1" GB). */
function limitDraft(v: number | null, bytes: boolean): LimitDraft {
  if (v === null) return { amount: '', unit: bytes ? 'GB' : 'bytes' };
  if (bytes) {
    for (let i = UNITS.length - 1; i > 0; i--) {
      const [unit, size] = UNITS[i]!;
      if (v >= size && v % size === 0) return { amount: String(v / size), unit };
    }
  }
  return { amount: String(v), unit: 'bytes' };
}

function draftOf(p: Plan): Draft {
  const limits = {} as Record<LimitKey, LimitDraft>;
  for (const l of LIMITS) limits[l.key] = limitDraft(p.entitlements[l.key] ?? null, l.bytes);
  return { id: p.id, name: p.name, limits, features: p.features.join('\n') };
}

function emptyDraft(): Draft {
  const limits = {} as Record<LimitKey, LimitDraft>;
  for (const l of LIMITS) limits[l.key] = l.required ? { amount: '10', unit: 'MB' } : limitDraft(null, l.bytes);
  return { id: '', name: '', limits, features: '' };
}

interface Read {
  name: string;
  entitlements: Entitlements;
  features: string[];
}

/** The draft as the API takes it, or what is wrong with it, by field (the API checks again). */
function readDraft(d: Draft): { value: Read | null; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const out: Partial<Record<LimitKey, number | null>> = {};
  for (const l of LIMITS) {
    const { amount, unit } = d.limits[l.key];
    const raw = amount.trim();
    if (raw === '') {
      if (l.required) errors[l.key] = 'Required: at least 1 byte.';
      else out[l.key] = null;
      continue;
    }
    const n = Number(raw);
    const size = l.bytes ? UNITS.find(([u]) => u === unit)![1] : 1;
    if (!Number.isFinite(n) || n < 0 || (!l.bytes && !Number.isInteger(n))) {
      errors[l.key] = l.required ? 'A size of at least 1 byte.' : `A whole ${l.bytes ? 'size' : 'number'} of at least 0, or empty for unlimited.`;
      continue;
    }
    out[l.key] = Math.round(n * size);
  }
  if (!d.name.trim()) errors.name = 'Required.';
  const features = [...new Set(d.features.split(/[\s,]+/).filter(Boolean))];
  if (Object.keys(errors).length) return { value: null, errors };
  return { value: { name: d.name.trim(), entitlements: out as Entitlements, features }, errors };
}

const sameEntitlements = (a: Entitlements, b: Entitlements) => LIMITS.every((l) => (a[l.key] ?? null) === (b[l.key] ?? null));
const sameFeatures = (a: string[], b: string[]) => [...a].sort().join('\n') === [...b].sort().join('\n');

const FORM_FIELDS = ['id', 'name', 'features', ...LIMITS.map((l) => l.key)];

/** An API refusal on the field it names ("entitlements.seats: ..." lands on Seats). */
function planFieldErrors(e: unknown): { byField: Record<string, string>; other: unknown } {
  if (e instanceof ApiError && e.code === 'PLAN_EXISTS') return { byField: { id: `${e.message} (${e.code})` }, other: null };
  if (e instanceof ApiError && e.field) {
    const key = e.field.replace(/^entitlements\./, '');
    const text = e.message.replace(/^[^:]*:\s*/, '');
    if (FORM_FIELDS.includes(key)) return { byField: { [key]: text || e.message }, other: null };
  }
  return { byField: {}, other: e };
}

function PlanFields({ draft, setDraft, errors, withId }: { draft: Draft; setDraft: (d: Draft) => void; errors: Record<string, string>; withId: boolean }) {
  const setLimit = (key: LimitKey, part: Partial<LimitDraft>) => setDraft({ ...draft, limits: { ...draft.limits, [key]: { ...draft.limits[key], ...part } } });
  return (
    <>
      {withId && (
        <Field label="Id" hint="Lower-case letters, digits and hyphens, 2-32 characters, starting with a letter. It never changes." error={errors.id}>
          {(a) => (
            <input {...a} name="plan-id" required minLength={2} maxLength={32} pattern="[a-z][a-z0-9-]*[a-z0-9]" value={draft.id} onInput={(e) => setDraft({ ...draft, id: e.currentTarget.value })} autoComplete="off" spellcheck={false} />
          )}
        </Field>
      )}
      <Field label="Name" hint="As operators and partner admins see it, such as Team." error={errors.name}>
        {(a) => <input {...a} name="plan-name" required maxLength={100} value={draft.name} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} autoComplete="off" />}
      </Field>
      <fieldset>
        <legend>Limits</legend>
        <p class="hint">Leave a limit empty for unlimited. 1 KB is 1024 bytes.</p>
        {LIMITS.map((l) => {
          const d = draft.limits[l.key];
          return (
            <Field key={l.key} label={l.label} hint={l.required ? l.hint : `${l.hint} Empty: unlimited.`} error={errors[l.key]}>
              {(a) =>
                l.bytes ? (
                  <div class="with-unit">
                    <input
                      {...a}
                      name={`limit-${l.key}`}
                      type="number"
                      inputMode="decimal"
                      min={l.required ? 1 : 0}
                      step="any"
                      placeholder={l.required ? undefined : 'Unlimited'}
                      value={d.amount}
                      onInput={(e) => setLimit(l.key, { amount: e.currentTarget.value })}
                    />
                    <label class="visually-hidden" for={`${a.id}-unit`}>
                      {l.label} unit
                    </label>
                    <select id={`${a.id}-unit`} name={`unit-${l.key}`} value={d.unit} onChange={(e) => setLimit(l.key, { unit: e.currentTarget.value as Unit })}>
                      {UNITS.map(([u]) => (
                        <option key={u} value={u}>
                          {u}
                        </option>
                      ))}
                    </select>
                  </div>
                ) : (
                  <input
                    {...a}
                    name={`limit-${l.key}`}
                    type="number"
                    inputMode="numeric"
                    min={0}
                    step={1}
                    placeholder="Unlimited"
                    value={d.amount}
                    onInput={(e) => setLimit(l.key, { amount: e.currentTarget.value })}
                  />
                )
              }
            </Field>
          );
        })}
      </fieldset>
      <Field label="Features" hint="One per line: lower-case dotted names, such as sso or audit.export; at most 50." error={errors.features}>
        {(a) => <textarea {...a} name="plan-features" rows={3} class="mono" spellcheck={false} value={draft.features} onInput={(e) => setDraft({ ...draft, features: e.currentTarget.value })} />}
      </Field>
    </>
  );
}

// ---------------------------------------------------------------- the list

export function PlanList() {
  const list = useLoad(() => get<PlanListData>('/plans').then((a) => a.data.items), []);
  return (
    <Page
      title="Plans"
      actions={
        <Link to="/plans/new" class="button primary">
          New plan
        </Link>
      }
    >
      <p class="subtitle">The catalogue tenants are sold from. Each tenant is on one plan; a change of its limits applies to them at once.</p>
      <ErrorBox error={list.error} title="Could not load the plans" />
      {list.loading && !list.data && <p role="status">Loading…</p>}
      {list.data && list.data.length === 0 && <p class="empty">No plan.</p>}
      {list.data && list.data.length > 0 && (
        <table class="cards plans">
          <caption class="visually-hidden">Plans and their limits</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">Status</th>
              <th scope="col">Tenants</th>
              {LIMITS.map((l) => (
                <th scope="col" key={l.key}>
                  {l.label}
                </th>
              ))}
              <th scope="col">Features</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((p) => (
              <tr key={p.id} data-plan={p.id}>
                <th scope="row" data-label="Name">
                  <span>
                    <Link to={`/plans/${p.id}`}>{p.name}</Link>
                    {p.builtin && <span class="tag builtin">built-in</span>}
                  </span>
                </th>
                <td data-label="Id">
                  <code>{p.id}</code>
                </td>
                <td data-label="Status">
                  <Status value={p.status} />
                </td>
                <td data-label="Tenants" class="num">
                  {p.tenants}
                </td>
                {LIMITS.map((l) => (
                  <td key={l.key} data-label={l.label} data-limit={l.key} class="num">
                    {limitText(p.entitlements[l.key], l.bytes)}
                  </td>
                ))}
                <td data-label="Features" class="wrap">
                  {p.features.length ? p.features.join(', ') : '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

// ---------------------------------------------------------------- a new plan

export function NewPlan() {
  const [draft, setDraft] = useState(emptyDraft);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  return (
    <Page title="New plan" lead={<Link to="/plans" class="back">← Plans</Link>}>
      <form
        class="stack"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          const { value, errors: wrong } = readDraft(draft);
          if (!draft.id.trim()) wrong.id = 'Required.';
          setErrors(wrong);
          if (!value || wrong.id) return;
          setBusy(true);
          const body: PlanCreate = { id: draft.id.trim(), name: value.name, entitlements: value.entitlements, features: value.features };
          try {
            const a = await post<Plan>('/plans', { body });
            forgetPlans();
            announce(`Plan ${a.data.name} created.`);
            navigate(`/plans/${a.data.id}`);
          } catch (err) {
            const { byField, other } = planFieldErrors(err);
            setErrors(byField);
            setError(other);
            setBusy(false);
          }
        }}
      >
        <PlanFields draft={draft} setDraft={setDraft} errors={errors} withId />
        <ErrorBox error={error} title="Could not create the plan" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create plan'}
          </button>
          <Link to="/plans">Cancel</Link>
        </div>
      </form>
    </Page>
  );
}

// ---------------------------------------------------------------- one plan

interface Loaded {
  plan: Plan;
  etag: string | null;
}

interface Conflict {
  latest: Plan;
  etag: string | null;
  /** What differs from the version this page had, in words. */
  changed: string[];
}

function differences(was: Plan, now: Plan): string[] {
  const out: string[] = [];
  if (was.name !== now.name) out.push(`name: now “${now.name}” (was “${was.name}”)`);
  if (was.status !== now.status) out.push(`status: now ${now.status} (was ${was.status})`);
  for (const l of LIMITS) {
    const a = was.entitlements[l.key] ?? null;
    const b = now.entitlements[l.key] ?? null;
    if (a !== b) out.push(`${l.label.toLowerCase()}: now ${limitText(b, l.bytes)} (was ${limitText(a, l.bytes)})`);
  }
  if (!sameFeatures(was.features, now.features)) out.push(`features: now ${now.features.join(', ') || 'none'} (was ${was.features.join(', ') || 'none'})`);
  return out;
}

export function PlanPage({ id }: { id: string }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  // Bumped to start the edit form again from the plan as loaded (dropping edits).
  const [formKey, setFormKey] = useState(0);
  const load = async () => {
    try {
      const a = await get<Plan>('/plans/{plan_id}', { params: { plan_id: id } });
      setLoaded({ plan: a.data, etag: a.etag });
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    setLoaded(null);
    setConflict(null);
    void load();
  }, [id]);

  /** PATCH under the ETag read. A stale one (412) changes nothing: the latest is read and what
   * changed meanwhile is shown; false then. Other refusals are thrown to the caller. */
  const change = async (body: PlanPatch): Promise<boolean> => {
    if (!loaded) return false;
    setConflict(null);
    try {
      const a = await patch<Plan>('/plans/{plan_id}', { params: { plan_id: id }, body, headers: loaded.etag ? { 'if-match': loaded.etag } : {} });
      setLoaded({ plan: a.data, etag: a.etag });
      forgetPlans();
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        const a = await get<Plan>('/plans/{plan_id}', { params: { plan_id: id } });
        setConflict({ latest: a.data, etag: a.etag, changed: differences(loaded.plan, a.data) });
        return false;
      }
      throw e;
    }
  };

  const p = loaded?.plan;
  return (
    <Page title={p ? `Plan ${p.name}` : `Plan ${id}`} lead={<Link to="/plans" class="back">← Plans</Link>} actions={p && <Status value={p.status} />}>
      <ErrorBox error={error} title="Could not load the plan" />
      {loaded && p && (
        <>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{p.id}</code> {p.builtin && <span class="tag builtin">built-in</span>}
            </dd>
            <dt>Tenants on it</dt>
            <dd>{p.tenants}</dd>
            <dt>Version</dt>
            <dd>{p.version}</dd>
            <dt>Created</dt>
            <dd>{p.created_at ? fmtTime(p.created_at) : '— (built in, never edited)'}</dd>
            <dt>Updated</dt>
            <dd>{p.updated_at ? fmtTime(p.updated_at) : '—'}</dd>
          </dl>
          {conflict && (
            <div class="error-box" role="alert">
              <p class="error-title">Someone changed this plan since you opened it (HTTP 412, nothing was saved).</p>
              <p>Changed meanwhile: {conflict.changed.length ? '' : 'only its version.'}</p>
              {conflict.changed.length > 0 && (
                <ul>
                  {conflict.changed.map((c) => (
                    <li key={c}>{c}</li>
                  ))}
                </ul>
              )}
              <div class="actions">
                <button
                  type="button"
                  class="primary"
                  onClick={() => {
                    setLoaded({ plan: conflict.latest, etag: conflict.etag });
                    setFormKey((k) => k + 1);
                    setConflict(null);
                  }}
                >
                  Reload the latest (drop my edits)
                </button>
                <button
                  type="button"
                  onClick={() => {
                    setLoaded({ plan: conflict.latest, etag: conflict.etag });
                    setConflict(null);
                  }}
                >
                  Keep my edits on top of the latest
                </button>
              </div>
            </div>
          )}
          <PlanEdit key={formKey} plan={p} change={change} />
          <PlanLifecycle plan={p} change={change} />
        </>
      )}
    </Page>
  );
}

function PlanEdit({ plan, change }: { plan: Plan; change: (b: PlanPatch) => Promise<boolean> }) {
  const [draft, setDraft] = useState(() => draftOf(plan));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  return (
    <section aria-labelledby="plan-edit-h">
      <h2 id="plan-edit-h">Name, limits and features</h2>
      <form
        class="stack"
        noValidate
        onInput={() => setSaved(false)}
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setSaved(false);
          const { value, errors: wrong } = readDraft(draft);
          setErrors(wrong);
          if (!value) return;
          // Only what changed; the entitlements go whole (the API replaces them whole).
          const body: PlanPatch = {};
          if (value.name !== plan.name) body.name = value.name;
          if (!sameEntitlements(value.entitlements, plan.entitlements)) body.entitlements = value.entitlements;
          if (!sameFeatures(value.features, plan.features)) body.features = value.features;
          if (!Object.keys(body).length) return setSaved(true);
          setBusy(true);
          try {
            if (await change(body)) {
              setSaved(true);
              announce('Plan saved.');
            }
          } catch (err) {
            const { byField, other } = planFieldErrors(err);
            setErrors(byField);
            setError(other);
          } finally {
            setBusy(false);
          }
        }}
      >
        <PlanFields draft={draft} setDraft={setDraft} errors={errors} withId={false} />
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
      </form>
    </section>
  );
}

function PlanLifecycle({ plan, change }: { plan: Plan; change: (b: PlanPatch) => Promise<boolean> }) {
  const [open, setOpen] = useState<'retire' | 'delete' | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const retired = plan.status === 'retired';
  const tenants = `${plan.tenants} tenant${plan.tenants === 1 ? '' : 's'}`;
  const deleteWhy = plan.builtin ? 'Built-in plans (free, pro, enterprise) are never deleted: retire it instead.' : null;
  const setStatus = async (status: Plan['status']) => {
    setBusy(true);
    setError(null);
    setDone('');
    try {
      if (await change({ status })) {
        const said = status === 'retired' ? 'Plan retired: no tenant can be put on it now.' : 'Plan reactivated: tenants can be put on it again.';
        setOpen(null);
        setDone(said);
        announce(said);
      } else setOpen(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="plan-life-h">
      <h2 id="plan-life-h">Retire or delete</h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      {!open && <ErrorBox error={error} />}
      <div class="danger-row">
        <div>
          <h3>{retired ? 'Reactivate' : 'Retire'}</h3>
          <p>
            {retired
              ? 'Tenants can be put on it again (by operators, and by the admins of partners allowed to sell it).'
              : `No tenant can be put on it from now on; the ${tenants} on it stay, with its limits, until they are moved.`}
          </p>
        </div>
        {retired ? (
          <button type="button" disabled={busy} onClick={() => void setStatus('active')}>
            Reactivate
          </button>
        ) : (
          <button type="button" onClick={() => (setError(null), setDone(''), setOpen('retire'))}>
            Retire
          </button>
        )}
      </div>
      <div class="danger-row">
        <div>
          <h3>Delete</h3>
          <p>Removes it from the catalogue for good. Only a plan no tenant is on can go.</p>
          {deleteWhy ? (
            <p class="hint" id="why-delete-plan">
              {deleteWhy}
            </p>
          ) : (
            plan.tenants > 0 && <p class="hint">{tenants} on it: move them to another plan first.</p>
          )}
        </div>
        <button type="button" class="danger" disabled={!!deleteWhy} aria-describedby={deleteWhy ? 'why-delete-plan' : undefined} onClick={() => (setError(null), setDone(''), setOpen('delete'))}>
          Delete
        </button>
      </div>
      <Confirm open={open === 'retire'} title={`Retire ${plan.name}?`} confirmLabel="Retire plan" busy={busy} error={error} onClose={() => setOpen(null)} onConfirm={() => void setStatus('retired')}>
        <ul>
          <li>no tenant can be put on it any more (409 PLAN_RETIRED), by operators or partner admins;</li>
          <li>the {tenants} on it stay on it, with its limits;</li>
          <li>it can be reactivated at any time.</li>
        </ul>
      </Confirm>
      <Confirm
        open={open === 'delete'}
        title={`Delete ${plan.name}?`}
        confirmLabel="Delete plan"
        danger
        busy={busy}
        error={error}
        onClose={() => setOpen(null)}
        onConfirm={async () => {
          setBusy(true);
          setError(null);
          try {
            const a = await del<PlanDeleted>('/plans/{plan_id}', { params: { plan_id: plan.id } });
            forgetPlans();
            setOpen(null);
            announce(`Plan ${a.data.id} deleted.`);
            navigate('/plans');
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          The plan <code>{plan.id}</code> leaves the catalogue; its id can be used again. The API refuses while any tenant is on it (409 PLAN_IN_USE).
        </p>
      </Confirm>
    </section>
  );
}
