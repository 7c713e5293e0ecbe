//! reconcile: heals provisioning. It runs on the schedule (every tenant) and on
//! `POST /tenants/{slug}/reconcile` (one tenant, operators only), and can be invoked directly
//! (`make reconcile`). For each tenant it decides (`shared::provisioning::rules::need`) whether a run of the
//! provisioning state machine is needed: provisioning unfinished or failed, an `ok` step's
//! artifact gone (drift), offboarding unfinished, or a recovery window passed. It starts that
//! run (named after the tenant and its record's version, so two reconciles of one version
//! cannot start two), waits for it, and reports what happened. Events left in the outbox
//! are published again first. Run twice in a row, the second finds nothing to do and says so.

pub mod check;
pub mod impersonations;
pub mod usage;

use futures_util::stream::{self, StreamExt};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{json, Value};
use shared::access::gate::{self, Intent};
use shared::access::jwt::TokenKeys;
use shared::domain::tenant::Tenant;
use shared::events::{publish_committed, EventPublisher};
use shared::http::call::Call;
use shared::http::request::{matched, RequestContext};
use shared::provisioning::rules::{self, Need};
use shared::store::{Store, TenantFilter};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub events: Arc<dyn EventPublisher>,
    /// The owners' notices of impersonations that expired unstopped.
    pub mailer: Arc<dyn shared::mail::Mailer>,
    pub bucket: String,
    pub secret_prefix: String,
    /// `STATE_MACHINE_ARN`: the provisioning state machine.
    pub state_machine_arn: String,
    /// `PROVISIONING_STALE_SECONDS`.
    pub stale_after_secs: i64,
    /// How long a reconcile waits for the runs it started (within the function's timeout).
    pub wait: Duration,
    /// How long a scheduled pass walks through tenants before it keeps its position for the
    /// next run (the rest of the function's timeout is for the runs it waits for).
    pub walk: Duration,
}

/// Tenants read per page of a scheduled pass: only one page is held at a time.
pub const PAGE: usize = 100;

/// What happened to one tenant.
#[derive(Debug, Serialize)]
pub struct TenantReport {
    pub slug: String,
    pub status_before: String,
    #[serde(flatten)]
    pub need: Need,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The run's end: `SUCCEEDED`, `FAILED`, ..., or `RUNNING` if it outlasted the wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_after: Option<String>,
    /// Each step after the run (provisioning, or offboarding for a deleted tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_after: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Usage counters the recount set (`usage::recount`): per counter, from and to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_recounted: Option<Value>,
}

/// Runs one pass. `only`: one tenant (forced), else every tenant.
pub async fn reconcile(app: &App, only: Option<Tenant>) -> Value {
    let started = Instant::now();
    let force = only.is_some();
    let republished = if force {
        0
    } else {
        republish_outbox(app).await
    };
    let impersonations_ended = if force {
        0
    } else {
        impersonations::record_expired(app).await
    };
    let mut checked = 0;
    let mut reports: Vec<TenantReport> = Vec::new();
    let mut listing_error = None;
    let mut walked = None;
    match only {
        Some(t) => {
            checked = 1;
            reports.push(reconcile_one(app, t, true).await);
        }
        None => {
            // A page at a time from where the last pass stopped, until the walk's time is up:
            // memory holds one page, and a million tenants are covered over successive runs.
            match Walk::start(app, started).await {
                Err(e) => listing_error = Some(e),
                Ok(mut walk) => loop {
                    match walk.next().await {
                        Err(e) => {
                            listing_error = Some(e);
                            break;
                        }
                        Ok(None) => {
                            walked = walk.outcome();
                            break;
                        }
                        Ok(Some(page)) => {
                            checked += page.len();
                            let done: Vec<TenantReport> = stream::iter(page)
                                .map(|t| reconcile_one(app, t, false))
                                .buffer_unordered(8)
                                .collect()
                                .await;
                            // Only what was acted on is kept for the report.
                            reports.extend(done.into_iter().filter(|r| {
                                !matches!(r.need, Need::Nothing { .. })
                                    || r.error.is_some()
                                    || r.usage_recounted.is_some()
                            }));
                        }
                    }
                },
            }
        }
    }
    reports.sort_by(|a, b| a.slug.cmp(&b.slug));
    let redriven = reports.iter().filter(|r| r.execution.is_some()).count();
    let acted = reports
        .iter()
        .filter(|r| {
            !matches!(r.need, Need::Nothing { .. })
                || r.error.is_some()
                || r.usage_recounted.is_some()
        })
        .count();
    let recounted = reports
        .iter()
        .filter(|r| r.usage_recounted.is_some())
        .count();
    let summary = if acted == 0
        && republished == 0
        && impersonations_ended == 0
        && listing_error.is_none()
    {
        "nothing to do".to_string()
    } else {
        format!(
            "{redriven} runs started, {republished} events republished, {recounted} tenants' usage recounted, {impersonations_ended} expired impersonations recorded"
        )
    };
    json!({
        "summary": summary,
        "tenants_checked": checked,
        "runs_started": redriven,
        "events_republished": republished,
        "impersonations_ended": impersonations_ended,
        "error": listing_error,
        // A scheduled pass: whether it reached the last tenant (else the next run goes on).
        "walk": walked,
        "tenants": reports,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    })
}

