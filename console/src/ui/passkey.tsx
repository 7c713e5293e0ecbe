// A passkey ceremony's failure, said where it happened: the browser's refusal (cancelled, timed
// out, a device already registered) in words, or the API's error box.
import { ErrorBox } from './kit';
import { ceremonyRefusal } from '../passkeys';

export function PasskeyProblem({ error, what, title }: { error: unknown; what: 'create' | 'get'; title: string }) {
  if (!error) return null;
  const refusal = ceremonyRefusal(error, what);
  if (!refusal) return <ErrorBox error={error} title={title} />;
  return (
    <div class="error-box" role="alert" data-refusal={(error as DOMException).name}>
      <p class="error-title">
        <span aria-hidden="true">⚠ </span>
        {refusal.title}
      </p>
      <p class="error-message">{refusal.text}</p>
    </div>
  );
}
