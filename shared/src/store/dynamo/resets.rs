//! Password-reset tokens: issued with a generation bump, spent with the password change.

use super::*;

#[async_trait]
impl ResetStore for DynamoStore {
    async fn create_reset_token(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: i64,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError> {
        let generation = user.reset_generation + 1;
        let bump = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("USER#{}", user.id), "USER")))
                .update_expression("SET reset_generation = :next")
                .condition_expression("attribute_exists(PK) AND (reset_generation = :seen OR (attribute_not_exists(reset_generation) AND :seen = :zero))")
                .expression_attribute_values(":next", n(generation))
                .expression_attribute_values(":seen", n(user.reset_generation))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )?;
        let mut token = key(format!("RESET#{token_hash}"), "RESET");
        token.insert("entity".into(), s("reset_token"));
        token.insert("token_hash".into(), s(token_hash));
        token.insert("user_id".into(), s(user.id.as_str()));
        token.insert("generation".into(), n(generation));
        token.insert("purpose".into(), s(purpose.as_str()));
        token.insert("expires_at".into(), n(expires_at));
        let result = self
            .transact(vec![
                TransactWriteItem::builder().update(bump).build(),
                self.put(token, "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "a concurrent reset request won")
    }

    async fn reset_token(&self, token_hash: &str) -> Result<Option<ResetTokenRecord>, StoreError> {
        let Some(item) = self.get(format!("RESET#{token_hash}"), "RESET").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "RESET",
        };
        Ok(Some(ResetTokenRecord {
            token_hash: f.s("token_hash")?.to_string(),
            purpose: match f.opt_s("purpose") {
                None => TokenPurpose::Reset,
                Some(p) => {
                    TokenPurpose::parse(p).ok_or_else(|| f.corrupt("unknown purpose".into()))?
                }
            },
            user_id: f.user_id("user_id")?,
            generation: f.n("generation")?,
            expires_at: f.n("expires_at")?,
        }))
    }

    async fn consume_reset_token(
        &self,
        token: &ResetTokenRecord,
        email: &Email,
        new_password_hash: &str,
        now: i64,
        audit: &crate::store::changes::AuditEntry,
    ) -> Result<bool, StoreError> {
        let spend = Self::build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("RESET#{}", token.token_hash), "RESET")))
                .condition_expression("attribute_exists(PK) AND expires_at > :now")
                .expression_attribute_values(":now", n(now))
                .build(),
        )?;
        let change = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("USER#{}", token.user_id), "USER")))
                .update_expression("SET password_hash = :hash, session_epoch = session_epoch + :one, reset_generation = :next, email_verified = :yes, #status = :active")
                .condition_expression("reset_generation = :generation AND #status = :required")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":required", s(match token.purpose {
                    TokenPurpose::Reset => UserStatus::Active.as_str(),
                    TokenPurpose::Invitation => UserStatus::Invited.as_str(),
                }))
                .expression_attribute_values(":hash", s(new_password_hash))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":next", n(token.generation + 1))
                .expression_attribute_values(":generation", n(token.generation))
                .expression_attribute_values(":active", s("active"))
                .build(),
        )?;
        // The copy sign-in starts on, in the same write (the claim must be this user's).
        let copy = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("EMAIL#{email}"), "EMAIL")))
                .update_expression("SET password_hash = :hash")
                .condition_expression("user_id = :user")
                .expression_attribute_values(":hash", s(new_password_hash))
                .expression_attribute_values(":user", s(token.user_id.as_str()))
                .build(),
        )?;
        let mut items = vec![
            TransactWriteItem::builder().delete(spend).build(),
            TransactWriteItem::builder().update(change).build(),
            TransactWriteItem::builder().update(copy).build(),
        ];
        items.extend(self.change_items(&crate::store::changes::Change::Audit(audit.clone()))?);
        let result = self.transact(items).await;
        match result {
            Ok(_) => Ok(true),
            // A failed condition: spent (possibly by a concurrent consume that won), expired,
            // superseded by a newer request, or the account is no longer active.
            Err(e) if e.refused() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
