//! Domain events leaving the platform: one for every change of a tenant's life (`TenantCreated`,
//! `TenantSuspended`, `MemberAdded`, `QuotaReached`, ...), and one for every change of a
//! feature flag (`FlagChanged`). An event is first written to the
//! outbox in the same transaction as the change that caused it, then published; once published
//! its outbox item is removed. An event whose publishing failed stays in the outbox, where the
//! reconcile finds it and publishes it again. Each kind's detail has a versioned JSON Schema in
//! `infra/events/`; applications subscribe with an EventBridge rule on the platform's bus (the
//! README shows one).

use crate::domain::plan::PlanId;
use crate::domain::tenant::{Tenant, TenantSlug};
use crate::domain::{PartnerId, Role, TenantId, UserId};
use crate::store::changes::OutboxEvent;
use crate::store::CommitStore;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The `source` of every event the platform publishes.
pub const SOURCE: &str = "saas.control-plane";

/// The version of every event's schema (`infra/events/<kind>.schema.json`), carried in each
/// detail as `schema_version`. A change that is not additive publishes a new version.
pub const SCHEMA_VERSION: u32 = 1;

/// Every kind of event the platform publishes: its EventBridge `detail-type`, one per change of
/// a tenant's life. Each has a JSON Schema in `infra/events/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    TenantCreated,
    TenantActivated,
    TenantSuspended,
    TenantResumed,
    TenantPlanChanged,
    TenantPartnerChanged,
    TenantDeleted,
    TenantRestored,
    TenantPurged,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    QuotaReached,
    FlagChanged,
}

crate::domain::named_enum!(EventKind {
    TenantCreated => "TenantCreated",
    TenantActivated => "TenantActivated",
    TenantSuspended => "TenantSuspended",
    TenantResumed => "TenantResumed",
    TenantPlanChanged => "TenantPlanChanged",
    TenantPartnerChanged => "TenantPartnerChanged",
    TenantDeleted => "TenantDeleted",
    TenantRestored => "TenantRestored",
    TenantPurged => "TenantPurged",
    MemberAdded => "MemberAdded",
    MemberRemoved => "MemberRemoved",
    MemberRoleChanged => "MemberRoleChanged",
    QuotaReached => "QuotaReached",
    FlagChanged => "FlagChanged",
});

impl EventKind {
    /// The kinds that start a provisioning run: the template's rule that starts the state
    /// machine lists exactly these (`infra/checks/tests/events.rs`).
    pub const PROVISIONING: &'static [EventKind] = &[
        EventKind::TenantCreated,
        EventKind::TenantDeleted,
        EventKind::TenantRestored,
    ];
}

/// `TenantCreated`: a tenant was stored as `provisioning`; its provisioning run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
    pub owner_user_id: UserId,
    pub created_by: Option<UserId>,
    pub plan: PlanId,
}

/// A change of the tenant's status (`TenantActivated`, `TenantSuspended`, `TenantResumed`,
/// `TenantDeleted`, `TenantRestored`, `TenantPurged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantChanged {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
}

impl TenantChanged {
    pub fn of(t: &Tenant) -> Self {
        TenantChanged {
            tenant_id: t.id.clone(),
            slug: t.slug.clone(),
            partner_id: t.partner.clone(),
        }
    }
}

/// `TenantPlanChanged`: the tenant's plan, and what it now exceeds (a downgrade below usage is
/// allowed; nothing is deleted, new usage is refused until it is back under).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanChanged {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
    pub from: PlanId,
    pub to: PlanId,
    pub over_quota: Vec<String>,
}

/// `TenantPartnerChanged`: the tenant was attached to, moved between or detached from
/// partners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerChanged {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub from: Option<PartnerId>,
    pub to: Option<PartnerId>,
}

/// `MemberAdded`, `MemberRemoved`, `MemberRoleChanged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberChanged {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
    pub user_id: UserId,
    /// The role held after the change (for a removal: the role that was held).
    pub role: Role,
    /// For a role change: the role before.
    pub previous_role: Option<Role>,
}

/// `QuotaReached`: a counter of the tenant reached its plan's limit (nothing more of it may be
/// added until it is back under).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaReached {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
    pub plan: PlanId,
    /// `seats`, `stored_bytes`, `stored_objects` or `databases`.
    pub quota: String,
    pub used: i64,
    pub limit: i64,
}

/// `FlagChanged`: a feature flag was created, changed, killed, given or relieved of an
/// override, or deleted (`action`), by an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagChanged {
    pub key: crate::domain::flag::FlagKey,
    /// `created`, `updated`, `killed`, `override_set`, `override_removed` or `deleted`.
    pub action: String,
    /// The state before (`None` for a new flag) and after (`None` once deleted).
    pub state_before: Option<crate::domain::flag::FlagState>,
    pub state_after: Option<crate::domain::flag::FlagState>,
    pub rollout_percent: Option<u8>,
    /// The version after the change (the last one for a deletion).
    pub version: u64,
    pub changed_by: UserId,
}

/// An event with its typed payload: the only way events are made.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    TenantCreated(TenantCreated),
    TenantActivated(TenantChanged),
    TenantSuspended(TenantChanged),
    TenantResumed(TenantChanged),
    TenantPlanChanged(PlanChanged),
    TenantPartnerChanged(PartnerChanged),
    TenantDeleted(TenantChanged),
    TenantRestored(TenantChanged),
    TenantPurged(TenantChanged),
    MemberAdded(MemberChanged),
    MemberRemoved(MemberChanged),
    MemberRoleChanged(MemberChanged),
    QuotaReached(QuotaReached),
    FlagChanged(FlagChanged),
}

