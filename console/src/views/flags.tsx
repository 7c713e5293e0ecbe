// Feature flags (operators): the list, a new flag, and one flag's page (its state and rollout
// saved under If-Match, overrides per axis, the kill switch behind a confirmation, and "why is it
// on for this tenant"). The tenant page's Feature flags card is here too.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, del, get, patch, post, put } from '../api/client';
import type { Flag, FlagAxis, FlagCreate, FlagDeleted, FlagEvaluation, FlagListData, FlagOverride, FlagPatch, FlagReason, Plan, TenantFlagListData } from '../api/types';
import { FLAG_AXES } from '../api/types';
import { Page } from '../App';
import { navigate } from '../router';
import { Confirm, ErrorBox, Field, Link, Status, announce, fieldErrors, fmtTime, useId, useLoad } from '../ui/kit';
import { useWho } from '../who';
import { allPartners, planCatalogue, userEmail, userIdOf } from './common';

type Settable = Exclude<Flag['state'], 'killed'>;

const STATES: [Settable, string][] = [
  ['off', 'Off for everyone'],
  ['on', 'On for everyone'],
  ['rollout', 'Rollout to a share of tenants'],
];

/** The flag's state in words (the badge beside it says it in one word). */
export function stateWords(f: Pick<Flag, 'state' | 'rollout_percent'>): string {
  switch (f.state) {
    case 'on':
      return 'On for everyone';
    case 'off':
      return 'Off for everyone';
    case 'rollout':
      return `On for ${f.rollout_percent}% of tenants`;
    case 'killed':
      return 'Killed: off everywhere';
  }
}

/** Why a flag has its value, in words (`reason` of an evaluation). */
export function reasonWords(reason: FlagReason, e?: Pick<FlagEvaluation, 'bucket' | 'rollout_percent' | 'tenant'>): string {
  const bucket = e?.bucket != null && e.rollout_percent != null ? ` (its bucket is ${e.bucket.toLocaleString('en-US')}; buckets below ${(e.rollout_percent * 100).toLocaleString('en-US')} are in)` : '';
  switch (reason) {
    case 'killed':
      return 'The flag is killed: off everywhere, whatever the overrides say.';
    case 'user_override':
      return 'An override for this user decides it.';
    case 'tenant_override':
      return 'An override for this tenant decides it.';
    case 'partner_override':
      return "An override for the tenant's partner decides it.";
    case 'plan_override':
      return `An override for the tenant's plan${e ? ` (${e.tenant.plan})` : ''} decides it.`;
    case 'on':
      return 'No override applies, and the flag is on for everyone.';
    case 'off':
      return 'No override applies, and the flag is off for everyone.';
    case 'rollout_in':
      return `No override applies; the tenant is inside the rollout${bucket}.`;
    case 'rollout_out':
      return `No override applies; the tenant is outside the rollout${bucket}.`;
  }
}

/** Short forms for the tenant page's card. */
const REASON_SHORT: Record<FlagReason, string> = {
  killed: 'killed',
  user_override: 'user override',
  tenant_override: 'tenant override',
  partner_override: 'partner override',
  plan_override: 'plan override',
  on: 'on for everyone',
  off: 'off for everyone',
  rollout_in: 'inside the rollout',
  rollout_out: 'outside the rollout',
};

/** The order the API decides in; shown where flags are changed. */
function EvaluationOrder({ open = false }: { open?: boolean }) {
  return (
    <details class="help" open={open}>
      <summary>How a flag's value is decided</summary>
      <p>For a tenant (and a user of it), the first rule that applies wins:</p>
      <ol>
        <li>
          <strong>Killed</strong>: off everywhere, overrides included.
        </li>
        <li>
          A <strong>user</strong> override for the user.
        </li>
        <li>
          A <strong>tenant</strong> override for the tenant.
        </li>
        <li>
          A <strong>partner</strong> override for the tenant's partner.
        </li>
        <li>
          A <strong>plan</strong> override for the tenant's plan.
        </li>
        <li>
          The flag's <strong>state</strong>: on, off, or rollout. In a rollout each tenant has a stable bucket from 0 to 9,999 (a hash of the flag's key and the tenant's id); it
          is in when its bucket is below the rollout percentage × 100, so 25% lets in buckets 0 to 2,499, and raising the percentage only ever adds tenants.
        </li>
      </ol>
    </details>
  );
}

const onOff = (v: boolean) => (v ? 'On' : 'Off');

