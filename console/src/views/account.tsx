// One's own account, for everyone signed in: the display name, the email address (moved by a
// link mailed to the new one), the password, the sessions (devices) with a sign-out each, and
// two-step sign-in (passkeys and an authenticator app, TOTP, with recovery codes shown once). An
// operator who must enrol a factor first is sent here and told why.
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, get, patch, post, ApiError } from '../api/client';
import type {
  Account,
  EmailChangeAnswer,
  FactorProof,
  MfaStatus,
  Passkey,
  PasskeyAdded,
  PasskeyCreation,
  RecoveryCodes,
  Session,
  SessionListData,
  Tokens,
  TotpStart,
  User,
} from '../api/types';
import { Page } from '../App';
import { session } from '../session';
import { createPasskey, passkeysUnusableHere, wrongDomain } from '../passkeys';
import { Confirm, CopyButton, ErrorBox, Field, Link, announce, fieldErrors, fmtAgo, fmtTime, retryIn, useLoad } from '../ui/kit';
import { PasskeyProblem } from '../ui/passkey';
import { QrCode } from '../ui/qr';
import { useWho } from '../who';
import { PASSWORD_RULES } from './auth';
import { SessionTable, deviceOf } from './sessions';

export function AccountPage() {
  // Read again when the address changes (a link confirmed in another tab tells this one).
  const account = useLoad(() => get<Account>('/account').then((a) => a.data), [session.email]);
  const enrolling = session.enrolmentRequired;
  // A password change ends the other sessions: the list is read again.
  const [sessionsRead, setSessionsRead] = useState(0);
  return (
    <Page title="Your account">
      {enrolling && (
        <div class="notice" role="alert">
          <p>
            <strong>Set up two-step sign-in to continue.</strong> Platform operators here must sign in with a second factor. Add a passkey or an authenticator app
            below, then sign in again with it: the rest of the console opens then.
          </p>
        </div>
      )}
      <ErrorBox error={account.error} title="Could not load your account" />
      {account.data && <Profile account={account.data} onSaved={() => void account.reload(true)} />}
      {account.data && !enrolling && <EmailAddress current={account.data.email} />}
      {!enrolling && <Password onChanged={() => setSessionsRead((n) => n + 1)} />}
      <SecondFactor />
      {enrolling ? (
        <section aria-labelledby="sessions-h">
          <h2 id="sessions-h">Where you are signed in</h2>
          <p class="muted">Your sessions are listed once two-step sign-in is set up.</p>
        </section>
      ) : (
        <Sessions key={sessionsRead} />
      )}
    </Page>
  );
}

// ---------------------------------------------------------------- profile

function Profile({ account, onSaved }: { account: Account; onSaved: () => void }) {
  const who = useWho();
  const [name, setName] = useState(account.name ?? '');
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const memberships = account.memberships ?? [];
  const partners = account.partner_admin_of ?? [];
  return (
    <section aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <dl class="facts">
        <dt>Email</dt>
        <dd class="wrap">{account.email}</dd>
        <dt>Console role</dt>
        <dd>{who.operator ? 'platform operator' : who.partnerAdmin ? 'partner admin' : who.manages.length ? 'tenant owner or admin' : 'none'}</dd>
        <dt>Tenants</dt>
        <dd>
          {memberships.length === 0
            ? 'none'
            : memberships.map((m, i) => (
                <span key={m.tenant_id}>
                  {i > 0 && ', '}
                  {who.operator || m.role !== 'member' ? <Link to={`/tenants/${m.tenant_slug}`}>{m.tenant_slug}</Link> : m.tenant_slug} <span class="muted">({m.role})</span>
                </span>
              ))}
        </dd>
        {partners.length > 0 && (
          <>
            <dt>Partner admin of</dt>
            <dd>
              {partners.length} partner{partners.length === 1 ? '' : 's'}
            </dd>
          </>
        )}
        <dt>Account created</dt>
        <dd>{fmtTime(account.created_at)}</dd>
      </dl>
      <form
        class="inline-form"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setSaved(false);
          setFieldError(null);
          setError(null);
          try {
            const a = await patch<User>('/account', { body: { name: name.trim() || null } });
            setName(a.data.name ?? '');
            setSaved(true);
            announce(a.data.name ? 'Display name saved.' : 'Display name cleared.');
            onSaved();
          } catch (err) {
            const { byField, other } = fieldErrors(err, ['name']);
            setFieldError(byField.name ?? null);
            setError(other);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label="Display name" hint="Shown to operators beside your email. Leave empty to have none; at most 100 characters." error={fieldError}>
          {(a) => <input {...a} name="display-name" autoComplete="name" maxLength={100} value={name} onInput={(e) => (setSaved(false), setName(e.currentTarget.value))} />}
        </Field>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Save name
          </button>
          {saved && (
            <span role="status" class="ok-text">
              ✓ Saved
            </span>
          )}
        </div>
      </form>
      <ErrorBox error={error} title="Could not save the name" />
    </section>
  );
}

// ---------------------------------------------------------------- email address

/** A wrong password (401 INVALID_CREDENTIALS, the session kept) or its field's INVALID_FIELD. */
function passwordError(e: unknown, field: string): string | null {
  if (!(e instanceof ApiError)) return null;
  if (e.code === 'INVALID_CREDENTIALS') return 'That is not your current password.';
  return fieldErrors(e, [field]).byField[field] ?? null;
}

const tooMany = (e: unknown, what: string) => (e instanceof ApiError && e.status === 429 ? `${what}: try again ${retryIn(e)}` : undefined);

/** The address moves only when the link mailed to the new one is opened. The answer is the
 * same whether or not the new address already has an account (that owner is told instead, and
 * no link exists), so nothing here says which. */
function EmailAddress({ current }: { current: string }) {
  const [open, setOpen] = useState(false);
  const [to, setTo] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [sent, setSent] = useState<{ to: string; hours: number } | null>(null);
  const first = useRef<HTMLInputElement>(null);
  const passwordInput = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (open) first.current?.focus();
  }, [open]);
  const same = to.trim() !== '' && to.trim().toLowerCase() === current.toLowerCase();
  const apiAddress = fieldErrors(error, ['new_email']).byField.new_email;
  const addressError = same ? 'That is your address already.' : apiAddress ? `This address ${apiAddress.replace(/^email /, '')}.` : null;
  const wrongPassword = passwordError(error, 'password');
  const confirmed = sent !== null && sent.to.toLowerCase() === current.toLowerCase();
  return (
    <section aria-labelledby="email-h">
      <h2 id="email-h">Email address</h2>
      <p>
        You sign in with <strong class="wrap">{current}</strong>. Mail about your account goes there.
      </p>
      {sent && !confirmed && (
        <div class="notice" role="status">
          <p>
            <strong>A confirmation link was sent to {sent.to}.</strong> Nothing changes until it is opened: you keep signing in with {current} until then. The link works
            once, for {sent.hours} hours; changing your password meanwhile cancels it. A notice about the request went to {current}.
          </p>
        </div>
      )}
      {confirmed && (
        <p role="status" class="ok-text">
          ✓ Confirmed: you now sign in with {current}.
        </p>
      )}
      {open ? (
        <form
          class="stack"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            if (same || !to.trim() || !password) return;
            setBusy(true);
            setError(null);
            try {
              const a = await post<EmailChangeAnswer>('/account/email', { body: { new_email: to.trim(), password } });
              setSent({ to: to.trim(), hours: Math.round(a.data.expires_in / 3600) });
              setOpen(false);
              setTo('');
              setPassword('');
              announce(`A confirmation link was sent to ${to.trim()}.`);
            } catch (err) {
              setError(err);
              if (err instanceof ApiError && err.code === 'INVALID_CREDENTIALS') {
                setPassword('');
                passwordInput.current?.focus();
              }
            } finally {
              setBusy(false);
            }
          }}
        >
          <Field label="New email address" hint="A link is mailed there; the change happens when it is opened." error={addressError}>
            {(a) => (
              <input {...a} ref={first} type="email" name="new-email" autoComplete="email" maxLength={254} required value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            )}
          </Field>
          <Field label="Your current password" error={wrongPassword}>
            {(a) => (
              <input {...a} ref={passwordInput} type="password" name="current-password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            )}
          </Field>
          {error !== null && !addressError && !wrongPassword && <ErrorBox error={error} title={tooMany(error, 'Too many tries') ?? 'Could not ask for the change'} />}
          {wrongPassword && error instanceof ApiError && <RefusalNote error={error} />}
          <div class="actions">
            <button type="submit" class="primary" disabled={busy || same || !to.trim() || !password}>
              {busy ? 'Sending…' : 'Send the confirmation link'}
            </button>
            <button type="button" onClick={() => (setOpen(false), setError(null), setPassword(''))}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div class="actions">
          <button type="button" onClick={() => (setOpen(true), setError(null))}>
            Change email address
          </button>
        </div>
      )}
    </section>
  );
}

