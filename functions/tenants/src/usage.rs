//! `GET /tenants/{slug}/usage`: what the tenant's plan allows and what it uses (its members,
//! its partner's admins, operators).

use crate::Call;
use shared::access::gate::Granted;
use shared::plans::Usage;
use shared::{ApiError, ApiResponse};

pub(crate) async fn get(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let catalogue = call.app.catalogue();
    let (plan, usage) = tokio::try_join!(
        catalogue.of_tenant(&tenant),
        Usage::read(call.store, &tenant.id),
    )?;
    let now = shared::runtime::time::now_unix();
    Ok(ApiResponse::ok(usage.report(&tenant, &plan, now)))
}
