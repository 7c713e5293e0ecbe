//! Commits, all or nothing: every condition is checked under the one lock before anything
//! is applied, as DynamoDB checks a transaction.

use super::*;
use crate::store::changes::{AuditEntry, Change, CommitError, OutboxEvent, Refusal, MAX_CHANGES};

fn member_role(d: &Data, user: &UserId, tenant: &TenantId) -> Option<Role> {
    d.memberships
        .get(user)
        .and_then(|ms| ms.iter().find(|m| &m.tenant_id == tenant))
        .map(|m| m.role)
}

/// What refuses `change` against `d`, if its condition fails.
fn refusal(d: &Data, change: &Change) -> Option<Refusal> {
    let refused = match change {
        Change::CreateTenant(t) => {
            if d.slugs.contains_key(&t.slug) {
                return Some(Refusal::SlugTaken);
            }
            d.tenants.contains_key(&t.id)
        }
        Change::UpdateTenant {
            tenant,
            expect_version,
        } => d
            .tenants
            .get(&tenant.id)
            .is_none_or(|t| t.version != *expect_version),
        Change::CreateUser(u) => {
            if d.emails.contains_key(&u.email) {
                return Some(Refusal::EmailTaken);
            }
            d.users.contains_key(&u.id)
        }
        Change::UpdateUser { user, before, .. } | Change::DeleteUser { user, before, .. } => {
            let epoch_moved = match change {
                Change::UpdateUser { edit, .. } => edit.expect_epoch,
                _ => None,
            };
            let factors_moved = match change {
                Change::UpdateUser { edit, .. } => edit.factors.map(|(was, _)| was),
                _ => None,
            };
            if d.users.get(user).is_none_or(|u| {
                u.account() != *before
                    || epoch_moved.is_some_and(|e| e != u.session_epoch)
                    || factors_moved.is_some_and(|f| f != u.factors)
            }) {
                return Some(Refusal::UserMoved);
            }
            let delta = change.operator_delta();
            if delta < 0 && d.operators.unwrap_or(0) + delta < 1 {
                return Some(Refusal::LastOperator);
            }
            false
        }
        Change::AddMembership { user, tenant, .. } => member_role(d, user, &tenant.id).is_some(),
        Change::ChangeRole {
            user, tenant, from, ..
        } => member_role(d, user, tenant) != Some(*from),
        Change::RemoveMembership { user, tenant, role } => {
            member_role(d, user, tenant) != Some(*role)
        }
        Change::PutInvite {
            user,
            invite,
            replaces,
        } => {
            let live = d
                .invites
                .get(&(user.clone(), invite.tenant_id.clone()))
                .is_some_and(|i| i.expires_at > invite.invited_at);
            live != *replaces
        }
        Change::TakeInvite { user, tenant } => {
            !d.invites.contains_key(&(user.clone(), tenant.clone()))
        }
        Change::AdjustOwners { tenant, by } => d
            .tenants
            .get(tenant)
            .is_none_or(|t| *by < 0 && i64::from(t.owners) + by < 1),
        Change::SetRedirectOrigins { tenant, before, .. } => d
            .tenants
            .get(tenant)
            .is_none_or(|t| &t.redirect_origins != before),
        Change::CreatePartner(p) => {
            if d.partner_slugs.contains_key(&p.slug) {
                return Some(Refusal::SlugTaken);
            }
            d.partners.contains_key(&p.id)
        }
        Change::UpdatePartner {
            partner,
            expect_version,
        } => d
            .partners
            .get(&partner.id)
            .is_none_or(|p| p.version != *expect_version),
        Change::PartnerCounts {
            partner,
            require_active,
            cap,
            ..
        } => d.partners.get(partner).is_none_or(|p| {
            (*require_active && p.status != crate::domain::partner::PartnerStatus::Active)
                || cap.is_some_and(|cap| p.tenant_count() >= cap)
        }),
        Change::GrantPartnerAdmin { user, partner } => d
            .partner_admins
            .get(user)
            .is_some_and(|ps| ps.contains(partner)),
        Change::RevokePartnerAdmin { user, partner } => !d
            .partner_admins
            .get(user)
            .is_some_and(|ps| ps.contains(partner)),
        Change::PutDatabase(db) => d.databases.contains_key(&db.id),
        Change::DeleteDatabase { id, tenant } => {
            d.databases.get(id).is_none_or(|db| &db.tenant != tenant)
        }
        Change::Audit(a) => d
            .audit
            .get(&a.scope)
            .is_some_and(|es| es.iter().any(|e| e.id == a.id)),
        Change::Count { .. } => false,
        Change::Quota {
            scope,
            name,
            by,
            cap,
        } => {
            *by > 0
                && d.counters
                    .get(&(format!("QUOTA#{scope}"), name.clone()))
                    .is_some_and(|n| n >= cap)
        }
        Change::SavePlan {
            plan,
            expect_version,
        } => d.plans.get(&plan.id).map_or(0, |p| p.version) != *expect_version,
        Change::DeletePlan { id } => d.plans.get(id).is_none_or(|p| p.tenants > 0),
        Change::UsePlan { plan, by } => match d.plans.get(&plan.id) {
            Some(p) => *by > 0 && !p.open(),
            None => !plan.builtin(),
        },
        Change::RecordObject {
            tenant,
            key,
            before,
            ..
        } => {
            d.objects
                .get(&(tenant.clone(), key.clone()))
                .map(|m| &m.sequencer)
                != before.as_ref().map(|b| &b.sequencer)
        }
        Change::SetQuotas { scope, values } => values.iter().any(|(name, read, _)| {
            d.counters.get(&(format!("QUOTA#{scope}"), name.clone())) != read.as_ref()
        }),
        Change::SaveFlag {
            flag,
            expect_version,
        } => d.flags.get(&flag.key).map_or(0, |f| f.version) != *expect_version,
        Change::DeleteFlag {
            key,
            expect_version,
        } => d
            .flags
            .get(key)
            .is_none_or(|f| f.version != *expect_version),
        Change::KillList { .. } => false,
        Change::PutApproval(a) => d.approvals.contains_key(&a.id),
        Change::DecideApproval { id, from, at, .. } => d
            .approvals
            .get(id)
            .is_none_or(|a| a.status != *from || a.expires_at <= *at),
        Change::RevokeImpersonation { id, .. } => d.revoked.contains_key(id),
        Change::OpenImpersonation(o) => d.open_impersonations.contains_key(&o.id),
        Change::CloseImpersonation { id, .. } => !d.open_impersonations.contains_key(id),
        Change::Outbox(e) => d.outbox.contains_key(&e.id),
        Change::RevokeSession { session_id, user } => d
            .sessions
            .get(session_id)
            .is_none_or(|s| &s.user_id != user),
        Change::ClaimHash { email, user, .. } => d.emails.get(email) != Some(user),
        Change::PutEmailChange(c) => d.email_changes.contains_key(&c.hash),
        Change::ChangeEmail {
            hash,
            now,
            user,
            from,
            to,
            ..
        } => {
            if d.email_changes
                .get(hash)
                .is_none_or(|c| c.expires_at <= *now)
            {
                return Some(Refusal::TokenGone);
            }
            if d.emails.contains_key(to) {
                return Some(Refusal::EmailTaken);
            }
            d.users.get(user).is_none_or(|u| &u.email != from) || d.emails.get(from) != Some(user)
        }
        Change::PutTotp { user, .. } => d.totp.get(user).is_some_and(|t| t.confirmed),
        Change::ConfirmTotp { user, sealed, .. } => d
            .totp
            .get(user)
            .is_none_or(|t| t.confirmed || &t.sealed != sealed),
        Change::UseTotp { user, step } => d
            .totp
            .get(user)
            .is_none_or(|t| !t.confirmed || t.last_step >= *step),
        Change::PutRecoveryCodes { .. } | Change::RemoveFactors { .. } => false,
        Change::UseRecoveryCode { user, hash } => !d
            .recovery
            .get(user)
            .is_some_and(|codes| codes.contains(hash)),
        Change::PutChallenge(c) => d.challenges.contains_key(&c.hash),
        Change::ChallengePasskey { hash, now, .. } => {
            d.challenges.get(hash).is_none_or(|c| c.expires_at <= *now)
        }
        Change::PutPendingPasskey { .. } => false,
        Change::AddPasskey {
            user,
            passkey,
            pending_state,
            now,
        } => {
            if d.pending_passkeys
                .get(user)
                .is_none_or(|p| &p.state != pending_state || p.expires_at <= *now)
            {
                return Some(Refusal::ChallengeGone);
            }
            if d.passkeys
                .get(user)
                .is_some_and(|all| all.iter().any(|p| p.id == passkey.id))
            {
                return Some(Refusal::FactorExists);
            }
            false
        }
        Change::UsePasskey {
            user, id, before, ..
        } => d
            .passkeys
            .get(user)
            .and_then(|all| all.iter().find(|p| &p.id == id))
            .is_none_or(|p| &p.state != before),
        Change::RenamePasskey { user, id, .. } => d
            .passkeys
            .get(user)
            .is_none_or(|all| !all.iter().any(|p| &p.id == id)),
        Change::SpendChallenge { hash, now } => {
            d.challenges.get(hash).is_none_or(|c| c.expires_at <= *now)
        }
    };
    refused.then(|| change.refusal(false))
}

