//! An in-memory ITSM backend that records every call and can be scripted to fail.
//!
//! It is what the receiver uses by default (demo mode) and what tests use to assert the lifecycle
//! without a network.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{
    ItsmConnector, ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};

/// Which connector operation a call or a scripted failure refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MockOp {
    /// [`ItsmConnector::create`].
    Create,
    /// [`ItsmConnector::find_open`].
    FindOpen,
    /// [`ItsmConnector::state`].
    State,
    /// [`ItsmConnector::update`].
    Update,
    /// [`ItsmConnector::resolve`].
    Resolve,
    /// [`ItsmConnector::reopen`].
    Reopen,
    /// [`ItsmConnector::health`].
    Health,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct MockCall {
    /// The operation.
    pub op: MockOp,
    /// The work item id or correlation id the call addressed (empty for create and health).
    pub target: String,
    /// Whether the call failed (scripted).
    pub failed: bool,
}

/// A ticket in the mock's table.
#[derive(Debug, Clone, PartialEq)]
pub struct MockTicket {
    /// The reference handed out on create.
    pub reference: WorkItemRef,
    /// The item as created.
    pub item: NewWorkItem,
    /// Current state.
    pub state: WorkItemState,
    /// Work notes, oldest first.
    pub notes: Vec<String>,
    /// Field updates applied after create.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// The last resolution, if resolved.
    pub resolution: Option<Resolution>,
    /// How many times it was reopened.
    pub reopen_count: u32,
}

#[derive(Debug, Default)]
struct Inner {
    tickets: BTreeMap<String, MockTicket>,
    /// Ticket ids by correlation id, in creation order (`find_open` is a lookup, not a scan:
    /// the load harness creates tens of thousands of tickets).
    by_correlation: HashMap<String, Vec<String>>,
    calls: Vec<MockCall>,
    script: VecDeque<(Option<MockOp>, ItsmError)>,
    next_number: u64,
}

/// The in-memory backend. Cloning shares the same table.
#[derive(Debug, Clone, Default)]
pub struct MockConnector {
    inner: Arc<Mutex<Inner>>,
}

impl MockConnector {
    /// An empty mock.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the table half-written (every mutation is
        // a single insert or field store), so a poisoned lock is still safe to use.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next call of `op` (or of any operation but [`MockOp::Health`], with `None`)
    /// fail with `error`.
    /// Scripted failures are consumed in order.
    pub fn fail_next(&self, op: Option<MockOp>, error: ItsmError) {
        self.lock().script.push_back((op, error));
    }

    /// Makes the next `n` calls of `op` (or of any operation) fail with clones of `error`.
    pub fn fail_times(&self, op: Option<MockOp>, n: usize, error: &ItsmError) {
        let mut inner = self.lock();
        for _ in 0..n {
            inner.script.push_back((op, error.clone()));
        }
    }

    /// Makes the next calls of `op` (or of any operation) fail with `errors`, in order.
    pub fn fail_sequence(&self, op: Option<MockOp>, errors: impl IntoIterator<Item = ItsmError>) {
        let mut inner = self.lock();
        inner.script.extend(errors.into_iter().map(|e| (op, e)));
    }

    /// Every ticket, ordered by id.
    #[must_use]
    pub fn tickets(&self) -> Vec<MockTicket> {
        self.lock().tickets.values().cloned().collect()
    }

    /// The ticket with this id.
    #[must_use]
    pub fn ticket(&self, id: &str) -> Option<MockTicket> {
        self.lock().tickets.get(id).cloned()
    }

    /// Every ticket created with this correlation id (open or not).
    #[must_use]
    pub fn tickets_for(&self, correlation_id: &str) -> Vec<MockTicket> {
        let inner = self.lock();
        inner
            .ids_for(correlation_id)
            .filter_map(|id| inner.tickets.get(id).cloned())
            .collect()
    }