/** The code and request id of a refusal shown on its field. */
function RefusalNote({ error }: { error: ApiError }) {
  return (
    <p class="code-note" role="alert">
      Not accepted. <span class="label">Code</span> <code>{error.code}</code>
      {error.requestId && (
        <>
          {' '}
          <span class="label">Request id</span> <code>{error.requestId}</code>
        </>
      )}
    </p>
  );
}

// ---------------------------------------------------------------- password

/** A new password ends every other session of the account; this tab continues with the tokens
 * the API answers (as "sign out all other sessions" does). */
function Password({ onChanged }: { onChanged: () => void }) {
  const [open, setOpen] = useState(false);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (open) first.current?.focus();
  }, [open]);
  const mismatch = again !== '' && again !== next;
  const wrongCurrent = passwordError(error, 'current_password');
  const weak =
    error instanceof ApiError && error.code === 'WEAK_PASSWORD' ? error.message : (fieldErrors(error, ['new_password']).byField.new_password ?? null);
  const close = () => {
    setOpen(false);
    setError(null);
    setCurrent('');
    setNext('');
    setAgain('');
  };
  return (
    <section aria-labelledby="password-h">
      <h2 id="password-h">Password</h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ Password changed. Every other session was signed out; this tab stays signed in.
        </p>
      )}
      {open ? (
        <form
          class="stack"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            if (mismatch || !current || !next || !again) return;
            setBusy(true);
            setError(null);
            setDone(false);
            try {
              await session.rotate(async () => (await post<Tokens>('/account/password', { body: { current_password: current, new_password: next } })).data);
              close();
              setDone(true);
              announce('Password changed. Every other session was signed out.');
              onChanged();
            } catch (err) {
              setError(err);
              if (err instanceof ApiError && err.code === 'INVALID_CREDENTIALS') {
                setCurrent('');
                first.current?.focus();
              }
            } finally {
              setBusy(false);
            }
          }}
        >
          <Field label="Current password" error={wrongCurrent}>
            {(a) => <input {...a} ref={first} type="password" name="current-password" autoComplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />}
          </Field>
          <Field
            label="New password"
            hint={
              <>
                Rules: <span>{PASSWORD_RULES.join('; ')}.</span>
              </>
            }
            error={weak}
          >
            {(a) => (
              <input {...a} type="password" name="new-password" autoComplete="new-password" required minLength={12} maxLength={128} value={next} onInput={(e) => setNext(e.currentTarget.value)} />
            )}
          </Field>
          <Field label="The same password again" error={mismatch ? 'The two passwords differ.' : null}>
            {(a) => <input {...a} type="password" name="confirm-password" autoComplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />}
          </Field>
          <p class="hint">Every other session of your account ends (other browsers and devices sign in again with the new password); this tab stays signed in.</p>
          {error !== null && !wrongCurrent && !weak && <ErrorBox error={error} title={tooMany(error, 'Too many wrong passwords') ?? 'Could not change the password'} />}
          {(wrongCurrent || weak) && error instanceof ApiError && <RefusalNote error={error} />}
          <div class="actions">
            <button type="submit" class="primary" disabled={busy || mismatch || !current || !next || !again}>
              {busy ? 'Saving…' : 'Save the new password'}
            </button>
            <button type="button" onClick={close}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div class="actions">
          <button type="button" onClick={() => (setOpen(true), setDone(false))}>
            Change password
          </button>
        </div>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- sessions