// ---------------------------------------------------------------- the list

export function FlagList() {
  const list = useLoad(() => get<FlagListData>('/flags').then((a) => a.data.items), []);
  return (
    <Page
      title="Flags"
      actions={
        <Link to="/flags/new" class="button primary">
          New flag
        </Link>
      }
    >
      <p class="subtitle">Feature flags turn a feature on or off for tenants and users without a deployment.</p>
      <EvaluationOrder />
      <ErrorBox error={list.error} title="Could not load the flags" />
      {list.loading && !list.data && <p role="status">Loading…</p>}
      {list.data && list.data.length === 0 && <p class="empty">No flag yet.</p>}
      {list.data && list.data.length > 0 && (
        <table class="cards flags">
          <caption class="visually-hidden">Feature flags</caption>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">State</th>
              <th scope="col">Owner</th>
              <th scope="col">Rollout</th>
              <th scope="col">Overrides</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {[...list.data]
              .sort((a, b) => a.key.localeCompare(b.key))
              .map((f) => (
                <tr key={f.key} data-flag={f.key}>
                  <th scope="row" data-label="Key" class="wrap">
                    <Link to={`/flags/${f.key}`}>
                      <code>{f.key}</code>
                    </Link>
                  </th>
                  <td data-label="State">
                    <span class="state-cell">
                      <Status value={f.state} />
                      <span class="state-words">{stateWords(f)}</span>
                    </span>
                  </td>
                  <td data-label="Owner" class="wrap">
                    {f.owner}
                  </td>
                  <td data-label="Rollout" class="num">
                    {f.state === 'rollout' ? `${f.rollout_percent}%` : '—'}
                  </td>
                  <td data-label="Overrides" class="num">
                    {f.overrides.length}
                  </td>
                  <td data-label="Updated">{fmtTime(f.updated_at)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

// ---------------------------------------------------------------- the form's fields

/** A percentage on a slider, its number shown beside it and read out ("30% of tenants"). */
function RolloutSlider({ value, onChange, disabled }: { value: number; onChange: (n: number) => void; disabled?: boolean }) {
  const id = useId('rollout');
  return (
    <div class="field">
      <label for={id}>Rollout</label>
      <div class="hint" id={`${id}-hint`}>
        The share of tenants that get the flag, 0 to 100%. Each tenant keeps its place: raising it only adds tenants.
      </div>
      <div class="range-row">
        <input
          id={id}
          name="rollout-percent"
          type="range"
          min={0}
          max={100}
          step={1}
          value={value}
          disabled={disabled}
          aria-describedby={`${id}-hint`}
          aria-valuetext={`${value}% of tenants`}
          onInput={(e) => onChange(Number(e.currentTarget.value))}
        />
        <output for={id} class="range-value" aria-hidden="true">
          {value}%
        </output>
      </div>
    </div>
  );
}

interface Draft {
  description: string;
  owner: string;
  state: Settable;
  rollout: number;
}

const draftOf = (f: Flag): Draft => ({ description: f.description, owner: f.owner, state: f.state === 'killed' ? 'off' : f.state, rollout: f.rollout_percent });

function checkDraft(d: Draft): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!d.owner.trim()) errors.owner = 'Required: a team or an e-mail address.';
  else if (d.owner.trim().length > 100) errors.owner = 'At most 100 characters.';
  if (d.description.length > 500) errors.description = 'At most 500 characters.';
  return errors;
}

function FlagFields({ draft, setDraft, errors }: { draft: Draft; setDraft: (d: Draft) => void; errors: Record<string, string> }) {
  return (
    <>
      <Field label="Description" hint="What it turns on, for whoever reads this list next. Up to 500 characters." error={errors.description}>
        {(a) => <textarea {...a} name="flag-description" rows={2} maxLength={500} value={draft.description} onInput={(e) => setDraft({ ...draft, description: e.currentTarget.value })} />}
      </Field>
      <Field label="Owner" hint="The team or person who answers for it (a name or an e-mail address)." error={errors.owner}>
        {(a) => <input {...a} name="flag-owner" required maxLength={100} value={draft.owner} onInput={(e) => setDraft({ ...draft, owner: e.currentTarget.value })} autoComplete="off" />}
      </Field>
      <Field label="State" hint="Overrides below decide first; the state answers for everyone else." error={errors.state}>
        {(a) => (
          <select {...a} name="flag-state" value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.currentTarget.value as Settable })}>
            {STATES.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        )}
      </Field>
      {draft.state === 'rollout' && <RolloutSlider value={draft.rollout} onChange={(rollout) => setDraft({ ...draft, rollout })} />}
      {errors.rollout_percent && (
        <p class="field-error">
          <span aria-hidden="true">✕ </span>
          {errors.rollout_percent}
        </p>
      )}
    </>
  );
}

const FIELDS = ['key', 'description', 'owner', 'state', 'rollout_percent'];

function flagFieldErrors(e: unknown): { byField: Record<string, string>; other: unknown } {
  if (e instanceof ApiError && e.code === 'FLAG_EXISTS') return { byField: { key: `${e.message} (${e.code})` }, other: null };
  return fieldErrors(e, FIELDS);
}

// ---------------------------------------------------------------- a new flag

export function NewFlag() {
  const who = useWho();
  const [key, setKey] = useState('');
  const [draft, setDraft] = useState<Draft>({ description: '', owner: who.email, state: 'off', rollout: 10 });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Page title="New flag" lead={<Link to="/flags" class="back">← Flags</Link>}>
      <form
        class="stack"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          const wrong = checkDraft(draft);
          const k = key.trim();
          if (!/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/.test(k) || k.length < 3 || k.length > 64)
            wrong.key = 'Lower-case dotted segments, 3-64 characters, each segment starting with a letter (letters, digits, hyphens), such as billing.new-invoices.';
          setErrors(wrong);
          if (Object.keys(wrong).length) return;
          setBusy(true);
          const body: FlagCreate = { key: k, description: draft.description.trim(), owner: draft.owner.trim(), state: draft.state, ...(draft.state === 'rollout' ? { rollout_percent: draft.rollout } : {}) };
          try {
            const a = await post<Flag>('/flags', { body });
            announce(`Flag ${a.data.key} created.`);
            navigate(`/flags/${a.data.key}`);
          } catch (err) {
            const { byField, other } = flagFieldErrors(err);
            setErrors(byField);
            setError(other);
            setBusy(false);
          }
        }}
      >
        <Field label="Key" hint="Lower-case dotted name, 3-64 characters: segments of letters, digits and hyphens, each starting with a letter (billing.new-invoices). It never changes." error={errors.key}>
          {(a) => <input {...a} name="flag-key" required minLength={3} maxLength={64} value={key} onInput={(e) => setKey(e.currentTarget.value)} autoComplete="off" spellcheck={false} class="mono" />}
        </Field>
        <FlagFields draft={draft} setDraft={setDraft} errors={errors} />
        <ErrorBox error={error} title="Could not create the flag" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create flag'}
          </button>
          <Link to="/flags">Cancel</Link>
        </div>
      </form>
    </Page>
  );
}

// ---------------------------------------------------------------- one flag

interface Loaded {
  flag: Flag;
  etag: string | null;
}

interface Conflict {
  latest: Flag;
  etag: string | null;
  changed: string[];
}

/** The ETag of an answer, or the one the contract says a flag's version has. */
const etagOf = (etag: string | null, f: Flag) => etag ?? `"f${f.version}"`;

function differences(was: Flag, now: Flag): string[] {
  const out: string[] = [];
  if (was.state !== now.state || was.rollout_percent !== now.rollout_percent) out.push(`state: now ${stateWords(now).toLowerCase()} (was ${stateWords(was).toLowerCase()})`);
  if (was.owner !== now.owner) out.push(`owner: now “${now.owner}” (was “${was.owner}”)`);
  if (was.description !== now.description) out.push(`description: now “${now.description}”`);
  if (was.overrides.length !== now.overrides.length) out.push(`overrides: now ${now.overrides.length} (was ${was.overrides.length})`);
  return out;
}

export function FlagPage({ flagKey }: { flagKey: string }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [formKey, setFormKey] = useState(0);
  const load = async () => {
    try {
      const a = await get<Flag>('/flags/{key}', { params: { key: flagKey } });
      setLoaded({ flag: a.data, etag: etagOf(a.etag, a.data) });
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    setLoaded(null);
    setConflict(null);
    void load();
  }, [flagKey]);

  /** A flag answered by any change (overrides, kill) is the page's flag from then on. */
  const adopt = (flag: Flag, etag: string | null) => setLoaded({ flag, etag: etagOf(etag, flag) });

  /** PATCH under the ETag read; a stale one (412) changes nothing and shows what changed. */
  const change = async (body: FlagPatch): Promise<boolean> => {
    if (!loaded) return false;
    setConflict(null);
    try {
      const a = await patch<Flag>('/flags/{key}', { params: { key: flagKey }, body, headers: loaded.etag ? { 'if-match': loaded.etag } : {} });
      adopt(a.data, a.etag);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        const a = await get<Flag>('/flags/{key}', { params: { key: flagKey } });
        setConflict({ latest: a.data, etag: etagOf(a.etag, a.data), changed: differences(loaded.flag, a.data) });
        return false;
      }
      throw e;
    }
  };

  const f = loaded?.flag;
  return (
    <Page title={`Flag ${flagKey}`} lead={<Link to="/flags" class="back">← Flags</Link>} actions={f && <Status value={f.state} />}>
      <ErrorBox error={error} title="Could not load the flag" />
      {f && (
        <>
          <p class="subtitle state-line">
            <strong>{stateWords(f)}</strong>
            {f.overrides.length > 0 && ` · ${f.overrides.length} override${f.overrides.length === 1 ? '' : 's'}`}
          </p>
          {f.state === 'killed' && (
            <div class="killed-box" role="note" aria-label="Killed">
              <p>
                <span aria-hidden="true">✕ </span>
                <strong>Killed</strong> {f.killed_at ? `on ${fmtTime(f.killed_at)}` : ''} by <UserName id={f.killed_by} />.
              </p>
              {f.kill_reason && <p class="kill-reason">Reason: “{f.kill_reason}”</p>}
              <p>It is off everywhere, whatever its overrides say. To bring it back, choose its state under Settings and save.</p>
            </div>
          )}
          <dl class="facts">
            <dt>Description</dt>
            <dd>{f.description || '—'}</dd>
            <dt>Owner</dt>
            <dd>{f.owner}</dd>
            <dt>Version</dt>
            <dd>{f.version}</dd>
            <dt>Created</dt>
            <dd>{fmtTime(f.created_at)}</dd>
            <dt>Updated</dt>
            <dd>{fmtTime(f.updated_at)}</dd>
          </dl>
          {conflict && (
            <div class="error-box" role="alert">
              <p class="error-title">Someone changed this flag since you opened it (HTTP 412, nothing was saved).</p>
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
                    adopt(conflict.latest, conflict.etag);
                    setFormKey((k) => k + 1);
                    setConflict(null);
                  }}
                >
                  Reload the latest (drop my edits)
                </button>
                <button
                  type="button"
                  onClick={() => {
                    adopt(conflict.latest, conflict.etag);
                    setConflict(null);
                  }}
                >
                  Keep my edits on top of the latest
                </button>
              </div>
            </div>
          )}
          <FlagSettings key={`${formKey}-${f.state === 'killed'}`} flag={f} change={change} />
          <Overrides flag={f} adopt={adopt} />
          <Evaluate flag={f} />
          <KillAndDelete flag={f} adopt={adopt} />
        </>
      )}
    </Page>
  );
}

