//! Commits: every change becomes one item of a single `TransactWriteItems`, with its condition.

use super::*;
use crate::store::changes::{
    AuditEntry, Change, CommitError, OutboxEvent, LIVE_COUNT, MAX_CHANGES,
};

impl DynamoStore {
    pub(super) fn update_item(
        &self,
        pk: String,
        sk: &str,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(expression);
        if !condition.is_empty() {
            u = u.condition_expression(condition);
        }
        for (k, v) in names {
            u = u.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder()
            .update(Self::build(u.build())?)
            .build())
    }

    pub(super) fn delete_item(
        &self,
        pk: String,
        sk: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        names: &[(&str, &str)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(condition);
        for (k, v) in values {
            d = d.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            d = d.expression_attribute_names(*k, *v);
        }
        Ok(TransactWriteItem::builder()
            .delete(Self::build(d.build())?)
            .build())
    }

    /// The operator count's move by `delta` (none for 0): an increase is an `ADD`; a decrease is
    /// conditioned on leaving at least one operator.
    pub(super) fn operator_count_item(
        &self,
        delta: i64,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        if delta == 0 {
            return Ok(None);
        }
        let (condition, mut values) = if delta > 0 {
            ("", vec![])
        } else {
            ("n >= :min", vec![(":min", n(1 - delta))])
        };
        values.push((":by", n(delta)));
        self.update_item(
            "OPERATORS".to_string(),
            "COUNT",
            "ADD n :by",
            condition,
            &[],
            values,
        )
        .map(Some)
    }

    /// A user's account edit, conditioned on the status and flag the handler read.
    fn user_update(
        &self,
        user: &UserId,
        before: &crate::domain::Account,
        edit: &crate::store::changes::UserEdit,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        let mut values = vec![
            (":was_status", s(before.status.as_str())),
            (":was_admin", AttributeValue::Bool(before.platform_admin)),
        ];
        if let Some(a) = &edit.account {
            sets.push("#status = :status, platform_admin = :admin");
            values.push((":status", s(a.status.as_str())));
            values.push((":admin", AttributeValue::Bool(a.platform_admin)));
        }
        match &edit.name {
            Some(Some(name)) => {
                sets.push("#name = :name");
                values.push((":name", s(name)));
            }
            Some(None) => removes.push("#name"),
            None => {}
        }
        if let Some(hash) = &edit.password_hash {
            sets.push("password_hash = :hash");
            values.push((":hash", s(hash)));
        }
        let mut factor_condition = String::new();
        if let Some((was, now)) = edit.factors {
            sets.push("mfa = :mfa, totp = :totp, passkeys = :passkeys");
            values.push((":mfa", AttributeValue::Bool(now.any())));
            values.push((":totp", AttributeValue::Bool(now.totp)));
            values.push((":passkeys", n(now.passkeys)));
            values.push((":was_totp", AttributeValue::Bool(was.totp)));
            values.push((":was_passkeys", n(was.passkeys)));
            // A record from before passkeys has `mfa` alone (meaning an authenticator app), and
            // one from before second factors has neither (no factor).
            factor_condition.push_str(if was.totp {
                " AND (totp = :was_totp OR (attribute_not_exists(totp) AND mfa = :was_totp))"
            } else {
                " AND (totp = :was_totp OR (attribute_not_exists(totp) AND (attribute_not_exists(mfa) OR mfa = :was_totp)))"
            });
            factor_condition.push_str(if was.passkeys == 0 {
                " AND (passkeys = :was_passkeys OR attribute_not_exists(passkeys))"
            } else {
                " AND passkeys = :was_passkeys"
            });
        }
        if edit.end_sessions {
            adds.push("session_epoch :one");
            values.push((":one", n(1)));
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {} ", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!("REMOVE {} ", removes.join(", ")));
        }
        if !adds.is_empty() {
            expression.push_str(&format!("ADD {}", adds.join(", ")));
        }
        if expression.is_empty() {
            // Nothing to write: the condition alone (a no-op SET keeps the item as it is).
            expression.push_str("SET #status = :was_status");
        }
        let mut condition = "#status = :was_status AND platform_admin = :was_admin".to_string();
        if let Some(epoch) = edit.expect_epoch {
            condition.push_str(" AND session_epoch = :was_epoch");
            values.push((":was_epoch", n(epoch)));
        }
        condition.push_str(&factor_condition);
        // DynamoDB refuses a name the expressions do not use.
        let mut names = vec![("#status", "status")];
        if edit.name.is_some() {
            names.push(("#name", "name"));
        }
        self.update_item(
            format!("USER#{user}"),
            "USER",
            expression.trim(),
            &condition,
            &names,
            values,
        )
    }

    /// The transaction items of one change (a creation also claims its unique name).
    pub(super) fn change_items(
        &self,
        change: &Change,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        const NEW: &str = "attribute_not_exists(PK)";
        Ok(match change {
            Change::CreateTenant(t) => {
                let mut claim = key(format!("SLUG#{}", t.slug), "SLUG");
                claim.insert("entity".into(), s("slug_claim"));
                claim.insert("tenant_id".into(), s(t.id.as_str()));
                vec![self.put(claim, NEW)?, self.put(Self::tenant_item(t), NEW)?]
            }
            Change::UpdateTenant {
                tenant,
                expect_version,
            } => vec![self.tenant_update(tenant, *expect_version)?],
            Change::CreateUser(u) => {
                let mut items = vec![
                    self.put(Self::claim_item(u), NEW)?,
                    self.put(Self::user_item(u), NEW)?,
                ];
                items.extend(self.operator_count_item(change.operator_delta())?);
                items
            }
            Change::UpdateUser { user, before, edit } => {
                let mut items: Vec<TransactWriteItem> = self
                    .operator_count_item(change.operator_delta())?
                    .into_iter()
                    .collect();
                items.push(self.user_update(user, before, edit)?);
                items
            }
            Change::DeleteUser {
                user,
                email,
                before,
            } => {
                let mut items: Vec<TransactWriteItem> = self
                    .operator_count_item(change.operator_delta())?
                    .into_iter()
                    .collect();
                items.push(self.delete_item(
                    format!("USER#{user}"),
                    "USER",
                    "#status = :status AND platform_admin = :admin",
                    vec![
                        (":status", s(before.status.as_str())),
                        (":admin", AttributeValue::Bool(before.platform_admin)),
                    ],
                    &[("#status", "status")],
                )?);
                items.push(self.delete_item(
                    format!("EMAIL#{email}"),
                    "EMAIL",
                    "user_id = :user",
                    vec![(":user", s(user.as_str()))],
                    &[],
                )?);
                items
            }
            Change::AddMembership {
                user,
                tenant,
                role,
                at,
            } => vec![self.put(Self::membership_item(user, tenant, *role, *at), NEW)?],
            Change::PutInvite {
                user,
                invite,
                replaces,
            } => {
                let mut item = key(
                    format!("USER#{user}"),
                    &format!("INVITE#{}", invite.tenant_id),
                );
                item.insert("entity".into(), s("invite"));
                item.insert("tenant_id".into(), s(invite.tenant_id.as_str()));
                item.insert("tenant_slug".into(), s(&invite.tenant_slug));
                item.insert("role".into(), s(invite.role.as_str()));
                item.insert("invited_by".into(), s(invite.invited_by.as_str()));
                item.insert("invited_at".into(), n(invite.invited_at));
                item.insert("expires_at".into(), n(invite.expires_at));
                item.insert("GSI1PK".into(), s(format!("TENANT#{}", invite.tenant_id)));
                item.insert("GSI1SK".into(), s(format!("INVITE#{user}")));
                // Live is `expires_at` after the new invitation's `invited_at` (now).
                let condition = if *replaces {
                    "attribute_exists(PK) AND expires_at > :now"
                } else {
                    "attribute_not_exists(PK) OR expires_at <= :now"
                };
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .expression_attribute_values(":now", n(invite.invited_at));
                vec![TransactWriteItem::builder()
                    .put(Self::build(put.build())?)
                    .build()]
            }
            Change::TakeInvite { user, tenant } => {
                let d = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        format!("USER#{user}"),
                        &format!("INVITE#{tenant}"),
                    )))
                    .condition_expression("attribute_exists(PK)");
                vec![TransactWriteItem::builder()
                    .delete(Self::build(d.build())?)
                    .build()]
            }
            Change::ChangeRole {
                user,
                tenant,
                from,
                to,
            } => vec![self.update_item(
                format!("USER#{user}"),
                &format!("MEMBER#{tenant}"),
                "SET #role = :to",
                "#role = :from",
                &[("#role", "role")],
                vec![(":to", s(to.as_str())), (":from", s(from.as_str()))],
            )?],
            Change::RemoveMembership { user, tenant, role } => {
                let d = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        format!("USER#{user}"),
                        &format!("MEMBER#{tenant}"),
                    )))
                    .condition_expression("#role = :role")
                    .expression_attribute_names("#role", "role")
                    .expression_attribute_values(":role", s(role.as_str()));
                vec![TransactWriteItem::builder()
                    .delete(Self::build(d.build())?)
                    .build()]
            }
            Change::AdjustOwners { tenant, by } => {
                let min = if *by < 0 { 1 - by } else { 0 };
                vec![self.update_item(
                    format!("TENANT#{tenant}"),
                    "TENANT",
                    "ADD owners :by",
                    "attribute_exists(PK) AND (owners >= :min OR (attribute_not_exists(owners) AND :min = :zero))",
                    &[],
                    vec![(":by", n(by)), (":min", n(min)), (":zero", n(0))],
                )?]
            }
            Change::SetRedirectOrigins {
                tenant,
                before,
                origins,
            } => {
                let condition = if before.is_empty() {
                    "attribute_exists(PK) AND (attribute_not_exists(redirect_origins) OR redirect_origins = :before)"
                } else {
                    "redirect_origins = :before"
                };
                let mut items = vec![self.update_item(
                    format!("TENANT#{tenant}"),
                    "TENANT",
                    "SET redirect_origins = :o, version = version + :one",
                    condition,
                    &[],
                    vec![
                        (":o", super::tenants::origin_list(origins)),
                        (":before", super::tenants::origin_list(before)),
                        (":one", n(1)),
                    ],
                )?];
                // The index: an entry per origin listed (written again when kept, so saving a
                // list puts right an index that lacks it), none left for one removed.
                for added in origins {
                    let mut entry = key(
                        format!("ORIGIN#{}", added.as_str()),
                        &format!("TENANT#{tenant}"),
                    );
                    entry.insert("entity".into(), s("redirect_origin"));
                    entry.insert("tenant_id".into(), s(tenant.as_str()));
                    items.push(self.put_always(entry)?);
                }
                for removed in before.iter().filter(|o| !origins.contains(o)) {
                    let d = Delete::builder().table_name(&self.table).set_key(Some(key(
                        format!("ORIGIN#{}", removed.as_str()),
                        &format!("TENANT#{tenant}"),
                    )));
                    items.push(
                        TransactWriteItem::builder()
                            .delete(Self::build(d.build())?)
                            .build(),
                    );
                }
                items
            }
            Change::CreatePartner(p) => {
                let mut claim = key(format!("PSLUG#{}", p.slug), "PSLUG");
                claim.insert("entity".into(), s("partner_slug_claim"));
                claim.insert("partner_id".into(), s(p.id.as_str()));
                vec![self.put(claim, NEW)?, self.put(Self::partner_item(p), NEW)?]
            }
            Change::UpdatePartner {
                partner,
                expect_version,
            } => vec![self.partner_update(partner, *expect_version)?],
            Change::PartnerCounts {
                partner,
                deltas,
                live,
                require_active,
                cap,
            } => {
                let mut adds = Vec::new();
                let mut names: Vec<(String, String)> = Vec::new();
                let mut values = Vec::new();
                for (i, (status, by)) in deltas.iter().enumerate() {
                    adds.push(format!("#c{i} :d{i}"));
                    names.push((format!("#c{i}"), format!("count_{}", status.as_str())));
                    values.push((format!(":d{i}"), n(by)));
                }
                if *live != 0 || cap.is_some() {
                    adds.push("#live :live".into());
                    names.push(("#live".into(), format!("count_{LIVE_COUNT}")));
                    values.push((":live".into(), n(live)));
                }
                let mut condition = if *require_active {
                    "attribute_exists(PK) AND #status = :active".to_string()
                } else {
                    "attribute_exists(PK)".to_string()
                };
                if let Some(cap) = cap {
                    condition.push_str(" AND (attribute_not_exists(#live) OR #live < :cap)");
                    values.push((":cap".into(), n(cap)));
                }
                let mut u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("PARTNER#{partner}"), "PARTNER")))
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .condition_expression(condition);
                for (k, v) in names {
                    u = u.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    u = u.expression_attribute_values(k, v);
                }
                if *require_active {
                    u = u
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":active", s("active"));
                }
                vec![TransactWriteItem::builder()
                    .update(Self::build(u.build())?)
                    .build()]
            }
            Change::GrantPartnerAdmin { user, partner } => {
                vec![self.put(Self::partner_admin_item(user, partner), NEW)?]
            }
            Change::RevokePartnerAdmin { user, partner } => vec![self.delete_item(
                format!("USER#{user}"),
                &format!("PARTNER#{partner}"),
                "attribute_exists(PK)",
                vec![],
                &[],
            )?],
            Change::PutDatabase(d) => {
                let mut item = key(format!("DB#{}", d.id), "DB");
                item.insert("entity".into(), s("database"));
                item.insert("db_id".into(), s(d.id.as_str()));
                item.insert("tenant_id".into(), s(d.tenant.as_str()));
                item.insert("name".into(), s(&d.name));
                item.insert("engine".into(), s(&d.engine));
                item.insert("host".into(), s(&d.host));
                item.insert("sealed".into(), s(&d.sealed));
                item.insert("tls".into(), s(&d.tls));
                if let Some(ca) = &d.ca_sealed {
                    item.insert("ca_sealed".into(), s(ca));
                }
                item.insert("created_at".into(), n(d.created_at));
                item.insert("GSI1PK".into(), s(format!("TENANT#{}", d.tenant)));
                item.insert(
                    "GSI1SK".into(),
                    s(format!("DB#{:015}#{}", d.created_at, d.id)),
                );
                vec![self.put(item, NEW)?]
            }
            Change::DeleteDatabase { id, tenant } => vec![self.delete_item(
                format!("DB#{id}"),
                "DB",
                "tenant_id = :t",
                vec![(":t", s(tenant.as_str()))],
                &[],
            )?],
            Change::Audit(a) => {
                let mut item = key(format!("AUDIT#{}", a.scope), &a.id);
                item.insert("entity".into(), s("audit"));
                item.insert("scope".into(), s(&a.scope));
                item.insert("actor".into(), s(a.actor.as_str()));
                item.insert("action".into(), s(&a.action));
                if let Some(t) = &a.tenant {
                    item.insert("tenant_id".into(), s(t.as_str()));
                }
                if let Some(p) = &a.partner {
                    item.insert("partner_id".into(), s(p.as_str()));
                }
                item.insert("details".into(), s(&a.details));
                item.insert("request_id".into(), s(&a.request_id));
                item.insert("at".into(), n(a.at));
                item.insert("GSI2PK".into(), s("AUDIT"));
                item.insert("GSI2SK".into(), s(&a.id));
                vec![self.put(item, NEW)?]
            }
            Change::Count { scope, deltas } => {
                let mut u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("COUNT#{scope}"), "COUNT")));
                let mut adds = Vec::new();
                for (i, (name, by)) in deltas.iter().enumerate() {
                    adds.push(format!("#c{i} :d{i}"));
                    u = u
                        .expression_attribute_names(format!("#c{i}"), name)
                        .expression_attribute_values(format!(":d{i}"), n(by));
                }
                let u = u.update_expression(format!("ADD {}", adds.join(", ")));
                vec![TransactWriteItem::builder()
                    .update(Self::build(u.build())?)
                    .build()]
            }
            Change::Quota {
                scope,
                name,
                by,
                cap,
            } => {
                // Up to the cap; down never below zero.
                let (condition, mut values) = if *by > 0 {
                    (
                        "attribute_not_exists(#c) OR #c < :cap",
                        vec![(":cap", n(cap))],
                    )
                } else {
                    ("#c >= :floor", vec![(":floor", n(-by))])
                };
                values.push((":by", n(by)));
                vec![self.update_item(
                    format!("QUOTA#{scope}"),
                    "QUOTA",
                    "ADD #c :by",
                    condition,
                    &[("#c", name.as_str())],
                    values,
                )?]
            }
            Change::PutTotp { user, sealed, at } => {
                let mut item = key(format!("USER#{user}"), "MFA#TOTP");
                item.insert("entity".into(), s("totp"));
                item.insert("sealed".into(), s(sealed));
                item.insert("confirmed".into(), AttributeValue::Bool(false));
                item.insert("last_step".into(), n(0));
                item.insert("created_at".into(), n(at));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK) OR confirmed = :no")
                    .expression_attribute_values(":no", AttributeValue::Bool(false))
                    .build()
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                vec![TransactWriteItem::builder().put(put).build()]
            }
            Change::ConfirmTotp { user, sealed, step } => vec![self.update_item(
                format!("USER#{user}"),
                "MFA#TOTP",
                "SET confirmed = :yes, last_step = :step",
                "confirmed = :no AND sealed = :sealed",
                &[],
                vec![
                    (":yes", AttributeValue::Bool(true)),
                    (":no", AttributeValue::Bool(false)),
                    (":step", n(step)),
                    (":sealed", s(sealed)),
                ],
            )?],
            Change::UseTotp { user, step } => vec![self.update_item(
                format!("USER#{user}"),
                "MFA#TOTP",
                "SET last_step = :step",
                "confirmed = :yes AND last_step < :step",
                &[],
                vec![(":yes", AttributeValue::Bool(true)), (":step", n(step))],
            )?],
            Change::PutRecoveryCodes { user, hashes } => {
                let mut item = key(format!("USER#{user}"), "MFA#RECOVERY");
                item.insert("entity".into(), s("recovery_codes"));
                item.insert("codes".into(), AttributeValue::Ss(hashes.clone()));
                vec![self.put_always(item)?]
            }
            Change::UseRecoveryCode { user, hash } => vec![self.update_item(
                format!("USER#{user}"),
                "MFA#RECOVERY",
                "DELETE codes :set",
                "contains(codes, :h)",
                &[],
                vec![
                    (":set", AttributeValue::Ss(vec![hash.clone()])),
                    (":h", s(hash)),
                ],
            )?],
            Change::RemoveFactors {
                user,
                totp,
                recovery,
                passkeys,
            } => {
                let mut out = Vec::new();
                let mut keys: Vec<String> = Vec::new();
                if *totp {
                    keys.push("MFA#TOTP".into());
                }
                if *recovery {
                    keys.push("MFA#RECOVERY".into());
                }
                keys.extend(passkeys.iter().map(|id| crate::store::passkey_key(id)));
                // A registration in progress goes with any change of the factors.
                keys.push("MFA#PASSKEY_PENDING".into());
                for sk in &keys {
                    let d = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(format!("USER#{user}"), sk)));
                    out.push(
                        TransactWriteItem::builder()
                            .delete(Self::build(d.build())?)
                            .build(),
                    );
                }
                out
            }
            Change::PutChallenge(c) => {
                let mut item = key(format!("MFACHAL#{}", c.hash), "MFACHAL");
                item.insert("entity".into(), s("mfa_challenge"));
                item.insert("user_id".into(), s(c.user_id.as_str()));
                item.insert("audience".into(), s(c.audience.as_str()));
                item.insert("session_epoch".into(), n(c.session_epoch));
                item.insert("expires_at".into(), n(c.expires_at));
                if let Some(ip) = &c.client_ip {
                    item.insert("client_ip".into(), s(ip));
                }
                if let Some(ua) = &c.user_agent {
                    item.insert("user_agent".into(), s(ua));
                }
                vec![self.put(item, NEW)?]
            }
            Change::ChallengePasskey { hash, state, now } => vec![self.update_item(
                format!("MFACHAL#{hash}"),
                "MFACHAL",
                "SET passkey_state = :state",
                "attribute_exists(PK) AND expires_at > :now",
                &[],
                vec![(":state", s(state)), (":now", n(now))],
            )?],
            Change::PutPendingPasskey { user, pending } => {
                let mut item = key(format!("USER#{user}"), "MFA#PASSKEY_PENDING");
                item.insert("entity".into(), s("passkey_registration"));
                item.insert("state".into(), s(&pending.state));
                item.insert("expires_at".into(), n(pending.expires_at));
                vec![self.put_always(item)?]
            }
            Change::AddPasskey {
                user,
                passkey,
                pending_state,
                now,
            } => {
                let mut item = key(
                    format!("USER#{user}"),
                    &crate::store::passkey_key(&passkey.id),
                );
                item.insert("entity".into(), s("passkey"));
                item.insert("credential_id".into(), s(&passkey.id));
                item.insert("name".into(), s(&passkey.name));
                item.insert("public_key".into(), s(&passkey.public_key));
                item.insert("state".into(), s(&passkey.state));
                item.insert("transports".into(), n(passkey.transports));
                item.insert("created_at".into(), n(passkey.created_at));
                vec![
                    self.delete_item(
                        format!("USER#{user}"),
                        "MFA#PASSKEY_PENDING",
                        "#state = :state AND expires_at > :now",
                        vec![(":state", s(pending_state)), (":now", n(now))],
                        &[("#state", "state")],
                    )?,
                    self.put(item, "attribute_not_exists(SK)")?,
                ]
            }
            Change::UsePasskey {
                user,
                id,
                before,
                after,
                at,
            } => vec![self.update_item(
                format!("USER#{user}"),
                &crate::store::passkey_key(id),
                "SET #state = :after, last_used_at = :at",
                "#state = :before",
                &[("#state", "state")],
                vec![(":after", s(after)), (":before", s(before)), (":at", n(at))],
            )?],
            Change::RenamePasskey { user, id, name } => vec![self.update_item(
                format!("USER#{user}"),
                &crate::store::passkey_key(id),
                "SET #name = :name",
                "attribute_exists(SK)",
                &[("#name", "name")],
                vec![(":name", s(name))],
            )?],
            Change::SpendChallenge { hash, now } => vec![self.delete_item(
                format!("MFACHAL#{hash}"),
                "MFACHAL",
                "attribute_exists(PK) AND expires_at > :now",
                vec![(":now", n(now))],
                &[],
            )?],
            Change::PutEmailChange(c) => {
                let mut item = key(format!("EMAILCHG#{}", c.hash), "EMAILCHG");
                item.insert("entity".into(), s("email_change"));
                item.insert("user_id".into(), s(c.user_id.as_str()));
                item.insert("from".into(), s(c.from.as_str()));
                item.insert("to".into(), s(c.to.as_str()));
                item.insert("session_epoch".into(), n(c.session_epoch));
                item.insert("expires_at".into(), n(c.expires_at));
                vec![self.put(item, NEW)?]
            }
            Change::ChangeEmail {
                hash,
                now,
                user,
                from,
                to,
                session_epoch,
                password_hash,
            } => {
                let mut claim = key(format!("EMAIL#{to}"), "EMAIL");
                claim.insert("entity".into(), s("email_claim"));
                claim.insert("user_id".into(), s(user.as_str()));
                claim.insert("password_hash".into(), s(password_hash));
                vec![
                    self.delete_item(
                        format!("EMAILCHG#{hash}"),
                        "EMAILCHG",
                        "attribute_exists(PK) AND expires_at > :now",
                        vec![(":now", n(now))],
                        &[],
                    )?,
                    self.put(claim, NEW)?,
                    self.delete_item(
                        format!("EMAIL#{from}"),
                        "EMAIL",
                        "user_id = :user",
                        vec![(":user", s(user.as_str()))],
                        &[],
                    )?,
                    self.update_item(
                        format!("USER#{user}"),
                        "USER",
                        "SET email = :to, GSI2SK = :to, email_verified = :yes ADD reset_generation :one",
                        "email = :from AND session_epoch = :sep",
                        &[],
                        vec![
                            (":to", s(to.as_str())),
                            (":from", s(from.as_str())),
                            (":yes", AttributeValue::Bool(true)),
                            (":one", n(1)),
                            (":sep", n(session_epoch)),
                        ],
                    )?,
                ]
            }
            Change::ClaimHash { email, user, hash } => vec![self.update_item(
                format!("EMAIL#{email}"),
                "EMAIL",
                "SET password_hash = :hash",
                "user_id = :user",
                &[],
                vec![(":hash", s(hash)), (":user", s(user.as_str()))],
            )?],
            Change::RevokeSession { session_id, user } => vec![self.update_item(
                format!("SESSION#{session_id}"),
                "SESSION",
                "SET revoked = :yes",
                "user_id = :user",
                &[],
                vec![
                    (":yes", AttributeValue::Bool(true)),
                    (":user", s(user.as_str())),
                ],
            )?],
            Change::SavePlan {
                plan,
                expect_version,
            } => vec![self.save_plan_item(plan, *expect_version)?],
            Change::UsePlan { plan, by } => vec![self.use_plan_item(plan, *by)?],
            Change::DeletePlan { id } => vec![self.delete_plan_item(id)?],
            Change::RecordObject {
                tenant,
                key,
                before,
                after,
            } => self.record_object_items(tenant, key, before.as_ref(), after)?,
            Change::SetQuotas { scope, values } => vec![self.set_quotas_item(scope, values)?],
            Change::SaveFlag {
                flag,
                expect_version,
            } => vec![self.save_flag_item(flag, *expect_version)?],
            Change::DeleteFlag {
                key,
                expect_version,
            } => vec![self.delete_flag_item(key, *expect_version)?],
            Change::KillList { key, killed } => vec![self.kill_list_item(key, *killed)?],
            Change::PutApproval(a) => vec![self.put_approval_item(a)?],
            Change::DecideApproval {
                id,
                from,
                to,
                by,
                at,
                expires_at,
            } => vec![self.decide_approval_item(id, *from, *to, by.as_ref(), *at, *expires_at)?],
            Change::RevokeImpersonation { id, expires_at } => {
                vec![self.revoke_impersonation_item(id, *expires_at)?]
            }
            Change::OpenImpersonation(o) => vec![self.open_impersonation_item(o)?],
            Change::CloseImpersonation { id, expires_at } => {
                vec![self.close_impersonation_item(id, *expires_at)?]
            }
            Change::Outbox(e) => {
                let mut item = key(format!("OUTBOX#{}", e.id), "OUTBOX");
                item.insert("entity".into(), s("outbox"));
                item.insert("event_id".into(), s(&e.id));
                item.insert("kind".into(), s(&e.kind));
                item.insert("detail".into(), s(&e.detail));
                item.insert("created_at".into(), n(e.created_at));
                item.insert("GSI1PK".into(), s("OUTBOX"));
                item.insert("GSI1SK".into(), s(format!("{:015}#{}", e.created_at, e.id)));
                vec![self.put(item, NEW)?]
            }
        })
    }

    fn parse_audit(item: &Item) -> Result<AuditEntry, StoreError> {
        let f = Fields { item, key: "AUDIT" };
        Ok(AuditEntry {
            scope: f.s("scope").map(str::to_string).or_else(|_| {
                f.s("PK")
                    .map(|pk| pk.trim_start_matches("AUDIT#").to_string())
            })?,
            id: f.s("SK")?.to_string(),
            actor: f.user_id("actor")?,
            action: f.s("action")?.to_string(),
            tenant: f.opt_s("tenant_id").and_then(TenantId::parse),
            partner: f.opt_s("partner_id").and_then(PartnerId::parse),
            details: f.s("details")?.to_string(),
            request_id: f.opt_s("request_id").unwrap_or_default().to_string(),
            at: f.n("at")?,
        })
    }
}

