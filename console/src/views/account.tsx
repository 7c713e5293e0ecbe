// One's own account, for everyone signed in: the display name, the sessions (devices) with a
// sign-out each, and two-step sign-in (an authenticator app, TOTP, with recovery codes shown
// once). An operator who must enrol a factor first is sent here and told why.
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, get, patch, post, ApiError } from '../api/client';
import type { Account, MfaStatus, RecoveryCodes, Session, SessionListData, Tokens, TotpStart, User } from '../api/types';
import { Page } from '../App';
import { session } from '../session';
import { Confirm, CopyButton, ErrorBox, Field, Link, announce, fieldErrors, fmtTime, useLoad } from '../ui/kit';
import { QrCode } from '../ui/qr';
import { useWho } from '../who';
import { SessionTable } from './sessions';

export function AccountPage() {
  const account = useLoad(() => get<Account>('/account').then((a) => a.data), []);
  const enrolling = session.enrolmentRequired;
  return (
    <Page title="Your account">
      {enrolling && (
        <div class="notice" role="alert">
          <p>
            <strong>Set up two-step sign-in to continue.</strong> Platform operators here must sign in with a second factor. Add an authenticator app below, then sign in
            again with it: the rest of the console opens then.
          </p>
        </div>
      )}
      <ErrorBox error={account.error} title="Could not load your account" />
      {account.data && <Profile account={account.data} onSaved={() => void account.reload(true)} />}
      <SecondFactor />
      {enrolling ? (
        <section aria-labelledby="sessions-h">
          <h2 id="sessions-h">Where you are signed in</h2>
          <p class="muted">Your sessions are listed once two-step sign-in is set up.</p>
        </section>
      ) : (
        <Sessions />
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
            const a = await del<Tokens>('/account/sessions');
            session.replaceTokens(a.data);
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

function SecondFactor() {
  const status = useLoad(() => get<MfaStatus>('/account/mfa').then((a) => a.data), []);
  const [setup, setSetup] = useState<TotpStart | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const [asking, setAsking] = useState(false);
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
  let body;
  if (codes) {
    body = (
      <ShowRecoveryCodes
        codes={codes}
        onDone={() => {
          setCodes(null);
          // Where operators must have a factor, this session's token predates it (403
          // MFA_REQUIRED everywhere): a sign-in with the new app opens the console.
          if (session.enrolmentRequired) {
            void session.signOut('Two-step sign-in is set up. Sign in again, with a code from the app, to continue.');
            return;
          }
          setDone('Two-step sign-in is on.');
          void status.reload(true);
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
          setCodes(c);
          announce('Authenticator app confirmed. Save your recovery codes.');
        }}
      />
    );
  } else if (st && st.enrolled) {
    body = <Enrolled status={st} onCodes={setCodes} onRemoved={() => (setDone('Two-step sign-in is off.'), void status.reload(true))} />;
  } else if (st) {
    body = (
      <>
        <p>
          <span class="chip chip-disabled">off</span> Signing in asks only for your password. With two-step sign-in it also asks for a 6-digit code from an authenticator app on
          your phone (such as Google Authenticator, Microsoft Authenticator, 1Password or Aegis), so a stolen password is not enough.
        </p>
        {st.totp.pending && <p class="hint">You started setting up an app earlier without confirming it; starting again replaces that one.</p>}
        {asking ? (
          <PasswordAgain busy={busy} onCancel={() => setAsking(false)} onPassword={start} />
        ) : (
          <div class="actions">
            <button type="button" class="primary" onClick={() => setAsking(true)}>
              Set up an authenticator app
            </button>
          </div>
        )}
      </>
    );
  }
  return (
    <section aria-labelledby="mfa-h" id="two-step">
      <h2 id="mfa-h">Two-step sign-in</h2>
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
        If you lose your phone, each of these codes signs you in once instead of the app. <strong>They are shown only now</strong>: store them somewhere safe, such as a
        password manager.
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

function Enrolled({ status, onCodes, onRemoved }: { status: MfaStatus; onCodes: (codes: string[]) => void; onRemoved: () => void }) {
  const [open, setOpen] = useState<'renew' | 'remove' | null>(null);
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const left = status.recovery_codes_left;
  const removeWhy = status.required ? 'Operators keep a second factor. If you lose your phone, another operator can reset it for you.' : null;
  const openDialog = (what: 'renew' | 'remove') => {
    setError(null);
    setValue('');
    setRecovery(false);
    setOpen(what);
  };
  const submit = async () => {
    const typed = recovery ? value.trim().toLowerCase() : value.replace(/\s+/g, '');
    if (!typed) return;
    setBusy(true);
    setError(null);
    try {
      const proof = recovery ? { recovery_code: typed } : { code: typed };
      if (open === 'renew') {
        const a = await post<RecoveryCodes>('/account/mfa/recovery-codes', { body: proof });
        setOpen(null);
        onCodes(a.data.recovery_codes);
      } else {
        await del('/account/mfa/totp', { body: proof });
        setOpen(null);
        announce('Two-step sign-in removed.');
        onRemoved();
      }
    } catch (e) {
      setError(e);
      setValue('');
    } finally {
      setBusy(false);
    }
  };
  const wrong = error instanceof ApiError && error.code === 'INVALID_MFA_CODE';
  return (
    <>
      <p>
        <span class="chip chip-active">on</span> Signing in asks for a code from your authenticator app after the password.
      </p>
      <dl class="facts">
        <dt>Authenticator app</dt>
        <dd>added {fmtTime(status.totp.created_at)}</dd>
        <dt>Recovery codes left</dt>
        <dd class={left <= 3 ? 'warn' : ''}>
          <span class="codes-left">{left}</span> of 10{left <= 3 ? ': make new ones soon' : ''}
        </dd>
      </dl>
      <div class="danger-row">
        <div>
          <h3>New recovery codes</h3>
          <p>Ten new codes; the ones you have stop working.</p>
        </div>
        <button type="button" onClick={() => openDialog('renew')}>
          New recovery codes
        </button>
      </div>
      <div class="danger-row">
        <div>
          <h3>Turn off two-step sign-in</h3>
          <p>Removes the authenticator app and the recovery codes; signing in then asks only for your password.</p>
          {removeWhy && (
            <p class="hint" id="remove-why">
              {removeWhy}
            </p>
          )}
        </div>
        <button type="button" class="danger" disabled={!!removeWhy} aria-describedby={removeWhy ? 'remove-why' : undefined} onClick={() => openDialog('remove')}>
          Turn off
        </button>
      </div>
      <Confirm
        open={open !== null}
        title={open === 'renew' ? 'Make new recovery codes?' : 'Turn off two-step sign-in?'}
        confirmLabel={open === 'renew' ? 'Make new codes' : 'Turn off'}
        danger={open === 'remove'}
        busy={busy}
        disabled={!value.trim()}
        error={wrong ? null : error}
        onClose={() => setOpen(null)}
        onConfirm={() => void submit()}
      >
        <p>{open === 'renew' ? 'Prove it is you with a code from the app. The new codes are shown once; the old ones stop working.' : 'Prove it is you with a code from the app, or with one of your recovery codes.'}</p>
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
        {open === 'remove' && (
          <p>
            <button type="button" class="link-button" onClick={() => (setRecovery(!recovery), setValue(''), setError(null))}>
              {recovery ? 'Use a code from the app instead' : 'Use a recovery code instead'}
            </button>
          </p>
        )}
      </Confirm>
    </>
  );
}