function UserName({ id }: { id: string | null | undefined }) {
  const who = useWho();
  const [email, setEmail] = useState<string | null>(null);
  useEffect(() => {
    if (!id) return;
    if (id === who.userId) return setEmail(who.email);
    void userEmail(id).then(setEmail);
  }, [id]);
  if (!id) return <>someone</>;
  return email ? <>{email}</> : <code title={id}>{id.slice(0, 8)}…</code>;
}

function FlagSettings({ flag, change }: { flag: Flag; change: (b: FlagPatch) => Promise<boolean> }) {
  const [draft, setDraft] = useState(() => draftOf(flag));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState('');
  const killed = flag.state === 'killed';
  return (
    <section aria-labelledby="flag-settings-h">
      <h2 id="flag-settings-h">Settings</h2>
      <form
        class="stack"
        noValidate
        onInput={() => setSaved('')}
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setSaved('');
          const wrong = checkDraft(draft);
          setErrors(wrong);
          if (Object.keys(wrong).length) return;
          const body: FlagPatch = {};
          if (draft.description.trim() !== flag.description) body.description = draft.description.trim();
          if (draft.owner.trim() !== flag.owner) body.owner = draft.owner.trim();
          // A killed flag comes back only by a state named in the change.
          if (killed || draft.state !== flag.state) body.state = draft.state;
          if (draft.state === 'rollout' && draft.rollout !== flag.rollout_percent) body.rollout_percent = draft.rollout;
          if (!Object.keys(body).length) return setSaved('Nothing to save: it is as shown.');
          setBusy(true);
          try {
            if (await change(body)) {
              const said = killed ? `Brought back: ${stateWords({ state: draft.state, rollout_percent: draft.rollout }).toLowerCase()}.` : 'Saved.';
              setSaved(said);
              announce(`Flag ${flag.key}: ${said}`);
            }
          } catch (err) {
            const { byField, other } = fieldErrors(err, FIELDS);
            setErrors(byField);
            setError(other);
          } finally {
            setBusy(false);
          }
        }}
      >
        <FlagFields draft={draft} setDraft={setDraft} errors={errors} />
        <ErrorBox error={error} title="Could not save" />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : killed ? 'Bring back with this state' : 'Save changes'}
          </button>
          {saved && (
            <span role="status" class="ok-text">
              ✓ {saved}
            </span>
          )}
        </div>
      </form>
    </section>
  );
}

