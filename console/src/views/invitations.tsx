// Invitations waiting for the signed-in account (`GET /auth/me`, `invitations`): an existing
// account invited to a tenant holds nothing there until it accepts (`POST /tenants/{slug}/join`)
// or declines (`DELETE`). After either, who they are is read again, so a tenant just joined shows
// in the lists at once.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, del, post } from '../api/client';
import type { Invitation, JoinAnswer } from '../api/types';
import { Confirm, ErrorBox, announce, fmtTime, useId } from '../ui/kit';
import { useReloadWho, useWho } from '../who';

// What was just done, for the section of the page shown next: accepting a first tenant to manage
// swaps "Nothing to operate" for "My tenants", and this line goes with it.
let carried = '';

/** The section, shown only while invitations wait; what was last done stays below it. */
export function Invitations({ onAnswered }: { onAnswered?: () => void }) {
  const who = useWho();
  const reloadWho = useReloadWho();
  const headingId = useId('inv');
  const [busy, setBusy] = useState(false);
  const [declining, setDeclining] = useState<Invitation | null>(null);
  const [declineError, setDeclineError] = useState<unknown>(null);
  const [failure, setFailure] = useState<{ error: unknown; title: string } | null>(null);
  const [outcome, setOutcome] = useState(() => {
    const text = carried;
    carried = '';
    return text;
  });
  const outcomeRef = useRef<HTMLParagraphElement>(null);
  const answered = useRef(false);
  const list = who.invitations;

  // The button pressed is gone with its row: focus goes to what happened, not to the page's top.
  // (On a page that replaced this one, its heading takes the focus instead.)
  useEffect(() => {
    if (outcome && answered.current && (document.activeElement === document.body || !document.activeElement)) outcomeRef.current?.focus();
    answered.current = false;
  }, [outcome]);

  async function answer(inv: Invitation, accept: boolean) {
    const slug = inv.tenant_slug;
    setBusy(true);
    setFailure(null);
    setDeclineError(null);
    setOutcome('');
    let done = '';
    try {
      const opts = { params: { slug } };
      const a = accept ? await post<JoinAnswer>('/tenants/{slug}/join', opts) : await del<JoinAnswer>('/tenants/{slug}/join', opts);
      done = accept ? `You joined ${a.data.tenant ?? slug} as ${a.data.role ?? inv.role}.` : `You declined the invitation to ${slug}.`;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        // Nothing changed: the invitation is still there to try again.
        if (accept) setFailure({ error: e, title: `Could not accept the invitation to ${slug}` });
        else setDeclineError(e);
        setBusy(false);
        return;
      }
      // Expired, withdrawn, already answered elsewhere or the tenant deleted: read the list again.
      setFailure({ error: e, title: 'This invitation is no longer valid' });
      announce(`The invitation to ${slug} is no longer valid.`);
    }
    carried = done;
    try {
      await reloadWho();
      onAnswered?.();
    } catch (e) {
      setFailure({ error: e, title: 'Could not read your invitations and tenants again' });
    }
    carried = '';
    setDeclining(null);
    setBusy(false);
    if (done) {
      answered.current = true;
      setOutcome(done);
      announce(done);
    }
  }

  return (
    <>
      {list.length > 0 && (
        <section aria-labelledby={headingId} class="invitations">
          <h2 id={headingId}>Invitations</h2>
          <p>You were invited to these tenants. You hold no role in one until you accept.</p>
          <table class="cards">
            <caption class="visually-hidden">Invitations waiting for your answer</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Role</th>
                <th scope="col">Expires</th>
                <th scope="col">Answer</th>
              </tr>
            </thead>
            <tbody>
              {list.map((inv) => (
                <tr key={inv.tenant_id} data-slug={inv.tenant_slug}>
                  <th scope="row" data-label="Tenant">
                    <code>{inv.tenant_slug}</code>
                  </th>
                  <td data-label="Role">{inv.role}</td>
                  <td data-label="Expires">{fmtTime(inv.expires_at)}</td>
                  <td data-label="Answer">
                    <div class="actions">
                      <button type="button" class="small primary" disabled={busy} onClick={() => void answer(inv, true)}>
                        Accept<span class="visually-hidden"> the invitation to {inv.tenant_slug}</span>
                      </button>
                      <button
                        type="button"
                        class="small"
                        disabled={busy}
                        onClick={() => {
                          setDeclineError(null);
                          setDeclining(inv);
                        }}
                      >
                        Decline<span class="visually-hidden"> the invitation to {inv.tenant_slug}</span>
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <Confirm
        open={declining !== null}
        title={`Decline the invitation to ${declining?.tenant_slug ?? ''}?`}
        confirmLabel="Decline invitation"
        danger
        busy={busy}
        error={declineError}
        onClose={() => setDeclining(null)}
        onConfirm={() => declining && void answer(declining, false)}
      >
        <p>
          You will not join <code>{declining?.tenant_slug}</code> as {declining?.role}. To join later, someone who manages it has to invite you again.
        </p>
      </Confirm>
      {failure && <ErrorBox error={failure.error} title={failure.title} />}
      {outcome && (
        <p class="ok-text" ref={outcomeRef} tabIndex={-1}>
          ✓ {outcome}
        </p>
      )}
    </>
  );
}
