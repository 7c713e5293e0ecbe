// The tenant page's Plan card: the tenant's plan, its usage against each limit (a meter with the
// numbers in words, and "Full" / "Over quota" said in words too), the plan's features, and for
// those who may move the tenant (operators, its partner's admins) the plan select.
import { useState } from 'preact/hooks';
import { ApiError, get, patch } from '../api/client';
import type { Entitlement, Plan, Tenant, TenantPatched, Usage, UsageMeter } from '../api/types';
import { ENTITLEMENTS } from '../api/types';
import { ErrorBox, Field, Status, announce, fmtBytes, fmtTime, useId, useLoad } from '../ui/kit';
import { planCatalogue } from './common';

const LABEL: Record<Entitlement, string> = { seats: 'Seats', stored_bytes: 'Storage', stored_objects: 'Objects', databases: 'Databases' };

function amount(name: Entitlement, n: number): string {
  return name === 'stored_bytes' ? fmtBytes(n) : n.toLocaleString('en-US');
}

/** "seats (3 of 2), databases (11 of 10)". */
function exceeded(u: Usage, names: Entitlement[]): string {
  return names
    .map((n) => {
      const m = u.usage[n];
      return `${LABEL[n].toLowerCase()} (${amount(n, m.used)} of ${m.limit === null ? 'unlimited' : amount(n, m.limit)})`;
    })
    .join(', ');
}

export function PlanCard({ tenant, etag, canChange, onChanged }: { tenant: Tenant; etag: string | null; canChange: boolean; onChanged: (t: Tenant, etag: string | null) => void }) {
  const usage = useLoad(() => get<Usage>('/tenants/{slug}/usage', { params: { slug: tenant.slug } }).then((a) => a.data), [tenant.slug, tenant.plan]);
  const u = usage.data;
  return (
    <section class="plan-card" aria-labelledby="plan-card-h">
      <h2 id="plan-card-h">Plan</h2>
      <ErrorBox error={usage.error} title="Could not load the usage" />
      {usage.loading && !u && <p role="status">Loading…</p>}
      {u && (
        <>
          <p class="plan-line">
            <strong class="plan-name">{u.plan.name}</strong> <code>{u.plan.id}</code> <Status value={u.plan.status} />
          </p>
          {u.plan.status === 'retired' && <p class="hint">This plan is retired: the tenant stays on it, but no tenant can be put on it again.</p>}
          {u.over_quota.length > 0 && (
            <p class="quota-warning">
              <span aria-hidden="true">▲ </span>
              <strong>Over quota:</strong> {exceeded(u, u.over_quota)}. Nothing was removed, but nothing more may be added until usage is back within the plan's limits.
            </p>
          )}
          <ul class="usage-list" aria-label="Usage against the plan's limits">
            {ENTITLEMENTS.map((n) => (
              <UsageRow key={n} name={n} meter={u.usage[n]} full={u.full.includes(n)} over={u.over_quota.includes(n)} />
            ))}
          </ul>
          <dl class="facts compact">
            <dt>Largest upload</dt>
            <dd>{fmtBytes(u.max_upload_bytes)}</dd>
            <dt>Features</dt>
            <dd>
              {u.features.length ? (
                <ul class="feature-list" aria-label="Features">
                  {u.features.map((f) => (
                    <li key={f}>
                      <code>{f}</code>
                    </li>
                  ))}
                </ul>
              ) : (
                'None'
              )}
            </dd>
            <dt>Period</dt>
            <dd>
              {fmtTime(u.period.start).slice(0, 10)} to {fmtTime(u.period.end - 1).slice(0, 10)} (UTC)
            </dd>
            <dt>Counted</dt>
            <dd>{fmtTime(u.as_of)}</dd>
          </dl>
        </>
      )}
      {canChange ? (
        <ChangePlan tenant={tenant} etag={etag} usage={u} onChanged={onChanged} />
      ) : (
        <p class="hint">Only operators and this tenant's partner admins change its plan.</p>
      )}
    </section>
  );
}

/** One entitlement: the numbers in words, a meter when there is a limit, and its state in words
 * (never colour alone). Unlimited: "4 · Unlimited", no meter. */
