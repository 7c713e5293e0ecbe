// Names for the API's shapes, all taken from the generated `schema.d.ts` (infra/openapi.yaml):
// a contract change shows up here as a type error, not as a surprise in the browser.
import type { components, paths } from './schema';

type S = components['schemas'];
type R = components['responses'];
type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type DataOf<T> = JsonOf<T> extends { data?: infer D } ? NonNullable<D> : never;

/** The contract's paths, and the passkey routes until `infra/openapi.yaml` names them (then
 * `npm run gen` lists them in `schema.d.ts` and this union adds nothing). */
export type Paths = keyof paths | PasskeyPaths;
type PasskeyPaths = '/account/mfa/passkeys' | '/account/mfa/passkeys/options' | '/account/mfa/passkeys/{id}' | '/auth/mfa/passkey';
export type Tenant = S['Tenant'];
export type TenantStatus = Tenant['status'];
/** A plan's id (`free`, `pro`, `enterprise`, or one an operator added to the catalogue). */
export type PlanId = S['PlanId'];
export type StepStatus = S['StepStatus'];
export type TenantCreate = S['TenantCreate'];
export type TenantPatch = S['TenantPatch'];
/** `PATCH /tenants/{slug}`: the tenant, and when its plan changed the entitlements it now exceeds. */
export type TenantPatched = DataOf<R['TenantPatched']>;
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
/** `POST /auth/login`: the tokens, or (an account with a second factor) the challenge for `POST /auth/mfa`. */
export type SignInAnswer = DataOf<R['SignIn']>;
export type MfaChallengeAnswer = Extract<SignInAnswer, { mfa_required: true }>;
/** What the second step of a sign-in takes (the challenge's `methods`). */
export type MfaMethod = 'totp' | 'passkey' | 'recovery_code';
export type Me = NonNullable<JsonOf<paths['/auth/me']['get']['responses'][200]>['data']>;
/** An invitation the signed-in account has not answered yet (`GET /auth/me` `invitations`). */
export type Invitation = NonNullable<Me['invitations']>[number];
/** The answer to `POST`/`DELETE /tenants/{slug}/join`: the contract gives it only as an object;
 * these are the fields its description names. */
export type JoinAnswer = { tenant: string; role: Role; joined: boolean };
export type Page<T> = { items: T[]; next_cursor: string | null };
export type Origins = DataOf<R['Origins']>;
export type Jwk = S['Jwk'];

// Plans: the catalogue (operators), and a tenant's usage against its plan.
export type Plan = S['Plan'];
export type PlanStatus = Plan['status'];
export type Entitlements = S['Entitlements'];
export type PlanCreate = S['PlanCreate'];
export type PlanPatch = S['PlanPatch'];
export type PlanListData = DataOf<R['PlanList']>;
/** `DELETE /plans/{plan_id}`. */
export type PlanDeleted = NonNullable<JsonOf<paths['/plans/{plan_id}']['delete']['responses'][200]>['data']>;
export type Usage = S['Usage'];
export type UsageMeter = S['UsageMeter'];
/** An entitlement whose usage is counted (the keys of `Usage['usage']`). */
export type Entitlement = S['Entitlement'];

// Accounts: the operators' user directory and everyone's own account.
/** `user_view` also carries `mfa` (whether a second factor is enrolled); the contract's `User`
 * does not list it yet, so it is optional here. */
export type User = S['User'] & { mfa?: boolean };
export type UserStatus = User['status'];
export type UserListItem = User & { partner_admin: boolean };
export type UserListData = { items: UserListItem[]; next_cursor: string | null };
export type Session = S['Session'];
export type AccountMembership = S['AccountMembership'];
/** An invitation the user has not answered; the contract gives only `object`, these are the
 * fields the API sends (the store's `Invite`, as `GET /auth/me` lists them). */
export type PendingInvite = { tenant_id: string; tenant_slug: string; role: Role; invited_by: string; invited_at: number; expires_at: number };
export type UserDetail = Omit<DataOf<R['UserDetail']>, 'invitations'> & { mfa?: boolean; invitations: PendingInvite[] };
export type UserChange = { user: User; changed: boolean };
export type Account = DataOf<R['Account']> & { mfa?: boolean };
export type SessionListData = DataOf<R['SessionList']>;
// The second-factor routes answer `Object` in the contract: these are the shapes the API sends.
/** `GET /account/mfa`. `required` is the account's operator flag, not whether this deployment
 * requires a factor (403 `MFA_ENROLLMENT_REQUIRED` says that). */
