// A small router on the History API: the console's routes live under the build's base
// (/console/), the three mailed-link pages at the origin's root. The query string is state
// (search, filters, page) so a view can be shared and reloaded.
import { useEffect, useState } from 'preact/hooks';

const BASE = import.meta.env.BASE_URL.replace(/\/$/, '');
const listeners = new Set<() => void>();

/** The pages mailed links open, at the origin's root (`/verify-email#token=...`). */
export const MAILED_LINK_PAGES = ['/reset-password', '/accept-invitation', '/verify-email'];

export const href = (to: string) => (MAILED_LINK_PAGES.some((p) => to.startsWith(p)) ? to : BASE + to);

export function navigate(to: string, opts: { replace?: boolean } = {}) {
  const target = href(to);
  if (target === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', target);
  else history.pushState(null, '', target);
  for (const fn of listeners) fn();
}

/** Replaces the query string without a new history entry (search-as-you-type). */
export function setQuery(params: Record<string, string | undefined>) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v) q.set(k, v);
    else q.delete(k);
  }
  const s = q.toString();
  history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  for (const fn of listeners) fn();
}

export interface Location {
  /** The route inside the console: `/tenants/acme/members`, or `/reset-password` at the root. */
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  let path = location.pathname;
  if (path === BASE || path.startsWith(`${BASE}/`)) path = path.slice(BASE.length) || '/';
  path = path.replace(/\/+$/, '') || '/';
  return { path, query: new URLSearchParams(location.search) };
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const on = () => setLoc(current());
    listeners.add(on);
    addEventListener('popstate', on);
    return () => {
      listeners.delete(on);
      removeEventListener('popstate', on);
    };
  }, []);
  return loc;
}

/** Matches `/tenants/:slug/:tab?` style patterns; returns the named parts or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/');
  const s = path.split('/');
  const out: Record<string, string> = {};
  for (let i = 0; i < Math.max(p.length, s.length); i++) {
    const want = p[i];
    const got = s[i];
    if (want === undefined) return null;
    if (want.startsWith(':')) {
      const optional = want.endsWith('?');
      if (got === undefined || got === '') {
        if (optional) continue;
        return null;
      }
      out[want.slice(1).replace(/\?$/, '')] = decodeURIComponent(got);
    } else if (want !== got) return null;
  }
  return out;
}

/** Internal links: a plain click navigates in place; modified clicks open a tab as usual. */
export function onLinkClick(e: MouseEvent) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
  if (!a.pathname.startsWith(`${BASE}/`) && a.pathname !== BASE) return;
  e.preventDefault();
  history.pushState(null, '', a.pathname + a.search);
  for (const fn of listeners) fn();
}
