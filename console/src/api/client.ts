// One way to call the API: the envelope unwrapped, errors as `ApiError` (code, message, request
// id), the access token attached and, on a 401, refreshed once and the call retried (never an
// impersonation token: a 401 on it ends the impersonation).
import type { ErrorCode, Paths } from './types';
import { config } from '../config';
import { session } from '../session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'NETWORK_ERROR' | 'BAD_RESPONSE' | string,
    message: string,
    readonly requestId: string | null,
    /** 429: seconds until a try may succeed (`Retry-After`), when the API said. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
  /** INVALID_FIELD messages start with the field's name: "slug: must be ...", or a nested
   * one's path ("entitlements.seats: must be ..."). */
  get field(): string | null {
    if (this.code !== 'INVALID_FIELD' && this.code !== 'VALIDATION_ERROR') return null;
    const m = /^([a-z_]+(?:\.[a-z_]+)*(?:\[\d+\])?):\s/.exec(this.message);
    return m ? m[1]!.replace(/\[\d+\]$/, '') : null;
  }
}

export interface Answer<T> {
  data: T;
  status: number;
  etag: string | null;
  requestId: string | null;
  replayed: boolean;
}

export interface CallOptions {
  params?: Record<string, string>;
  query?: Record<string, string | number | undefined | null>;
  body?: unknown;
  headers?: Record<string, string>;
  /** false for the routes that take no token (sign-in, recovery). */
  auth?: boolean;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The URL of a route of the contract: `path` must be one of the OpenAPI document's paths. */
export function url(path: Paths, params: Record<string, string> = {}, query: CallOptions['query'] = {}): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = params[k];
    if (v === undefined) throw new Error(`missing path parameter ${k}`);
    return encodeURIComponent(v);
  });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const q = qs.toString();
  return config().api + filled + (q ? `?${q}` : '');
}

function requestId(): string {
  return `console-${crypto.randomUUID()}`;
}

async function send(method: Method, target: string, opts: CallOptions, token: string | null) {
  const headers: Record<string, string> = { accept: 'application/json', 'x-request-id': requestId(), ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    return {
      sentId: headers['x-request-id']!,
      resp: await fetch(target, {
        method,
        headers,
        body: opts.body === undefined ? null : JSON.stringify(opts.body),
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      }),
    };
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'The API did not answer (network error or blocked by the browser).', headers['x-request-id']!);
  }
}

/** 401s about a credential in the body (a password asked again: adding a factor, changing the
 * password or the email), not about the token: the session stays, nothing is refreshed, and
 * the call is not sent twice (each try is counted). */
const BODY_CREDENTIAL_CODES: string[] = ['INVALID_CREDENTIALS'];

async function refusesBodyCredential(resp: Response): Promise<boolean> {
  try {
    const body = (await resp.clone().json()) as { error?: { code?: string } };
    return BODY_CREDENTIAL_CODES.includes(body.error?.code ?? '');
  } catch {
    return false;
  }
}

/** `Retry-After` in seconds (the API exposes the header across origins); else the number its
 * message names ("retry after 60 seconds"). */
function retryAfterOf(resp: Response, message: string | undefined): number | null {
  if (resp.status !== 429) return null;
  const h = Number.parseInt(resp.headers.get('retry-after') ?? '', 10);
  if (Number.isFinite(h) && h >= 0) return h;
  const m = /retry after (\d+)/i.exec(message ?? '');
  return m ? Number(m[1]) : null;
}

export async function call<T>(method: Method, path: Paths, opts: CallOptions = {}): Promise<Answer<T>> {
  const target = url(path, opts.params, opts.query);
  const auth = opts.auth !== false;
  let token = auth ? await session.accessToken() : null;
  // An impersonation token is never refreshed: a 401 on it ends the impersonation.
  const acting = session.isActingToken(token);
  let { resp, sentId } = await send(method, target, opts, token);
  if (resp.status === 401 && auth && token && !acting && !(await refusesBodyCredential(resp))) {
    // Once: the token may have expired in flight, or another tab rotated the session.
    token = await session.refreshAfter401(token);
    if (token) ({ resp, sentId } = await send(method, target, opts, token));
  }
  const rid = resp.headers.get('x-request-id') ?? sentId;
  let body: { success?: boolean; data?: T; error?: { code?: string; message?: string; request_id?: string } } | null = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok || !body || body.success !== true) {
    const err = body?.error;
    const e = new ApiError(
      resp.status,
      err?.code ?? 'BAD_RESPONSE',
      err?.message ?? `The API answered ${resp.status} without the usual envelope.`,
      err?.request_id ?? rid,
      retryAfterOf(resp, err?.message),
    );
    if (resp.status === 401 && auth && acting && token) session.actingRefused(token);
    else if (resp.status === 401 && auth && !BODY_CREDENTIAL_CODES.includes(e.code)) session.expired(e);
    // An operator without a second factor where operators must have one: only enrolling works.
    if (resp.status === 403 && e.code === 'MFA_ENROLLMENT_REQUIRED') session.setEnrolmentRequired(true);
    throw e;
  }
  return {
    data: body.data as T,
    status: resp.status,
    etag: resp.headers.get('etag'),
    requestId: rid,
    replayed: resp.headers.get('idempotent-replayed') === 'true',
  };
}

export const get = <T>(path: Paths, opts?: CallOptions) => call<T>('GET', path, opts);
export const post = <T>(path: Paths, opts?: CallOptions) => call<T>('POST', path, opts);
export const put = <T>(path: Paths, opts?: CallOptions) => call<T>('PUT', path, opts);
export const patch = <T>(path: Paths, opts?: CallOptions) => call<T>('PATCH', path, opts);
export const del = <T>(path: Paths, opts?: CallOptions) => call<T>('DELETE', path, opts);