/// How far one scheduled pass walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Walked {
    /// It reached the last tenant; the next pass starts from the first.
    #[serde(rename = "finished")]
    Finished,
    /// Its time was up; the next pass goes on from where it stopped.
    #[serde(rename = "paused")]
    Paused,
}

/// A scheduled pass's walk through every tenant, a page at a time, from the position the last
/// pass kept, until the last tenant or until `app.walk` has passed. The position is kept after
/// each page is handled (when the next is asked for), so a pass that dies mid-page does that
/// page again. A kept position the store no longer accepts (a cursor from an older release)
/// starts the walk again.
pub struct Walk<'a> {
    app: &'a App,
    started: Instant,
    /// Where the next page starts (`None`: the first page).
    cursor: Option<String>,
    /// A page was handed out and its successor's position is not kept yet.
    handed: Option<Option<String>>,
    outcome: Option<Walked>,
}

impl<'a> Walk<'a> {
    pub async fn start(app: &'a App, started: Instant) -> Result<Walk<'a>, String> {
        let cursor = app.store.reconcile_position().await.map_err(listing)?;
        Ok(Walk {
            app,
            started,
            cursor,
            handed: None,
            outcome: None,
        })
    }

    /// How the walk ended, once `next` has said `None`.
    pub fn outcome(&self) -> Option<Walked> {
        self.outcome
    }

    /// The next page, or `None` when the walk is over for this pass.
    pub async fn next(&mut self) -> Result<Option<Vec<Tenant>>, String> {
        let store = self.app.store.as_ref();
        if let Some(next) = self.handed.take() {
            store
                .set_reconcile_position(next.as_deref())
                .await
                .map_err(listing)?;
            if next.is_none() {
                self.outcome = Some(Walked::Finished);
                return Ok(None);
            }
            if self.started.elapsed() >= self.app.walk {
                self.outcome = Some(Walked::Paused);
                return Ok(None);
            }
            self.cursor = next;
        }
        if self.outcome.is_some() {
            return Ok(None);
        }
        let page = match store
            .tenants_page(&TenantFilter::default(), PAGE, self.cursor.as_deref())
            .await
        {
            Ok(p) => p,
            Err(shared::store::StoreError::InvalidCursor) if self.cursor.is_some() => {
                tracing::warn!("the reconcile's kept position is no longer valid: starting over");
                self.cursor = None;
                store
                    .tenants_page(&TenantFilter::default(), PAGE, None)
                    .await
                    .map_err(listing)?
            }
            Err(e) => return Err(listing(e)),
        };
        self.handed = Some(page.next_cursor);
        Ok(Some(page.items))
    }
}

fn listing(e: shared::store::StoreError) -> String {
    format!("tenants could not be listed: {e}")
}

/// Publishes again every event that has waited in the outbox longer than a fresh request
/// needs to publish its own.
async fn republish_outbox(app: &App) -> usize {
    let now = shared::runtime::time::now_unix();
    let pending = match app.store.pending_events(100).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "outbox unreadable");
            return 0;
        }
    };
    let mut n = 0;
    for event in pending.iter().filter(|e| now - e.created_at >= 60) {
        if publish_committed(app.events.as_ref(), app.store.as_ref(), event).await {
            n += 1;
        }
    }
    n
}

