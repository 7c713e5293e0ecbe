// The signed-in session. The access token lives in this module's memory only; the refresh token
// in sessionStorage (never localStorage), so it dies with the tab. Refreshes happen shortly
// before expiry and once after a 401, one at a time across every tab of this origin (a Web
// Lock), and each new pair is handed to the other tabs (a BroadcastChannel): a spent refresh
// token is never presented again, so tabs never sign each other out. Signing out ends the
// session on the server and in every tab. An account with a second factor signs in in two
// steps: the password answers a short-lived challenge, which a code then exchanges for tokens.
// An operator may act as a member of one tenant for a few minutes: the impersonation token is
// used in place of the operator's while it lasts, in this tab's memory only, and is never
// refreshed; the operator's own session waits aside (not refreshed meanwhile) and is refreshed
// on return if its access token expired. Stopping, expiry, a 401 on the impersonation token or a
// closed tab all end it.
import { del, post, url, ApiError } from './api/client';
import type { Impersonation, ImpersonationEnded, ImpersonationToken, MfaMethod, SignInAnswer, Tokens } from './api/types';

type Audience = Tokens['audience'];
interface Stored {
  refresh: string;
  audience: Audience;
  email: string;
}
interface Access {
  token: string;
  exp: number;
  ttl: number;
}
type Message =
  | { type: 'hello' }
  | { type: 'tokens'; access: Access; stored: Stored }
  | { type: 'email'; email: string }
  | { type: 'logout'; reason: string };

/** An operator acting as a member of one tenant (`POST /auth/impersonate`). */
export interface Acting {
  token: string;
  /** Date.now() milliseconds when the token stops working. */
  expiresAt: number;
  info: Impersonation;
  /** Where the operator was when it started: the console goes back there when it ends. */
  from: string;
}

/** Why the last impersonation ended, for the notice the console shows after it. */
export interface ActingEnded {
  email: string;
  tenant: string;
  why: 'stopped' | 'expired' | 'refused';
  from: string;
}

/** The second step of a sign-in: the challenge is bound to the audience it was issued for. */
export interface MfaChallenge {
  token: string;
  audience: Audience;
  email: string;
  /** Date.now() milliseconds after which the challenge is gone (the password step again). */
  expiresAt: number;
  /** The factors the account has (an app code, a passkey) and recovery codes. */
  methods: MfaMethod[];
}
/** A code, a recovery code, or a passkey's assertion (`credential.toJSON()`). */
export type FactorAnswer = { code: string } | { recovery_code: string } | { passkey: unknown };

const KEY = 'console.session';
const LOCK = 'console.refresh';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readStored(): Stored | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Stored) : null;
  } catch {
    return null;
  }
}

class Session {
  private access: Access | null = null;
  private stored: Stored | null = readStored();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: Promise<string | null> | null = null;
  /** This tab holds the refresh lock for a call that ends the account's sessions (`rotate`). */
  private rotating = false;
  private listeners = new Set<() => void>();
  private chan: BroadcastChannel | null = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('console.session');
  /** Why the last session ended, shown on the sign-in page. */
  endedBecause = '';
  /** How many refreshes this tab made (the browser tests read it). */
  refreshes = 0;
  /** An API call answered 403 MFA_ENROLLMENT_REQUIRED: this operator must enrol a second
   * factor before anything else (the console shows the Account page until then). */
  enrolmentRequired = false;
  private actingAs: Acting | null = null;
  private actingTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last impersonation's end, until the console has shown it (`clearActingEnded`). */
  actingEnded: ActingEnded | null = null;

  constructor() {
    this.chan?.addEventListener('message', (ev: MessageEvent<Message>) => this.onMessage(ev.data));
    // A closed or reloaded tab takes the token with it (memory only): end it on the server too,
    // so the audit says when it stopped and nobody can use it meanwhile.
    if (typeof addEventListener !== 'undefined') addEventListener('pagehide', () => this.endActingOnServer());
  }

  /** The impersonation this tab is in, or null (the operator's own session). */
  get acting(): Acting | null {
    return this.actingAs;
  }

  /** Who the API sees: the signed-in account, or the member acted as (views reload on change). */
  get identity(): string {
    return this.actingAs ? `${this.email}|acting:${this.actingAs.info.id}` : this.email;
  }

