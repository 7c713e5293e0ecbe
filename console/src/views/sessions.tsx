// A person's live sessions (devices) as a table, for the Account page (one's own) and a user's
// page (operators): when each started and was last used, from where, and a sign-out per row.
import type { ComponentChildren } from 'preact';
import type { Session } from '../api/types';
import { fmtAgo, fmtTime } from '../ui/kit';

/** "Chrome on Linux" from a User-Agent header; the header itself when nothing is recognised. */
export function deviceOf(ua: string | null): string {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /HeadlessChrome\//.test(ua)
      ? 'Headless Chrome'
      : /Chrome\//.test(ua)
        ? 'Chrome'
        : /Firefox\//.test(ua)
          ? 'Firefox'
          : /Safari\//.test(ua)
            ? 'Safari'
            : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  if (browser) return os ? `${browser} on ${os}` : browser;
  return ua.length > 60 ? `${ua.slice(0, 57)}…` : ua;
}

export function SessionTable({ sessions, caption, action }: { sessions: Session[]; caption: string; action: (s: Session) => ComponentChildren }) {
  if (!sessions.length) return <p class="empty">No live session.</p>;
  return (
    <table class="cards sessions">
      <caption class="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Device</th>
          <th scope="col">Address</th>
          <th scope="col">Kind</th>
          <th scope="col">Signed in</th>
          <th scope="col">Last used</th>
          <th scope="col">Expires</th>
          <th scope="col">
            <span class="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {sessions.map((s) => (
          <tr key={s.session_id} data-session={s.session_id} data-current={s.current ? 'true' : undefined}>
            <th scope="row" data-label="Device" class="wrap">
              <span>
                {deviceOf(s.user_agent)}
                {s.current && (
                  <>
                    {' '}
                    <span class="chip chip-active">this session</span>
                  </>
                )}
              </span>
            </th>
            <td data-label="Address">{s.client_ip ? <code>{s.client_ip}</code> : '—'}</td>
            <td data-label="Kind">{s.audience}</td>
            <td data-label="Signed in">{fmtTime(s.created_at)}</td>
            <td data-label="Last used">{fmtAgo(s.last_used_at)}</td>
            <td data-label="Expires">{fmtTime(s.expires_at)}</td>
            <td data-label="Actions">{action(s)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
