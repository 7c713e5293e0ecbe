// Signing in (with its second step for an account with a second factor: a passkey, an app's code or a recovery code), asking for a reset link, setting a password from a mailed link, and confirming a new address from one.
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, post, ApiError } from '../api/client';
import type { EmailVerified, Me, PasskeyRequest } from '../api/types';
import { Page } from '../App';
import { passkeysUnusableHere, assertPasskey, wrongDomain } from '../passkeys';
import { session, type MfaChallenge } from '../session';
import { ErrorBox, Field, Link, announce, idempotencyKey, retryIn } from '../ui/kit';
import { PasskeyProblem } from '../ui/passkey';

export function SignIn() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [challenge, setChallenge] = useState<MfaChallenge | null>(null);
  const [notice, setNotice] = useState('');
  if (challenge) {
    return (
      <SecondStep
        challenge={challenge}
        onRestart={(why) => {
          setChallenge(null);
          setPassword('');
          setError(null);
          setNotice(why);
        }}
      />
    );
  }
  const ended = notice || session.endedBecause;
  return (
    <Page title="Sign in">
      {ended && !error && (
        <p class="notice" role="status">
          {ended}
        </p>
      )}
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          setNotice('');
          try {
            const asked = await session.signIn(email.trim(), password);
            if (asked) {
              setChallenge(asked);
              setBusy(false);
            }
          } catch (err) {
            setError(err);
            setBusy(false);
          }
        }}
      >
        <Field label="Email">
          {(a) => <input {...a} type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />}
        </Field>
        <Field label="Password">
          {(a) => <input {...a} type="password" name="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
        </Field>
        <ErrorBox error={error} title={error instanceof ApiError && error.code === 'INVALID_CREDENTIALS' ? 'Wrong email or password' : 'Could not sign in'} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
          <Link to="/forgot-password">Forgot your password?</Link>
        </div>
      </form>
      <p class="fine">
        Platform operators get an operator session; partner admins and tenant owners and admins a portal session, and see what the API lets them change. The session
        stays in this browser tab; no cookie is set.
      </p>
    </Page>
  );
}

/** The second step of a sign-in, with what the account has (the challenge's `methods`): a
 * passkey (offered first), a code from the authenticator app, or one recovery code. A wrong
 * code or a refused passkey may be tried again with the same challenge; an expired one goes
 * back to the password. */