async fn reconcile_one(app: &App, t: Tenant, force: bool) -> TenantReport {
    let now = shared::runtime::time::now_unix();
    let mut report = TenantReport {
        slug: t.slug.to_string(),
        status_before: t.status.as_str().to_string(),
        need: Need::Nothing {
            reason: String::new(),
        },
        execution: None,
        execution_status: None,
        status_after: None,
        steps_after: None,
        error: None,
        usage_recounted: None,
    };
    // A live tenant's usage, recounted where it drifted (a deleted one's no longer counts).
    if t.status != shared::domain::tenant::TenantStatus::Deleted {
        match usage::recount(app, &t).await {
            Ok(fixed) => report.usage_recounted = fixed,
            Err(e) => report.error = Some(e),
        }
    }
    if let Some(run) = t.live_run(now) {
        // Its run is under way: no artifact to check yet.
        report.need = Need::Busy {
            run: run.id.clone(),
        };
        return report;
    }
    let drift = match check::drift(app, &t).await {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("artifacts could not be checked: {}", e.what));
            report.need = Need::Nothing {
                reason: "left for the next reconcile".into(),
            };
            return report;
        }
    };
    report.need = rules::need(&t, now, app.stale_after_secs, force, &drift);
    if !matches!(report.need, Need::Redrive { .. }) {
        return report;
    }
    // One name per tenant and record version: a second reconcile of the same version gets
    // ExecutionAlreadyExists instead of a second run, and the run's claim moves the version.
    let name = format!("{}-g{}", t.slug, t.version);
    let input = json!({
        "detail-type": shared::provisioning::RunCause::Reconcile.as_str(),
        "source": "reconcile",
        "detail": {"tenant_id": t.id, "slug": t.slug},
    });
    let started = app
        .sfn
        .start_execution()
        .state_machine_arn(&app.state_machine_arn)
        .name(&name)
        .input(input.to_string())
        .send()
        .await;
    let arn = match started {
        Ok(out) => out.execution_arn().to_string(),
        Err(e) => {
            let already = e
                .as_service_error()
                .is_some_and(|s| s.is_execution_already_exists());
            if already {
                report.need = Need::Busy { run: name };
            } else {
                report.error = Some(format!(
                    "the run could not be started: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                ));
            }
            return report;
        }
    };
    report.execution = Some(name);
    report.execution_status = Some(wait_for(app, &arn).await);
    if let Ok(Some(after)) = app.store.tenant_by_id(&t.id).await {
        report.status_after = Some(after.status.as_str().to_string());
        report.steps_after = Some(match &after.offboarding {
            Some(o) if after.status == shared::domain::tenant::TenantStatus::Deleted => {
                json!(o.steps)
            }
            _ => json!(after.provisioning),
        });
    }
    report
}

/// Polls the execution until it ends or the wait is over.
async fn wait_for(app: &App, arn: &str) -> String {
    let deadline = Instant::now() + app.wait;
    let mut delay = Duration::from_millis(100);
    loop {
        let status = app
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map(|d| d.status().as_str().to_string())
            .unwrap_or_else(|_| "UNKNOWN".into());
        if status != "RUNNING" || Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Any invocation: an API Gateway proxy event (the route), or anything else (the schedule,
/// a direct invoke), which reconciles every tenant and returns the report.
pub async fn handle_event(app: &App, payload: Value) -> Value {
    if shared::http::invoke::is_http(&payload) {
        return shared::http::invoke::serve_http(payload, |req| handle_http(app, req)).await;
    }
    let report = reconcile(app, None).await;
    tracing::info!(report = %report, "scheduled reconcile");
    report
}

const ROUTES: &[(&str, &str, ())] = &[("POST", "/tenants/{slug}/reconcile", ())];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle_http(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    matched(&req, ROUTES)?;
    let call = Call::<App>::signed_in(app, &app.keys, app.store.as_ref(), &ctx, &req).await?;
    let tenant = call
        .tenant(gate::Need::Operator, Intent::Lifecycle)
        .await?
        .into_tenant();
    tracing::info!(tenant = %tenant.slug, by = %call.caller.user.id, "reconcile requested");
    Ok(ApiResponse::ok(reconcile(app, Some(tenant)).await))
}