// ---------------------------------------------------------------- overrides

const AXIS: Record<FlagAxis, { title: string; one: string; input: string; hint: string }> = {
  user: { title: 'Users', one: 'user', input: 'User (email or id)', hint: "An account's email address or its user id." },
  tenant: { title: 'Tenants', one: 'tenant', input: 'Tenant slug', hint: 'Such as acme.' },
  partner: { title: 'Partners', one: 'partner', input: 'Partner (slug or id)', hint: "A partner's slug or its id." },
  plan: { title: 'Plans', one: 'plan', input: 'Plan', hint: "Every tenant on the plan, unless a user or tenant override says otherwise." },
};
const PER_AXIS = 100;

/** The id a DELETE takes: the same as its PUT (a tenant's slug, kept as the override's label). */
const targetOf = (o: FlagOverride) => (o.axis === 'tenant' ? o.label ?? o.id : o.id);

function Overrides({ flag, adopt }: { flag: Flag; adopt: (f: Flag, etag: string | null) => void }) {
  return (
    <section aria-labelledby="overrides-h">
      <h2 id="overrides-h">Overrides</h2>
      <p class="hint">
        An override sets the flag's value for one user, tenant, partner or plan, before its state is looked at (user first, then tenant, partner, plan). At most {PER_AXIS} per kind.
        {flag.state === 'killed' && ' While the flag is killed they are kept but not used.'}
      </p>
      {FLAG_AXES.map((axis) => (
        <AxisOverrides key={axis} axis={axis} flag={flag} adopt={adopt} />
      ))}
    </section>
  );
}