    /// Every call made so far.
    #[must_use]
    pub fn calls(&self) -> Vec<MockCall> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` were made (including failed ones).
    #[must_use]
    pub fn call_count(&self, op: MockOp) -> usize {
        self.lock().calls.iter().filter(|c| c.op == op).count()
    }

    /// Marks a ticket closed, as a person closing it in the ITSM would.
    pub fn close_by_person(&self, id: &str) -> bool {
        let mut inner = self.lock();
        match inner.tickets.get_mut(id) {
            Some(t) => {
                t.state = WorkItemState::Closed;
                true
            }
            None => false,
        }
    }

    /// Records a call and returns the scripted failure for it, if one is due.
    fn begin(&self, op: MockOp, target: &str) -> Result<MutexGuard<'_, Inner>, ItsmError> {
        let mut inner = self.lock();
        let pos = inner.script.iter().position(|(o, _)| match o {
            Some(o) => *o == op,
            // "Any operation" means any call that does work: a background health probe
            // (which a receiver runs on a timer) must not eat a failure a test scripted.
            None => op != MockOp::Health,
        });
        let failure = pos.and_then(|p| inner.script.remove(p)).map(|(_, e)| e);
        inner.calls.push(MockCall {
            op,
            target: target.to_owned(),
            failed: failure.is_some(),
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(inner),
        }
    }
}

impl Inner {
    /// The ids of the tickets created with this correlation id, oldest first.
    fn ids_for<'a>(&'a self, correlation_id: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.by_correlation
            .get(correlation_id)
            .into_iter()
            .flatten()
    }
}

fn not_found(id: &str) -> ItsmError {
    ItsmError::NotFound {
        backend: "mock",
        id: id.to_owned(),
    }
}

#[async_trait]
impl ItsmConnector for MockConnector {
    fn backend(&self) -> &'static str {
        "mock"
    }

    async fn create(&self, item: &NewWorkItem) -> Result<WorkItemRef, ItsmError> {
        let mut inner = self.begin(MockOp::Create, "")?;
        inner.next_number += 1;
        let n = inner.next_number;
        let reference = WorkItemRef {
            id: format!("mock-{n:06}"),
            number: Some(format!("MOCK{n:07}")),
            url: Some(format!("mock://tickets/mock-{n:06}")),
        };
        inner
            .by_correlation
            .entry(item.correlation_id.clone())
            .or_default()
            .push(reference.id.clone());
        inner.tickets.insert(
            reference.id.clone(),
            MockTicket {
                reference: reference.clone(),
                item: item.clone(),
                state: WorkItemState::Open,
                notes: Vec::new(),
                fields: BTreeMap::new(),
                resolution: None,
                reopen_count: 0,
            },
        );
        Ok(reference)
    }

    async fn find_open(&self, correlation_id: &str) -> Result<Option<WorkItemRef>, ItsmError> {
        let inner = self.begin(MockOp::FindOpen, correlation_id)?;
        Ok(inner
            .ids_for(correlation_id)
            .filter_map(|id| inner.tickets.get(id))
            .find(|t| t.state.is_open())
            .map(|t| t.reference.clone()))
    }

    async fn state(&self, item: &WorkItemRef) -> Result<WorkItemState, ItsmError> {
        let inner = self.begin(MockOp::State, &item.id)?;
        inner
            .tickets
            .get(&item.id)
            .map(|t| t.state)
            .ok_or_else(|| not_found(&item.id))
    }

    async fn update(&self, item: &WorkItemRef, update: &WorkItemUpdate) -> Result<(), ItsmError> {
        let mut inner = self.begin(MockOp::Update, &item.id)?;
        let ticket = inner
            .tickets
            .get_mut(&item.id)
            .ok_or_else(|| not_found(&item.id))?;
        if let Some(note) = &update.work_note {
            ticket.notes.push(note.clone());
        }
        ticket.fields.extend(update.fields.clone());
        Ok(())
    }

    async fn resolve(&self, item: &WorkItemRef, resolution: &Resolution) -> Result<(), ItsmError> {
        let mut inner = self.begin(MockOp::Resolve, &item.id)?;
        let ticket = inner
            .tickets
            .get_mut(&item.id)
            .ok_or_else(|| not_found(&item.id))?;
        ticket.state = WorkItemState::Resolved;
        ticket.resolution = Some(resolution.clone());
        Ok(())
    }

    async fn reopen(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError> {
        let mut inner = self.begin(MockOp::Reopen, &item.id)?;
        let ticket = inner
            .tickets
            .get_mut(&item.id)
            .ok_or_else(|| not_found(&item.id))?;
        if ticket.state == WorkItemState::Closed {
            return Err(ItsmError::Http {
                backend: "mock",
                status: 409,
                message: format!("{} is closed and cannot be reopened", item.display()),
                detail: None,
                code: None,
                retry_after: None,
            });
        }
        ticket.state = WorkItemState::Open;
        ticket.reopen_count += 1;
        ticket.notes.push(note.to_owned());
        Ok(())
    }

    async fn health(&self) -> Result<(), ItsmError> {
        drop(self.begin(MockOp::Health, "")?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[tokio::test]
    async fn lifecycle_and_scripted_failures() {
        let m = MockConnector::new();
        let item = NewWorkItem::new("c1", "t", Severity::Sev2);
        let r = m.create(&item).await.unwrap();
        assert_eq!(m.find_open("c1").await.unwrap(), Some(r.clone()));
        m.update(&r, &WorkItemUpdate::note("again")).await.unwrap();
        m.resolve(&r, &Resolution::new("gone")).await.unwrap();
        assert_eq!(m.find_open("c1").await.unwrap(), None);
        assert_eq!(m.state(&r).await.unwrap(), WorkItemState::Resolved);
        m.reopen(&r, "back").await.unwrap();
        assert_eq!(m.ticket(&r.id).unwrap().notes, vec!["again", "back"]);

        let err = ItsmError::Http {
            backend: "mock",
            status: 503,
            message: "down".to_owned(),
            detail: None,
            code: None,
            retry_after: None,
        };
        m.fail_times(Some(MockOp::Create), 2, &err);
        assert!(m.create(&item).await.is_err());
        assert!(m.find_open("c1").await.is_ok());
        assert!(m.create(&item).await.is_err());
        assert!(m.create(&item).await.is_ok());
        assert_eq!(m.call_count(MockOp::Create), 4);
        assert_eq!(m.tickets_for("c1").len(), 2);
        assert!(m.state(&WorkItemRef::new("nope")).await.is_err());
    }

    fn http(status: u16) -> ItsmError {
        ItsmError::Http {
            backend: "mock",
            status,
            message: format!("status {status}"),
            detail: None,
            code: None,
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn sequences_apply_in_order_and_only_to_their_operation() {
        let m = MockConnector::new();
        m.fail_sequence(Some(MockOp::Resolve), [http(503), http(500)]);
        m.fail_next(None, http(502));
        // The any-operation failure is behind the two resolve failures but hits the first call
        // that is not a resolve.
        let err = m
            .create(&NewWorkItem::new("c", "t", Severity::Sev3))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(502));
        let r = m
            .create(&NewWorkItem::new("c", "t", Severity::Sev3))
            .await
            .unwrap();
        let statuses: Vec<Option<u16>> = [
            m.resolve(&r, &Resolution::new("x")).await,
            m.resolve(&r, &Resolution::new("x")).await,
            m.resolve(&r, &Resolution::new("x").with_code("Duplicate"))
                .await,
        ]
        .iter()
        .map(|res| res.as_ref().err().and_then(ItsmError::status))
        .collect();
        assert_eq!(statuses, [Some(503), Some(500), None]);
        let t = m.ticket(&r.id).unwrap();
        assert_eq!(t.resolution.unwrap().code.as_deref(), Some("Duplicate"));
        let failed: Vec<bool> = m.calls().iter().map(|c| c.failed).collect();
        assert_eq!(failed, [true, false, true, true, false]);
    }

    #[tokio::test]
    async fn closed_tickets_cannot_be_reopened_or_found() {
        let m = MockConnector::new();
        let r = m
            .create(&NewWorkItem::new("c", "t", Severity::Sev0))
            .await
            .unwrap();
        assert!(m.close_by_person(&r.id));
        assert!(!m.close_by_person("missing"));
        assert_eq!(m.state(&r).await.unwrap(), WorkItemState::Closed);
        assert_eq!(m.find_open("c").await.unwrap(), None);
        let err = m.reopen(&r, "again").await.unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert!(!err.retry_class().is_retryable());
        assert!(err.to_string().contains(r.display()));
        m.update(&r, &WorkItemUpdate::default().with_field("u_x", 1))
            .await
            .unwrap();
        assert_eq!(m.ticket(&r.id).unwrap().fields["u_x"], 1);
        m.health().await.unwrap();
        assert_eq!(m.call_count(MockOp::Health), 1);
        assert!(matches!(
            m.update(&WorkItemRef::new("nope"), &WorkItemUpdate::note("n"))
                .await,
            Err(ItsmError::NotFound { .. })
        ));
    }
}
