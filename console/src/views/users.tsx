// The platform's accounts (operators only): the list (search by email prefix, filters, paging)
// and one user's page with what they hold, their live sessions, and what an operator may do to
// the account (disable and enable, operator rights, second-factor reset, removal for good).
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { del, get, post, put } from '../api/client';
import type { Session, SessionListData, UserChange, UserDetail, UserListData, UserListItem, UserStatus } from '../api/types';
import { USER_STATUSES } from '../api/types';
import { Page } from '../App';
import { navigate, setQuery, type Location } from '../router';
import { Confirm, ErrorBox, Field, Link, Pager, Status, announce, fmtAgo, fmtTime, useCursorPages, useLoad } from '../ui/kit';
import { useWho } from '../who';
import { SessionTable } from './sessions';

const yesNo = (v: string) => (v === 'true' ? 'yes' : v === 'false' ? 'no' : '');

export function UserList({ loc }: { loc: Location }) {
  const q = loc.query.get('q') ?? '';
  const status = (loc.query.get('status') ?? '') as UserStatus | '';
  const operator = loc.query.get('operator') ?? '';
  const partnerAdmin = loc.query.get('partner_admin') ?? '';
  const [typed, setTyped] = useState(q);
  const pages = useCursorPages();
  // Debounced search, kept in the address (replace, not a new history entry per key).
  useEffect(() => {
    const t = setTimeout(() => {
      if (typed.trim() !== q) setQuery({ q: typed.trim() || undefined });
    }, 300);
    return () => clearTimeout(t);
  }, [typed]);
  useEffect(() => setTyped((t) => (t.trim() === q ? t : q)), [q]);
  useEffect(() => pages.reset(), [q, status, operator, partnerAdmin]);
  const list = useLoad(
    () =>
      get<UserListData>('/users', { query: { q: q.toLowerCase(), status, operator, partner_admin: partnerAdmin, limit: 25, cursor: pages.cursor } }).then((a) => a.data),
    [q, status, operator, partnerAdmin, pages.cursor],
  );
  const filtered = !!(q || status || operator || partnerAdmin);
  return (
    <Page title="Users">
      <p class="subtitle">Every account on the platform, by email. Accounts are made by invitations (to a tenant, a partner, or as an operator).</p>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search (email prefix)">
          {(a) => <input {...a} type="search" name="q" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoComplete="off" spellcheck={false} />}
        </Field>
        <Field label="Status">
          {(a) => (
            <select {...a} name="status" value={status} onChange={(e) => setQuery({ status: e.currentTarget.value || undefined })}>
              <option value="">Any status</option>
              {USER_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Operator">
          {(a) => (
            <select {...a} name="operator" value={operator} onChange={(e) => setQuery({ operator: e.currentTarget.value || undefined })}>
              <option value="">Operators or not</option>
              <option value="true">Operators only</option>
              <option value="false">Not operators</option>
            </select>
          )}
        </Field>
        <Field label="Partner admin">
          {(a) => (
            <select {...a} name="partner_admin" value={partnerAdmin} onChange={(e) => setQuery({ partner_admin: e.currentTarget.value || undefined })}>
              <option value="">Partner admins or not</option>
              <option value="true">Partner admins only</option>
              <option value="false">Not partner admins</option>
            </select>
          )}
        </Field>
      </form>
      <ErrorBox error={list.error} title="Could not load the users" />
      <p class="visually-hidden" role="status">
        {list.data ? `${list.data.items.length} users shown` : ''}
      </p>
      {list.data && (
        <>
          <table class="cards">
            <caption class="visually-hidden">
              Users
              {filtered
                ? ` (${[q && `email starting ${q}`, status, operator && `operator: ${yesNo(operator)}`, partnerAdmin && `partner admin: ${yesNo(partnerAdmin)}`].filter(Boolean).join(', ')})`
                : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Roles</th>
                <th scope="col">Two-step</th>
                <th scope="col">Last sign-in</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((u) => (
                <UserRow key={u.user_id} u={u} />
              ))}
            </tbody>
          </table>
          {list.data.items.length === 0 && (
            <p class="empty">
              {list.data.next_cursor
                ? 'No user on this page matches (the partner-admin filter is applied to each page): try the next page.'
                : filtered
                  ? 'No user matches.'
                  : 'No user yet.'}
            </p>
          )}
          <Pager label="User pages" hasPrev={pages.hasPrev} next={list.data.next_cursor} onPrev={pages.prev} onNext={() => list.data?.next_cursor && pages.next(list.data.next_cursor)} />
        </>
      )}
      {list.loading && !list.data && <p role="status">Loading…</p>}
    </Page>
  );
}

function UserRow({ u }: { u: UserListItem }) {
  const roles = [u.operator && 'operator', u.partner_admin && 'partner admin'].filter(Boolean) as string[];
  return (
    <tr data-user={u.user_id} data-email={u.email}>
      <th scope="row" data-label="Email" class="wrap">
        <Link to={`/users/${u.user_id}`}>{u.email}</Link>
      </th>
      <td data-label="Name" class="wrap">
        {u.name ?? '—'}
      </td>
      <td data-label="Status">
        <Status value={u.status} />
      </td>
      <td data-label="Roles">
        <span>{roles.length ? roles.map((r) => <span key={r} class="tag">{r}</span>) : '—'}</span>
      </td>
      <td data-label="Two-step">{u.mfa === undefined ? '—' : u.mfa ? 'on' : 'off'}</td>
      <td data-label="Last sign-in">
        <span title={fmtTime(u.last_sign_in_at)}>{fmtAgo(u.last_sign_in_at)}</span>
      </td>
      <td data-label="Created">{fmtTime(u.created_at)}</td>
    </tr>
  );
}

// ---------------------------------------------------------------- one user

type Action = 'disable' | 'enable' | 'grant' | 'revoke' | 'reset-mfa' | 'end-sessions' | 'remove';

/** The actions the API asks a sign-in with a second factor in the last 10 minutes for (else
 * 403 MFA_REQUIRED, whose error box offers a new sign-in). */
const RECENT = 'Needs your own sign-in with a second factor in the last 10 minutes.';

export function UserPage({ id }: { id: string }) {
  const who = useWho();
  const user = useLoad(() => get<UserDetail>('/users/{user_id}', { params: { user_id: id } }).then((a) => a.data), [id]);
  // On one's own page, which session is this tab's (the user page does not mark it).
  const [mine, setMine] = useState<string | null>(null);
  const self = id === who.userId;
  useEffect(() => {
    if (!self) return setMine(null);
    get<SessionListData>('/account/sessions').then((a) => setMine(a.data.items.find((s) => s.current)?.session_id ?? null), () => setMine(null));
  }, [self, user.data]);
  const u = user.data;
  return (
    <Page title={u ? u.email : 'User'} lead={<Link to="/users" class="back">← Users</Link>} actions={u && <Status value={u.status} />}>
      <ErrorBox error={user.error} title="Could not load the user" />
      {user.loading && !u && <p role="status">Loading…</p>}
      {u && (
        <>
          {self && (
            <p class="notice">
              This is your own account. Your name, sessions and two-step sign-in are also under <Link to="/account">your account</Link>.
            </p>
          )}
          <Profile u={u} />
          <Holdings u={u} />
          <UserSessions u={u} mine={mine} reload={() => user.reload(true)} />
          <UserActions u={u} self={self} reload={() => user.reload(true)} />
        </>
      )}
    </Page>
  );
}

function Profile({ u }: { u: UserDetail }) {
  return (
    <section aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <dl class="facts">
        <dt>Name</dt>
        <dd>{u.name ?? '—'}</dd>
        <dt>Email</dt>
        <dd class="wrap">
          {u.email} <span class="muted">({u.email_verified ? 'verified' : 'not verified'})</span>
        </dd>
        <dt>Status</dt>
        <dd>
          <Status value={u.status} />
        </dd>
        <dt>Platform operator</dt>
        <dd>{u.operator ? 'yes' : 'no'}</dd>
        <dt>Two-step sign-in</dt>
        <dd>{u.mfa === undefined ? '—' : u.mfa ? 'on' : 'off'}</dd>
        <dt>Last sign-in</dt>
        <dd>{u.last_sign_in_at ? `${fmtTime(u.last_sign_in_at)} (${fmtAgo(u.last_sign_in_at)})` : 'never'}</dd>
        <dt>Created</dt>
        <dd>{fmtTime(u.created_at)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{u.user_id}</code>
        </dd>
      </dl>
    </section>
  );
}

function Holdings({ u }: { u: UserDetail }) {
  return (
    <>
      <section aria-labelledby="memberships-h">
        <h2 id="memberships-h">Tenants</h2>
        {u.memberships.length === 0 ? (
          <p class="empty">Not a member of any tenant.</p>
        ) : (
          <table class="cards">
            <caption class="visually-hidden">Tenant memberships</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Role</th>
              </tr>
            </thead>
            <tbody>
              {u.memberships.map((m) => (
                <tr key={m.tenant_id} data-slug={m.tenant_slug}>
                  <th scope="row" data-label="Tenant">
                    <Link to={`/tenants/${m.tenant_slug}/members`}>{m.tenant_slug}</Link>
                  </th>
                  <td data-label="Role">{m.role}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="partners-h">
        <h2 id="partners-h">Partner admin of</h2>
        {u.partner_admin_of.length === 0 ? (
          <p class="empty">No partner.</p>
        ) : (
          <ul class="plain">
            {u.partner_admin_of.map((p) => (
              <li key={p.partner_id}>
                {p.slug ? <Link to={`/partners/${p.slug}`}>{p.name ?? p.slug}</Link> : <span>a partner that no longer exists</span>} <code class="muted">{p.slug ?? p.partner_id}</code>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="invites-h">
        <h2 id="invites-h">Pending invitations</h2>
        {u.invitations.length === 0 ? (
          <p class="empty">None waiting.</p>
        ) : (
          <table class="cards">
            <caption class="visually-hidden">Invitations waiting for this user</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Role</th>
                <th scope="col">Invited</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {u.invitations.map((i) => (
                <tr key={i.tenant_id} data-slug={i.tenant_slug}>
                  <th scope="row" data-label="Tenant">
                    <Link to={`/tenants/${i.tenant_slug}`}>{i.tenant_slug}</Link>
                  </th>
                  <td data-label="Role">{i.role}</td>
                  <td data-label="Invited">{fmtTime(i.invited_at)}</td>
                  <td data-label="Expires">{fmtTime(i.expires_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

function UserSessions({ u, mine, reload }: { u: UserDetail; mine: string | null; reload: () => Promise<void> }) {
  const [busy, setBusy] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState(false);
  const [done, setDone] = useState('');
  const sessions: Session[] = u.sessions.map((s) => ({ ...s, current: s.session_id === mine }));
  const endOne = async (s: Session) => {
    setBusy(s.session_id);
    setError(null);
    try {
      await del('/users/{user_id}/sessions/{session_id}', { params: { user_id: u.user_id, session_id: s.session_id } });
      setDone('Session signed out.');
      announce('Session signed out.');
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy('');
    }
  };
  const noneWhy = u.sessions.length === 0 ? 'No live session to sign out.' : mine ? 'This would sign you out here too: use your account page to sign out your other sessions.' : null;
  return (
    <section aria-labelledby="sessions-h">
      <h2 id="sessions-h">Live sessions</h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      <ErrorBox error={confirm ? null : error} title="Could not sign out" />
      <SessionTable
        sessions={sessions}
        caption={`Live sessions of ${u.email}`}
        action={(s) =>
          s.current ? (
            <span class="muted">Yours, in this tab</span>
          ) : (
            <button type="button" class="small" disabled={busy === s.session_id} onClick={() => void endOne(s)} aria-label={`Sign out the session signed in ${fmtTime(s.created_at)}`}>
              Sign out
            </button>
          )
        }
      />
      <div class="actions">
        <button type="button" disabled={!!noneWhy} aria-describedby={noneWhy ? 'end-all-why' : undefined} onClick={() => (setError(null), setConfirm(true))}>
          Sign out everywhere
        </button>
        {noneWhy && (
          <span class="hint" id="end-all-why">
            {noneWhy}
          </span>
        )}
      </div>
      <Confirm
        open={confirm}
        title={`Sign ${u.email} out everywhere?`}
        confirmLabel="Sign out every session"
        danger
        busy={busy === 'all'}
        error={error}
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          setBusy('all');
          setError(null);
          try {
            await del('/users/{user_id}/sessions', { params: { user_id: u.user_id } });
            setConfirm(false);
            setDone('Every session was signed out.');
            announce('Every session was signed out.');
            await reload();
          } catch (e) {
            setError(e);
          } finally {
            setBusy('');
          }
        }}
      >
        <p>Every session ends at once, access tokens included: each of their browsers and devices must sign in again. The account itself stays as it is.</p>
      </Confirm>
    </section>
  );
}

function UserActions({ u, self, reload }: { u: UserDetail; self: boolean; reload: () => Promise<void> }) {
  const [open, setOpen] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const [typed, setTyped] = useState('');
  const disabled = u.status === 'disabled';
  const reasons: Record<Action, string | null> = {
    disable: self ? 'You cannot disable your own account: ask another operator.' : disabled ? 'The account is disabled already.' : null,
    enable: disabled ? null : `Only a disabled account can be enabled; this one is ${u.status}.`,
    grant: u.operator ? 'This user is an operator already.' : disabled ? 'The account is disabled: enable it first.' : null,
    revoke: u.operator ? null : 'This user is not an operator.',
    'reset-mfa': self ? 'You cannot reset your own second factor: ask another operator (renew your recovery codes under your account).' : u.mfa === false ? 'No second factor is enrolled.' : null,
    'end-sessions': null,
    remove: self ? 'You cannot remove your own account: ask another operator.' : null,
  };
  const act = async (what: Action) => {
    setBusy(true);
    setError(null);
    try {
      const params = { user_id: u.user_id };
      let said: string;
      if (what === 'disable' || what === 'enable') {
        const a = await post<UserChange>(`/users/{user_id}/${what}` as '/users/{user_id}/disable', { params });
        said = a.data.changed ? `Account ${what}d.` : `The account was ${what}d already.`;
      } else if (what === 'grant') {
        const a = await put<UserChange>('/users/{user_id}/operator', { params });
        said = a.data.changed ? `${u.email} is now an operator (and was told by email).` : `${u.email} was an operator already.`;
      } else if (what === 'revoke') {
        await del<UserChange>('/users/{user_id}/operator', { params });
        said = self ? 'Your operator rights were revoked.' : 'Operator rights revoked.';
      } else if (what === 'reset-mfa') {
        await del('/users/{user_id}/mfa', { params });
        said = 'Second factors reset; the user was told by email.';
      } else if (what === 'remove') {
        await del('/users/{user_id}', { params });
        announce(`${u.email} was removed.`);
        navigate('/users');
        return;
      } else return;
      setOpen(null);
      setDone(said);
      announce(said);
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const row = (what: Action, label: string, text: string, danger = false) => (
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
      <button
        type="button"
        class={danger ? 'danger' : ''}
        disabled={!!reasons[what] || (busy && what === 'enable')}
        aria-describedby={reasons[what] ? `why-${what}` : undefined}
        onClick={() => {
          setError(null);
          setTyped('');
          setDone('');
          // Enabling gives access back: no dialog, the answer is shown at once.
          if (what === 'enable') void act('enable');
          else setOpen(what);
        }}
      >
        {label}
      </button>
    </div>
  );
  const dialog = (what: Action, title: string, confirmLabel: string, body: ComponentChildren, danger = true, disabledUntil = false) => (
    <Confirm open={open === what} title={title} confirmLabel={confirmLabel} danger={danger} busy={busy} error={error} disabled={disabledUntil} onClose={() => (setOpen(null), setError(null))} onConfirm={() => void act(what)}>
      {body}
    </Confirm>
  );
  return (
    <section aria-labelledby="actions-h">
      <h2 id="actions-h">Account actions</h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      {!open && <ErrorBox error={error} />}
      {disabled
        ? row('enable', 'Enable', `The account can sign in again (it returns to active, or invited if it never set a password).${u.operator ? ` For an operator: ${RECENT.toLowerCase()}` : ''}`)
        : row('disable', 'Disable', `Ends every session at once and blocks sign-in until enabled.${u.operator ? ` For an operator: ${RECENT.toLowerCase()}` : ''}`, true)}
      {u.operator
        ? row('revoke', 'Revoke operator rights', `The account keeps its tenants; its operator sessions stop working at once. ${RECENT}`, true)
        : row('grant', 'Make operator', `Full access to every tenant, partner and account. ${RECENT}`)}
      {row('reset-mfa', 'Reset two-step sign-in', `Removes their authenticator app, passkeys and recovery codes (when they lost their phone or security key); they are told by email and can set them up again. ${RECENT}`, true)}
      {row('remove', 'Remove for good', `Deletes the account, its memberships, partner grants and invitations. The audit log keeps its id. Cannot be undone.${u.operator ? ` For an operator: ${RECENT.toLowerCase()}` : ''}`, true)}
      {dialog(
        'disable',
        `Disable ${u.email}?`,
        'Disable account',
        <ul>
          <li>every session ends at once, access tokens included;</li>
          <li>signing in, refreshing and every route are refused until an operator enables the account;</li>
          <li>memberships, grants and the second factor are kept.</li>
        </ul>,
      )}
      {dialog(
        'grant',
        `Make ${u.email} an operator?`,
        'Make operator',
        <p>They get full access to the platform and are told by email. Operators sign in with a second factor where the platform requires it.</p>,
        false,
      )}
      {dialog(
        'revoke',
        `Revoke ${u.email}'s operator rights?`,
        'Revoke operator rights',
        <p>{self ? 'You lose operator access at once, in this tab too.' : 'Their operator sessions stop working at once.'} The platform keeps at least one operator (LAST_OPERATOR otherwise).</p>,
      )}
      {dialog(
        'reset-mfa',
        `Reset ${u.email}'s two-step sign-in?`,
        'Reset two-step sign-in',
        <p>
          Their authenticator app, passkeys and recovery codes stop working; they are told by email.{' '}
          {u.operator ? 'As an operator they can then do nothing but set up a new one, where the platform requires it.' : 'They sign in with their password alone until they set it up again.'}
        </p>,
      )}
      {dialog(
        'remove',
        `Remove ${u.email} for good?`,
        'Remove user',
        <>
          <p>
            The account, its {u.memberships.length} membership{u.memberships.length === 1 ? '' : 's'}, {u.partner_admin_of.length} partner grant{u.partner_admin_of.length === 1 ? '' : 's'} and{' '}
            {u.invitations.length} invitation{u.invitations.length === 1 ? '' : 's'} go; the address becomes free. Refused for a tenant's last owner (LAST_OWNER) and the last
            operator (LAST_OPERATOR).
          </p>
          <Field label={`Type the email, ${u.email}, to confirm`}>
            {(a) => <input {...a} name="confirm-email" autoComplete="off" spellcheck={false} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />}
          </Field>
        </>,
        true,
        typed.trim().toLowerCase() !== u.email.toLowerCase(),
      )}
    </section>
  );
}