function AxisOverrides({ axis, flag, adopt }: { axis: FlagAxis; flag: Flag; adopt: (f: Flag, etag: string | null) => void }) {
  const spec = AXIS[axis];
  const items = flag.overrides.filter((o) => o.axis === axis);
  const [target, setTarget] = useState('');
  const [value, setValue] = useState<'true' | 'false'>('true');
  const [busy, setBusy] = useState(false);
  const [fieldErr, setFieldErr] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [plans, setPlans] = useState<Plan[] | null>(null);
  const h = `ov-${axis}-h`;
  useEffect(() => {
    if (axis === 'plan') planCatalogue().then(setPlans, () => setPlans([]));
  }, [axis]);
  // Partners and users by name where the operator may read them.
  useEffect(() => {
    if (axis === 'partner' && items.length) allPartners().then((ps) => setNames(new Map(ps.map((p) => [p.id, `${p.name} (${p.slug})`]))), () => undefined);
    if (axis === 'user')
      for (const o of items) if (!names.has(o.id)) void userEmail(o.id).then((email) => email && setNames((m) => new Map(m).set(o.id, email)));
  }, [axis, items.map((o) => o.id).join(',')]);
  const shown = (o: FlagOverride) => names.get(o.id) ?? (o.axis === 'tenant' || o.axis === 'user' ? o.label ?? o.id : o.id);

  const submit = async (e: Event) => {
    e.preventDefault();
    setFieldErr(null);
    setError(null);
    setDone('');
    const typed = target.trim();
    if (!typed) return setFieldErr(`Required: ${axis === 'plan' ? 'choose a plan' : spec.hint.toLowerCase()}`);
    setBusy(true);
    try {
      let id: string | null = typed;
      if (axis === 'user') {
        id = await userIdOf(typed);
        if (!id) throw new ApiError(404, 'USER_NOT_FOUND', `No account has the address ${typed}.`, null);
      } else if (axis === 'partner') {
        const ps = await allPartners().catch(() => []);
        id = ps.find((p) => p.slug === typed || p.id === typed)?.id ?? typed;
      }
      const a = await put<Flag>('/flags/{key}/overrides/{axis}/{id}', { params: { key: flag.key, axis, id }, body: { value: value === 'true' } });
      adopt(a.data, a.etag);
      const said = `${onOff(value === 'true')} for ${spec.one} ${typed}.`;
      setDone(said);
      announce(`Override set: ${said}`);
      setTarget('');
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.field === 'id')) setFieldErr(`${err.message} (${err.code})`);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="axis" aria-labelledby={h}>
      <h3 id={h}>
        {spec.title} <span class="count-note">({items.length} of {PER_AXIS})</span>
      </h3>
      {items.length === 0 ? (
        <p class="muted">No {spec.one} override.</p>
      ) : (
        <table class="cards overrides">
          <caption class="visually-hidden">{spec.title} overrides</caption>
          <thead>
            <tr>
              <th scope="col">{spec.title.slice(0, -1)}</th>
              <th scope="col">Value</th>
              <th scope="col">Set</th>
              <th scope="col">By</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.map((o) => (
              <OverrideRow key={`${o.axis}:${o.id}`} o={o} name={shown(o)} flag={flag} adopt={adopt} />
            ))}
          </tbody>
        </table>
      )}
      <form class="inline-form override-form" onSubmit={submit} aria-label={`Add a ${spec.one} override`}>
        <Field label={spec.input} hint={axis === 'plan' ? undefined : spec.hint} error={fieldErr}>
          {(a) =>
            axis === 'plan' ? (
              <select {...a} name={`override-${axis}`} value={target} onChange={(e) => (setTarget(e.currentTarget.value), setFieldErr(null))}>
                <option value="">Choose a plan…</option>
                {(plans ?? []).map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name} ({p.id})
                  </option>
                ))}
              </select>
            ) : (
              <input {...a} name={`override-${axis}`} value={target} onInput={(e) => (setTarget(e.currentTarget.value), setFieldErr(null))} autoComplete="off" spellcheck={false} />
            )
          }
        </Field>
        <Field label="Value">
          {(a) => (
            <select {...a} name={`override-${axis}-value`} value={value} onChange={(e) => setValue(e.currentTarget.value as 'true' | 'false')}>
              <option value="true">On</option>
              <option value="false">Off</option>
            </select>
          )}
        </Field>
        <button type="submit" disabled={busy || items.length >= PER_AXIS}>
          {busy ? 'Setting…' : `Set ${spec.one} override`}
        </button>
      </form>
      <ErrorBox error={error} title="Could not set the override" />
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
    </section>
  );
}

