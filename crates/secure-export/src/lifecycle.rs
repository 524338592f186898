//! The alert lifecycle: what one event does to the work item of its correlation key.
//!
//! [`decide`] is a pure function of the tracked state, the event and the policy; it implements
//! the table of `ARCHITECTURE.md` (see also `docs/adr/0004-lifecycle.md`):
//!
//! | event \ state | none / tombstone | open | resolved (in window) | resolved (past window) | closed |
//! |---|---|---|---|---|---|
//! | Fired | create | update ("fired again") | reopen | create | create |
//! | Fired older than the last Resolved | ignore | ignore | ignore | ignore | ignore |
//! | Resolved | tombstone | resolve | no-op | no-op | no-op |
//! | Resolved older than the last Fired of an open item | - | ignore | - | - | - |
//! | open item closed by a person, Fired | - | policy: create or note | - | - | - |
//!
//! Redeliveries of the same event never reach [`decide`]: the idempotency key stops them at
//! accept time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secure_export_itsm::WorkItemState;
use serde::{Deserialize, Serialize};

use crate::keys::Condition;

/// How events are grouped into work items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CorrelationMode {
    /// One work item per alert instance (`essentials.alertId`): the default.
    #[default]
    Alert,
    /// One work item per alert rule and set of target resources.
    RuleAndTarget,
    /// One work item per bound configuration item.
    Ci,
}

impl FromStr for CorrelationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alert" => Ok(Self::Alert),
            "rule+target" => Ok(Self::RuleAndTarget),
            "ci" => Ok(Self::Ci),
            other => Err(format!(
                "unknown correlation mode {other:?}: expected \"alert\", \"rule+target\" or \"ci\""
            )),
        }
    }
}

impl fmt::Display for CorrelationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Alert => "alert",
            Self::RuleAndTarget => "rule+target",
            Self::Ci => "ci",
        })
    }
}

/// What to do when a person closed (or resolved) the open work item and the alert fires again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ClosedPolicy {
    /// Create a new work item (the default): the person's closure stands.
    #[default]
    NewItem,
    /// Only add a work note to the closed item.
    NoteOnly,
}

impl FromStr for ClosedPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "new_item" => Ok(Self::NewItem),
            "note_only" => Ok(Self::NoteOnly),
            other => Err(format!(
                "unknown closed policy {other:?}: expected \"new_item\" or \"note_only\""
            )),
        }
    }
}

/// When the outbox asks the backend for an open item with the correlation id before creating
/// one (`docs/adr/0008-find-open-only-after-an-interrupted-create.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FindOpenPolicy {
    /// Only when an earlier attempt of the job reached the create call (the default): the job
    /// records that durably before calling create, so a crash, a timeout or an ambiguous error
    /// after it is followed by the check. One ITSM call per new item otherwise. `ci`
    /// correlation always checks (its keys are shared by jobs of different order keys).
    #[default]
    WhenRetrying,
    /// Before every create: also adopts open items this store has no record of (a restored
    /// backup, a move to another store), at one more ITSM call per new item.
    Always,
}

impl FromStr for FindOpenPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "when_retrying" => Ok(Self::WhenRetrying),
            "always" => Ok(Self::Always),
            other => Err(format!(
                "unknown find-open policy {other:?}: expected \"when_retrying\" or \"always\""
            )),
        }
    }
}

/// The lifecycle policy of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// How events are grouped into work items.
    pub correlation: CorrelationMode,
    /// A Fired within this time after the Resolved reopens the item; later ones create a new one.
    pub reopen_window: Duration,
    /// What to do when a person closed the item.
    pub closed_by_person: ClosedPolicy,
    /// Resolve items of alerts that never resolve (activity log, service health, resource
    /// health) this long after their last Fired; `None` (the default) leaves them open.
    pub auto_close_after: Option<Duration>,
    /// When to ask the backend for an open item before creating one.
    pub find_open_before_create: FindOpenPolicy,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            correlation: CorrelationMode::Alert,
            reopen_window: Duration::from_secs(24 * 3600),
            closed_by_person: ClosedPolicy::NewItem,
            auto_close_after: None,
            find_open_before_create: FindOpenPolicy::WhenRetrying,
        }
    }
}

/// The state of a correlation key as the store remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrackedState {
    /// A work item is open.
    Open,
    /// The work item was resolved by us.
    Resolved,
    /// The work item is closed (final) or was found closed by a person.
    Closed,
    /// A Resolved arrived with nothing open: remembered so that older Fired events are stale.
    Tombstone,
}

impl TrackedState {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Tombstone => "tombstone",
        }
    }

    /// Parses the stored spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            "closed" => Some(Self::Closed),
            "tombstone" => Some(Self::Tombstone),
            _ => None,
        }
    }
}