#[async_trait]
impl CommitStore for DynamoStore {
    async fn commit(&self, changes: Vec<Change>) -> Result<(), CommitError> {
        if changes.len() > MAX_CHANGES {
            return Err(CommitError::TooMany);
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut items = Vec::with_capacity(changes.len() + 2);
        // Which change each item belongs to, and whether it is that change's claim of a unique
        // name (a creation's first item), so a failed item reads as a typed refusal.
        let mut origins = Vec::with_capacity(changes.len() + 2);
        for c in &changes {
            let made = self.change_items(c)?;
            let count = made.len();
            origins.extend((0..count).map(|i| (c, i, count)));
            items.extend(made);
        }
        if items.len() > MAX_CHANGES {
            return Err(CommitError::TooMany);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Refused { failed }) => Err(CommitError::Refused {
                reasons: failed
                    .iter()
                    .filter_map(|(i, _)| origins.get(*i))
                    .map(|(c, i, count)| c.item_refusal(*i, *count))
                    .collect(),
            }),
            Err(e) => Err(CommitError::Store(e.into())),
        }
    }

    async fn audit_entries(
        &self,
        scope: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(format!("AUDIT#{scope}")))
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, crate::store::page::MAX_LIMIT)).unwrap_or(1))
            .send()
            .await
            .map_err(unavailable)?;
        page.items().iter().map(Self::parse_audit).collect()
    }

    async fn counter(&self, scope: &str, name: &str) -> Result<i64, StoreError> {
        match self.get(format!("COUNT#{scope}"), "COUNT").await? {
            Some(item) => Fields {
                item: &item,
                key: "COUNT",
            }
            .n_or(name, 0),
            None => Ok(0),
        }
    }

    async fn quota(&self, scope: &str, name: &str) -> Result<Option<i64>, StoreError> {
        match self.get(format!("QUOTA#{scope}"), "QUOTA").await? {
            Some(item) if item.contains_key(name) => Fields {
                item: &item,
                key: "QUOTA",
            }
            .n_or(name, 0)
            .map(Some),
            _ => Ok(None),
        }
    }

    async fn outbox_event(&self, id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        let Some(item) = self.get(format!("OUTBOX#{id}"), "OUTBOX").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "OUTBOX",
        };
        Ok(Some(OutboxEvent {
            id: f.s("event_id")?.to_string(),
            kind: f.s("kind")?.to_string(),
            detail: f.s("detail")?.to_string(),
            created_at: f.n("created_at")?,
        }))
    }

    async fn counters(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let Some(item) = self.get(format!("COUNT#{scope}"), "COUNT").await? else {
            return Ok(BTreeMap::new());
        };
        Ok(item
            .iter()
            .filter_map(|(k, v)| {
                let n = v.as_n().ok()?.parse().ok()?;
                Some((k.clone(), n))
            })
            .collect())
    }

    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        let (items, _) = self
            .page_query(PageQuery {
                query_name: "outbox".to_string(),
                index: Some("GSI1"),
                partition: ("GSI1PK", "OUTBOX".to_string()),
                sort: None,
                filter: None,
                forward: true,
                limit,
                cursor: None,
            })
            .await?;
        items
            .iter()
            .map(|item| {
                let f = Fields {
                    item,
                    key: "OUTBOX",
                };
                Ok(OutboxEvent {
                    id: f.s("event_id")?.to_string(),
                    kind: f.s("kind")?.to_string(),
                    detail: f.s("detail")?.to_string(),
                    created_at: f.n("created_at")?,
                })
            })
            .collect()
    }

    async fn outbox_published(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("OUTBOX#{id}"), "OUTBOX")))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<(String, AttributeValue)> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        if let Some(p) = &filter.partner {
            conditions.push("partner_id = :partner".to_string());
            values.push((":partner".into(), s(p.as_str())));
        }
        if let Some(a) = &filter.actor {
            conditions.push("actor = :actor".to_string());
            values.push((":actor".into(), s(a.as_str())));
        }
        if let Some(a) = &filter.action {
            conditions.push("#action = :action".to_string());
            names.push(("#action".into(), "action".into()));
            values.push((":action".into(), s(a)));
        }
        let filter_expr =
            (!conditions.is_empty()).then(|| (conditions.join(" AND "), values, names));
        // Sort keys are `<ms, 15 digits>#<random>`: a time range is a key range.
        let from = format!("{:015}#", filter.from_ms.unwrap_or(0).max(0));
        let to = format!(
            "{:015}#~",
            filter.to_ms.unwrap_or(999_999_999_999_999).max(0)
        );
        let (index, partition, sort_attr) = match &filter.tenant {
            Some(t) => (None, ("PK", format!("AUDIT#tenant:{t}")), "SK"),
            None => (Some("GSI2"), ("GSI2PK", "AUDIT".to_string()), "GSI2SK"),
        };
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: filter.query_name(),
                index,
                partition,
                sort: Some((
                    sort_attr,
                    "#sk BETWEEN :from AND :to".to_string(),
                    vec![(":from", s(from)), (":to", s(to))],
                )),
                filter: filter_expr,
                forward: false,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(Self::parse_audit)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }
}