function OverrideRow({ o, name, flag, adopt }: { o: FlagOverride; name: string; flag: Flag; adopt: (f: Flag, etag: string | null) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <tr data-axis={o.axis} data-target={targetOf(o)}>
      <th scope="row" data-label={AXIS[o.axis].title.slice(0, -1)} class="wrap">
        {o.axis === 'tenant' ? <Link to={`/tenants/${targetOf(o)}`}>{name}</Link> : name}
      </th>
      <td data-label="Value">
        <Status value={o.value ? 'on' : 'off'} />
      </td>
      <td data-label="Set">{fmtTime(o.set_at)}</td>
      <td data-label="By" class="wrap">
        <UserName id={o.set_by} />
      </td>
      <td data-label="Actions">
        <button
          type="button"
          class="small"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              const a = await del<Flag>('/flags/{key}/overrides/{axis}/{id}', { params: { key: flag.key, axis: o.axis, id: targetOf(o) } });
              adopt(a.data, a.etag);
              announce(`Override for ${AXIS[o.axis].one} ${name} removed.`);
            } catch (e) {
              setError(e);
              setBusy(false);
            }
          }}
        >
          Remove<span class="visually-hidden"> the override for {name}</span>
        </button>
        {error !== null && <ErrorBox error={error} title="Could not remove it" />}
      </td>
    </tr>
  );
}

// ---------------------------------------------------------------- why is it on for tenant X