  /** Adopts an impersonation token (the answer of `POST /auth/impersonate`). */
  startActing(t: ImpersonationToken, from: string) {
    // The token's own expiry, never later than what `expires_in` says counted from now.
    const byTtl = Date.now() + t.expires_in * 1000;
    const byClaim = t.impersonation.expires_at * 1000;
    const expiresAt = Math.min(byTtl, byClaim > 0 ? byClaim : byTtl);
    this.actingAs = { token: t.access_token, expiresAt, info: t.impersonation, from };
    this.actingEnded = null;
    // The operator's own token is not refreshed meanwhile (it is not used); on return it is.
    clearTimeout(this.timer);
    clearTimeout(this.actingTimer);
    this.actingTimer = setTimeout(() => this.endActing('expired'), Math.max(0, expiresAt - Date.now()));
    this.emit();
  }

  /** Stop: `DELETE /auth/impersonate` with the impersonation token, then back to the operator's
   * session. The local end happens even when the call fails (the token lapses on its own). */
  async stopActing(): Promise<ImpersonationEnded | null> {
    const a = this.actingAs;
    if (!a) return null;
    let answer: ImpersonationEnded | null = null;
    try {
      answer = (await del<ImpersonationEnded>('/auth/impersonate', { auth: false, headers: { authorization: `Bearer ${a.token}` } })).data;
    } finally {
      this.endActing('stopped');
    }
    return answer;
  }

  /** Whether `token` is the impersonation token (a 401 on it ends the impersonation, never the
   * operator's session, and is never answered with a refresh). */
  isActingToken(token: string | null): boolean {
    return !!token && this.actingAs?.token === token;
  }

  /** The API refused the impersonation token (401): it was ended elsewhere or ran out. */
  actingRefused(token: string) {
    if (this.actingAs?.token === token) this.endActing('refused');
  }

  clearActingEnded() {
    if (!this.actingEnded) return;
    this.actingEnded = null;
    this.emit();
  }

  private endActing(why: ActingEnded['why']) {
    const a = this.actingAs;
    clearTimeout(this.actingTimer);
    if (!a) return;
    this.actingAs = null;
    this.actingEnded = { email: a.info.user_email, tenant: a.info.tenant_slug, why, from: a.from };
    // The operator's session again: refreshed now if its token expired meanwhile, else on time.
    this.schedule();
    this.emit();
  }

  /** `DELETE /auth/impersonate` that outlives the page (`keepalive`), answered or not. */
  private endActingOnServer() {
    const a = this.actingAs;
    if (!a || a.expiresAt <= Date.now()) return;
    try {
      void fetch(url('/auth/impersonate'), {
        method: 'DELETE',
        headers: { authorization: `Bearer ${a.token}`, accept: 'application/json' },
        keepalive: true,
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      }).catch(() => undefined);
    } catch {
      // Best effort: the token lapses within minutes anyway.
    }
  }

  get signedIn() {
    return this.stored !== null;
  }
  get email() {
    return this.stored?.email ?? '';
  }
  get audience(): Audience | null {
    return this.stored?.audience ?? null;
  }

  subscribe(fn: () => void) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  private emit() {
    for (const fn of this.listeners) fn();
  }

  /** A new tab without a session asks the others for theirs (answered within a few ms). */
  async init(): Promise<void> {
    if (this.stored || !this.chan) return;
    this.post({ type: 'hello' });
    for (let i = 0; i < 10 && !this.stored; i++) await sleep(20);
  }

  /** The password step: signed in (null), or a second factor is asked (the challenge). */
  async signIn(email: string, password: string): Promise<MfaChallenge | null> {
    let answer: SignInAnswer;
    try {
      answer = (await post<SignInAnswer>('/auth/login', { auth: false, body: { email, password, audience: 'operator' } })).data;
    } catch (e) {
      // Not a platform operator: partner admins and tenant owners sign in with a portal session.
      if (!(e instanceof ApiError) || e.code !== 'OPERATOR_AUDIENCE_DENIED') throw e;
      answer = (await post<SignInAnswer>('/auth/login', { auth: false, body: { email, password, audience: 'portal' } })).data;
    }
    if ('mfa_required' in answer) {
      // Unnamed (not expected): the app code and a recovery code, as before passkeys.
      const methods = answer.methods?.length ? answer.methods : (['totp', 'recovery_code'] as MfaMethod[]);
      return { token: answer.mfa_token, audience: answer.audience, email, expiresAt: Date.now() + answer.expires_in * 1000, methods };
    }
    this.endedBecause = '';
    this.adopt(answer, email);
    return null;
  }

