//! Users, their email claims, memberships (read side) and partner-admin grants.

use super::*;

impl DynamoStore {
    /// A user's email claim, with the copy of the password hash sign-in starts on.
    pub(super) fn claim_item(user: &User) -> Item {
        let mut claim = key(format!("EMAIL#{}", user.email), "EMAIL");
        claim.insert("entity".into(), s("email_claim"));
        claim.insert("user_id".into(), s(user.id.as_str()));
        claim.insert("password_hash".into(), s(&user.password_hash));
        claim
    }

    pub(super) fn user_item(user: &User) -> Item {
        let mut item = key(format!("USER#{}", user.id), "USER");
        item.insert("entity".into(), s("user"));
        item.insert("user_id".into(), s(user.id.as_str()));
        item.insert("email".into(), s(user.email.as_str()));
        item.insert("password_hash".into(), s(&user.password_hash));
        item.insert(
            "platform_admin".into(),
            AttributeValue::Bool(user.platform_admin),
        );
        item.insert("status".into(), s(user.status.as_str()));
        item.insert("session_epoch".into(), n(user.session_epoch));
        item.insert("reset_generation".into(), n(user.reset_generation));
        item.insert(
            "email_verified".into(),
            AttributeValue::Bool(user.email_verified),
        );
        if let Some(at) = user.last_sign_in_at {
            item.insert("last_sign_in_at".into(), n(at));
        }
        item.insert("created_at".into(), n(user.created_at));
        if let Some(name) = &user.name {
            item.insert("name".into(), s(name));
        }
        item.insert("mfa".into(), AttributeValue::Bool(user.mfa()));
        item.insert("totp".into(), AttributeValue::Bool(user.factors.totp));
        item.insert("passkeys".into(), n(user.factors.passkeys));
        // Every user by email (`GET /users`).
        item.insert("GSI2PK".into(), s("USERS"));
        item.insert("GSI2SK".into(), s(user.email.as_str()));
        item
    }

    pub(super) fn partner_admin_item(user: &UserId, partner: &PartnerId) -> Item {
        let mut item = key(format!("USER#{user}"), &format!("PARTNER#{partner}"));
        item.insert("entity".into(), s("partner_admin"));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("partner_id".into(), s(partner.as_str()));
        item.insert("GSI1PK".into(), s(format!("PARTNER#{partner}")));
        item.insert("GSI1SK".into(), s(format!("USER#{user}")));
        item
    }

    fn parse_user(item: &Item) -> Result<User, StoreError> {
        let f = Fields { item, key: "USER" };
        Ok(User {
            id: f.user_id("user_id")?,
            email: Email::parse(f.s("email")?).map_err(|e| f.corrupt(e.to_string()))?,
            password_hash: f.s("password_hash")?.to_string(),
            platform_admin: f.bool("platform_admin")?,
            status: UserStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown user status".into()))?,
            session_epoch: f.n("session_epoch")?,
            reset_generation: f.n_or("reset_generation", 0)?,
            email_verified: matches!(item.get("email_verified"), Some(AttributeValue::Bool(true))),
            last_sign_in_at: match item.get("last_sign_in_at") {
                Some(_) => Some(f.n("last_sign_in_at")?),
                None => None,
            },
            created_at: f.n("created_at")?,
            name: f.opt_s("name").map(str::to_string),
            factors: Self::factors_of(item, &f)?,
        })
    }

