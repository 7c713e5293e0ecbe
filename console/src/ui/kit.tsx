// The console's own small components: error box, status chip, labelled field, dialog, pager,
// and the hooks that load data. No UI kit: each is a few lines of plain HTML with ARIA.
import type { ComponentChildren, JSX, Ref } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get } from '../api/client';
import type { MfaStatus } from '../api/types';
import { href } from '../router';
import { session } from '../session';

export function Link(props: JSX.HTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const { to, ...rest } = props;
  return <a href={href(to)} {...rest} />;
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  return (
    <div class="error-box" role="alert">
      <p class="error-title">
        <span aria-hidden="true">⚠ </span>
        {title ?? (e?.code === 'MFA_REQUIRED' ? 'Sign in again with your second factor' : 'The request failed')}
        {e && e.status ? ` (HTTP ${e.status})` : ''}
      </p>
      {e && (
        <p>
          <span class="label">Code</span> <code>{e.code}</code>
        </p>
      )}
      <p class="error-message">{message}</p>
      {e?.requestId && (
        <p class="request-id">
          <span class="label">Request id</span> <code>{e.requestId}</code> <CopyButton text={e.requestId} label="Copy request id" />
        </p>
      )}
      {e?.code === 'MFA_REQUIRED' && <SignInAgain />}
      {e?.code === 'IMPERSONATION_READ_ONLY' && (
        <p class="notice">
          You are acting as someone with read-only access: nothing was changed. To change things as them, stop and start again with write access (an owner of the tenant must
          approve it).
        </p>
      )}
    </div>
  );
}

/** 403 MFA_REQUIRED: the action needs a sign-in that passed a second factor (recently). Signed
 * out, the console asks for the password and the code, then comes back to this page; an
 * account without a factor is told to set one up first. */
function SignInAgain() {
  const [mfa, setMfa] = useState<MfaStatus | null>(null);
  useEffect(() => {
    get<MfaStatus>('/account/mfa').then((a) => setMfa(a.data), () => setMfa(null));
  }, []);
  if (mfa && !mfa.enrolled) {
    return (
      <p class="notice">
        Your account has no second factor yet. Add a passkey or an authenticator app under <Link to="/account">your account</Link>, then sign out and in again with
        it.
      </p>
    );
  }
  return (
    <div class="actions">
      <button type="button" class="primary" onClick={() => void session.signOut('Sign in again, with your passkey or a code from your authenticator app, to continue.')}>
        Sign in again
      </button>
    </div>
  );
}

export function CopyButton({ text, label, small = true }: { text: string; label: string; small?: boolean }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class={small ? 'small' : undefined}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          const ta = document.createElement('textarea');
          ta.value = text;
          document.body.append(ta);
          ta.select();
          document.execCommand('copy');
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 2000);
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

const STATUS_MARK: Record<string, string> = {
  active: '●',
  ok: '✓',
  provisioning: '◐',
  pending: '◐',
  suspended: '‖',
  deleted: '✕',
  error: '!',
  skipped: '–',
  terminated: '✕',
  invited: '✉',
  disabled: '✕',
  retired: '○',
  // feature flags: a flag's state, and a value on or off
  on: '●',
  off: '○',
  rollout: '◑',
  killed: '✕',
  // impersonation approvals
  approved: '✓',
  declined: '✕',
  used: '–',
  expired: '○',
};

/** A status in words, with a shape and colour beside it (never colour alone). */
export function Status({ value }: { value: string }) {
  return (
    <span class={`chip chip-${value}`}>
      <span aria-hidden="true">{STATUS_MARK[value] ?? '•'} </span>
      {value}
    </span>
  );
}

let fieldSeq = 0;
export function useId(prefix: string) {
  const ref = useRef<string>();
  if (!ref.current) ref.current = `${prefix}-${++fieldSeq}`;
  return ref.current;
}

interface FieldProps {
  label: string;
  hint?: ComponentChildren;
  error?: string | null;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ComponentChildren;
}