function UsageRow({ name, meter, full, over }: { name: Entitlement; meter: UsageMeter; full: boolean; over: boolean }) {
  const id = useId('usage');
  const used = amount(name, meter.used);
  if (meter.limit === null) {
    return (
      <li class="usage" data-entitlement={name}>
        <div class="usage-head">
          <span class="usage-label">{LABEL[name]}</span>
          <span class="usage-text">{used} · Unlimited</span>
        </div>
      </li>
    );
  }
  const state = over ? 'over' : full ? 'full' : 'ok';
  const text = `${used} of ${amount(name, meter.limit)}`;
  const said = over ? 'Over quota' : full ? 'Full' : '';
  // A meter's range cannot be empty: a limit of 0 is shown as a full bar (its words say 0 of 0).
  const max = meter.limit || 1;
  const value = meter.limit === 0 ? 1 : Math.min(meter.used, meter.limit);
  return (
    <li class={`usage usage-${state}`} data-entitlement={name} data-state={state}>
      <div class="usage-head">
        <span class="usage-label" id={id}>
          {LABEL[name]}
        </span>
        <span class="usage-text">{text}</span>
        {said && (
          <span class="usage-state">
            <span aria-hidden="true">{over ? '▲' : '■'} </span>
            {said}
          </span>
        )}
      </div>
      <meter class="usage-bar" min={0} max={max} value={value} aria-labelledby={id} aria-valuetext={said ? `${text}, ${said.toLowerCase()}` : text} />
    </li>
  );
}

function ChangePlan({ tenant, etag, usage, onChanged }: { tenant: Tenant; etag: string | null; usage: Usage | null; onChanged: (t: Tenant, etag: string | null) => void }) {
  // Operators get every plan (the retired ones are not offered); a partner admin the active
  // plans their partner may sell.
  const plans = useLoad(() => planCatalogue(true).then((ps) => ps.filter((p) => p.status === 'active')), [tenant.slug]);
  const [choice, setChoice] = useState<string>(tenant.plan);
  const [busy, setBusy] = useState(false);
  const [fieldErr, setFieldErr] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [stale, setStale] = useState<string | null>(null);
  const [done, setDone] = useState<{ name: string; over: Entitlement[] } | null>(null);
  const offered: Pick<Plan, 'id' | 'name'>[] = plans.data ?? [];
  // The tenant's own plan is always in the list (a retired one, or one not offered to this caller).
  const options = offered.some((p) => p.id === tenant.plan) ? offered : [{ id: tenant.plan, name: usage?.plan.id === tenant.plan ? usage.plan.name : tenant.plan }, ...offered];
  const submit = async (e: Event) => {
    e.preventDefault();
    if (choice === tenant.plan) return;
    setBusy(true);
    setFieldErr(null);
    setError(null);
    setStale(null);
    setDone(null);
    try {
      const a = await patch<TenantPatched>('/tenants/{slug}', { params: { slug: tenant.slug }, body: { plan: choice }, headers: etag ? { 'if-match': etag } : {} });
      const { over_quota: over = [], ...changed } = a.data;
      onChanged(changed, a.etag ?? changed.etag);
      const name = offered.find((p) => p.id === choice)?.name ?? choice;
      setDone({ name, over });
      announce(over.length ? `Plan changed to ${name}; the tenant is now over quota.` : `Plan changed to ${name}.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        const a = await get<Tenant>('/tenants/{slug}', { params: { slug: tenant.slug } });
        onChanged(a.data, a.etag ?? a.data.etag);
        setChoice(a.data.plan);
        setStale(a.data.plan);
      } else if (err instanceof ApiError && (err.code === 'PLAN_RETIRED' || err.field === 'plan')) {
        setFieldErr(`${err.message.replace(/^plan:\s*/, '')} (${err.code})`);
      } else {
        setError(err);
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h3>Change the plan</h3>
      <ErrorBox error={plans.error} title="Could not load the plans" />
      <form class="inline-form" onSubmit={submit}>
        <Field label="Move to plan" hint="The new limits apply at once; moving below what the tenant uses is allowed (it is then over quota)." error={fieldErr}>
          {(a) => (
            <select {...a} name="tenant-plan" value={choice} disabled={!plans.data} onChange={(e) => (setChoice(e.currentTarget.value), setFieldErr(null))}>
              {options.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name} ({p.id}){p.id === tenant.plan ? ' · current' : ''}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" class="primary" disabled={busy || choice === tenant.plan}>
          {busy ? 'Changing…' : 'Change plan'}
        </button>
      </form>
      {stale && (
        <div class="error-box" role="alert">
          <p class="error-title">Someone changed this tenant since you opened it (HTTP 412, nothing was saved).</p>
          <p>
            Its plan is now <code>{stale}</code>. Choose again to change it.
          </p>
        </div>
      )}
      <ErrorBox error={error} title="Could not change the plan" />
      {done && done.over.length > 0 && (
        <div class="quota-warning" role="alert">
          <p>
            <span aria-hidden="true">▲ </span>
            <strong>Plan changed to {done.name}. The tenant is now over quota:</strong> {done.over.map((n) => LABEL[n].toLowerCase()).join(', ')}.
          </p>
          <p>Nothing was removed: what it holds stays, but nothing more may be added (invitations, uploads, databases) until its usage is back within the limits.</p>
        </div>
      )}
      {done && done.over.length === 0 && (
        <p role="status" class="ok-text">
          ✓ Plan changed to {done.name}.
        </p>
      )}
    </>
  );
}