/// What [`decide`] needs to know about a correlation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// Current state.
    pub state: TrackedState,
    /// Event time of the latest Fired applied.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Event time of the latest Resolved applied (or tombstoned).
    pub last_resolved_at: Option<DateTime<Utc>>,
}

/// One event for a correlation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Fired or resolved.
    pub condition: Condition,
    /// Its time (fired or resolved time).
    pub at: DateTime<Utc>,
}

/// Why an event is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// A Fired older than the last Resolved.
    StaleFired,
    /// A Resolved older than the last Fired of the open item.
    StaleResolved,
    /// A Resolved for an item that is already resolved or closed.
    AlreadyResolved,
}

impl IgnoreReason {
    /// A stable label for metrics and the audit trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaleFired => "stale_fired",
            Self::StaleResolved => "stale_resolved",
            Self::AlreadyResolved => "already_resolved",
        }
    }
}

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Create a work item (after asking the backend for an open one with the correlation id).
    Create,
    /// Add a "fired again" work note and bump the counter.
    Update,
    /// Reopen the resolved item.
    Reopen,
    /// Resolve the open item (close code + notes).
    Resolve,
    /// Remember a tombstone; no ITSM call.
    Tombstone,
    /// Do nothing.
    Ignore(IgnoreReason),
    /// The open item's current state in the backend is needed: ask
    /// [`ItsmConnector::state`](secure_export_itsm::ItsmConnector::state) and decide again.
    CheckRemote,
}

impl Decision {
    /// A stable label for metrics and the audit trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Reopen => "reopen",
            Self::Resolve => "resolve",
            Self::Tombstone => "tombstone",
            Self::Ignore(r) => r.as_str(),
            Self::CheckRemote => "check_remote",
        }
    }
}

