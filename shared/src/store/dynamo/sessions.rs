//! Sessions: one item each, with live heads and remembered spent hashes.

use super::*;

fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "SESSION")
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(
        &self,
        session: &Session,
        refund: Option<&crate::store::RateHit>,
        audit: Option<&crate::store::changes::AuditEntry>,
    ) -> Result<(), StoreError> {
        let audit = match audit {
            Some(a) => self.change_items(&crate::store::changes::Change::Audit(a.clone()))?,
            None => Vec::new(),
        };
        let mut item = session_key(&session.session_id);
        item.insert("entity".into(), s("session"));
        item.insert("session_id".into(), s(&session.session_id));
        item.insert("user_id".into(), s(session.user_id.as_str()));
        item.insert("audience".into(), s(session.audience.as_str()));
        item.insert("session_epoch".into(), n(session.session_epoch));
        item.insert("expires_at".into(), n(session.expires_at));
        item.insert("revoked".into(), AttributeValue::Bool(session.revoked));
        item.insert("heads".into(), hash_map(&session.heads));
        item.insert("spent".into(), hash_map(&session.spent));
        item.insert("created_at".into(), n(session.created_at));
        if let Some(at) = session.mfa_at {
            item.insert("mfa_at".into(), n(at));
        }
        item.insert("last_used_at".into(), n(session.last_used_at));
        if let Some(ip) = &session.client_ip {
            item.insert("client_ip".into(), s(ip));
        }
        if let Some(ua) = &session.user_agent {
            item.insert("user_agent".into(), s(ua));
        }
        // A user's sessions, newest first (`GET /account/sessions`, an operator's user page).
        item.insert("GSI1PK".into(), s(format!("SESSIONS#{}", session.user_id)));
        item.insert(
            "GSI1SK".into(),
            s(format!("{:015}#{}", session.created_at, session.session_id)),
        );
        // The user's last sign-in, in the same write.
        let signed_in = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("USER#{}", session.user_id), "USER")))
                .update_expression("SET last_sign_in_at = :now")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":now", n(crate::runtime::time::now_unix()))
                .build(),
        )?;
        let signed_in = TransactWriteItem::builder().update(signed_in).build();
        let mut refunds = Vec::new();
        if let Some(r) = refund {
            for k in &r.keys {
                refunds.push(
                    TransactWriteItem::builder()
                        .update(self.refund_update(k, r)?)
                        .build(),
                );
            }
        }
        let (mut with_user, mut with_refund) = (true, !refunds.is_empty());
        // At most three tries: a refund whose window expired away (nothing to give back) and a
        // user record that is not there to note the sign-in on are dropped, never the session.
        for _ in 0..3 {
            let mut items = vec![self.put(item.clone(), "attribute_not_exists(PK)")?];
            if with_user {
                items.push(signed_in.clone());
            }
            if with_refund {
                items.extend(refunds.iter().cloned());
            }
            items.extend(audit.iter().cloned());
            match self.transact(items).await {
                Ok(()) => return Ok(()),
                Err(TxError::Refused { failed })
                    if !failed.iter().any(|(_, k)| k.starts_with("SESSION#")) =>
                {
                    with_user &= !failed.iter().any(|(_, k)| k.starts_with("USER#"));
                    with_refund &= !failed.iter().any(|(_, k)| k.starts_with("RATE#"));
                }
                Err(e) => return conflict_if_refused(Err(e), "session already exists"),
            }
        }
        Err(StoreError::Conflict("session could not be written"))
    }

    async fn session(&self, session_id: &str) -> Result<Option<Session>, StoreError> {
        let Some(item) = self.get(format!("SESSION#{session_id}"), "SESSION").await? else {
            return Ok(None);
        };
        parse_session(&item).map(Some)
    }

    async fn user_sessions(&self, user: &UserId, n: usize) -> Result<Vec<Session>, StoreError> {
        let (items, _) = self
            .page_query(PageQuery {
                query_name: format!("sessions:{user}"),
                index: Some("GSI1"),
                partition: ("GSI1PK", format!("SESSIONS#{user}")),
                sort: None,
                filter: None,
                forward: false,
                limit: n,
                cursor: None,
            })
            .await?;
        items.iter().map(parse_session).collect()
    }

    async fn rotate_session(
        &self,
        session_id: &str,
        old: &str,
        new: &str,
        now: i64,
        forget: &[String],
    ) -> Result<RotateOutcome, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .condition_expression("attribute_exists(heads.#old) AND revoked = :no")
            .expression_attribute_names("#old", old)
            .expression_attribute_names("#new", new)
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now));
        let mut remove = vec!["heads.#old".to_string()];
        for (i, h) in forget.iter().enumerate() {
            update = update.expression_attribute_names(format!("#f{i}"), h);
            remove.push(format!("spent.#f{i}"));
        }
        let result = update
            .update_expression(format!(
                "SET heads.#new = :now, spent.#old = :now, last_used_at = :now REMOVE {}",
                remove.join(", ")
            ))
            .send()
            .await;
        Ok(if conditional(result)? {
            RotateOutcome::Rotated
        } else {
            RotateOutcome::Refused
        })
    }

    async fn add_session_head(
        &self,
        session_id: &str,
        spent: &str,
        spent_at: i64,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET heads.#new = :now")
            .condition_expression("spent.#spent = :at AND revoked = :no AND size(heads) < :max")
            .expression_attribute_names("#new", new)
            .expression_attribute_names("#spent", spent)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":at", n(spent_at))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":max", n(MAX_SESSION_HEADS))
            .send()
            .await;
        conditional(result)
    }

    async fn revoke_session(&self, session_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        // A failed condition: nothing to revoke, the session never existed or has expired away.
        conditional(result).map(drop)
    }
}

fn parse_session(item: &Item) -> Result<Session, StoreError> {
    let f = Fields {
        item,
        key: "SESSION",
    };
    Ok(Session {
        session_id: f.s("session_id")?.to_string(),
        user_id: f.user_id("user_id")?,
        audience: Audience::parse(f.s("audience")?)
            .ok_or_else(|| f.corrupt("bad audience".into()))?,
        session_epoch: f.n("session_epoch")?,
        expires_at: f.n("expires_at")?,
        revoked: f.bool("revoked")?,
        heads: f.number_map("heads")?,
        spent: f.number_map("spent")?,
        mfa_at: match item.get("mfa_at") {
            Some(_) => Some(f.n("mfa_at")?),
            None => None,
        },
        created_at: f.n_or("created_at", 0)?,
        last_used_at: f.n_or("last_used_at", 0)?,
        client_ip: f.opt_s("client_ip").map(str::to_string),
        user_agent: f.opt_s("user_agent").map(str::to_string),
    })
}