/** A label, the control, a hint and the field's own error, tied together for assistive tech. */
export function Field({ label, hint, error, children }: FieldProps) {
  const id = useId('f');
  const described = [hint ? `${id}-hint` : '', error ? `${id}-err` : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${error ? ' invalid' : ''}`}>
      <label for={id}>{label}</label>
      {hint && (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {children({ id, 'aria-describedby': described || undefined, 'aria-invalid': error ? true : undefined })}
      {error && (
        <p class="field-error" id={`${id}-err`}>
          <span aria-hidden="true">✕ </span>
          {error}
        </p>
      )}
    </div>
  );
}

/** Splits an API error into the field it names (shown on that field) and the rest. */
export function fieldErrors(e: unknown, fields: string[]): { byField: Record<string, string>; other: unknown } {
  if (e instanceof ApiError && e.field && fields.includes(e.field)) {
    return { byField: { [e.field]: e.message.slice(e.field.length + 1).trim() || e.message }, other: null };
  }
  return { byField: {}, other: e };
}

interface DialogProps {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ComponentChildren;
}

/** A native modal `<dialog>`: Escape closes it, focus goes back to the control that opened it. */
export function Dialog({ open, title, onClose, children }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLElement | null>(null);
  const titleId = useId('dlg');
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      opener.current = document.activeElement as HTMLElement | null;
      d.showModal();
    } else if (!open && d.open) {
      d.close();
    }
  }, [open]);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    const closed = () => {
      onClose();
      opener.current?.focus();
    };
    d.addEventListener('close', closed);
    return () => d.removeEventListener('close', closed);
  }, [onClose]);
  return (
    <dialog ref={ref as Ref<HTMLDialogElement>} aria-labelledby={titleId}>
      {open && (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
        </>
      )}
    </dialog>
  );
}

/** Loads data for a view; `reload` runs it again. Errors are kept for `ErrorBox`. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const run = useCallback(
    async (quiet = false) => {
      const mine = ++seq.current;
      if (!quiet) setState((s) => ({ ...s, loading: true }));
      try {
        const data = await load();
        if (mine === seq.current) setState({ data, error: null, loading: false });
      } catch (error) {
        if (mine === seq.current) setState((s) => ({ data: quiet ? s.data : null, error, loading: false }));
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    deps,
  );
  useEffect(() => {
    void run();
  }, [run]);
  return { ...state, reload: run };
}

/** Runs `fn` every `ms` while the page is visible (and once when it becomes visible again). */
export function useVisiblePoll(fn: () => void, ms: number | null) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (ms === null) return;
    let t: ReturnType<typeof setInterval> | undefined;
    const start = () => {
      clearInterval(t);
      if (document.visibilityState === 'visible') t = setInterval(() => saved.current(), ms);
    };
    const onVis = () => {
      if (document.visibilityState === 'visible') saved.current();
      start();
    };
    start();
    document.addEventListener('visibilitychange', onVis);
    return () => {
      clearInterval(t);
      document.removeEventListener('visibilitychange', onVis);
    };
  }, [ms]);
}

export function Pager({ hasPrev, next, onPrev, onNext, label }: { hasPrev: boolean; next: string | null; onPrev: () => void; onNext: () => void; label: string }) {
  if (!hasPrev && !next) return null;
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" onClick={onPrev} disabled={!hasPrev}>
        ← Previous page
      </button>
      <button type="button" onClick={onNext} disabled={!next}>
        Next page →
      </button>
    </nav>
  );
}

/** Cursor paging: a stack of the cursors that led to the current page. */
export function useCursorPages() {
  const [stack, setStack] = useState<string[]>([]);
  const cursor = stack[stack.length - 1];
  return {
    cursor,
    hasPrev: stack.length > 0,
    next: (c: string) => setStack((s) => [...s, c]),
    prev: () => setStack((s) => s.slice(0, -1)),
    reset: () => setStack([]),
  };
}

export function fmtTime(unixSeconds: number | null | undefined): string {
  if (unixSeconds === null || unixSeconds === undefined) return '—';
  return new Date(unixSeconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** Bytes in the largest unit that keeps a number of at least 1: "512 bytes", "1.5 MB", "1 GB"
 * (1 KB = 1024 bytes, as the plans' limits are set). */
export function fmtBytes(n: number): string {
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  if (Math.abs(n) < 1024) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  let v = n;
  let i = -1;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString();
  return `${shown} ${units[i]}`;
}

export function fmtAgo(unixSeconds: number | null | undefined): string {
  if (!unixSeconds) return 'never';
  const s = Math.round(Date.now() / 1000 - unixSeconds);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** When a refused try (429) may succeed again, from its `Retry-After`: "in 40 seconds". */
export function retryIn(e: ApiError): string {
  const s = e.retryAfter;
  if (s === null) return 'in a few minutes';
  if (s < 90) return `in ${Math.max(1, s)} seconds`;
  return `in about ${Math.round(s / 60)} minutes`;
}

export function idempotencyKey() {
  return `console-${crypto.randomUUID()}`;
}

/** Polite announcements for updates that arrive on their own (one live region for the app). */
export function announce(text: string) {
  const el = document.getElementById('live');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => {
    el.textContent = text;
  }, 50);
}

export function Confirm({ open, title, onClose, onConfirm, confirmLabel, danger, children, busy, error, disabled }: {
  open: boolean;
  title: string;
  onClose: () => void;
  onConfirm: () => void;
  confirmLabel: string;
  danger?: boolean;
  children: ComponentChildren;
  busy?: boolean;
  error?: unknown;
  disabled?: boolean;
}) {
  return (
    <Dialog open={open} title={title} onClose={onClose}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm();
        }}
      >
        {children}
        <ErrorBox error={error} />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class={danger ? 'danger' : 'primary'} disabled={busy || disabled}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
