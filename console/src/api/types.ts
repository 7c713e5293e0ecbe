// Names for the API's shapes, all taken from the generated `schema.d.ts` (infra/openapi.yaml):
// a contract change shows up here as a type error, not as a surprise in the browser.
import type { components, paths } from './schema';

type S = components['schemas'];
type R = components['responses'];
type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type DataOf<T> = JsonOf<T> extends { data?: infer D } ? NonNullable<D> : never;

export type Paths = keyof paths;
export type Tenant = S['Tenant'];
export type TenantStatus = Tenant['status'];
export type Plan = Tenant['plan'];
export type StepStatus = S['StepStatus'];
export type TenantCreate = S['TenantCreate'];
export type TenantPatch = S['TenantPatch'];
export type TenantListData = DataOf<R['TenantList']>;
export type TenantCounts = TenantListData['counts'];
export type Partner = S['Partner'];
export type PartnerCreate = S['PartnerCreate'];
export type PartnerPatch = S['PartnerPatch'];
export type PartnerTenant = S['PartnerTenant'];
export type PartnerTenantListData = DataOf<R['PartnerTenantList']>;
export type PartnerAdmin = S['PartnerAdmin'];
export type Member = S['Member'];
export type Role = S['Role'];
export type AuditEntry = S['AuditEntry'];
export type Database = S['Database'];
export type DatabaseRegister = NonNullable<paths['/tenants/{slug}/databases']['post']['requestBody']>['content']['application/json'];
export type ReconcileReport = S['ReconcileReport'];
export type ErrorCode = S['ErrorCode'];
export type Tokens = DataOf<R['Tokens']>;
export type Me = NonNullable<JsonOf<paths['/auth/me']['get']['responses'][200]>['data']>;
/** An invitation the signed-in account has not answered yet (`GET /auth/me` `invitations`). */
export type Invitation = NonNullable<Me['invitations']>[number];
/** The answer to `POST`/`DELETE /tenants/{slug}/join`: the contract gives it only as an object;
 * these are the fields its description names. */
export type JoinAnswer = { tenant: string; role: Role; joined: boolean };
export type Page<T> = { items: T[]; next_cursor: string | null };
export type Origins = DataOf<R['Origins']>;
export type Jwk = S['Jwk'];

export const STATUSES: TenantStatus[] = ['provisioning', 'active', 'suspended', 'deleted'];
export const PLANS: Plan[] = ['free', 'pro', 'enterprise'];
export const ROLES: Role[] = ['owner', 'admin', 'member'];
