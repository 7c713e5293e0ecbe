// Lookups several views share: partners by id (tenants carry partner ids), and a tenant's
// provisioning in one phrase.
import { get } from '../api/client';
import type { Page as ApiPage, Partner, Plan, PlanListData, Tenant, TenantListData, UserDetail, UserListData } from '../api/types';

let partnersCache: { at: number; list: Promise<Partner[]> } | null = null;

/** Every partner (operators only), cached for a few seconds. */
export function allPartners(fresh = false): Promise<Partner[]> {
  if (!fresh && partnersCache && Date.now() - partnersCache.at < 10_000) return partnersCache.list;
  const list = (async () => {
    const out: Partner[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: ApiPage<Partner> = (await get<ApiPage<Partner>>('/partners', { query: { limit: 100, cursor } })).data;
      out.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return out;
  })();
  partnersCache = { at: Date.now(), list };
  list.catch(() => {
    partnersCache = null;
  });
  return list;
}

export function forgetPartners() {
  partnersCache = null;
}

let plansCache: { at: number; list: Promise<Plan[]> } | null = null;

/** The plans this caller may see (operators: the whole catalogue; a partner admin: the active
 * plans their partner may sell), cached for a few seconds. */
export function planCatalogue(fresh = false): Promise<Plan[]> {
  if (!fresh && plansCache && Date.now() - plansCache.at < 10_000) return plansCache.list;
  const list = get<PlanListData>('/plans').then((a) => a.data.items);
  plansCache = { at: Date.now(), list };
  list.catch(() => {
    plansCache = null;
  });
  return list;
}

export function forgetPlans() {
  plansCache = null;
}

export function provisioningSummary(t: Pick<Tenant, 'provisioning' | 'status' | 'offboarding'>): string {
  // A partner admin's list shows a deleted tenant emptied: no provisioning, no offboarding.
  if (t.status === 'deleted' && !t.offboarding) return '—';
  if (t.status === 'deleted' && t.offboarding) {
    if (t.offboarding.purged_at) return 'purged';
    if (t.offboarding.retired_at) return 'retired';
    const steps = Object.entries(t.offboarding.steps ?? {});
    const failed = steps.filter(([, s]) => s.state === 'error').map(([n]) => n);
    return failed.length ? `offboarding error: ${failed.join(', ')}` : 'offboarding';
  }
  const steps = Object.entries(t.provisioning ?? {});
  if (!steps.length) return 'not started';
  const failed = steps.filter(([, s]) => s.state === 'error').map(([n]) => n);
  if (failed.length) return `error: ${failed.join(', ')}`;
  const done = steps.filter(([, s]) => s.state === 'ok' || s.state === 'skipped').length;
  return `${done}/${steps.length} ok`;
}

let tenantIndex: { at: number; map: Promise<Map<string, { slug: string; name: string }>> } | null = null;

/** Tenant id -> slug for operators (audit entries and partners carry ids): the first 1,000 tenants, cached. */
export function tenantsById(): Promise<Map<string, { slug: string; name: string }>> {
  if (tenantIndex && Date.now() - tenantIndex.at < 15_000) return tenantIndex.map;
  const map = (async () => {
    const out = new Map<string, { slug: string; name: string }>();
    // Deleted tenants may be listed only on request; both lists, up to 10 pages each.
    for (const status of ['', 'deleted']) {
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) {
        const page: TenantListData = (await get<TenantListData>('/tenants', { query: { limit: 100, cursor, status } })).data;
        for (const t of page.items) out.set(t.id, { slug: t.slug, name: t.name });
        cursor = page.next_cursor;
        if (!cursor) break;
      }
    }
    return out;
  })();
  tenantIndex = { at: Date.now(), map };
  map.catch(() => {
    tenantIndex = null;
  });
  return map;
}

let rolesCache: { at: number; roles: Promise<{ operators: Set<string>; partnerAdmins: Set<string> }> } | null = null;

/** The ids of operators and partner admins (operators only): the console offers no "Act as" for
 * them, as the API refuses it. A few pages of each; past those the API's refusal is shown. */
export function consoleRoles(): Promise<{ operators: Set<string>; partnerAdmins: Set<string> }> {
  if (rolesCache && Date.now() - rolesCache.at < 30_000) return rolesCache.roles;
  const ids = async (filter: 'operator' | 'partner_admin') => {
    const out = new Set<string>();
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const page: UserListData = (await get<UserListData>('/users', { query: { [filter]: 'true', limit: 100, cursor } })).data;
      for (const u of page.items) if (filter === 'operator' ? u.operator : u.partner_admin) out.add(u.user_id);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return out;
  };
  const roles = Promise.all([ids('operator'), ids('partner_admin')]).then(([operators, partnerAdmins]) => ({ operators, partnerAdmins }));
  rolesCache = { at: Date.now(), roles };
  roles.catch(() => {
    rolesCache = null;
  });
  return roles;
}

const userEmails = new Map<string, Promise<string | null>>();

/** A user's email by id (operators; null when unknown or not allowed), cached for the page's life. */
export function userEmail(id: string): Promise<string | null> {
  let p = userEmails.get(id);
  if (!p) {
    p = get<UserDetail>('/users/{user_id}', { params: { user_id: id } }).then(
      (a) => a.data.email,
      () => null,
    );
    userEmails.set(id, p);
  }
  return p;
}

/** A user id typed as such, or found by the exact email typed (operators). */
export async function userIdOf(typed: string): Promise<string | null> {
  const t = typed.trim();
  if (!t.includes('@')) return t;
  const page = (await get<UserListData>('/users', { query: { q: t.toLowerCase(), limit: 10 } })).data;
  return page.items.find((u) => u.email.toLowerCase() === t.toLowerCase())?.user_id ?? null;
}
