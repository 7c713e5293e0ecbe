// The platform at a glance: readiness, the published signing key ids, and tenants stuck in
// provisioning (oldest first) with a reconcile per row.
import { useState } from 'preact/hooks';
import { get, post, ApiError } from '../api/client';
import type { Jwk, ReconcileReport, TenantListData } from '../api/types';
import { Page } from '../App';
import { ErrorBox, Link, Status, announce, fmtAgo, useLoad, useVisiblePoll } from '../ui/kit';
import { provisioningSummary } from './common';

export function Platform() {
  const ready = useLoad(async () => {
    try {
      const a = await get<{ status?: string; checks?: Record<string, string> }>('/health/ready', { auth: false });
      return { ok: true, detail: a.data, error: null as ApiError | null };
    } catch (e) {
      if (e instanceof ApiError) return { ok: false, detail: null, error: e };
      throw e;
    }
  }, []);
  const keys = useLoad(() => get<{ keys?: Jwk[] }>('/.well-known/jwks.json', { auth: false }).then((a) => a.data.keys ?? []), []);
  const stuck = useLoad(
    () => get<TenantListData>('/tenants', { query: { status: 'provisioning', limit: 100 } }).then((a) => [...a.data.items].sort((x, y) => x.created_at - y.created_at)),
    [],
  );
  useVisiblePoll(() => {
    void ready.reload(true);
    void stuck.reload(true);
  }, 10_000);
  const [reports, setReports] = useState<Record<string, ReconcileReport | ApiError | 'running'>>({});
  return (
    <Page title="Platform">
      <section aria-labelledby="ready-h">
        <h2 id="ready-h">Readiness</h2>
        {ready.data && (
          <p class={ready.data.ok ? 'ok-text' : 'bad'}>
            <span aria-hidden="true">{ready.data.ok ? '✓ ' : '✕ '}</span>
            {ready.data.ok ? `Ready: ${Object.entries(ready.data.detail?.checks ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'ok'}` : 'Not ready'}
          </p>
        )}
        {ready.data?.error && <ErrorBox error={ready.data.error} title="The API is not ready" />}
        <ErrorBox error={ready.error} />
      </section>
      <section aria-labelledby="keys-h">
        <h2 id="keys-h">Published signing keys</h2>
        <ErrorBox error={keys.error} />
        {keys.data && (
          <ol class="plain">
            {keys.data.map((k, i) => (
              <li key={k.kid}>
                <code>{k.kid}</code> <span class="muted">({k.alg ?? 'EdDSA'}{i === 0 ? ', listed first' : ''})</span>
              </li>
            ))}
          </ol>
        )}
      </section>
      <section aria-labelledby="stuck-h">
        <h2 id="stuck-h">Tenants in provisioning</h2>
        <p class="hint">Oldest first. A tenant provisions in seconds; one here for minutes needs a look.</p>
        <ErrorBox error={stuck.error} />
        {stuck.data && stuck.data.length === 0 && <p class="empty">None: every tenant has settled.</p>}
        {stuck.data && stuck.data.length > 0 && (
          <table class="cards">
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Status</th>
                <th scope="col">Provisioning</th>
                <th scope="col">Created</th>
                <th scope="col">Reconcile</th>
              </tr>
            </thead>
            <tbody>
              {stuck.data.map((t) => {
                const r = reports[t.slug];
                return (
                  <tr key={t.slug} data-slug={t.slug}>
                    <th scope="row" data-label="Tenant">
                      <Link to={`/tenants/${t.slug}/resources`}>{t.slug}</Link>
                    </th>
                    <td data-label="Status">
                      <Status value={t.status} />
                    </td>
                    <td data-label="Provisioning">{provisioningSummary(t)}</td>
                    <td data-label="Created">{fmtAgo(t.created_at)}</td>
                    <td data-label="Reconcile">
                      <button
                        type="button"
                        class="small"
                        disabled={r === 'running'}
                        onClick={async () => {
                          setReports((x) => ({ ...x, [t.slug]: 'running' }));
                          try {
                            const a = await post<ReconcileReport>('/tenants/{slug}/reconcile', { params: { slug: t.slug } });
                            setReports((x) => ({ ...x, [t.slug]: a.data }));
                            announce(`Reconcile of ${t.slug}: ${a.data.summary ?? 'done'}.`);
                          } catch (e) {
                            setReports((x) => ({ ...x, [t.slug]: e as ApiError }));
                          }
                        }}
                      >
                        {r === 'running' ? 'Reconciling…' : 'Reconcile'}
                        <span class="visually-hidden"> {t.slug}</span>
                      </button>
                      {r && r !== 'running' && (r instanceof ApiError ? <ErrorBox error={r} /> : <p class="small-text">{r.summary}</p>)}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </Page>
  );
}