export type MfaStatus = {
  enrolled: boolean;
  totp: { confirmed: boolean; pending: boolean; created_at: number | null };
  recovery_codes_left: number;
  required: boolean;
  passkeys: Passkey[];
  /** false when the platform's origin is an IP address: WebAuthn refuses those as relying parties. */
  passkeys_available: boolean;
};
/** A passkey (WebAuthn credential) of one's account. */
export type Passkey = { id: string; name: string; created_at: number; last_used_at: number | null };
/** `POST /account/mfa/passkeys/options`: for `PublicKeyCredential.parseCreationOptionsFromJSON`. */
export type PasskeyCreation = { options: PublicKeyCredentialCreationOptionsJSON; expires_in: number };
/** `POST /account/mfa/passkeys` (201): the ten recovery codes only when it is the first factor. */
export type PasskeyAdded = { passkey: Passkey; recovery_codes?: string[] };
/** `POST /auth/mfa/passkey`: for `PublicKeyCredential.parseRequestOptionsFromJSON`. */
export type PasskeyRequest = { options: PublicKeyCredentialRequestOptionsJSON };
/** `POST /account/mfa/totp`. */
export type TotpStart = { secret: string; otpauth_uri: string; digits: number; period: number };
/** `POST /account/mfa/totp/confirm` and `POST /account/mfa/recovery-codes`. */
export type RecoveryCodes = { recovery_codes: string[] };
export type FactorProof = S['FactorProof'];
// A new password or a new address (`POST /account/password` answers `Tokens`).
/** `POST /account/email` (202), the same whether or not the address has an account: the contract
 * gives only `object`, these are the fields the API sends. */
export type EmailChangeAnswer = { verification_sent: boolean; expires_in: number };
/** `POST /auth/verify-email`: the contract gives only `object`, these are the fields the API sends. */
export type EmailVerified = { email_changed: boolean; email: string };
export const USER_STATUSES: UserStatus[] = ['active', 'invited', 'disabled'];

export const STATUSES: TenantStatus[] = ['provisioning', 'active', 'suspended', 'deleted'];
/** The built-in plans, which every deployment has (new tenants choose among them). */
export const PLANS: PlanId[] = ['free', 'pro', 'enterprise'];
/** The counted entitlements, in the order the Plan card shows them. */
export const ENTITLEMENTS: Entitlement[] = ['seats', 'stored_bytes', 'stored_objects', 'databases'];
export const ROLES: Role[] = ['owner', 'admin', 'member'];

// Feature flags (operators), and a tenant's flags as its members see them.
export type Flag = S['Flag'];
export type FlagState = S['FlagState'];
export type FlagAxis = S['FlagAxis'];
export type FlagOverride = S['FlagOverride'];
export type FlagCreate = S['FlagCreate'];
export type FlagPatch = S['FlagPatch'];
export type FlagReason = S['FlagReason'];
export type FlagEvaluation = S['FlagEvaluation'];
export type TenantFlag = S['TenantFlag'];
export type FlagListData = DataOf<R['FlagList']>;
export type TenantFlagListData = DataOf<R['TenantFlagList']>;
/** `DELETE /flags/{key}`. */
export type FlagDeleted = NonNullable<JsonOf<paths['/flags/{key}']['delete']['responses'][200]>['data']>;
export const FLAG_AXES: FlagAxis[] = ['user', 'tenant', 'partner', 'plan'];

// Impersonation: an operator acting as a member of one tenant, and the owners' approvals.
export type ImpersonationApproval = S['ImpersonationApproval'];
export type ApprovalListData = DataOf<R['ApprovalList']>;
export type ImpersonationRequest = S['ImpersonationRequest'];
export type ImpersonationToken = S['ImpersonationToken'];
export type Impersonation = S['Impersonation'];
/** `DELETE /auth/impersonate`. */
export type ImpersonationEnded = NonNullable<JsonOf<paths['/auth/impersonate']['delete']['responses'][200]>['data']>;