function Evaluate({ flag }: { flag: Flag }) {
  const [tenant, setTenant] = useState('');
  const [user, setUser] = useState('');
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<FlagEvaluation | null>(null);
  const [errors, setErrors] = useState<{ tenant?: string; user?: string }>({});
  const [error, setError] = useState<unknown>(null);
  // The answer is for the flag as it was asked: a change to the flag asks again.
  const ask = async (e?: Event) => {
    e?.preventDefault();
    setErrors({});
    setError(null);
    if (!tenant.trim()) {
      setAnswer(null);
      return setErrors({ tenant: 'Required: the tenant to ask about.' });
    }
    setBusy(true);
    try {
      let userId: string | null = null;
      if (user.trim()) {
        userId = await userIdOf(user);
        if (!userId) {
          setAnswer(null);
          setErrors({ user: `No account has the address ${user.trim()}.` });
          return;
        }
      }
      const a = await get<FlagEvaluation>('/flags/{key}/evaluate', { params: { key: flag.key }, query: { tenant: tenant.trim(), user: userId } });
      setAnswer(a.data);
      announce(`${flag.key} is ${onOff(a.data.value).toLowerCase()} for ${a.data.tenant.slug}: ${reasonWords(a.data.reason, a.data)}`);
    } catch (err) {
      setAnswer(null);
      if (err instanceof ApiError && (err.code === 'TENANT_NOT_FOUND' || err.field === 'tenant')) setErrors({ tenant: `${err.message} (${err.code})` });
      else if (err instanceof ApiError && (err.code === 'USER_NOT_FOUND' || err.field === 'user')) setErrors({ user: `${err.message} (${err.code})` });
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    if (answer) void ask();
  }, [flag.version]);
  return (
    <section aria-labelledby="evaluate-h">
      <h2 id="evaluate-h">Why is it on or off for a tenant?</h2>
      <p class="hint">Asks the API what this flag answers for a tenant (and, optionally, one of its users), and which rule decided it.</p>
      <EvaluationOrder />
      <form class="inline-form evaluate-form" onSubmit={ask} aria-label="Evaluate the flag">
        <Field label="Tenant slug" error={errors.tenant}>
          {(a) => <input {...a} name="evaluate-tenant" required value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} autoComplete="off" spellcheck={false} />}
        </Field>
        <Field label="User (optional)" hint="An email address or a user id." error={errors.user}>
          {(a) => <input {...a} name="evaluate-user" value={user} onInput={(e) => setUser(e.currentTarget.value)} autoComplete="off" spellcheck={false} />}
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Asking…' : 'Ask why'}
        </button>
      </form>
      <ErrorBox error={error} title="Could not evaluate the flag" />
      {answer && (
        <div class={`eval-result eval-${answer.value ? 'on' : 'off'}`} data-reason={answer.reason}>
          <p class="eval-value">
            <Status value={answer.value ? 'on' : 'off'} />{' '}
            <strong>
              {onOff(answer.value)} for <code>{answer.tenant.slug}</code>
              {answer.user_id ? ' and this user' : ''}
            </strong>
          </p>
          <p class="eval-reason">
            <span class="label">Why</span> {reasonWords(answer.reason, answer)} <code class="reason-code">{answer.reason}</code>
          </p>
          <dl class="facts compact">
            <dt>Tenant's plan</dt>
            <dd>
              <code>{answer.tenant.plan}</code>
            </dd>
            <dt>Tenant's partner</dt>
            <dd>{answer.tenant.partner_id ? <code>{answer.tenant.partner_id}</code> : 'none'}</dd>
            {answer.bucket != null && (
              <>
                <dt>Rollout bucket</dt>
                <dd>
                  {answer.bucket.toLocaleString('en-US')} (of 0 to 9,999)
                  {answer.rollout_percent != null && `; in when below ${(answer.rollout_percent * 100).toLocaleString('en-US')}`}
                </dd>
              </>
            )}
          </dl>
        </div>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- kill switch, delete

function KillAndDelete({ flag, adopt }: { flag: Flag; adopt: (f: Flag, etag: string | null) => void }) {
  const [open, setOpen] = useState<'kill' | 'delete' | null>(null);
  const [reason, setReason] = useState('');
  const [reasonErr, setReasonErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const killed = flag.state === 'killed';
  const close = () => (setOpen(null), setError(null), setReasonErr(null));
  return (
    <section aria-labelledby="kill-h">
      <h2 id="kill-h">Kill switch and delete</h2>
      {done && (
        <p role="status" class="notice">
          {done}
        </p>
      )}
      <div class="danger-row">
        <div>
          <h3>Kill</h3>
          <p>Turns the flag off everywhere at once, overrides included, with one call. It stays killed until its state is set again under Settings.</p>
          {killed && (
            <p class="hint" id="why-kill">
              It is killed already.
            </p>
          )}
        </div>
        <button type="button" class="danger" disabled={killed} aria-describedby={killed ? 'why-kill' : undefined} onClick={() => (setReason(''), setDone(''), setOpen('kill'))}>
          Kill flag
        </button>
      </div>
      <div class="danger-row">
        <div>
          <h3>Delete</h3>
          <p>Removes the flag and its overrides for good. Code that still asks for it gets its default.</p>
        </div>
        <button type="button" class="danger" onClick={() => (setDone(''), setOpen('delete'))}>
          Delete
        </button>
      </div>
      <Confirm
        open={open === 'kill'}
        title={`Kill ${flag.key}?`}
        confirmLabel="Kill flag"
        danger
        busy={busy}
        error={error}
        onClose={close}
        onConfirm={async () => {
          const r = reason.trim();
          if (r.length < 10 || r.length > 500) return setReasonErr('Say why in 10 to 500 characters: it is kept with the flag and in the audit.');
          setReasonErr(null);
          setBusy(true);
          setError(null);
          try {
            const a = await post<Flag>('/flags/{key}/kill', { params: { key: flag.key }, body: { reason: r } });
            adopt(a.data, a.etag);
            setOpen(null);
            setDone(`${flag.key} is killed: off everywhere.`);
            announce(`${flag.key} killed.`);
          } catch (e) {
            if (e instanceof ApiError && e.field === 'reason') setReasonErr(e.message.replace(/^reason:\s*/, ''));
            else setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          <code>{flag.key}</code> ({stateWords(flag).toLowerCase()}) turns <strong>off for every tenant and user</strong> at once, overrides included. It stays off until someone sets its
          state again.
        </p>
        <Field label="Reason" hint="10 to 500 characters, kept with the flag and in the audit." error={reasonErr}>
          {(a) => <textarea {...a} name="kill-reason" rows={3} maxLength={500} value={reason} onInput={(e) => (setReason(e.currentTarget.value), setReasonErr(null))} />}
        </Field>
      </Confirm>
      <Confirm
        open={open === 'delete'}
        title={`Delete ${flag.key}?`}
        confirmLabel="Delete flag"
        danger
        busy={busy}
        error={error}
        onClose={close}
        onConfirm={async () => {
          setBusy(true);
          setError(null);
          try {
            const a = await del<FlagDeleted>('/flags/{key}', { params: { key: flag.key } });
            setOpen(null);
            announce(`Flag ${a.data.key} deleted.`);
            navigate('/flags');
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          The flag and its {flag.overrides.length} override{flag.overrides.length === 1 ? '' : 's'} go for good; the key can be used again.
        </p>
      </Confirm>
    </section>
  );
}

// ---------------------------------------------------------------- the tenant page's card

/** Every flag's value for this tenant and the caller, and why (members, partner admins, operators). */
export function TenantFlagsCard({ slug }: { slug: string }) {
  const who = useWho();
  const list = useLoad(() => get<TenantFlagListData>('/tenants/{slug}/flags', { params: { slug } }).then((a) => a.data.items), [slug]);
  return (
    <section class="flags-card" aria-labelledby="flags-card-h">
      <h2 id="flags-card-h">Feature flags</h2>
      <ErrorBox error={list.error} title="Could not load the flags" />
      {list.loading && !list.data && <p role="status">Loading…</p>}
      {list.data && list.data.length === 0 && <p class="muted">No feature flag exists yet.</p>}
      {list.data && list.data.length > 0 && (
        <>
          <p class="hint">For this tenant{who.acting ? ' and the user acted as' : ' and you'}: the value and the rule that decided it.</p>
          <ul class="flag-values">
            {[...list.data]
              .sort((a, b) => a.key.localeCompare(b.key))
              .map((f) => (
                <li key={f.key} data-flag={f.key} data-value={String(f.value)}>
                  <Status value={f.value ? 'on' : 'off'} />{' '}
                  {who.operator ? (
                    <Link to={`/flags/${f.key}`}>
                      <code>{f.key}</code>
                    </Link>
                  ) : (
                    <code>{f.key}</code>
                  )}{' '}
                  <span class="muted">({REASON_SHORT[f.reason] ?? f.reason})</span>
                </li>
              ))}
          </ul>
        </>
      )}
    </section>
  );
}
