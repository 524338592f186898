//! Rows to store types, and the column encodings (times are Unix microseconds).

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::FromSql;
use secure_export_itsm::WorkItemRef;

use super::err;
use crate::lifecycle::TrackedState;
use crate::store::{AuditEntry, CorrelationRecord, DeadLetter, Job, JobKind, NewAudit, StoreError};

/// The columns [`job`] reads, in a `SELECT` or `RETURNING` list.
pub(super) const JOB_COLUMNS: &str = "id, connection, kind, delivery_id, alert_id, order_key, \
                                      target_key, facts, attempts, created_at, lease_token, \
                                      last_error, create_started_at";

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

fn opt_from_micros(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(from_micros).transpose()
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// One column by name.
fn get<T: FromSql>(row: &Row<'_>, column: &str) -> Result<T, StoreError> {
    row.get(column).map_err(err)
}

/// A time column.
fn time(row: &Row<'_>, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_micros(get(row, column)?)
}

/// A nullable time column.
fn opt_time(row: &Row<'_>, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    opt_from_micros(get(row, column)?)
}

/// A row of [`JOB_COLUMNS`].
pub(super) fn job(row: &Row<'_>) -> Result<Job, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Job {
        id: get(row, "id")?,
        connection: get(row, "connection")?,
        kind: JobKind::parse(&kind)?,
        delivery_id: get(row, "delivery_id")?,
        alert_id: get(row, "alert_id")?,
        order_key: get(row, "order_key")?,
        target_key: get(row, "target_key")?,
        facts: get(row, "facts")?,
        attempts: to_u32(get(row, "attempts")?),
        created_at: time(row, "created_at")?,
        lease_token: get::<Option<String>>(row, "lease_token")?.unwrap_or_default(),
        last_error: get(row, "last_error")?,
        create_started: get::<Option<i64>>(row, "create_started_at")?.is_some(),
    })
}

/// A `SELECT *` row of `correlations`.
pub(super) fn correlation(row: &Row<'_>) -> Result<CorrelationRecord, StoreError> {
    let state: String = get(row, "state")?;
    let state = TrackedState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown correlation state {state:?}")))?;
    let work_item = match get::<Option<String>>(row, "work_item_id")? {
        Some(id) => Some(WorkItemRef {
            id,
            number: get(row, "work_item_number")?,
            url: get(row, "work_item_url")?,
        }),
        None => None,
    };
    Ok(CorrelationRecord {
        connection: get(row, "connection")?,
        key: get(row, "key")?,
        order_key: get(row, "order_key")?,
        alert_id: get(row, "alert_id")?,
        state,
        work_item,
        opened_at: opt_time(row, "opened_at")?,
        last_fired_at: opt_time(row, "last_fired_at")?,
        last_resolved_at: opt_time(row, "last_resolved_at")?,
        last_event_at: opt_time(row, "last_event_at")?,
        fired_count: to_u32(get(row, "fired_count")?),
        auto_close_at: opt_time(row, "auto_close_at")?,
        last_job_id: get(row, "last_job_id")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A row of the dead-letter listing.
pub(super) fn dead_letter(row: &Row<'_>) -> Result<DeadLetter, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(DeadLetter {
        id: get(row, "id")?,
        connection: get(row, "connection")?,
        kind: JobKind::parse(&kind)?,
        delivery_id: get(row, "delivery_id")?,
        alert_id: get(row, "alert_id")?,
        order_key: get(row, "order_key")?,
        reason: get(row, "reason")?,
        attempts: to_u32(get(row, "attempts")?),
        raw_body: get(row, "raw_body")?,
        created_at: time(row, "created_at")?,
        dead_at: time(row, "dead_at")?,
    })
}

/// A row of the quarantine listing.
pub(super) fn quarantined(row: &Row<'_>) -> Result<crate::store::Quarantined, StoreError> {
    Ok(crate::store::Quarantined {
        id: get(row, "id")?,
        connection: get(row, "connection")?,
        reason: get(row, "reason")?,
        raw_body: get(row, "raw_body")?,
        received_at: time(row, "received_at")?,
    })
}

/// A row of the history query.
pub(super) fn audit(row: &Row<'_>) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: get(row, "id")?,
        entry: NewAudit {
            at: time(row, "at")?,
            connection: get(row, "connection")?,
            alert_id: get(row, "alert_id")?,
            correlation_key: get(row, "correlation_key")?,
            action: get(row, "action")?,
            work_item: get(row, "work_item")?,
            detail: get(row, "detail")?,
        },
    })
}