function SecondStep({ challenge, onRestart }: { challenge: MfaChallenge; onRestart: (why: string) => void }) {
  const hasPasskey = challenge.methods.includes('passkey');
  const hasApp = challenge.methods.includes('totp') || !hasPasskey;
  const unusable = hasPasskey ? passkeysUnusableHere() : null;
  const offerPasskey = hasPasskey && !unusable;
  // The code form: the app's code when the account has an app; else a recovery code on request.
  const [form, setForm] = useState<'code' | 'recovery' | null>(hasApp ? 'code' : unusable ? 'recovery' : null);
  const recovery = form === 'recovery';
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [waiting, setWaiting] = useState(false);
  const [passkeyError, setPasskeyError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  const passkeyButton = useRef<HTMLButtonElement>(null);
  const opened = useRef(false);
  // The challenge lives 5 minutes: then the password step again, said so.
  useEffect(() => {
    const t = setTimeout(() => onRestart('The sign-in took longer than 5 minutes. Enter your password again.'), Math.max(0, challenge.expiresAt - Date.now()));
    return () => clearTimeout(t);
  }, [challenge]);
  // First the passkey button when there is one; the field when the form changes.
  useEffect(() => {
    if (!opened.current && offerPasskey) passkeyButton.current?.focus();
    else input.current?.focus();
    opened.current = true;
  }, [form]);
  const expired = (err: unknown) => {
    if (err instanceof ApiError && err.code === 'INVALID_MFA_TOKEN') {
      onRestart('The sign-in expired or was already completed. Enter your password again.');
      return true;
    }
    return false;
  };
  const withPasskey = async () => {
    setWaiting(true);
    setPasskeyError(null);
    setError(null);
    try {
      const { options } = (await post<PasskeyRequest>('/auth/mfa/passkey', { auth: false, body: { mfa_token: challenge.token } })).data;
      const elsewhere = wrongDomain(options.rpId);
      if (elsewhere) throw new Error(`Your passkeys belong to ${elsewhere}: open the console there to use them${hasApp ? ', or enter a code here' : ', or use a recovery code here'}.`);
      announce('Waiting for your passkey: follow your browser’s prompt.');
      const assertion = await assertPasskey(options);
      await session.completeSignIn(challenge, { passkey: assertion });
    } catch (err) {
      if (expired(err)) return;
      setPasskeyError(err);
      setWaiting(false);
    }
  };
  // After a refusal the button (enabled again) takes focus, for another try.
  useEffect(() => {
    if (!waiting && passkeyError) passkeyButton.current?.focus();
  }, [waiting, passkeyError]);
  const refused = passkeyError instanceof ApiError && passkeyError.code === 'INVALID_MFA_CODE';
  const wrong = error instanceof ApiError && error.code === 'INVALID_MFA_CODE';
  const intro = recovery
    ? 'Enter one of the recovery codes you saved when you set up two-step sign-in. Each works once.'
    : offerPasskey
      ? hasApp
        ? 'Use your passkey, or enter the 6-digit code your authenticator app shows.'
        : 'Use your passkey: your device’s screen lock or your security key.'
      : 'Enter the 6-digit code your authenticator app shows.';
  return (
    <Page title="Two-step sign-in">
      <p>
        Signing in as <strong>{challenge.email}</strong>. {intro}
      </p>
      {hasPasskey && unusable && (
        <p class="notice">
          {unusable} {hasApp ? 'Enter a code from your authenticator app instead, or a recovery code.' : 'Use one of your recovery codes instead.'}
        </p>
      )}
      {offerPasskey && (
        <div class="passkey-step">
          <div class="actions">
            <button ref={passkeyButton} type="button" class="primary" disabled={waiting} onClick={() => void withPasskey()}>
              {waiting ? 'Waiting for your passkey…' : 'Use a passkey'}
            </button>
          </div>
          <PasskeyProblem
            error={passkeyError}
            what="get"
            title={
              refused
                ? `That passkey was not accepted: try another${hasApp ? ', or a code' : ', or a recovery code'}`
                : passkeyError instanceof ApiError && passkeyError.status === 429
                  ? 'Too many tries: wait a few minutes'
                  : 'Could not sign in with a passkey'
            }
          />
        </div>
      )}
      {form && offerPasskey && <h2 class="or">Or {recovery ? 'with a recovery code' : 'with a code'}</h2>}
      {form && (
        <form
          class="stack"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            const typed = recovery ? value.trim().toLowerCase() : value.replace(/\s+/g, '');
            if (!typed) return;
            setBusy(true);
            setError(null);
            setPasskeyError(null);
            try {
              await session.completeSignIn(challenge, recovery ? { recovery_code: typed } : { code: typed });
            } catch (err) {
              if (expired(err)) return;
              setError(err);
              setValue('');
              setBusy(false);
              input.current?.focus();
            }
          }}
        >
          {recovery ? (
            <Field key="recovery-code" label="Recovery code" hint="Such as abcde-23456; the hyphen is optional." error={wrong ? 'That recovery code is not valid, or was used already.' : null}>
              {(a) => (
                <input {...a} ref={input} name="recovery-code" autoComplete="off" autoCapitalize="none" spellcheck={false} maxLength={32} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
              )}
            </Field>
          ) : (
            <Field key="app-code" label="Code from your authenticator app" error={wrong ? 'That code is not valid, or was used already. Wait for the next one and try again.' : null}>
              {(a) => (
                <input
                  {...a}
                  ref={input}
                  name="one-time-code"
                  autoComplete="one-time-code"
                  inputMode="numeric"
                  pattern="[0-9 ]*"
                  maxLength={8}
                  class="code-input"
                  value={value}
                  onInput={(e) => setValue(e.currentTarget.value)}
                />
              )}
            </Field>
          )}
          {wrong ? (
            <p class="code-note" role="alert">
              Not accepted. <span class="label">Code</span> <code>INVALID_MFA_CODE</code>
              {error.requestId && (
                <>
                  {' '}
                  <span class="label">Request id</span> <code>{error.requestId}</code>
                </>
              )}
            </p>
          ) : (
            <ErrorBox error={error} title={error instanceof ApiError && error.status === 429 ? 'Too many wrong codes: wait a few minutes' : 'Could not sign in'} />
          )}
          <div class="actions">
            <button type="submit" class={offerPasskey ? undefined : 'primary'} disabled={busy || !value.trim()}>
              {busy ? 'Checking…' : 'Verify and sign in'}
            </button>
            {hasApp && (
              <button
                type="button"
                onClick={() => {
                  setForm(recovery ? 'code' : 'recovery');
                  setValue('');
                  setError(null);
                }}
              >
                {recovery ? 'Use the authenticator app' : 'Use a recovery code'}
              </button>
            )}
          </div>
        </form>
      )}
      {!form && (
        <div class="actions">
          <button type="button" onClick={() => setForm('recovery')}>
            Use a recovery code
          </button>
        </div>
      )}
      <p>
        <button type="button" class="link-button" onClick={() => onRestart('')}>
          Start over with another account
        </button>
      </p>
    </Page>
  );
}

