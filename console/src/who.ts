// Who is signed in and what the API lets them do; the console shows only what the API would
// accept, and says why an action is unavailable.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { get, ApiError } from './api/client';
import type { Invitation, Me, TenantListData } from './api/types';
import { session } from './session';

export interface Who {
  userId: string;
  email: string;
  /** Operator audience and the stored platform-admin flag: every route. */
  operator: boolean;
  /** A portal session that may list tenants: a partner's admin (that partner's tenants). */
  partnerAdmin: boolean;
  /** Tenants this user owns or administers. */
  manages: { slug: string; role: string }[];
  /** Tenants this account was invited to and has not answered (it holds nothing there yet). */
  invitations: Invitation[];
  /** An operator acting as this user (an impersonation token): the one tenant it may see. */
  acting: { tenant: string; role: string | null; write: boolean } | null;
}

export async function loadWho(): Promise<Who> {
  const me = (await get<Me>('/auth/me')).data;
  const acting = session.acting;
  if (acting) {
    // The token sees one tenant: the console offers that tenant alone, with the user's role there.
    const slug = acting.info.tenant_slug;
    const role = me.memberships.find((m) => m.tenant_slug === slug)?.role ?? null;
    return {
      userId: me.user.id,
      email: me.user.email,
      operator: false,
      partnerAdmin: false,
      manages: role && role !== 'member' ? [{ slug, role }] : [],
      invitations: [],
      acting: { tenant: slug, role, write: me.impersonation?.write ?? acting.info.write },
    };
  }
  const operator = me.audience === 'operator' && me.user.platform_admin;
  let partnerAdmin = false;
  if (!operator) {
    try {
      await get<TenantListData>('/tenants', { query: { limit: 1 } });
      partnerAdmin = true;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 403) throw e;
    }
  }
  return {
    userId: me.user.id,
    email: me.user.email,
    operator,
    partnerAdmin,
    manages: me.memberships.filter((m) => m.role !== 'member').map((m) => ({ slug: m.tenant_slug, role: m.role })),
    invitations: [...(me.invitations ?? [])].sort((a, b) => a.expires_at - b.expires_at || a.tenant_slug.localeCompare(b.tenant_slug)),
    acting: null,
  };
}

export const WhoContext = createContext<Who | null>(null);
export function useWho(): Who {
  const w = useContext(WhoContext);
  if (!w) throw new Error('useWho outside a signed-in view');
  return w;
}

/** Reads `/auth/me` again (after the account's own memberships changed, e.g. an invitation
 * answered): every view that shows who they are, or their tenants, follows. */
export const ReloadWhoContext = createContext<() => Promise<Who>>(() => Promise.reject(new Error('no signed-in view')));
export function useReloadWho(): () => Promise<Who> {
  return useContext(ReloadWhoContext);
}

/** Operators only: the reason shown beside a disabled control otherwise. */
export const OPERATORS_ONLY = 'Only platform operators may do this.';