  /** The second step: a wrong code leaves the challenge usable (400 INVALID_MFA_CODE); an
   * expired or spent one is 401 INVALID_MFA_TOKEN (the password step again). */
  async completeSignIn(challenge: MfaChallenge, proof: FactorAnswer): Promise<void> {
    const tokens = (await post<Tokens>('/auth/mfa', { auth: false, body: { mfa_token: challenge.token, ...proof } })).data;
    this.endedBecause = '';
    this.adopt(tokens, challenge.email);
  }

  /** Runs an account call that ends every session of the account and answers this tab's new
   * tokens (a password change, "sign out all other sessions": this one continues as a new
   * session), then adopts them and hands them to this origin's other tabs. It holds the refresh
   * lock meanwhile: no tab of this origin refreshes during the call (that refresh would present
   * a token about to die, and its refusal would sign the tabs out; or, answered after the call,
   * bring the ended session back into this tab). A refusal leaves the session as it was. */
  async rotate(run: () => Promise<Tokens>): Promise<void> {
    const go = async () => {
      clearTimeout(this.timer);
      this.rotating = true;
      try {
        // A token that a refresh would replace soon is replaced now, so none is due meanwhile.
        if (this.access && this.access.exp - Date.now() < this.lead()) await this.refreshLocked(this.access.token);
        const tokens = await run();
        if (this.stored) this.adopt(tokens, this.stored.email);
      } finally {
        this.rotating = false;
        this.schedule();
      }
    };
    if (typeof navigator !== 'undefined' && navigator.locks) await navigator.locks.request(LOCK, go);
    else await go();
  }

  /** The account's address changed (a confirmed link): shown in the header of every tab. */
  emailChanged(email: string) {
    if (!this.stored || this.stored.email === email) return;
    this.stored = { ...this.stored, email };
    sessionStorage.setItem(KEY, JSON.stringify(this.stored));
    this.post({ type: 'email', email });
    this.emit();
  }

  /** Called by the API client on 403 MFA_ENROLLMENT_REQUIRED (and with false once enrolled). */
  setEnrolmentRequired(required: boolean) {
    if (this.enrolmentRequired === required) return;
    this.enrolmentRequired = required;
    this.emit();
  }

  private adopt(t: Tokens, email: string) {
    const ttl = t.expires_in * 1000;
    this.access = { token: t.access_token, exp: Date.now() + ttl, ttl };
    this.stored = { refresh: t.refresh_token, audience: t.audience, email };
    sessionStorage.setItem(KEY, JSON.stringify(this.stored));
    this.post({ type: 'tokens', access: this.access, stored: this.stored });
    this.schedule();
    this.emit();
  }

  /** How long before expiry a refresh starts: a fifth of the lifetime, between 2 s and 60 s. */
  private lead() {
    const ttl = this.access?.ttl ?? 900_000;
    return Math.min(60_000, Math.max(2_000, ttl / 5));
  }

  private schedule() {
    clearTimeout(this.timer);
    // During `rotate` nothing is due: it schedules once the call is answered. While acting as
    // someone the operator's token is not used: it is refreshed when the impersonation ends.
    if (!this.access || this.rotating || this.actingAs) return;
    const due = this.access.token;
    const delay = Math.max(0, this.access.exp - Date.now() - this.lead());
    this.timer = setTimeout(() => void this.refresh(due).catch(() => undefined), delay);
  }

  /** The token calls carry: the impersonation token while acting (never refreshed: once it has
   * run out the call is not sent at all, rather than sent as the operator), else the
   * operator's own, refreshed first when it is about to expire. */
  async accessToken(): Promise<string | null> {
    if (this.actingAs) {
      if (this.actingAs.expiresAt - Date.now() > 0) return this.actingAs.token;
      this.endActing('expired');
      throw new ApiError(401, 'IMPERSONATION_ENDED', 'The impersonation ran out of time before this request: nothing was sent. You are back in your own session.', null);
    }
    if (!this.stored) return null;
    if (this.access && this.access.exp - Date.now() > 1_000) return this.access.token;
    return this.refresh(this.access?.token ?? null);
  }