function Sessions() {
  const list = useLoad(() => get<SessionListData>('/account/sessions').then((a) => a.data.items), []);
  const [busy, setBusy] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState(false);
  const [done, setDone] = useState('');
  const others = (list.data ?? []).filter((s) => !s.current);
  const signOut = async (s: Session) => {
    setBusy(s.session_id);
    setError(null);
    try {
      await del('/account/sessions/{session_id}', { params: { session_id: s.session_id } });
      setDone('That session was signed out.');
      announce('Session signed out.');
      await list.reload(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy('');
    }
  };
  return (
    <section aria-labelledby="sessions-h">
      <h2 id="sessions-h">Where you are signed in</h2>
      <p class="muted">Each sign-in is a session until it is signed out or expires. Signing one out stops it at its next refresh, within minutes.</p>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      <ErrorBox error={list.error ?? (confirm ? null : error)} title="Could not load or sign out your sessions" />
      {list.data && (
        <SessionTable
          sessions={list.data}
          caption="Your sessions"
          action={(s) =>
            s.current ? (
              <span class="muted">In use here (Sign out is at the top)</span>
            ) : (
              <button type="button" class="small" disabled={busy === s.session_id} onClick={() => void signOut(s)} aria-label={`Sign out the session signed in ${fmtTime(s.created_at)}`}>
                Sign out
              </button>
            )
          }
        />
      )}
      {list.data && (
        <div class="actions">
          <button type="button" disabled={others.length === 0} aria-describedby={others.length === 0 ? 'others-why' : undefined} onClick={() => (setError(null), setConfirm(true))}>
            Sign out all other sessions
          </button>
          {others.length === 0 && (
            <span class="hint" id="others-why">
              This is your only session.
            </span>
          )}
        </div>
      )}
      <Confirm
        open={confirm}
        title="Sign out all other sessions?"
        confirmLabel="Sign out the others"
        danger
        busy={busy === 'others'}
        error={error}
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          setBusy('others');
          setError(null);
          try {
            // Every session of the account ends (its epoch moves) and this one continues as a
            // new session: its tokens are the answer.
            const n = others.length;
            await session.rotate(async () => (await del<Tokens>('/account/sessions')).data);
            setConfirm(false);
            setDone(`${n} other session${n === 1 ? '' : 's'} signed out.`);
            announce(`${n} other sessions signed out.`);
            await list.reload(true);
          } catch (e) {
            setError(e);
          } finally {
            setBusy('');
          }
        }}
      >
        <p>
          Every other session ({others.length}) stops at once: those browsers and devices must sign in again. This tab stays signed in, as a new session.
        </p>
      </Confirm>
    </section>
  );
}

// ---------------------------------------------------------------- second factor

/** Groups a base32 secret in fours, as authenticator apps show what they expect typed. */
const grouped = (secret: string) => secret.replace(/(.{4})/g, '$1 ').trim();

/** Why the recovery codes are on screen: the first factor (which one), or a renewal. */
type CodesWhy = 'app' | 'passkey' | 'renew';