/// Decides what an event does (see the [module docs](self) for the table).
///
/// `remote` is the backend's state of the open item when known; pass `None` first and, on
/// [`Decision::CheckRemote`], call again with the state read from the backend.
#[must_use]
pub fn decide(
    tracked: Option<&Tracked>,
    event: &Event,
    remote: Option<WorkItemState>,
    policy: &LifecyclePolicy,
) -> Decision {
    match event.condition {
        Condition::Fired => {
            if let Some(resolved) = tracked.and_then(|t| t.last_resolved_at)
                && event.at < resolved
            {
                return Decision::Ignore(IgnoreReason::StaleFired);
            }
            let Some(t) = tracked else {
                return Decision::Create;
            };
            match t.state {
                TrackedState::Tombstone | TrackedState::Closed => Decision::Create,
                TrackedState::Open => match remote {
                    None => Decision::CheckRemote,
                    Some(WorkItemState::Open) => Decision::Update,
                    Some(_) => match policy.closed_by_person {
                        ClosedPolicy::NewItem => Decision::Create,
                        ClosedPolicy::NoteOnly => Decision::Update,
                    },
                },
                TrackedState::Resolved => {
                    let window = chrono::Duration::from_std(policy.reopen_window)
                        .unwrap_or(chrono::Duration::MAX);
                    match t.last_resolved_at {
                        Some(resolved) if event.at.signed_duration_since(resolved) <= window => {
                            Decision::Reopen
                        }
                        _ => Decision::Create,
                    }
                }
            }
        }
        Condition::Resolved => {
            let Some(t) = tracked else {
                return Decision::Tombstone;
            };
            match t.state {
                TrackedState::Open => match t.last_fired_at {
                    Some(fired) if event.at < fired => {
                        Decision::Ignore(IgnoreReason::StaleResolved)
                    }
                    _ => Decision::Resolve,
                },
                TrackedState::Tombstone => match t.last_resolved_at {
                    Some(prev) if event.at <= prev => {
                        Decision::Ignore(IgnoreReason::AlreadyResolved)
                    }
                    _ => Decision::Tombstone,
                },
                TrackedState::Resolved | TrackedState::Closed => {
                    Decision::Ignore(IgnoreReason::AlreadyResolved)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap()
    }

    fn tracked(state: TrackedState, fired: Option<i64>, resolved: Option<i64>) -> Tracked {
        Tracked {
            state,
            last_fired_at: fired.map(t),
            last_resolved_at: resolved.map(t),
        }
    }

    #[test]
    fn every_cell_of_the_table() {
        use Condition::{Fired, Resolved};
        use Decision::*;
        use IgnoreReason::*;
        use TrackedState as S;
        let policy = LifecyclePolicy::default(); // 24 h window, new item when closed by a person
        let note_only = LifecyclePolicy {
            closed_by_person: ClosedPolicy::NoteOnly,
            ..LifecyclePolicy::default()
        };
        let open = Some(WorkItemState::Open);
        let gone = Some(WorkItemState::Closed);
        let person_resolved = Some(WorkItemState::Resolved);
        #[rustfmt::skip]
        let cases: Vec<(&str, Option<Tracked>, Condition, i64, Option<WorkItemState>, &LifecyclePolicy, Decision)> = vec![
            ("fired, none", None, Fired, 10, None, &policy, Create),
            ("fired, tombstone, newer", Some(tracked(S::Tombstone, None, Some(5))), Fired, 10, None, &policy, Create),
            ("fired, tombstone, older (stale)", Some(tracked(S::Tombstone, None, Some(5))), Fired, 4, None, &policy, Ignore(StaleFired)),
            ("fired, open, remote unknown", Some(tracked(S::Open, Some(1), None)), Fired, 10, None, &policy, CheckRemote),
            ("fired, open, remote open", Some(tracked(S::Open, Some(1), None)), Fired, 10, open, &policy, Update),
            ("fired, open, closed by person, new item", Some(tracked(S::Open, Some(1), None)), Fired, 10, gone, &policy, Create),
            ("fired, open, resolved by person, new item", Some(tracked(S::Open, Some(1), None)), Fired, 10, person_resolved, &policy, Create),
            ("fired, open, closed by person, note only", Some(tracked(S::Open, Some(1), None)), Fired, 10, gone, &note_only, Update),
            ("fired, open (reopened), older than last resolved", Some(tracked(S::Open, Some(8), Some(5))), Fired, 4, None, &policy, Ignore(StaleFired)),
            ("fired, resolved within window", Some(tracked(S::Resolved, Some(1), Some(5))), Fired, 10, None, &policy, Reopen),
            ("fired, resolved exactly at window", Some(tracked(S::Resolved, Some(1), Some(5))), Fired, 29, None, &policy, Reopen),
            ("fired, resolved past window", Some(tracked(S::Resolved, Some(1), Some(5))), Fired, 30, None, &policy, Create),
            ("fired, resolved, older (stale)", Some(tracked(S::Resolved, Some(1), Some(5))), Fired, 3, None, &policy, Ignore(StaleFired)),
            ("fired, closed", Some(tracked(S::Closed, Some(1), Some(5))), Fired, 10, None, &policy, Create),
            ("fired, closed, older (stale)", Some(tracked(S::Closed, Some(1), Some(5))), Fired, 2, None, &policy, Ignore(StaleFired)),
            ("resolved, none", None, Resolved, 10, None, &policy, Tombstone),
            ("resolved, tombstone, newer", Some(tracked(S::Tombstone, None, Some(5))), Resolved, 10, None, &policy, Tombstone),
            ("resolved, tombstone, older", Some(tracked(S::Tombstone, None, Some(5))), Resolved, 4, None, &policy, Ignore(AlreadyResolved)),
            ("resolved, open", Some(tracked(S::Open, Some(1), None)), Resolved, 10, None, &policy, Resolve),
            ("resolved, open, older than last fired", Some(tracked(S::Open, Some(8), None)), Resolved, 4, None, &policy, Ignore(StaleResolved)),
            ("resolved, resolved within window", Some(tracked(S::Resolved, Some(1), Some(5))), Resolved, 10, None, &policy, Ignore(AlreadyResolved)),
            ("resolved, resolved past window", Some(tracked(S::Resolved, Some(1), Some(5))), Resolved, 40, None, &policy, Ignore(AlreadyResolved)),
            ("resolved, closed", Some(tracked(S::Closed, Some(1), Some(5))), Resolved, 10, None, &policy, Ignore(AlreadyResolved)),
        ];
        for (name, state, condition, at, remote, policy, want) in cases {
            let event = Event {
                condition,
                at: t(at),
            };
            assert_eq!(
                decide(state.as_ref(), &event, remote, policy),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn parse_modes_and_policies() {
        assert_eq!(
            "rule+target".parse::<CorrelationMode>(),
            Ok(CorrelationMode::RuleAndTarget)
        );
        assert_eq!("ci".parse::<CorrelationMode>(), Ok(CorrelationMode::Ci));
        assert!(
            "rule"
                .parse::<CorrelationMode>()
                .unwrap_err()
                .contains("rule+target")
        );
        assert_eq!(
            "note_only".parse::<ClosedPolicy>(),
            Ok(ClosedPolicy::NoteOnly)
        );
        assert!("x".parse::<ClosedPolicy>().is_err());
        for s in [
            TrackedState::Open,
            TrackedState::Resolved,
            TrackedState::Closed,
            TrackedState::Tombstone,
        ] {
            assert_eq!(TrackedState::parse(s.as_str()), Some(s));
        }
    }
}
