//! One request in hand, the same shape in every function: the function's app, the store, the
//! request and its context, and the signed-in caller. It answers what every handler asks of a
//! request (the tenant gate, paging, idempotency, audit entries written with the change), so
//! no function keeps its own copy.

use crate::auth::access::Caller;
use crate::auth::gate::{self, Granted, Intent, Need};
use crate::error::ApiError;
use crate::fields::FieldError;
use crate::idempotency::{self, Idempotent};
use crate::request::{path_param, query_param, RequestContext};
use crate::store::changes::{AuditEntry, AuditTarget, Change};
use crate::store::Store;
use crate::tenant::Tenant;
use lambda_http::Request;

/// A request of function app `A`, its caller signed in.
pub struct Call<'a, A> {
    pub app: &'a A,
    pub store: &'a dyn Store,
    pub ctx: &'a RequestContext,
    pub req: &'a Request,
    pub caller: &'a Caller,
}

impl<'a, A> Call<'a, A> {
    pub fn now_ms(&self) -> i64 {
        crate::time::now_ms()
    }

    /// The tenant named by the path's `{slug}`, if the gate lets the caller do `intent` to it
    /// as `need`.
    pub async fn tenant(&self, need: Need, intent: Intent) -> Result<Granted, ApiError> {
        gate::tenant(
            self.store,
            self.caller,
            path_param(self.req, "slug").as_deref(),
            need,
            intent,
        )
        .await
    }

    /// The page asked for: its bounded `limit` and the opaque `cursor`, if any.
    pub fn page(&self) -> Result<(usize, Option<String>), ApiError> {
        let limit = crate::page::limit(query_param(self.req, "limit").as_deref())
            .map_err(|e| FieldError::new("limit", e))?;
        Ok((limit, query_param(self.req, "cursor")))
    }

    /// This request's `Idempotency-Key` run for `route`, keyed to the caller and the body.
    pub fn idempotent(&self, route: &'static str, now: i64) -> Result<Idempotent<'a>, ApiError> {
        Ok(Idempotent {
            store: self.store,
            key: idempotency::key_of(self.req)?,
            route,
            subject: self.caller.user.id.as_str(),
            body: self.req.body().as_ref(),
            now,
        })
    }

    /// An audit entry of this request: the caller did `action` to `target`.
    pub fn entry(
        &self,
        target: AuditTarget,
        action: &str,
        details: serde_json::Value,
    ) -> AuditEntry {
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