function SecondFactor() {
  const status = useLoad(() => get<MfaStatus>('/account/mfa').then((a) => a.data), []);
  const [setup, setSetup] = useState<TotpStart | null>(null);
  const [codes, setCodes] = useState<{ codes: string[]; why: CodesWhy } | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const [asking, setAsking] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const st = status.data;
  /** Errors are the password form's to show (it stays open for another try). */
  const start = async (password: string) => {
    setBusy(true);
    setDone('');
    try {
      setSetup((await post<TotpStart>('/account/mfa/totp', { body: { password } })).data);
      setAsking(false);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'FACTOR_EXISTS') void status.reload(true);
      throw e;
    } finally {
      setBusy(false);
    }
  };
  const showCodes = (c: string[], why: CodesWhy) => {
    setDone('');
    setCodes({ codes: c, why });
  };
  let body;
  if (codes) {
    body = (
      <ShowRecoveryCodes
        codes={codes.codes}
        onDone={() => {
          const why = codes.why;
          setCodes(null);
          // Where operators must have a factor, this session's token predates it (403
          // MFA_REQUIRED everywhere): a sign-in with the new factor opens the console.
          if (session.enrolmentRequired && why !== 'renew') {
            void session.signOut(`Two-step sign-in is set up. Sign in again, with ${why === 'passkey' ? 'your passkey' : 'a code from the app'}, to continue.`);
            return;
          }
          setDone(why === 'renew' ? 'New recovery codes are in use; the old ones no longer work.' : 'Two-step sign-in is on.');
          void status.reload(true);
          heading.current?.focus();
        }}
      />
    );
  } else if (setup) {
    body = (
      <Enrol
        setup={setup}
        onCancel={() => (setSetup(null), void status.reload(true))}
        onConfirmed={(c) => {
          setSetup(null);
          showCodes(c, 'app');
          announce('Authenticator app confirmed. Save your recovery codes.');
        }}
      />
    );
  } else if (st) {
    const passkeys = st.passkeys ?? [];
    const ways = [passkeys.length > 0 ? 'a passkey' : '', st.totp.confirmed ? 'a code from your authenticator app' : ''].filter(Boolean).join(' or ');
    body = (
      <>
        {st.enrolled ? (
          <p>
            <span class="chip chip-active">on</span> Signing in asks for your password, then {ways || 'your second factor'} (or one of your recovery codes).
          </p>
        ) : (
          <p>
            <span class="chip chip-disabled">off</span> Signing in asks only for your password. With two-step sign-in it also asks for a second factor, so a stolen password
            is not enough: a passkey, or a 6-digit code from an authenticator app on your phone.
          </p>
        )}
        <Passkeys
          status={st}
          onChanged={() => (setDone(''), status.reload(true))}
          onFirst={(c) => {
            showCodes(c, 'passkey');
            announce('Passkey added. Save your recovery codes.');
          }}
        />
        <section aria-labelledby="app-h">
          <h3 id="app-h">Authenticator app</h3>
          {st.totp.confirmed ? (
            <AppEnrolled
              status={st}
              onRemoved={(enrolled) => {
                setDone(enrolled ? 'The authenticator app was removed.' : 'Two-step sign-in is off.');
                void status.reload(true);
                heading.current?.focus();
              }}
            />
          ) : (
            <>
              <p>
                A 6-digit code from an app on your phone (such as Google Authenticator, Microsoft Authenticator, 1Password or Aegis), new every 30 seconds.
              </p>
              {st.totp.pending && <p class="hint">You started setting up an app earlier without confirming it; starting again replaces that one.</p>}
              {asking ? (
                <PasswordAgain busy={busy} onCancel={() => setAsking(false)} onPassword={start} />
              ) : (
                <div class="actions">
                  <button type="button" class={passkeysUnusableHere() || st.passkeys_available === false ? 'primary' : undefined} onClick={() => setAsking(true)}>
                    Set up an authenticator app
                  </button>
                </div>
              )}
            </>
          )}
        </section>
        {st.enrolled && <RecoveryCodesLeft status={st} onCodes={(c) => showCodes(c, 'renew')} />}
      </>
    );
  }
  return (
    <section aria-labelledby="mfa-h" id="two-step">
      <h2 id="mfa-h" ref={heading} tabIndex={-1}>
        Two-step sign-in
      </h2>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      <ErrorBox error={status.error} title="Could not load two-step sign-in" />
      {body}
    </section>
  );
}

// ---------------------------------------------------------------- passkeys

/** Passkeys an account may hold (the API answers 409 PASSKEY_LIMIT past it). */
const MAX_PASSKEYS = 10;
const MAX_PASSKEY_NAME = 64;

/** The account's passkeys: listed with a rename and a removal each, and one more added with a
 * name and the password again (the browser's ceremony between the two calls). The first
 * factor of an account comes with recovery codes (`onFirst`). */
