//! Writing and reading the portal's audit log of backup actions.

use crate::caller::Caller;
use crate::{Core, Result};
use backspace_meta::AuditEvent;
use backspace_types::datetime::now_ms;
use backspace_types::{PortalId, UserId};

impl Core {
    /// Records an event. A failure to record is logged, not raised: the action itself happened.
    pub(crate) async fn audit(&self, portal: PortalId, user: Option<UserId>, action: &str, detail: impl Into<String>) {
        let event = AuditEvent {
            id: uuid::Uuid::new_v4(),
            portal_id: portal,
            at: now_ms(),
            user_id: user,
            action: action.to_owned(),
            detail: detail.into(),
        };
        if let Err(e) = self.store.record_event(&event).await {
            tracing::warn!(portal = %portal, action, error = %e, "writing the audit log failed");
        }
    }

    /// The portal's newest audit events (at most `limit`, 1 to 1000).
    pub async fn audit_events(&self, caller: &Caller, limit: i64) -> Result<Vec<AuditEvent>> {
        Ok(self.store.events(caller.portal.id, limit.clamp(1, 1000)).await?)
    }
}