impl DomainEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            DomainEvent::TenantCreated(_) => EventKind::TenantCreated,
            DomainEvent::TenantActivated(_) => EventKind::TenantActivated,
            DomainEvent::TenantSuspended(_) => EventKind::TenantSuspended,
            DomainEvent::TenantResumed(_) => EventKind::TenantResumed,
            DomainEvent::TenantPlanChanged(_) => EventKind::TenantPlanChanged,
            DomainEvent::TenantPartnerChanged(_) => EventKind::TenantPartnerChanged,
            DomainEvent::TenantDeleted(_) => EventKind::TenantDeleted,
            DomainEvent::TenantRestored(_) => EventKind::TenantRestored,
            DomainEvent::TenantPurged(_) => EventKind::TenantPurged,
            DomainEvent::MemberAdded(_) => EventKind::MemberAdded,
            DomainEvent::MemberRemoved(_) => EventKind::MemberRemoved,
            DomainEvent::MemberRoleChanged(_) => EventKind::MemberRoleChanged,
            DomainEvent::QuotaReached(_) => EventKind::QuotaReached,
            DomainEvent::FlagChanged(_) => EventKind::FlagChanged,
        }
    }

    fn payload(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            DomainEvent::TenantCreated(e) => serde_json::to_value(e),
            DomainEvent::TenantActivated(e)
            | DomainEvent::TenantSuspended(e)
            | DomainEvent::TenantResumed(e)
            | DomainEvent::TenantDeleted(e)
            | DomainEvent::TenantRestored(e)
            | DomainEvent::TenantPurged(e) => serde_json::to_value(e),
            DomainEvent::TenantPlanChanged(e) => serde_json::to_value(e),
            DomainEvent::TenantPartnerChanged(e) => serde_json::to_value(e),
            DomainEvent::MemberAdded(e)
            | DomainEvent::MemberRemoved(e)
            | DomainEvent::MemberRoleChanged(e) => serde_json::to_value(e),
            DomainEvent::QuotaReached(e) => serde_json::to_value(e),
            DomainEvent::FlagChanged(e) => serde_json::to_value(e),
        }
    }

    /// The event as its outbox item (a fresh id), to commit with the change that caused it.
    /// Its detail is the payload with `schema_version`, `event_id` and `occurred_at` (Unix ms,
    /// `now_ms`): consumers order one tenant's events by it.
    pub fn outbox_at(&self, now_ms: i64) -> OutboxEvent {
        let id = crate::access::opaque::random_id();
        // Plain data of this crate's own types: serialising it cannot fail.
        let mut detail = self.payload().unwrap_or_default();
        if let Some(map) = detail.as_object_mut() {
            map.insert("schema_version".into(), SCHEMA_VERSION.into());
            map.insert("event_id".into(), id.clone().into());
            map.insert("occurred_at".into(), now_ms.into());
        }
        OutboxEvent {
            id,
            kind: self.kind().as_str().to_string(),
            detail: detail.to_string(),
            created_at: now_ms / 1000,
        }
    }

    /// [`Self::outbox_at`] at `now` (Unix seconds).
    pub fn outbox(&self, now: i64) -> OutboxEvent {
        self.outbox_at(now.saturating_mul(1000))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("event not published")]
pub struct PublishError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), PublishError>;
}

/// EventBridge `PutEvents` on the configured bus.
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), PublishError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&event.kind)
            .detail(&event.detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError(crate::runtime::aws::sdk_cause(e)))?;
        // PutEvents answers 200 even when an entry was refused; the count says so.
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .first()
                .and_then(|e| e.error_code())
                .unwrap_or("unknown")
                .to_string();
            return Err(PublishError(format!("entry refused: {code}").into()));
        }
        Ok(())
    }
}

/// Publishes an event already committed to the outbox, then removes it from the outbox. A
/// failure is logged and left for the reconcile: the change it belongs to stands.
pub async fn publish_committed(
    publisher: &dyn EventPublisher,
    store: &dyn CommitStore,
    event: &OutboxEvent,
) -> bool {
    match publisher.publish(event).await {
        Ok(()) => {
            if let Err(e) = store.outbox_published(&event.id).await {
                tracing::warn!(event_id = %event.id, cause = %crate::runtime::logging::chain(&e), "published event left in the outbox");
            }
            true
        }
        Err(e) => {
            tracing::error!(event_id = %event.id, kind = %event.kind, cause = %crate::runtime::logging::chain(&e), "event not published; left in the outbox for the reconcile");
            false
        }
    }
}

/// Commits `changes`, then publishes the events among them in order (each one that fails stays
/// in the outbox for the reconcile: the change stands).
pub async fn commit_and_publish(
    store: &dyn CommitStore,
    publisher: &dyn EventPublisher,
    changes: Vec<crate::store::changes::Change>,
) -> Result<(), crate::store::changes::CommitError> {
    let events: Vec<OutboxEvent> = changes
        .iter()
        .filter_map(|c| match c {
            crate::store::changes::Change::Outbox(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    store.commit(changes).await?;
    for e in &events {
        publish_committed(publisher, store, e).await;
    }
    Ok(())
}

/// Records events instead of publishing them (tests), or refuses them all when `failing`.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct RecordingPublisher {
    pub events: std::sync::Mutex<Vec<OutboxEvent>>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[cfg(any(test, feature = "testing"))]
impl RecordingPublisher {
    pub fn published(&self) -> Vec<OutboxEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), PublishError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PublishError("publishing is down (test)".into()));
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }
}