function Passkeys({ status, onChanged, onFirst }: { status: MfaStatus; onChanged: () => Promise<void>; onFirst: (codes: string[]) => void }) {
  const list = status.passkeys ?? [];
  const [adding, setAdding] = useState(false);
  const [done, setDone] = useState('');
  const [renaming, setRenaming] = useState<Passkey | null>(null);
  const [removing, setRemoving] = useState<Passkey | null>(null);
  const [removePassword, setRemovePassword] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const addButton = useRef<HTMLButtonElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const focusAdd = useRef(false);
  useEffect(() => {
    if (!adding && focusAdd.current) {
      focusAdd.current = false;
      addButton.current?.focus();
    }
  }, [adding]);
  const unusable =
    passkeysUnusableHere() ??
    (status.passkeys_available === false
      ? 'Passkeys are not available on this deployment: its console is served at an IP address, and browsers accept passkeys only for a domain name.'
      : null);
  const atLimit = list.length >= MAX_PASSKEYS;
  const factors = list.length + (status.totp.confirmed ? 1 : 0);
  const keepOne = status.required && factors <= 1 ? 'Operators keep a second factor: add another passkey or an authenticator app before removing this one.' : null;
  const nameProblem = renaming ? checkName(name) : null;
  const renameField = fieldErrors(error, ['name']).byField.name ?? null;
  return (
    <section aria-labelledby="passkeys-h">
      <h3 id="passkeys-h" ref={heading} tabIndex={-1}>
        Passkeys
      </h3>
      <p>
        A passkey signs you in with your device’s screen lock (fingerprint, face or PIN) or a security key. Passkeys are phishing-resistant: they work only on this
        console’s own address, so a look-alike site cannot use them, and there is no code to type or pass on.{' '}
        {status.required ? <strong>Recommended for platform operators.</strong> : 'Recommended for platform operators.'}
      </p>
      {done && (
        <p role="status" class="ok-text">
          ✓ {done}
        </p>
      )}
      {list.length > 0 && (
        <table class="cards passkeys">
          <caption class="visually-hidden">Your passkeys</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Added</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.id} data-passkey={p.id}>
                <th scope="row" data-label="Name" class="wrap">
                  <span>{p.name}</span>
                </th>
                <td data-label="Added">{fmtTime(p.created_at)}</td>
                <td data-label="Last used">{p.last_used_at ? fmtAgo(p.last_used_at) : 'not yet'}</td>
                <td data-label="Actions">
                  <span class="row-buttons">
                    <button type="button" class="small" aria-label={`Rename ${p.name}`} onClick={() => (setError(null), setName(p.name), setRenaming(p))}>
                      Rename
                    </button>
                    <button
                      type="button"
                      class="small"
                      aria-label={`Remove ${p.name}`}
                      disabled={!!keepOne}
                      aria-describedby={keepOne ? 'passkey-keep-one' : undefined}
                      onClick={() => (setError(null), setRemoving(p))}
                    >
                      Remove
                    </button>
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {keepOne && list.length > 0 && (
        <p class="hint" id="passkey-keep-one">
          {keepOne}
        </p>
      )}
      {unusable ? (
        <p class="notice passkeys-unavailable">{unusable}</p>
      ) : adding ? (
        <AddPasskey
          onCancel={() => {
            focusAdd.current = true;
            setAdding(false);
          }}
          onAdded={async (a) => {
            setAdding(false);
            if (a.recovery_codes?.length) {
              onFirst(a.recovery_codes);
              return;
            }
            focusAdd.current = true;
            setDone(`Passkey “${a.passkey.name}” added: you can sign in with it.`);
            announce('Passkey added.');
            await onChanged();
          }}
        />
      ) : (
        <div class="actions">
          <button
            ref={addButton}
            type="button"
            class="primary"
            disabled={atLimit}
            aria-describedby={atLimit ? 'passkey-limit' : undefined}
            onClick={() => (setDone(''), setAdding(true))}
          >
            Add a passkey
          </button>
          {atLimit && (
            <span class="hint" id="passkey-limit">
              You have {MAX_PASSKEYS} passkeys, the most an account may hold: remove one to add another.
            </span>
          )}
        </div>
      )}
      <Confirm
        open={renaming !== null}
        title="Rename the passkey"
        confirmLabel="Save the name"
        busy={busy}
        disabled={!!nameProblem}
        error={renameField ? null : error}
        onClose={() => setRenaming(null)}
        onConfirm={async () => {
          if (!renaming || nameProblem) return;
          setBusy(true);
          setError(null);
          try {
            const a = await patch<{ passkey: Passkey }>('/account/mfa/passkeys/{id}', { params: { id: renaming.id }, body: { name: name.trim() } });
            setRenaming(null);
            setDone(`Renamed to “${a.data.passkey.name}”.`);
            announce('Passkey renamed.');
            await onChanged();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label="Passkey name" hint={`So you can tell your passkeys apart; 1 to ${MAX_PASSKEY_NAME} characters.`} error={renameField ?? (name ? nameProblem : null)}>
          {(a) => <input {...a} name="passkey-name" autoComplete="off" maxLength={MAX_PASSKEY_NAME} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
      </Confirm>
      <Confirm
        open={removing !== null}
        title={`Remove the passkey “${removing?.name ?? ''}”?`}
        confirmLabel="Remove"
        danger
        busy={busy}
        disabled={!removePassword}
        onClose={() => {
          setRemoving(null);
          setRemovePassword('');
        }}
        onConfirm={async () => {
          if (!removing) return;
          setBusy(true);
          setError(null);
          try {
            const a = await del<{ enrolled: boolean }>('/account/mfa/passkeys/{id}', {
              params: { id: removing.id },
              body: { password: removePassword },
            });
            setRemovePassword('');
            const gone = removing.name;
            setRemoving(null);
            setDone(a.data.enrolled ? `Passkey “${gone}” removed.` : `Passkey “${gone}” removed. Two-step sign-in is off.`);
            announce('Passkey removed.');
            await onChanged();
            heading.current?.focus();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          It stops signing you in at once{factors <= 1 ? ': it is your only second factor, so two-step sign-in turns off and signing in asks only for your password' : ''}. Remove it
          from the device or security key too (its passkey settings).
        </p>
        <p class="hint">Needs your password and a sign-in with your second factor in the last 10 minutes.</p>
        <CurrentPassword value={removePassword} onValue={setRemovePassword} error={error} />
        <ErrorBox
          error={error instanceof ApiError && error.code === 'INVALID_CREDENTIALS' ? null : error}
          title={
            error instanceof ApiError && error.code === 'MFA_REQUIRED'
              ? 'Sign in again with your second factor first (a sign-in in the last 10 minutes)'
              : error instanceof ApiError && error.code === 'LAST_FACTOR'
                ? 'Operators keep a second factor: add another first'
                : 'Could not remove the passkey'
          }
        />
      </Confirm>
    </section>
  );
}

/** The current password, asked again in a confirmation; a wrong one is said on the field. */
function CurrentPassword({ value, onValue, error }: { value: string; onValue: (v: string) => void; error: unknown }) {
  const wrong = error instanceof ApiError && error.code === 'INVALID_CREDENTIALS';
  return (
    <Field label="Your current password" error={wrong ? 'That is not your current password.' : null}>
      {(a) => (
        <input {...a} type="password" name="current-password" autoComplete="current-password" required value={value} onInput={(e) => onValue(e.currentTarget.value)} />
      )}
    </Field>
  );
}

/** A passkey's name, checked as the API does (1 to 64 characters once trimmed). */
function checkName(name: string): string | null {
  const n = name.trim();
  if (!n) return 'Give the passkey a name.';
  if ([...n].length > MAX_PASSKEY_NAME) return `At most ${MAX_PASSKEY_NAME} characters.`;
  return null;
}

/** A name, the password again, then the browser's ceremony, then the credential sent. */
function AddPasskey({ onCancel, onAdded }: { onCancel: () => void; onAdded: (a: PasskeyAdded) => Promise<void> }) {
  const [name, setName] = useState(() => {
    const d = deviceOf(navigator.userAgent);
    return d === 'Unknown device' || d.length > MAX_PASSKEY_NAME ? '' : d;
  });
  const [password, setPassword] = useState('');
  const [phase, setPhase] = useState<'idle' | 'checking' | 'ceremony' | 'saving'>('idle');
  const [error, setError] = useState<unknown>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const passwordInput = useRef<HTMLInputElement>(null);
  const submitButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    nameInput.current?.focus();
    nameInput.current?.select();
  }, []);
  // Where focus goes after a refusal, once the form is enabled again.
  const [refocus, setRefocus] = useState<'name' | 'password' | 'submit' | null>(null);
  useEffect(() => {
    if (!refocus) return;
    (refocus === 'name' ? nameInput : refocus === 'password' ? passwordInput : submitButton).current?.focus();
    setRefocus(null);
  }, [refocus]);
  const wrongPassword = passwordError(error, 'password');
  const apiName = fieldErrors(error, ['name']).byField.name ?? null;
  const code = error instanceof ApiError ? error.code : null;
  const title =
    code === 'PASSKEY_LIMIT'
      ? `You have ${MAX_PASSKEYS} passkeys, the most an account may hold: remove one first`
      : code === 'INVALID_MFA_CODE'
        ? 'The passkey did not verify: try again, or use another device or security key'
        : code === 'INVALID_STATE'
          ? 'The passkey took too long (over 5 minutes) or was saved already: add it again'
          : code === 'MFA_REQUIRED'
            ? 'Adding another factor needs a sign-in with the one you have, in the last 10 minutes'
            : (tooMany(error, 'Too many wrong passwords') ?? 'Could not add the passkey');
  const busy = phase !== 'idle';
  const add = async () => {
    const problem = checkName(name);
    setNameError(problem);
    if (problem) {
      setRefocus('name');
      return;
    }
    if (!password) {
      setRefocus('password');
      return;
    }
    setError(null);
    setPhase('checking');
    let options: PublicKeyCredentialCreationOptionsJSON;
    try {
      options = (await post<PasskeyCreation>('/account/mfa/passkeys/options', { body: { password } })).data.options;
    } catch (err) {
      setError(err);
      setPhase('idle');
      if (err instanceof ApiError && err.code === 'INVALID_CREDENTIALS') {
        setPassword('');
        setRefocus('password');
      } else setRefocus('submit');
      return;
    }
    const elsewhere = wrongDomain(options.rp?.id);
    if (elsewhere) {
      setError(new Error(`This platform’s passkeys belong to ${elsewhere}: open the console at that address to add one.`));
      setPhase('idle');
      setRefocus('submit');
      return;
    }
    setPhase('ceremony');
    announce('Follow your browser’s prompt to create the passkey.');
    let credential: unknown;
    try {
      credential = await createPasskey(options);
    } catch (err) {
      setError(err);
      setPhase('idle');
      setRefocus('submit');
      return;
    }
    setPhase('saving');
    try {
      const a = await post<PasskeyAdded>('/account/mfa/passkeys', { body: { name: name.trim(), credential } });
      await onAdded(a.data);
    } catch (err) {
      setError(err);
      setPhase('idle');
      setRefocus(fieldErrors(err, ['name']).byField.name ? 'name' : 'submit');
    }
  };
  return (
    <form
      class="stack add-passkey"
      noValidate
      aria-labelledby="add-passkey-h"
      onSubmit={(e) => {
        e.preventDefault();
        void add();
      }}
    >
      <h4 id="add-passkey-h">Add a passkey</h4>
      <Field label="Passkey name" hint={`So you can tell your passkeys apart, such as “Work laptop” or “Blue security key”; 1 to ${MAX_PASSKEY_NAME} characters.`} error={nameError ?? apiName}>
        {(a) => (
          <input {...a} ref={nameInput} name="passkey-name" autoComplete="off" maxLength={MAX_PASSKEY_NAME} value={name} onInput={(e) => (setNameError(null), setName(e.currentTarget.value))} />
        )}
      </Field>
      <Field label="Your current password" hint="Asked again before a new way to sign in is added to your account." error={wrongPassword}>
        {(a) => (
          <input {...a} ref={passwordInput} type="password" name="current-password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        )}
      </Field>
      {phase === 'ceremony' && (
        <p class="notice" role="status">
          Your browser asks you to confirm: use your screen lock (fingerprint, face or PIN), or insert and touch your security key.
        </p>
      )}
      {wrongPassword && error instanceof ApiError ? <RefusalNote error={error} /> : !apiName && <PasskeyProblem error={error} what="create" title={title} />}
      <div class="actions">
        <button ref={submitButton} type="submit" class="primary" disabled={busy}>
          {phase === 'checking' ? 'Checking…' : phase === 'ceremony' ? 'Waiting for your passkey…' : phase === 'saving' ? 'Saving…' : 'Create the passkey'}
        </button>
        <button type="button" onClick={onCancel} disabled={phase === 'saving'}>
          Cancel
        </button>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------- authenticator app

/** The current password, asked again before a new factor is added (so a session left open, or
 * a stolen token, cannot put someone else's app on the account). A wrong one is said on the
 * field; the account stays signed in. */
function PasswordAgain({ busy, onCancel, onPassword }: { busy: boolean; onCancel: () => void; onPassword: (password: string) => Promise<void> }) {
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const wrong = error instanceof ApiError && (error.code === 'INVALID_CREDENTIALS' || error.field === 'password');
  return (
    <form
      class="inline-form"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        if (!password) return;
        setError(null);
        try {
          await onPassword(password);
        } catch (err) {
          setError(err);
          setPassword('');
          input.current?.focus();
        }
      }}
    >
      <Field label="Your current password" hint="Asked again before a new way to sign in is added to your account." error={wrong ? 'That is not your current password.' : null}>
        {(a) => <input {...a} ref={input} type="password" name="current-password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
      </Field>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy || !password}>
          {busy ? 'Checking…' : 'Continue'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error !== null && !wrong && <ErrorBox error={error} title={error instanceof ApiError && error.status === 429 ? 'Too many wrong passwords: wait a few minutes' : 'Could not start'} />}
      {wrong && error instanceof ApiError && (
        <p class="code-note" role="alert">
          Not accepted. <span class="label">Code</span> <code>{error.code}</code> <span class="label">Request id</span> <code>{error.requestId}</code>
        </p>
      )}
    </form>
  );
}

function Enrol({ setup, onCancel, onConfirmed }: { setup: TotpStart; onCancel: () => void; onConfirmed: (codes: string[]) => void }) {
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  let issuer = '';
  let account = '';
  try {
    const u = new URL(setup.otpauth_uri);
    issuer = u.searchParams.get('issuer') ?? '';
    account = decodeURIComponent(u.pathname.replace(/^\/+/, '')).replace(/^[^:]*:/, '');
  } catch {
    // Shown without the details: the QR code and the key are what matter.
  }
  const wrong = error instanceof ApiError && error.code === 'INVALID_MFA_CODE';
  return (
    <div class="enrol">
      <ol class="steps">
        <li>
          <h3>Scan this QR code with your authenticator app</h3>
          <div class="qr-row">
            <QrCode text={setup.otpauth_uri} label={`QR code to add ${account || 'this account'} to an authenticator app`} />
            <div>
              <p>Cannot scan it? Add an account by hand with this key:</p>
              <p>
                <code class="secret" data-secret={setup.secret}>
                  {grouped(setup.secret)}
                </code>
              </p>
              <p>
                <CopyButton text={setup.secret} label="Copy the key" />
              </p>
              <dl class="facts compact">
                {issuer && (
                  <>
                    <dt>Issuer</dt>
                    <dd>{issuer}</dd>
                  </>
                )}
                {account && (
                  <>
                    <dt>Account</dt>
                    <dd class="wrap">{account}</dd>
                  </>
                )}
                <dt>Type</dt>
                <dd>
                  time-based, {setup.digits} digits, every {setup.period} s
                </dd>
              </dl>
            </div>
          </div>
        </li>
        <li>
          <h3>Enter the code the app shows</h3>
          <form
            class="inline-form code-form"
            noValidate
            onSubmit={async (e) => {
              e.preventDefault();
              const typed = code.replace(/\s+/g, '');
              if (!typed) return;
              setBusy(true);
              setError(null);
              try {
                const a = await post<RecoveryCodes & { enrolled: boolean }>('/account/mfa/totp/confirm', { body: { code: typed } });
                onConfirmed(a.data.recovery_codes);
              } catch (err) {
                setError(err);
                setCode('');
                setBusy(false);
              }
            }}
          >
            <Field label="Code from the app" error={wrong ? 'Not accepted: check the app shows this account, wait for the next code and try again.' : null}>
              {(a) => (
                <input
                  {...a}
                  name="one-time-code"
                  autoComplete="one-time-code"
                  inputMode="numeric"
                  pattern="[0-9 ]*"
                  maxLength={8}
                  class="code-input"
                  value={code}
                  onInput={(e) => setCode(e.currentTarget.value)}
                />
              )}
            </Field>
            <div class="actions">
              <button type="submit" class="primary" disabled={busy || !code.trim()}>
                {busy ? 'Checking…' : 'Confirm'}
              </button>
              <button type="button" onClick={onCancel}>
                Cancel
              </button>
            </div>
          </form>
          <ErrorBox error={error} title={wrong ? 'The code was not accepted' : 'Could not confirm the app'} />
        </li>
      </ol>
    </div>
  );
}

/** Ten codes, shown this once: copied or downloaded, and acknowledged before they go. */
function ShowRecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [saved, setSaved] = useState(false);
  const [href, setHref] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  const text = `Recovery codes for ${session.email} (each works once):\n\n${codes.join('\n')}\n`;
  useEffect(() => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    setHref(url);
    heading.current?.focus();
    return () => URL.revokeObjectURL(url);
  }, [codes]);
  return (
    <div class="recovery">
      <h3 ref={heading} tabIndex={-1}>
        Save your recovery codes
      </h3>
      <p>
        If you lose your phone or your passkeys, each of these codes signs you in once instead. <strong>They are shown only now</strong>: store them somewhere safe,
        such as a password manager.
      </p>
      <ol class="codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <div class="actions">
        <CopyButton text={codes.join('\n')} label="Copy the codes" small={false} />
        <a class="button" href={href} download="recovery-codes.txt">
          Download as a text file
        </a>
      </div>
      <div class="check">
        <input id="codes-saved" type="checkbox" checked={saved} onChange={(e) => setSaved(e.currentTarget.checked)} />
        <label for="codes-saved">I saved these codes somewhere safe</label>
      </div>
      <div class="actions">
        <button type="button" class="primary" disabled={!saved} aria-describedby={saved ? undefined : 'codes-why'} onClick={onDone}>
          Done
        </button>
        {!saved && (
          <span class="hint" id="codes-why">
            Tick the box once the codes are saved: they cannot be shown again.
          </span>
        )}
      </div>
    </div>
  );
}

/** The authenticator app, once confirmed: when it was added, and its removal (proved with a
 * code or a recovery code). It is the last factor without passkeys: removing it turns two-step
 * sign-in off, which an operator may not do. */
function AppEnrolled({ status, onRemoved }: { status: MfaStatus; onRemoved: (enrolled: boolean) => void }) {
  const [open, setOpen] = useState(false);
  const last = (status.passkeys ?? []).length === 0;
  const removeWhy = status.required && last ? 'Operators keep a second factor. Add a passkey first, or, if you lose your phone, another operator can reset it for you.' : null;
  return (
    <>
      <p>
        <span class="chip chip-active">on</span> Added {fmtTime(status.totp.created_at)}.
      </p>
      <div class="danger-row">
        <div>
          <h4>{last ? 'Turn off two-step sign-in' : 'Remove the authenticator app'}</h4>
          <p>
            {last
              ? 'Removes the authenticator app and the recovery codes; signing in then asks only for your password.'
              : 'Signing in then takes one of your passkeys (or a recovery code) after the password.'}
          </p>
          {removeWhy && (
            <p class="hint" id="remove-why">
              {removeWhy}
            </p>
          )}
        </div>
        <button type="button" class="danger" disabled={!!removeWhy} aria-describedby={removeWhy ? 'remove-why' : undefined} onClick={() => setOpen(true)}>
          {last ? 'Turn off' : 'Remove the app'}
        </button>
      </div>
      <ProofDialog
        open={open}
        title={last ? 'Turn off two-step sign-in?' : 'Remove the authenticator app?'}
        confirmLabel={last ? 'Turn off' : 'Remove the app'}
        danger
        withRecovery
        intro="Prove it is you with a code from the app, or with one of your recovery codes."
        onClose={() => setOpen(false)}
        onProof={async (proof) => {
          const a = await del<{ enrolled?: boolean }>('/account/mfa/totp', { body: proof });
          setOpen(false);
          announce(last ? 'Two-step sign-in removed.' : 'Authenticator app removed.');
          onRemoved(a.data?.enrolled ?? !last);
        }}
      />
    </>
  );
}

/** The recovery codes left, and ten new ones (proved with a code from the app; with passkeys
 * alone, by a sign-in with a second factor in the last 10 minutes). */
function RecoveryCodesLeft({ status, onCodes }: { status: MfaStatus; onCodes: (codes: string[]) => void }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [password, setPassword] = useState('');
  const left = status.recovery_codes_left;
  const viaRecentSignIn = !status.totp.confirmed;
  return (
    <section aria-labelledby="codes-h">
      <h3 id="codes-h">Recovery codes</h3>
      <p>
        Each signs you in once instead of your {status.totp.confirmed && (status.passkeys ?? []).length ? 'passkey or app' : status.totp.confirmed ? 'app' : 'passkey'}, if you lose it.
      </p>
      <dl class="facts">
        <dt>Recovery codes left</dt>
        <dd class={left <= 3 ? 'warn' : ''}>
          <span class="codes-left">{left}</span> of 10{left <= 3 ? ': make new ones soon' : ''}
        </dd>
      </dl>
      <div class="danger-row">
        <div>
          <h4>New recovery codes</h4>
          <p>Ten new codes; the ones you have stop working.</p>
        </div>
        <button type="button" onClick={() => setOpen(true)}>
          New recovery codes
        </button>
      </div>
      {viaRecentSignIn ? (
        <Confirm
          open={open}
          title="Make new recovery codes?"
          confirmLabel="Make new codes"
          busy={busy}
          disabled={!password}
          error={error instanceof ApiError && error.code === 'INVALID_CREDENTIALS' ? null : error}
          onClose={() => {
            setOpen(false);
            setError(null);
            setPassword('');
          }}
          onConfirm={async () => {
            setBusy(true);
            setError(null);
            try {
              const a = await post<RecoveryCodes>('/account/mfa/recovery-codes', { body: { password } });
              setPassword('');
              setOpen(false);
              onCodes(a.data.recovery_codes);
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          <p>
            The new codes are shown once; the old ones stop working. This needs your password and a sign-in with your passkey
            in the last 10 minutes: if it has been longer, sign out and in again first.
          </p>
          <CurrentPassword value={password} onValue={setPassword} error={error} />
        </Confirm>
      ) : (
        <ProofDialog
          open={open}
          title="Make new recovery codes?"
          confirmLabel="Make new codes"
          intro="Prove it is you with a code from the app. The new codes are shown once; the old ones stop working."
          onClose={() => setOpen(false)}
          onProof={async (proof) => {
            const a = await post<RecoveryCodes>('/account/mfa/recovery-codes', { body: proof });
            setOpen(false);
            onCodes(a.data.recovery_codes);
          }}
        />
      )}
    </section>
  );
}

/** A code from the app (or, `withRecovery`, one recovery code) asked in a dialog. */
function ProofDialog({
  open,
  title,
  confirmLabel,
  danger,
  withRecovery,
  intro,
  onClose,
  onProof,
}: {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  withRecovery?: boolean;
  intro: string;
  onClose: () => void;
  onProof: (proof: FactorProof) => Promise<void>;
}) {
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!open) return;
    setError(null);
    setValue('');
    setRecovery(false);
  }, [open]);
  const wrong = error instanceof ApiError && error.code === 'INVALID_MFA_CODE';
  return (
    <Confirm
      open={open}
      title={title}
      confirmLabel={confirmLabel}
      danger={danger}
      busy={busy}
      disabled={!value.trim()}
      error={wrong ? null : error}
      onClose={onClose}
      onConfirm={async () => {
        const typed = recovery ? value.trim().toLowerCase() : value.replace(/\s+/g, '');
        if (!typed) return;
        setBusy(true);
        setError(null);
        try {
          await onProof(recovery ? { recovery_code: typed } : { code: typed });
        } catch (e) {
          setError(e);
          setValue('');
        } finally {
          setBusy(false);
        }
      }}
    >
      <p>{intro}</p>
      {recovery ? (
        <Field key="recovery-code" label="Recovery code" error={wrong ? 'Not accepted, or used already.' : null}>
          {(a) => <input {...a} name="recovery-code" autoComplete="off" autoCapitalize="none" spellcheck={false} maxLength={32} value={value} onInput={(e) => setValue(e.currentTarget.value)} />}
        </Field>
      ) : (
        <Field key="app-code" label="Code from the app" error={wrong ? 'Not accepted, or used already: wait for the next code.' : null}>
          {(a) => (
            <input {...a} name="one-time-code" autoComplete="one-time-code" inputMode="numeric" pattern="[0-9 ]*" maxLength={8} class="code-input" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
          )}
        </Field>
      )}
      {withRecovery && (
        <p>
          <button type="button" class="link-button" onClick={() => (setRecovery(!recovery), setValue(''), setError(null))}>
            {recovery ? 'Use a code from the app instead' : 'Use a recovery code instead'}
          </button>
        </p>
      )}
    </Confirm>
  );
}
