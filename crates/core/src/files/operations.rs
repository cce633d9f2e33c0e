//! File operations (deletes). They finish before the reply; the log keeps each person's recent
//! ones for `GET /api/2.0/files/fileops`.

use backspace_types::{PortalId, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Operations kept per person.
const KEEP: usize = 50;

/// A finished (or failed) operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOperation {
    pub id: String,
    /// FileOperationType: 2 Delete.
    pub kind: i32,
    pub error: String,
    pub processed: i64,
}

/// Recent operations per (portal, person). Per instance: with several instances, a poll that
/// lands elsewhere sees an empty list, which clients read as "nothing pending".
#[derive(Default)]
pub(crate) struct OperationLog {
    ops: Mutex<HashMap<(PortalId, UserId), VecDeque<FileOperation>>>,
}

impl OperationLog {
    pub fn record(&self, portal: PortalId, user: UserId, op: FileOperation) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let list = ops.entry((portal, user)).or_default();
        list.push_back(op);
        while list.len() > KEEP {
            list.pop_front();
        }
    }

    pub fn list(&self, portal: PortalId, user: UserId) -> Vec<FileOperation> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.get(&(portal, user))
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}
