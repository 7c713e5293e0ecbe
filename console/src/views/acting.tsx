// Impersonation: an operator acts as a member of one tenant for a few minutes. The banner every
// screen shows meanwhile, the notice after it ends, the "Act as" dialog (reason, read-only or
// write with an owner's approval), and the owners' list of requests to approve or decline
// (owners who are not operators: an operator never decides one).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get, post } from '../api/client';
import type { ApprovalListData, ImpersonationApproval, ImpersonationRequest, ImpersonationToken, Member } from '../api/types';
import { navigate, useLocation } from '../router';
import { session } from '../session';
import { Dialog, ErrorBox, Field, Status, announce, fmtTime, useId, useLoad } from '../ui/kit';
import { useWho } from '../who';

const mmss = (s: number) => `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;

/** Seconds left, ticking every second while `until` (Date.now() ms) is ahead. */
function useSecondsLeft(until: number | null): number {
  const left = () => (until === null ? 0 : Math.max(0, Math.ceil((until - Date.now()) / 1000)));
  const [s, setS] = useState(left);
  useEffect(() => {
    setS(left());
    if (until === null) return;
    const t = setInterval(() => setS(left()), 1000);
    return () => clearInterval(t);
  }, [until]);
  return s;
}

/** "Acting as <email> in <tenant> — read-only — mm:ss left — Stop", on every screen while it lasts. */
export function ActingBanner() {
  const a = session.acting;
  const left = useSecondsLeft(a?.expiresAt ?? null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (a && left === 60) announce('One minute of the impersonation is left.');
  }, [left]);
  if (!a) return null;
  const access = a.info.write ? 'read and write' : 'read-only';
  return (
    <section class={`acting-banner${a.info.write ? ' acting-write' : ''}`} aria-label="Impersonation">
      <p>
        <span class="acting-mark" aria-hidden="true">
          ◉
        </span>{' '}
        Acting as <strong class="acting-email">{a.info.user_email}</strong> in <strong class="acting-tenant">{a.info.tenant_slug}</strong>
        <span class="sep" aria-hidden="true">
          {' '}
          —{' '}
        </span>
        <span class="visually-hidden">, </span>
        <span class="acting-access">{access}</span>
        <span class="sep" aria-hidden="true">
          {' '}
          —{' '}
        </span>
        <span class="visually-hidden">, </span>
        <span class="acting-left">
          <time dateTime={`PT${left}S`}>{mmss(left)}</time> left
        </span>
      </p>
      <button
        type="button"
        class="acting-stop"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await session.stopActing();
          } catch {
            // Ended in this tab either way (the notice says so); the token lapses on its own.
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? 'Stopping…' : 'Stop'}
        <span class="visually-hidden"> acting as {a.info.user_email}</span>
      </button>
    </section>
  );
}

const ENDED: Record<'stopped' | 'expired' | 'refused', string> = {
  stopped: 'You stopped acting as',
  expired: 'Time ran out acting as',
  refused: 'The API no longer accepts the impersonation token (it was ended elsewhere or ran out) for',
};

/** After an impersonation: what ended and that this is the operator's own session again. */
export function ActingEndedNotice() {
  const ended = session.actingEnded;
  const loc = useLocation();
  const [arrived, setArrived] = useState(false);
  useEffect(() => {
    setArrived(false);
    if (ended) announce(`${ENDED[ended.why]} ${ended.email} in ${ended.tenant}. You are back in your own session.`);
  }, [ended]);
  // Shown on the page the console returns to (where it started); gone once the operator moves
  // on from there, or dismisses it.
  useEffect(() => {
    if (!ended) return;
    if (loc.path === ended.from) setArrived(true);
    else if (arrived) session.clearActingEnded();
  }, [ended, loc.path, arrived]);
  if (!ended) return null;
  return (
    <div class="notice acting-ended">
      <p>
        {ENDED[ended.why]} <strong>{ended.email}</strong> in <strong>{ended.tenant}</strong>. You are back in your own session.
      </p>
      <button type="button" class="small" onClick={() => session.clearActingEnded()}>
        Dismiss
      </button>
    </div>
  );
}

// ---------------------------------------------------------------- starting

const usable = (a: ImpersonationApproval, now: number) => a.status === 'approved' && a.expires_at > now;

/** "Act as" for one member: the dialog, then the console is theirs (in this one tenant). */
export function ActAs({ slug, member }: { slug: string; member: Member }) {
  const who = useWho();
  const loc = useLocation();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [scope, setScope] = useState<'read' | 'write'>('read');
  const [approvalId, setApprovalId] = useState('');
  const [reasonErr, setReasonErr] = useState<string | null>(null);
  const [approvalErr, setApprovalErr] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [requested, setRequested] = useState<ImpersonationApproval | null>(null);
  const [requestErr, setRequestErr] = useState<unknown>(null);
  const approvals = useLoad(
    () =>
      open && scope === 'write'
        ? get<ApprovalListData>('/tenants/{slug}/impersonation-approvals', { params: { slug } }).then((a) =>
            a.data.items.filter((x) => x.user_id === member.user_id && x.operator_id === who.userId).sort((x, y) => y.created_at - x.created_at),
          )
        : Promise.resolve(null),
    [open, scope, slug, member.user_id],
  );
  const now = Date.now() / 1000;
  const ready = (approvals.data ?? []).filter((x) => usable(x, now));
  const pending = (approvals.data ?? []).filter((x) => x.status === 'pending' && x.expires_at > now);
  useEffect(() => {
    // The newest usable approval is chosen unless one is already.
    if (!ready.some((x) => x.id === approvalId)) setApprovalId(ready[0]?.id ?? '');
  }, [approvals.data]);
  const reasonProblem = () => {
    const r = reason.trim();
    return r.length < 10 || r.length > 500 ? 'Say why in 10 to 500 characters: it is kept in the tenant\'s audit (and mailed to its owners for write access).' : null;
  };
  const close = () => {
    setOpen(false);
    setError(null);
    setReasonErr(null);
    setApprovalErr(null);
    setRequestErr(null);
  };
  const radios = useId('act');
  // A refusal shows at the foot of a dialog that may scroll: brought into view.
  const refusal = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (error) refusal.current?.scrollIntoView({ block: 'nearest' });
  }, [error]);

  const start = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setApprovalErr(null);
    const bad = reasonProblem();
    setReasonErr(bad);
    if (bad) return;
    if (scope === 'write' && !approvalId) return setApprovalErr('Write access needs an approved request: ask the owners below, or choose read-only.');
    setBusy(true);
    const body: ImpersonationRequest = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: member.user_id,
      subject_token_type: 'urn:saas-control-plane:token-type:user-id',
      tenant: slug,
      reason: reason.trim(),
      scope,
      ...(scope === 'write' ? { approval_id: approvalId } : {}),
    };
    try {
      const a = await post<ImpersonationToken>('/auth/impersonate', { body });
      session.startActing(a.data, loc.path);
      close();
      announce(`You are acting as ${a.data.impersonation.user_email} in ${slug}, ${a.data.impersonation.write ? 'read and write' : 'read-only'}, for ${Math.round(a.data.expires_in / 60)} minutes.`);
      navigate(`/tenants/${slug}/overview`);
    } catch (err) {
      if (err instanceof ApiError && err.field === 'reason') setReasonErr(err.message.replace(/^reason:\s*/, ''));
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  const requestApproval = async () => {
    setRequestErr(null);
    const bad = reasonProblem();
    setReasonErr(bad);
    if (bad) return;
    try {
      const a = await post<ImpersonationApproval>('/tenants/{slug}/impersonation-approvals', { params: { slug }, body: { user_id: member.user_id, reason: reason.trim() } });
      setRequested(a.data);
      announce("Approval requested: the tenant's owners were mailed.");
      void approvals.reload(true);
    } catch (err) {
      if (err instanceof ApiError && err.field === 'reason') setReasonErr(err.message.replace(/^reason:\s*/, ''));
      else setRequestErr(err);
    }
  };

  return (
    <>
      <button type="button" class="small" onClick={() => (setRequested(null), setOpen(true))}>
        Act as<span class="visually-hidden"> {member.email}</span>
      </button>
      <Dialog open={open} title={`Act as ${member.email}?`} onClose={close}>
        <form onSubmit={start} noValidate class="act-as">
          <p>
            For up to 15 minutes the console shows <strong>{slug}</strong> as they see it, and nothing else; Stop returns you to your own session. Every request is recorded in
            the tenant's audit under your name.
          </p>
          <Field label="Reason" hint="10 to 500 characters, such as the support ticket: recorded in the tenant's audit." error={reasonErr}>
            {(a) => <textarea {...a} name="act-reason" rows={2} maxLength={500} value={reason} onInput={(e) => (setReason(e.currentTarget.value), setReasonErr(null))} />}
          </Field>
          <fieldset class="access-choice">
            <legend>Access</legend>
            <div class="check">
              <input type="radio" id={`${radios}-read`} name="act-scope" value="read" checked={scope === 'read'} onChange={() => setScope('read')} />
              <label for={`${radios}-read`}>Read-only</label>
            </div>
            <p class="hint radio-hint">Every change is refused.</p>
            <div class="check">
              <input type="radio" id={`${radios}-write`} name="act-scope" value="write" checked={scope === 'write'} onChange={() => setScope('write')} />
              <label for={`${radios}-write`}>Read and write</label>
            </div>
            <p class="hint radio-hint">Needs an owner's approval (used once) and a sign-in with your second factor in the last 5 minutes. Their account settings stay out of reach.</p>
          </fieldset>
          {scope === 'write' && (
            <div class="approvals-pick">
              <ErrorBox error={approvals.error} title="Could not load the approvals" />
              {approvals.loading && !approvals.data && <p role="status">Loading the approvals…</p>}
              {approvals.data && ready.length > 0 && (
                <fieldset>
                  <legend>Approved request to use</legend>
                  {ready.map((x) => (
                    <div key={x.id}>
                      <div class="check">
                        <input type="radio" id={`appr-${x.id}`} name="act-approval" value={x.id} checked={approvalId === x.id} onChange={() => setApprovalId(x.id)} />
                        <label for={`appr-${x.id}`}>Approved {x.decided_at ? fmtTime(x.decided_at) : ''}</label>
                      </div>
                      <p class="hint radio-hint">
                        “{x.reason}” · usable once, until {fmtTime(x.expires_at)}
                      </p>
                    </div>
                  ))}
                </fieldset>
              )}
              {approvals.data && ready.length === 0 && (
                <div class="notice">
                  {requested ? (
                    <p role="status" class="ok-text">
                      ✓ Requested {fmtTime(requested.created_at)}: the owners of {slug} were mailed. Once one approves, check again.
                    </p>
                  ) : (
                    <p>
                      {pending.length
                        ? `Your request of ${fmtTime(pending[0]!.created_at)} is waiting for an owner of ${slug}.`
                        : `No approved request of yours to act as ${member.email} here. An owner of ${slug} must approve one (they are mailed).`}
                    </p>
                  )}
                  <div class="actions">
                    {!pending.length && !requested && (
                      <button type="button" onClick={() => void requestApproval()}>
                        Ask the owners to approve
                      </button>
                    )}
                    <button type="button" onClick={() => void approvals.reload(true)}>
                      Check again
                    </button>
                  </div>
                  <ErrorBox error={requestErr} title="Could not ask for approval" />
                </div>
              )}
              {approvalErr && (
                <p class="field-error" role="alert">
                  <span aria-hidden="true">✕ </span>
                  {approvalErr}
                </p>
              )}
            </div>
          )}
          <div ref={refusal}>
            <ErrorBox error={error} title={error instanceof ApiError && error.code === 'MFA_REQUIRED' ? undefined : `Could not act as ${member.email}`} />
          </div>
          <div class="actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Starting…' : `Start acting as ${member.email}`}
            </button>
          </div>
        </form>
      </Dialog>
    </>
  );
}

// ---------------------------------------------------------------- the owners' side

/** Requests to act as a member with write access, for this tenant's owners to answer. */
export function ApprovalRequests({ slug }: { slug: string }) {
  const list = useLoad(() => get<ApprovalListData>('/tenants/{slug}/impersonation-approvals', { params: { slug } }).then((a) => a.data.items), [slug]);
  const members = useLoad(
    () => get<{ items: Member[] }>('/tenants/{slug}/users', { params: { slug }, query: { limit: 100 } }).then((a) => new Map(a.data.items.map((m) => [m.user_id, m.email]))),
    [slug],
  );
  const now = Date.now() / 1000;
  const items = (list.data ?? []).filter((x) => x.status === 'pending' && x.expires_at > now).sort((a, b) => a.created_at - b.created_at);
  const [answered, setAnswered] = useState<ImpersonationApproval[]>([]);
  if (list.error) return <ErrorBox error={list.error} title="Could not load the requests to act as a member" />;
  if (!items.length && !answered.length) return null;
  return (
    <section class="approvals-card" aria-labelledby="approvals-h">
      <h2 id="approvals-h">Requests to act as a member</h2>
      <p class="hint">
        A platform operator asks to act as one of this tenant's members, able to change things, once. Approve only what you expect (a support case you opened, for instance).
      </p>
      {answered.map((x) => (
        <p key={x.id} role="status" class="ok-text">
          ✓ {x.status === 'approved' ? 'Approved' : 'Declined'}: acting as {members.data?.get(x.user_id) ?? x.user_id}.
        </p>
      ))}
      {items.length > 0 && (
        <ul class="plain approvals">
          {items.map((x) => (
            <ApprovalItem
              key={x.id}
              slug={slug}
              x={x}
              email={members.data?.get(x.user_id) ?? null}
              onAnswered={(y) => {
                setAnswered((a) => [...a, y]);
                void list.reload(true);
              }}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function ApprovalItem({ slug, x, email, onAnswered }: { slug: string; x: ImpersonationApproval; email: string | null; onAnswered: (a: ImpersonationApproval) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const who = email ?? x.user_id;
  const answer = async (what: 'approve' | 'decline') => {
    setBusy(true);
    setError(null);
    try {
      const path = what === 'approve' ? '/tenants/{slug}/impersonation-approvals/{approval_id}/approve' : '/tenants/{slug}/impersonation-approvals/{approval_id}/decline';
      const a = await post<ImpersonationApproval>(path, { params: { slug, approval_id: x.id } });
      announce(`${what === 'approve' ? 'Approved' : 'Declined'}: acting as ${who}.`);
      onAnswered(a.data);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <li class="approval" data-approval={x.id}>
      <p>
        {/* Owners know the operator by id only (they may not look operators up). */}
        <Status value={x.status} /> A platform operator (<code title={x.operator_id}>{x.operator_id.slice(0, 8)}…</code>) asks to act as <strong>{who}</strong>, with write
        access.
      </p>
      <p class="approval-reason">Reason: “{x.reason}”</p>
      <p class="hint">
        Asked {fmtTime(x.created_at)}; the request lapses {fmtTime(x.expires_at)}.
      </p>
      <div class="actions">
        <button type="button" class="primary" disabled={busy} onClick={() => void answer('approve')}>
          Approve<span class="visually-hidden"> acting as {who}</span>
        </button>
        <button type="button" disabled={busy} onClick={() => void answer('decline')}>
          Decline<span class="visually-hidden"> acting as {who}</span>
        </button>
      </div>
      <ErrorBox error={error} title="Could not answer the request" />
    </li>
  );
}
