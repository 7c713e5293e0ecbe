//! Domain events leaving the platform (`TenantCreated`, `TenantDeleted`, ...). An event is first
//! written to the outbox in the same transaction as the change that caused it, then published;
//! once published its outbox item is removed. An event whose publishing failed stays in the
//! outbox (and the tenant it concerns stays in `provisioning`), where the reconcile finds it.

use crate::domain::tenant::{Plan, TenantSlug};
use crate::domain::{PartnerId, TenantId, UserId};
use crate::store::changes::OutboxEvent;
use crate::store::CommitStore;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The `source` of every event the platform publishes.
pub const SOURCE: &str = "saas.control-plane";

/// Every kind of event the platform publishes: its EventBridge `detail-type`. The template's
/// rule that starts provisioning lists exactly these (`infra/checks/tests/events.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    TenantCreated,
    TenantDeleted,
    TenantRestored,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::TenantCreated,
        EventKind::TenantDeleted,
        EventKind::TenantRestored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TenantCreated => "TenantCreated",
            EventKind::TenantDeleted => "TenantDeleted",
            EventKind::TenantRestored => "TenantRestored",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// `TenantCreated`: a tenant was stored as `provisioning`; its provisioning run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
    pub owner_user_id: UserId,
    pub created_by: Option<UserId>,
    pub plan: Plan,
}

/// `TenantDeleted` and `TenantRestored`: the tenant's offboarding, or its provisioning again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantChanged {
    pub tenant_id: TenantId,
    pub slug: TenantSlug,
    pub partner_id: Option<PartnerId>,
}

/// An event with its typed payload: the only way events are made.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    TenantCreated(TenantCreated),
    TenantDeleted(TenantChanged),
    TenantRestored(TenantChanged),
}

impl DomainEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            DomainEvent::TenantCreated(_) => EventKind::TenantCreated,
            DomainEvent::TenantDeleted(_) => EventKind::TenantDeleted,
            DomainEvent::TenantRestored(_) => EventKind::TenantRestored,
        }
    }

    /// The event as its outbox item (a fresh id), to commit with the change that caused it.
    pub fn outbox(&self, now: i64) -> OutboxEvent {
        let detail = match self {
            DomainEvent::TenantCreated(e) => serde_json::to_string(e),
            DomainEvent::TenantDeleted(e) | DomainEvent::TenantRestored(e) => {
                serde_json::to_string(e)
            }
        };
        OutboxEvent {
            id: crate::access::opaque::random_id(),
            kind: self.kind().as_str().to_string(),
            // Plain data of this crate's own types: serialising it cannot fail.
            detail: detail.unwrap_or_default(),
            created_at: now,
        }
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