fn apply(d: &mut Data, change: Change) {
    match change {
        Change::CreateTenant(t) => {
            d.slugs.insert(t.slug.clone(), t.id.clone());
            d.tenants.insert(t.id.clone(), t);
        }
        Change::UpdateTenant { tenant, .. } => {
            if let Some(t) = d.tenants.get_mut(&tenant.id) {
                // Only the fields an update writes; owners and origins have their own changes.
                let (owners, origins) = (t.owners, t.redirect_origins.clone());
                *t = tenant;
                t.owners = owners;
                t.redirect_origins = origins;
            }
        }
        Change::CreateUser(u) => {
            d.count_operators(u.account().operator_weight());
            d.emails.insert(u.email.clone(), u.id.clone());
            d.claim_hashes
                .insert(u.email.clone(), u.password_hash.clone());
            d.users.insert(u.id.clone(), u);
        }
        Change::UpdateUser { user, edit, before } => {
            let delta = edit.account.unwrap_or(before).operator_weight() - before.operator_weight();
            d.count_operators(delta);
            if let Some(u) = d.users.get_mut(&user) {
                if let Some(a) = edit.account {
                    u.status = a.status;
                    u.platform_admin = a.platform_admin;
                }
                if let Some(name) = edit.name {
                    u.name = name;
                }
                if let Some((_, now)) = edit.factors {
                    u.factors = now;
                }
                if let Some(hash) = edit.password_hash {
                    u.password_hash = hash;
                }
                if edit.end_sessions {
                    u.session_epoch += 1;
                }
            }
        }
        Change::DeleteUser {
            user,
            email,
            before,
        } => {
            d.count_operators(-before.operator_weight());
            d.users.remove(&user);
            d.emails.remove(&email);
            d.claim_hashes.remove(&email);
        }
        Change::AddMembership {
            user,
            tenant,
            role,
            at,
        } => {
            d.member_added.insert((user.clone(), tenant.id.clone()), at);
            let list = d.memberships.entry(user).or_default();
            list.push(Membership {
                tenant_id: tenant.id.clone(),
                tenant_slug: tenant.slug.to_string(),
                role,
            });
            list.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        }
        Change::ChangeRole {
            user, tenant, to, ..
        } => {
            if let Some(m) = d
                .memberships
                .get_mut(&user)
                .and_then(|ms| ms.iter_mut().find(|m| m.tenant_id == tenant))
            {
                m.role = to;
            }
        }
        Change::PutInvite { user, invite, .. } => {
            d.invites.insert((user, invite.tenant_id.clone()), invite);
        }
        Change::TakeInvite { user, tenant } => {
            d.invites.remove(&(user, tenant));
        }
        Change::RemoveMembership { user, tenant, .. } => {
            if let Some(ms) = d.memberships.get_mut(&user) {
                ms.retain(|m| m.tenant_id != tenant);
            }
            d.member_added.remove(&(user, tenant));
        }
        Change::AdjustOwners { tenant, by } => {
            if let Some(t) = d.tenants.get_mut(&tenant) {
                t.owners = u32::try_from(i64::from(t.owners) + by).unwrap_or(0);
            }
        }
        Change::SetRedirectOrigins {
            tenant, origins, ..
        } => {
            if let Some(t) = d.tenants.get_mut(&tenant) {
                t.redirect_origins = origins;
                t.version += 1;
            }
        }
        Change::CreatePartner(p) => {
            d.partner_slugs.insert(p.slug.clone(), p.id.clone());
            d.partners.insert(p.id.clone(), p);
        }
        Change::UpdatePartner { partner, .. } => {
            if let Some(p) = d.partners.get_mut(&partner.id) {
                let counts = std::mem::take(&mut p.tenant_counts);
                *p = partner;
                p.tenant_counts = counts;
            }
        }
        // The live count is the sum of the counts by status but `deleted` here
        // (`Partner::tenant_count`); the table keeps it as its own attribute, for the cap's
        // condition.
        Change::PartnerCounts {
            partner, deltas, ..
        } => {
            if let Some(p) = d.partners.get_mut(&partner) {
                for (status, by) in deltas {
                    *p.tenant_counts
                        .entry(status.as_str().to_string())
                        .or_default() += by;
                }
            }
        }
        Change::GrantPartnerAdmin { user, partner } => {
            let list = d.partner_admins.entry(user).or_default();
            list.push(partner);
            list.sort();
        }
        Change::RevokePartnerAdmin { user, partner } => {
            if let Some(list) = d.partner_admins.get_mut(&user) {
                list.retain(|p| p != &partner);
            }
        }
        Change::PutDatabase(db) => {
            d.databases.insert(db.id.clone(), db);
        }
        Change::DeleteDatabase { id, .. } => {
            d.databases.remove(&id);
        }
        Change::Audit(a) => {
            let list = d.audit.entry(a.scope.clone()).or_default();
            list.push(a);
            list.sort_by(|x, y| x.id.cmp(&y.id));
        }
        Change::Count { scope, deltas } => {
            for (name, by) in deltas {
                *d.counters.entry((scope.clone(), name)).or_default() += by;
            }
        }
        Change::Quota {
            scope, name, by, ..
        } => {
            // Apart from `Count`'s scopes, as the table keeps them.
            *d.counters
                .entry((format!("QUOTA#{scope}"), name))
                .or_default() += by;
        }
        Change::SavePlan { plan, .. } => {
            let tenants = d.plans.get(&plan.id).map_or(0, |p| p.tenants);
            let created_at = d
                .plans
                .get(&plan.id)
                .map_or(plan.created_at, |p| p.created_at);
            d.plans.insert(
                plan.id.clone(),
                crate::domain::plan::Plan {
                    tenants,
                    created_at,
                    ..plan
                },
            );
        }
        Change::DeletePlan { id } => {
            d.plans.remove(&id);
        }
        Change::UsePlan { plan, by } => {
            let stored = d
                .plans
                .entry(plan.id.clone())
                .or_insert(crate::domain::plan::Plan { version: 1, ..plan });
            stored.tenants += by;
        }
        Change::RecordObject {
            tenant,
            key,
            before,
            after,
        } => {
            let scope = format!("QUOTA#{}", crate::store::changes::tenant_scope(&tenant));
            let (b0, o0) = before.filter(|b| b.present).map_or((0, 0), |b| (b.size, 1));
            let (b1, o1) = if after.present {
                (after.size, 1)
            } else {
                (0, 0)
            };
            for (name, by) in [
                (crate::store::changes::STORED_BYTES, b1 - b0),
                (crate::store::changes::STORED_OBJECTS, o1 - o0),
                (crate::store::changes::STORAGE_MOVES, 1),
            ] {
                *d.counters
                    .entry((scope.clone(), name.to_string()))
                    .or_default() += by;
            }
            d.counters.insert(
                (scope, crate::store::changes::STORAGE_AT.to_string()),
                after.at,
            );
            d.objects.insert((tenant, key), after);
        }
        Change::SetQuotas { scope, values } => {
            for (name, _, to) in values {
                d.counters.insert((format!("QUOTA#{scope}"), name), to);
            }
        }
        Change::SaveFlag { flag, .. } => {
            d.flags.insert(flag.key.clone(), flag);
        }
        Change::DeleteFlag { key, .. } => {
            d.flags.remove(&key);
        }
        Change::KillList { key, killed } => {
            if killed {
                d.kill_list.insert(key.to_string());
            } else {
                d.kill_list.remove(key.as_str());
            }
        }
        Change::PutApproval(a) => {
            d.approvals.insert(a.id.clone(), a);
        }
        Change::DecideApproval {
            id,
            to,
            by,
            at,
            expires_at,
            ..
        } => {
            if let Some(a) = d.approvals.get_mut(&id) {
                a.status = to;
                if let Some(by) = by {
                    a.decided_by = Some(by);
                    a.decided_at = Some(at);
                }
                a.expires_at = expires_at;
            }
        }
        Change::RevokeImpersonation { id, expires_at } => {
            d.revoked.insert(id, expires_at);
        }
        Change::OpenImpersonation(o) => {
            d.open_impersonations.insert(o.id.clone(), o);
        }
        Change::CloseImpersonation { id, .. } => {
            d.open_impersonations.remove(&id);
        }
        Change::Outbox(e) => {
            d.outbox.insert(e.id.clone(), e);
        }
        Change::RevokeSession { session_id, .. } => {
            if let Some(s) = d.sessions.get_mut(&session_id) {
                s.revoked = true;
            }
        }
        Change::PutEmailChange(c) => {
            d.email_changes.insert(c.hash.clone(), c);
        }
        Change::ChangeEmail {
            hash,
            user,
            from,
            to,
            password_hash,
            ..
        } => {
            d.email_changes.remove(&hash);
            d.emails.remove(&from);
            d.claim_hashes.remove(&from);
            d.emails.insert(to.clone(), user.clone());
            d.claim_hashes.insert(to.clone(), password_hash);
            if let Some(u) = d.users.get_mut(&user) {
                u.email = to;
                u.email_verified = true;
                u.reset_generation += 1;
            }
        }
        Change::ClaimHash { email, hash, .. } => {
            d.claim_hashes.insert(email, hash);
        }
        Change::PutTotp { user, sealed, at } => {
            d.totp.insert(
                user,
                TotpFactor {
                    sealed,
                    confirmed: false,
                    last_step: 0,
                    created_at: at,
                },
            );
        }
        Change::ConfirmTotp { user, step, .. } | Change::UseTotp { user, step } => {
            if let Some(t) = d.totp.get_mut(&user) {
                t.confirmed = true;
                t.last_step = step;
            }
        }
        Change::PutRecoveryCodes { user, hashes } => {
            d.recovery.insert(user, hashes);
        }
        Change::UseRecoveryCode { user, hash } => {
            if let Some(codes) = d.recovery.get_mut(&user) {
                codes.retain(|c| c != &hash);
            }
        }
        Change::RemoveFactors {
            user,
            totp,
            recovery,
            passkeys,
        } => {
            if totp {
                d.totp.remove(&user);
            }
            if recovery {
                d.recovery.remove(&user);
            }
            if let Some(all) = d.passkeys.get_mut(&user) {
                all.retain(|p| !passkeys.contains(&p.id));
            }
            d.pending_passkeys.remove(&user);
        }
        Change::ChallengePasskey { hash, state, .. } => {
            if let Some(c) = d.challenges.get_mut(&hash) {
                c.passkey_state = Some(state);
            }
        }
        Change::PutPendingPasskey { user, pending } => {
            d.pending_passkeys.insert(user, pending);
        }
        Change::AddPasskey { user, passkey, .. } => {
            d.pending_passkeys.remove(&user);
            d.passkeys.entry(user).or_default().push(passkey);
        }
        Change::UsePasskey {
            user,
            id,
            after,
            at,
            ..
        } => {
            if let Some(p) = d
                .passkeys
                .get_mut(&user)
                .and_then(|all| all.iter_mut().find(|p| p.id == id))
            {
                p.state = after;
                p.last_used_at = Some(at);
            }
        }
        Change::RenamePasskey { user, id, name } => {
            if let Some(p) = d
                .passkeys
                .get_mut(&user)
                .and_then(|all| all.iter_mut().find(|p| p.id == id))
            {
                p.name = name;
            }
        }
        Change::PutChallenge(c) => {
            d.challenges.insert(c.hash.clone(), c);
        }
        Change::SpendChallenge { hash, .. } => {
            d.challenges.remove(&hash);
        }
    }
}