export function ForgotPassword() {
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Page title="Forgot password">
      {sent ? (
        <div role="status" class="notice">
          <p>If an account exists for that address, a link to choose a new password is on its way. It is valid for 30 minutes; asking again replaces it.</p>
        </div>
      ) : (
        <form
          class="stack"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            setError(null);
            try {
              await post('/auth/forgot-password', { auth: false, body: { email: email.trim() } });
              setSent(true);
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          <p>Enter your account's email. The answer is the same for every address.</p>
          <Field label="Email">
            {(a) => <input {...a} type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />}
          </Field>
          <ErrorBox error={error} />
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Sending…' : 'Send the link'}
            </button>
          </div>
        </form>
      )}
      <p>
        <Link to="/sign-in">Back to sign in</Link>
      </p>
    </Page>
  );
}

/** The password policy, as the API applies it (400 WEAK_PASSWORD otherwise). */
export const PASSWORD_RULES = ['12 to 128 characters', 'not a common password', 'not your email address'];

/** Reset password and accept invitation: the token came in the fragment (already removed from the address bar). */
export function TokenPassword({ kind, token }: { kind: 'reset' | 'invitation'; token: string | null }) {
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [key] = useState(idempotencyKey);
  const title = kind === 'reset' ? 'Choose a new password' : 'Accept your invitation';
  const mismatch = confirm !== '' && confirm !== password;
  const weak = error instanceof ApiError && error.code === 'WEAK_PASSWORD' ? error.message : null;
  if (!token) {
    return (
      <Page title={title}>
        <p role="alert" class="notice">
          This page needs the link from your email. Open the link exactly as it was mailed{kind === 'reset' ? ', or ask for a new one' : ''}.
        </p>
        <p>{kind === 'reset' ? <Link to="/forgot-password">Ask for a new link</Link> : <Link to="/sign-in">Sign in</Link>}</p>
      </Page>
    );
  }
  if (done) {
    return (
      <Page title={kind === 'reset' ? 'Password changed' : 'Invitation accepted'}>
        <p role="status" class="notice">
          {kind === 'reset' ? 'Your password was changed and every session of your account was ended.' : 'Your account is active.'} Sign in with the new password.
        </p>
        <p>
          <Link to="/sign-in">Sign in</Link>
        </p>
      </Page>
    );
  }
  return (
    <Page title={title}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (mismatch) return;
          setBusy(true);
          setError(null);
          try {
            await post(kind === 'reset' ? '/auth/reset-password' : '/auth/accept-invitation', {
              auth: false,
              body: { token, password },
              headers: { 'idempotency-key': key },
            });
            setDone(true);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field
          label={kind === 'reset' ? 'New password' : 'Password'}
          hint={
            <>
              Rules: <span>{PASSWORD_RULES.join('; ')}.</span>
            </>
          }
          error={weak}
        >
          {(a) => (
            <input {...a} type="password" name="new-password" autoComplete="new-password" required minLength={12} maxLength={128} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          )}
        </Field>
        <Field label="The same password again" error={mismatch ? 'The two passwords differ.' : null}>
          {(a) => <input {...a} type="password" name="confirm-password" autoComplete="new-password" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />}
        </Field>
        {!weak && (
          <ErrorBox
            error={error}
            title={error instanceof ApiError && error.code === 'INVALID_OR_EXPIRED_TOKEN' ? 'This link is no longer valid (used, replaced or expired)' : undefined}
          />
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : kind === 'reset' ? 'Change the password' : 'Accept and set the password'}
          </button>
        </div>
      </form>
    </Page>
  );
}

/** The link mailed to a new address (`/verify-email#token=...`; the token already removed from
 * the address bar): a button moves the account onto it. A session this browser holds keeps
 * working; the header then shows the new address (read from `/auth/me`). */
export function VerifyEmail({ token }: { token: string | null }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ email: string; signedInHere: boolean } | null>(null);
  const code = error instanceof ApiError ? error.code : null;
  const final = code === 'INVALID_OR_EXPIRED_TOKEN' || code === 'EMAIL_TAKEN';
  if (!token) {
    return (
      <Page title="Confirm your new email address">
        <p role="alert" class="notice">
          This page needs the link from your email. Open the link exactly as it was mailed to your new address.
        </p>
        <p>
          <Link to="/account">Your account</Link>
        </p>
      </Page>
    );
  }
  if (done) {
    return (
      <Page title="Email address changed">
        <p role="status" class="notice">
          Your address is now <strong class="wrap">{done.email}</strong>. Sign in with it from now on; your password is unchanged.
          {done.signedInHere && ' This browser is still signed in.'}
        </p>
        <p>{done.signedInHere ? <Link to="/account">Your account</Link> : <Link to="/sign-in">Sign in</Link>}</p>
      </Page>
    );
  }
  return (
    <Page title="Confirm your new email address">
      <p>Confirming moves your account onto the address this link was mailed to: you sign in with it from then on, and mail about your account goes there.</p>
      {!final && (
        <div class="actions">
          <button
            type="button"
            class="primary"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                const changed = (await post<EmailVerified>('/auth/verify-email', { auth: false, body: { token } })).data;
                let signedInHere = false;
                if (session.signedIn) {
                  // The session this browser holds (perhaps another account's) names its address anew.
                  try {
                    const me = (await get<Me>('/auth/me')).data;
                    session.emailChanged(me.user.email);
                    signedInHere = me.user.email === changed.email;
                  } catch {
                    // The change stands; the header catches up at the next sign-in.
                  }
                }
                setDone({ email: changed.email, signedInHere });
              } catch (err) {
                setError(err);
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? 'Confirming…' : 'Confirm my new address'}
          </button>
        </div>
      )}
      <ErrorBox
        error={error}
        title={
          code === 'INVALID_OR_EXPIRED_TOKEN'
            ? 'This link is no longer valid (used, expired, or cancelled by a password change)'
            : code === 'EMAIL_TAKEN'
              ? 'That address belongs to another account now'
              : error instanceof ApiError && error.status === 429
                ? `Too many tries from this network: try again ${retryIn(error)}`
                : 'Could not confirm the address'
        }
      />
      {final && (
        <p>
          Your address has not changed. To move it, ask again under <Link to="/account">your account</Link>
          {code === 'EMAIL_TAKEN' ? ', with another address' : ''}.
        </p>
      )}
    </Page>
  );
}