  /** After a 401: a new token, unless another tab already replaced the one refused. */
  refreshAfter401(refused: string): Promise<string | null> {
    return this.refresh(refused);
  }

  /** Replaces `due` (the token that is expiring or was refused); one refresh at a time. */
  private refresh(due: string | null): Promise<string | null> {
    // Inside `rotate` this tab holds the lock already (the call's token expired on the way, a
    // 401): refresh under it, not behind it.
    if (this.rotating) return this.refreshLocked(due);
    if (!this.inflight) {
      const run = () => this.refreshLocked(due);
      const locked: Promise<string | null> =
        typeof navigator !== 'undefined' && navigator.locks ? (navigator.locks.request(LOCK, run) as unknown as Promise<string | null>) : run();
      this.inflight = locked.finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async refreshLocked(due: string | null): Promise<string | null> {
    // The tab that held the lock before posted its new pair just before letting go.
    await sleep(25);
    if (!this.stored) return null;
    if (this.access && this.access.token !== due && this.access.exp - Date.now() > 1_000) {
      return this.access.token;
    }
    try {
      const t = (await post<Tokens>('/auth/refresh', { auth: false, body: { refresh_token: this.stored.refresh } })).data;
      this.refreshes++;
      this.adopt(t, this.stored.email);
      return t.access_token;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        this.end(e.code === 'ACCOUNT_SUSPENDED' ? 'Your account is suspended.' : 'Your session ended. Sign in again.', true);
        return null;
      }
      // A network error or 503: keep the session and try again shortly (after `rotate`, which
      // schedules when it ends).
      clearTimeout(this.timer);
      if (!this.rotating) this.timer = setTimeout(() => void this.refresh(due).catch(() => undefined), 3_000);
      throw e;
    }
  }

  /** A call was refused with 401 even after a refresh. */
  expired(e: ApiError) {
    if (e.code === 'INVALID_TOKEN' && this.access && this.access.exp - Date.now() > 1_000) return;
    this.end('Your session ended. Sign in again.', true);
  }

  async signOut(reason = 'You signed out.'): Promise<void> {
    if (this.actingAs) {
      try {
        await this.stopActing();
      } catch {
        // Ended here either way; the token lapses within minutes.
      }
    }
    const refresh = this.stored?.refresh;
    this.end(reason, true);
    if (refresh) {
      try {
        await post('/auth/logout', { auth: false, body: { refresh_token: refresh } });
      } catch {
        // The session is gone from every tab either way; the server's ends with its lifetime.
      }
    }
  }

  private end(reason: string, broadcast: boolean) {
    clearTimeout(this.timer);
    clearTimeout(this.actingTimer);
    if (this.actingAs) {
      this.endActingOnServer();
      this.actingAs = null;
    }
    this.actingEnded = null;
    const had = this.stored !== null;
    this.access = null;
    this.stored = null;
    this.enrolmentRequired = false;
    sessionStorage.removeItem(KEY);
    this.endedBecause = reason;
    if (broadcast && had) this.post({ type: 'logout', reason });
    this.emit();
  }

  private post(m: Message) {
    this.chan?.postMessage(m);
  }

  private onMessage(m: Message) {
    if (m.type === 'hello') {
      if (this.stored && this.access) this.post({ type: 'tokens', access: this.access, stored: this.stored });
    } else if (m.type === 'tokens') {
      const changed = !this.stored || this.stored.refresh !== m.stored.refresh;
      this.access = m.access;
      this.stored = m.stored;
      sessionStorage.setItem(KEY, JSON.stringify(m.stored));
      this.schedule();
      if (changed) this.emit();
    } else if (m.type === 'email') {
      if (!this.stored || this.stored.email === m.email) return;
      this.stored = { ...this.stored, email: m.email };
      sessionStorage.setItem(KEY, JSON.stringify(this.stored));
      this.emit();
    } else if (m.type === 'logout') {
      this.end(m.reason === 'You signed out.' ? 'You signed out in another tab.' : m.reason, false);
    }
  }
}

export const session = new Session();
// For the browser tests: counts only, never a token.
(globalThis as { __consoleSession?: { refreshes: () => number } }).__consoleSession = {
  refreshes: () => session.refreshes,
};
