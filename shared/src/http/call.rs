//! One request in hand, the same shape in every function: the function's app, the store, the
//! request and its context, and the signed-in caller. It answers what every handler asks of a
//! request (the tenant gate, paging, idempotency, audit entries written with the change), so
//! no function keeps its own copy.

use crate::access::caller::{signed_in_as, Admit, Caller};
use crate::access::gate::{self, DatabaseDenied, Granted, Intent, Need};
use crate::access::jwt::TokenKeys;
use crate::domain::fields::FieldError;
use crate::domain::tenant::Tenant;
use crate::http::error::ApiError;
use crate::http::idempotency::Idempotent;
use crate::http::request::{path_param, query_param, RequestContext};
use crate::store::changes::{AuditEntry, AuditTarget, Change};
use crate::store::{DatabaseRecord, Store};
use lambda_http::Request;

/// A request of function app `A`, its caller signed in.
pub struct Call<'a, A> {
    pub app: &'a A,
    pub store: &'a dyn Store,
    pub ctx: &'a RequestContext,
    pub req: &'a Request,
    pub caller: Caller,
}

impl<'a, A> Call<'a, A> {
    /// The request in hand once its caller is signed in (`caller::signed_in`: a valid access
    /// token, a live user, not held suspended); 401 or 403 otherwise.
    pub async fn signed_in(
        app: &'a A,
        keys: &TokenKeys,
        store: &'a dyn Store,
        ctx: &'a RequestContext,
        req: &'a Request,
    ) -> Result<Self, ApiError> {
        Self::signed_in_as(app, keys, store, ctx, req, Admit::Enrolled).await
    }

    /// `signed_in`, admitting whom `admit` says (enrolment routes admit an operator without a
    /// second factor).
    pub async fn signed_in_as(
        app: &'a A,
        keys: &TokenKeys,
        store: &'a dyn Store,
        ctx: &'a RequestContext,
        req: &'a Request,
        admit: Admit,
    ) -> Result<Self, ApiError> {
        let caller = signed_in_as(keys, store, req, admit, &ctx.request_id).await?;
        Ok(Call {
            app,
            store,
            ctx,
            req,
            caller,
        })
    }

    pub fn now_ms(&self) -> i64 {
        crate::runtime::time::now_ms()
    }

    /// The tenant named by the path's `{slug}`, if the gate lets the caller do `intent` to it
    /// as `need`.
    pub async fn tenant(&self, need: Need, intent: Intent) -> Result<Granted, ApiError> {
        let granted = gate::tenant(
            self.store,
            &self.caller,
            path_param(self.req, "slug").as_deref(),
            need,
            intent,
        )
        .await?;
        crate::runtime::metrics::tenant_request(granted.tenant().id.as_str());
        Ok(granted)
    }

    /// The database named by the path's `{db_id}` and its tenant, if the gate lets the caller
    /// do `intent` to it (its members).
    pub async fn database(
        &self,
        intent: Intent,
    ) -> Result<(Granted, DatabaseRecord), DatabaseDenied> {
        let admitted = gate::database(
            self.store,
            &self.caller,
            path_param(self.req, "db_id").as_deref(),
            intent,
        )
        .await?;
        crate::runtime::metrics::tenant_request(admitted.0.tenant().id.as_str());
        Ok(admitted)
    }

    /// The page asked for: its bounded `limit` and the opaque `cursor`, if any.
    pub fn page(&self) -> Result<(usize, Option<String>), ApiError> {
        let limit = crate::store::page::limit(query_param(self.req, "limit").as_deref())
            .map_err(|e| FieldError::new("limit", e))?;
        Ok((limit, query_param(self.req, "cursor")))
    }

    /// This request's `Idempotency-Key` run for `route`, keyed to the caller and the body.
    pub fn idempotent(&self, route: &'static str, now: i64) -> Result<Idempotent<'_>, ApiError> {
        Idempotent::of_request(
            self.store,
            self.req,
            route,
            self.caller.user.id.as_str(),
            now,
        )
    }

    /// An audit entry of this request: the caller did `action` to `target` (an operator acting
    /// as the caller is named in the details).
    pub fn entry(
        &self,
        target: AuditTarget,
        action: &str,
        mut details: serde_json::Value,
    ) -> AuditEntry {
        if let Some(imp) = &self.caller.impersonation {
            crate::access::impersonation::annotate(&mut details, imp);
        }
        AuditEntry::new(
            target,
            self.caller.user.id.clone(),
            action,
            details,
            self.now_ms(),
            &self.ctx.request_id,
        )
    }

    /// The audit change of this request about `tenant` (and its partner, if attached).
    pub fn audit(&self, tenant: &Tenant, action: &str, details: serde_json::Value) -> Change {
        Change::Audit(
            self.entry(AuditTarget::Tenant(tenant.id.clone()), action, details)
                .with_partner(tenant.partner.clone()),
        )
    }
}