    /// A user record's factors. A record written before passkeys existed has only `mfa`,
    /// which then meant an authenticator app.
    fn factors_of(item: &Item, f: &Fields<'_>) -> Result<crate::domain::Factors, StoreError> {
        let legacy = matches!(item.get("mfa"), Some(AttributeValue::Bool(true)));
        Ok(crate::domain::Factors {
            totp: match item.get("totp") {
                Some(AttributeValue::Bool(b)) => *b,
                _ => legacy,
            },
            passkeys: f.n_or("passkeys", 0)?,
        })
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut items = vec![
            self.put(Self::claim_item(user), "attribute_not_exists(PK)")?,
            self.put(Self::user_item(user), "attribute_not_exists(PK)")?,
        ];
        items.extend(self.operator_count_item(user.account().operator_weight())?);
        let result = self.transact(items).await;
        conflict_if_refused(result, "a user with this email already exists")
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let claim = self.get(format!("EMAIL#{email}"), "EMAIL").await?;
        let Some(claim) = claim else {
            // Same number of round trips as a known email: sign-in timing must not tell them apart.
            self.get(ABSENT_USER_KEY.to_string(), "USER").await?;
            return Ok(None);
        };
        let id = Fields {
            item: &claim,
            key: "EMAIL",
        }
        .user_id("user_id")?;
        self.user_by_id(&id).await
    }