#[async_trait]
impl CommitStore for MemoryStore {
    async fn commit(&self, changes: Vec<Change>) -> Result<(), CommitError> {
        if changes.len() > MAX_CHANGES {
            return Err(CommitError::TooMany);
        }
        self.with(|d| {
            let refused: Vec<Refusal> = changes.iter().filter_map(|c| refusal(d, c)).collect();
            if !refused.is_empty() {
                return Err(CommitError::Refused { reasons: refused });
            }
            for c in changes {
                apply(d, c);
            }
            Ok(())
        })
    }

    async fn audit_entries(
        &self,
        scope: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.with(|d| {
            let mut list = d.audit.get(scope).cloned().unwrap_or_default();
            list.truncate(limit.clamp(1, crate::store::page::MAX_LIMIT));
            list
        }))
    }

    async fn counter(&self, scope: &str, name: &str) -> Result<i64, StoreError> {
        Ok(self.with(|d| {
            d.counters
                .get(&(scope.to_string(), name.to_string()))
                .copied()
                .unwrap_or(0)
        }))
    }

    async fn quota(&self, scope: &str, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.with(|d| {
            d.counters
                .get(&(format!("QUOTA#{scope}"), name.to_string()))
                .copied()
        }))
    }

    async fn outbox_event(&self, id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        Ok(self.with(|d| d.outbox.get(id).cloned()))
    }

    async fn counters(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(self.with(|d| {
            d.counters
                .iter()
                .filter(|((s, _), _)| s == scope)
                .map(|((_, name), v)| (name.clone(), *v))
                .collect()
        }))
    }

    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        Ok(self.with(|d| {
            let mut all: Vec<OutboxEvent> = d.outbox.values().cloned().collect();
            all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            all.truncate(limit.clamp(1, crate::store::page::MAX_LIMIT));
            all
        }))
    }

    async fn outbox_published(&self, id: &str) -> Result<(), StoreError> {
        self.with(|d| d.outbox.remove(id));
        Ok(())
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let query = filter.query_name();
        let after = super::position_after(&query, cursor, "GSI2PK", "AUDIT", "GSI2SK")?;
        let mut all: Vec<AuditEntry> = self.with(|d| {
            d.audit
                .values()
                .flatten()
                .filter(|e| filter.matches(e))
                .cloned()
                .collect()
        });
        all.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(super::page_after(
            all,
            after.as_deref(),
            limit,
            |e| e.id.clone(),
            |last| {
                crate::store::page::encode(
                    &query,
                    BTreeMap::from([
                        ("GSI2PK".to_string(), "AUDIT".to_string()),
                        ("GSI2SK".to_string(), last.to_string()),
                    ]),
                )
            },
            true,
        ))
    }
}