    async fn email_claim(&self, email: &Email) -> Result<Option<EmailClaim>, StoreError> {
        let Some(claim) = self.get(format!("EMAIL#{email}"), "EMAIL").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &claim,
            key: "EMAIL",
        };
        Ok(Some(EmailClaim {
            user_id: f.user_id("user_id")?,
            password_hash: f.opt_s("password_hash").map(str::to_string),
        }))
    }

    async fn user_or_decoy(&self, id: Option<&UserId>) -> Result<Option<User>, StoreError> {
        match id {
            Some(id) => self.user_by_id(id).await,
            None => {
                self.get(ABSENT_USER_KEY.to_string(), "USER").await?;
                Ok(None)
            }
        }
    }

    async fn copy_hash_to_claim(
        &self,
        email: &Email,
        user: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        conditional(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(format!("EMAIL#{email}"), "EMAIL")))
                .update_expression("SET password_hash = :hash")
                .condition_expression("user_id = :user")
                .expression_attribute_values(":hash", s(password_hash))
                .expression_attribute_values(":user", s(user.as_str()))
                .send()
                .await,
        )
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.get(format!("USER#{id}"), "USER")
            .await?
            .as_ref()
            .map(Self::parse_user)
            .transpose()
    }

    async fn membership(
        &self,
        id: &UserId,
        tenant: &TenantId,
    ) -> Result<Option<Membership>, StoreError> {
        match self
            .get(format!("USER#{id}"), &format!("MEMBER#{tenant}"))
            .await?
        {
            Some(item) => membership_of(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn invite(&self, id: &UserId, tenant: &TenantId) -> Result<Option<Invite>, StoreError> {
        let now = crate::runtime::time::now_unix();
        match self
            .get(format!("USER#{id}"), &format!("INVITE#{tenant}"))
            .await?
        {
            Some(item) => Ok(Some(invite_of(&item)?).filter(|i| i.expires_at > now)),
            None => Ok(None),
        }
    }

    async fn invites_of(&self, id: &UserId) -> Result<Vec<Invite>, StoreError> {
        let now = crate::runtime::time::now_unix();
        let items = self
            .items_with_prefix(format!("USER#{id}"), "INVITE#", 100)
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let invite = invite_of(item)?;
            if invite.expires_at > now {
                out.push(invite);
            }
        }
        Ok(out)
    }

    async fn memberships_up_to(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<Vec<Membership>, StoreError> {
        let limit = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        Ok(self.membership_page(id, Some(limit), None).await?.0)
    }

    async fn holds_partner_role(&self, id: &UserId) -> Result<bool, StoreError> {
        Ok(!self.partners_of(id, 1).await?.is_empty())
    }

    async fn grant_partner_admin(
        &self,
        id: &UserId,
        partner_id: &PartnerId,
    ) -> Result<(), StoreError> {
        let item = Self::partner_admin_item(id, partner_id);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn is_partner_admin(&self, id: &UserId, partner: &PartnerId) -> Result<bool, StoreError> {
        Ok(self
            .get(format!("USER#{id}"), &format!("PARTNER#{partner}"))
            .await?
            .is_some())
    }

    async fn partners_of(&self, id: &UserId, n: usize) -> Result<Vec<PartnerId>, StoreError> {
        let items = self
            .items_with_prefix(format!("USER#{id}"), "PARTNER#", n)
            .await?;
        items
            .iter()
            .map(|item| {
                let f = Fields {
                    item,
                    key: "PARTNER_ADMIN",
                };
                PartnerId::parse(f.s("partner_id")?)
                    .ok_or_else(|| f.corrupt("bad partner id".into()))
            })
            .collect()
    }

    async fn access_summary(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<(Vec<Membership>, bool), StoreError> {
        // MEMBER# items sort before PARTNER# ones: one query reads both.
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(format!("USER#{id}")))
            .expression_attribute_values(":from", s("MEMBER#"))
            .expression_attribute_values(":to", s("PARTNER#~"))
            .consistent_read(true)
            .limit(i32::try_from(n + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        let mut memberships = Vec::new();
        let mut partner = false;
        for item in page.items() {
            match item.get("SK").and_then(|v| v.as_s().ok()) {
                Some(sk) if sk.starts_with("MEMBER#") && memberships.len() < n => {
                    memberships.push(membership_of(item)?);
                }
                Some(sk) if sk.starts_with("PARTNER#") => partner = true,
                _ => {}
            }
        }
        Ok((memberships, partner))
    }

    async fn users_page(
        &self,
        filter: &UserFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<User>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<(String, AttributeValue)> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        if let Some(status) = filter.status {
            conditions.push("#status = :status".to_string());
            names.push(("#status".into(), "status".into()));
            values.push((":status".into(), s(status.as_str())));
        }
        if let Some(op) = filter.operator {
            conditions.push("platform_admin = :admin".to_string());
            values.push((":admin".into(), AttributeValue::Bool(op)));
        }
        let filter_expr =
            (!conditions.is_empty()).then(|| (conditions.join(" AND "), values, names));
        let sort = filter.q.as_ref().filter(|q| !q.is_empty()).map(|q| {
            (
                "GSI2SK",
                "begins_with(#sk, :prefix)".to_string(),
                vec![(":prefix", s(q))],
            )
        });
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: filter.query_name(),
                index: Some("GSI2"),
                partition: ("GSI2PK", "USERS".to_string()),
                sort,
                filter: filter_expr,
                forward: true,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(Self::parse_user)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn totp_factor(&self, id: &UserId) -> Result<Option<TotpFactor>, StoreError> {
        let Some(item) = self.get(format!("USER#{id}"), "MFA#TOTP").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "MFA#TOTP",
        };
        Ok(Some(TotpFactor {
            sealed: f.s("sealed")?.to_string(),
            confirmed: f.bool("confirmed")?,
            last_step: f.n_or("last_step", 0)?,
            created_at: f.n_or("created_at", 0)?,
        }))
    }

    async fn passkeys(&self, id: &UserId) -> Result<Vec<Passkey>, StoreError> {
        let items = self
            .items_with_prefix(format!("USER#{id}"), "MFA#PASSKEY#", 100)
            .await?;
        let mut out = items
            .iter()
            .map(|item| {
                let f = Fields {
                    item,
                    key: "MFA#PASSKEY",
                };
                Ok(Passkey {
                    id: f.s("credential_id")?.to_string(),
                    name: f.s("name")?.to_string(),
                    public_key: f.s("public_key")?.to_string(),
                    state: f.s("state")?.to_string(),
                    transports: f.n_or("transports", 0)?,
                    created_at: f.n_or("created_at", 0)?,
                    last_used_at: match item.get("last_used_at") {
                        Some(_) => Some(f.n("last_used_at")?),
                        None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn passkey_pending(
        &self,
        id: &UserId,
        now: i64,
    ) -> Result<Option<PendingPasskey>, StoreError> {
        let Some(item) = self
            .get(format!("USER#{id}"), "MFA#PASSKEY_PENDING")
            .await?
        else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "MFA#PASSKEY_PENDING",
        };
        let pending = PendingPasskey {
            state: f.s("state")?.to_string(),
            expires_at: f.n("expires_at")?,
        };
        Ok(Some(pending).filter(|p| p.expires_at > now))
    }

    async fn recovery_codes_left(&self, id: &UserId) -> Result<usize, StoreError> {
        Ok(
            match self.get(format!("USER#{id}"), "MFA#RECOVERY").await? {
                Some(item) => item
                    .get("codes")
                    .and_then(|v| v.as_ss().ok())
                    .map_or(0, Vec::len),
                None => 0,
            },
        )
    }

    async fn mfa_challenge(&self, hash: &str) -> Result<Option<MfaChallenge>, StoreError> {
        let Some(item) = self.get(format!("MFACHAL#{hash}"), "MFACHAL").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "MFACHAL",
        };
        let challenge = MfaChallenge {
            hash: hash.to_string(),
            user_id: f.user_id("user_id")?,
            audience: Audience::parse(f.s("audience")?)
                .ok_or_else(|| f.corrupt("bad audience".into()))?,
            expires_at: f.n("expires_at")?,
            session_epoch: f.n_or("session_epoch", 0)?,
            client_ip: f.opt_s("client_ip").map(str::to_string),
            user_agent: f.opt_s("user_agent").map(str::to_string),
            passkey_state: f.opt_s("passkey_state").map(str::to_string),
        };
        Ok(Some(challenge).filter(|c| c.expires_at > crate::runtime::time::now_unix()))
    }

    async fn email_change(&self, hash: &str) -> Result<Option<EmailChange>, StoreError> {
        let Some(item) = self.get(format!("EMAILCHG#{hash}"), "EMAILCHG").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "EMAILCHG",
        };
        let email = |name: &str| Email::parse(f.s(name)?).map_err(|e| f.corrupt(e.to_string()));
        let change = EmailChange {
            hash: hash.to_string(),
            user_id: f.user_id("user_id")?,
            from: email("from")?,
            to: email("to")?,
            session_epoch: f.n_or("session_epoch", 0)?,
            expires_at: f.n("expires_at")?,
        };
        Ok(Some(change).filter(|c| c.expires_at > crate::runtime::time::now_unix()))
    }

    async fn operator_count(&self) -> Result<Option<i64>, StoreError> {
        match self.get("OPERATORS".to_string(), "COUNT").await? {
            Some(item) => Fields {
                item: &item,
                key: "OPERATORS",
            }
            .n("n")
            .map(Some),
            None => Ok(None),
        }
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut unique: Vec<&UserId> = ids.iter().collect();
        unique.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        unique.dedup();
        let keys = unique
            .into_iter()
            .map(|id| key(format!("USER#{id}"), "USER"))
            .collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(Self::parse_user)
            .collect()
    }
}

fn invite_of(item: &Item) -> Result<Invite, StoreError> {
    let f = Fields {
        item,
        key: "INVITE",
    };
    Ok(Invite {
        tenant_id: f.tenant_id("tenant_id")?,
        tenant_slug: f.s("tenant_slug")?.to_string(),
        role: Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?,
        invited_by: f.user_id("invited_by")?,
        invited_at: f.n("invited_at")?,
        expires_at: f.n("expires_at")?,
    })
}

fn membership_of(item: &Item) -> Result<Membership, StoreError> {
    let f = Fields {
        item,
        key: "MEMBER",
    };
    Ok(Membership {
        tenant_id: f.tenant_id("tenant_id")?,
        tenant_slug: f.s("tenant_slug")?.to_string(),
        role: Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?,
    })
}

impl DynamoStore {
    /// One page of a user's memberships (strongly consistent: memberships decide access), and
    /// where the next page starts.
    async fn membership_page(
        &self,
        id: &UserId,
        limit: Option<i32>,
        start: Option<Item>,
    ) -> Result<(Vec<Membership>, Option<Item>), StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(format!("USER#{id}")))
            .expression_attribute_values(":prefix", s("MEMBER#"))
            .consistent_read(true)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(page.items().len());
        for item in page.items() {
            out.push(membership_of(item)?);
        }
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out, next))
    }
}
