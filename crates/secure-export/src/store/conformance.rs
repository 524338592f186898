//! The store conformance suite: generic `async fn`s over `&dyn Store`, so every implementation
//! (SQLite now, PostgreSQL later, or your own) runs the same checks. Each check uses its own
//! connection name so the suite can run on one database. The checks panic on a violation (they
//! are meant to be called from tests). Enabled by the `store-conformance` feature.
//!
//! ```no_run
//! # async fn check(store: &dyn secure_export::store::Store) {
//! secure_export::store::conformance::run_all(store).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::{DateTime, Duration, Utc};
use secure_export_itsm::WorkItemRef;

use super::{AcceptOutcome, CorrelationRecord, JobKind, NewAudit, NewDelivery, Store, StoreError};
use crate::lifecycle::TrackedState;

/// A delivery for tests.
pub fn delivery(connection: &str, idem: &str, order_key: &str, at: DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        connection: connection.to_owned(),
        idempotency_key: idem.to_owned(),
        alert_id: format!("alert-{idem}"),
        condition: "Fired".to_owned(),
        event_at: at,
        order_key: order_key.to_owned(),
        facts: "{}".to_owned(),
        raw_body: format!("{{\"idem\":\"{idem}\"}}").into_bytes(),
        received_at: at,
    }
}

fn lease(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::seconds(60)
}

/// Runs every check of the suite.
pub async fn run_all(store: &dyn Store) {
    accept_is_idempotent(store).await;
    claim_orders_per_key(store).await;
    retry_and_lease_rules(store).await;
    create_started_survives_retry_and_release(store).await;
    correlations_and_audit(store).await;
    dead_letters_and_replay(store).await;
    quarantine_roundtrip(store).await;
    job_ids_are_never_reused(store).await;
    purge_keeps_what_is_needed(store).await;
    auto_close_scheduling(store).await;
    queue_depths_per_connection(store).await;
    quarantine_usage_and_retention(store).await;
}

/// `queue_depths` counts the jobs of each connection.
pub async fn queue_depths_per_connection(store: &dyn Store) {
    let now = Utc::now();
    let (a, b) = ("depth-a", "depth-b");
    store
        .accept_batch(&[
            delivery(a, "d-a1", "k1", now),
            delivery(a, "d-a2", "k2", now),
            delivery(b, "d-b1", "k1", now),
        ])
        .await
        .unwrap();
    let depths = store.queue_depths().await.unwrap();
    assert_eq!(depths.get(a), Some(&2), "{depths:?}");
    assert_eq!(depths.get(b), Some(&1), "{depths:?}");
    for c in [a, b] {
        for j in store.claim(c, 10, now, lease(now)).await.unwrap() {
            store.save(&j, &[], &[], true).await.unwrap();
        }
    }
    let depths = store.queue_depths().await.unwrap();
    assert_eq!(depths.get(a), None, "{depths:?}");
    assert_eq!(depths.get(b), None, "{depths:?}");
}

/// `quarantine_usage` counts unreplayed bodies and their bytes; `purge` removes quarantined
/// bodies and dead letters older than the retention period, replayed or not.
pub async fn quarantine_usage_and_retention(store: &dyn Store) {
    let c = "quarantine-usage";
    let now = Utc::now();
    let old = now - Duration::days(40);
    let before = store.quarantine_usage().await.unwrap();
    let body = vec![b'x'; 1000];
    let old_id = store.quarantine(c, &body, "old", old).await.unwrap();
    let new_id = store.quarantine(c, &body[..10], "new", now).await.unwrap();
    let usage = store.quarantine_usage().await.unwrap();
    assert_eq!(usage.rows, before.rows + 2);
    assert_eq!(usage.bytes, before.bytes + 1010);
    // An old dead letter, never replayed.
    store
        .accept_batch(&[delivery(c, "q-dead", "k1", old)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    let dead_id = store.dead_letter(&j, "gave up", old).await.unwrap();
    store.purge(now - Duration::days(30)).await.unwrap();
    let ids: Vec<i64> = store
        .quarantined()
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert!(!ids.contains(&old_id), "old quarantined body kept: {ids:?}");
    assert!(
        ids.contains(&new_id),
        "recent quarantined body purged: {ids:?}"
    );
    let dead: Vec<i64> = store
        .dead_letters()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert!(!dead.contains(&dead_id), "old dead letter kept: {dead:?}");
    store.mark_quarantine_replayed(new_id, now).await.unwrap();
}

pub async fn accept_is_idempotent(store: &dyn Store) {
    let now = Utc::now();
    store.ping().await.unwrap();
    let before = store.queue_depth().await.unwrap();
    let a = delivery("idem", "a", "k1", now);
    let b = delivery("idem", "b", "k2", now);
    let out = store
        .accept_batch(&[a.clone(), b, a.clone()])
        .await
        .unwrap();
    let AcceptOutcome::New { delivery_id, .. } = out[0] else {
        panic!("{out:?}")
    };
    assert!(matches!(out[1], AcceptOutcome::New { .. }));
    assert_eq!(out[2], AcceptOutcome::Duplicate { delivery_id });
    let again = store.accept_batch(&[a]).await.unwrap();
    assert_eq!(again, vec![AcceptOutcome::Duplicate { delivery_id }]);
    assert_eq!(
        store.delivery_body(delivery_id).await.unwrap().as_deref(),
        Some(br#"{"idem":"a"}"#.as_slice())
    );
    assert_eq!(store.delivery_body(-1).await.unwrap(), None);
    let mut other = delivery("idem-other", "a", "k1", now);
    other.alert_id = "x".to_owned();
    assert!(matches!(
        store.accept_batch(&[other]).await.unwrap()[0],
        AcceptOutcome::New { .. }
    ));
    assert_eq!(store.queue_depth().await.unwrap(), before + 3);
    assert!(
        store
            .history("alert-a")
            .await
            .unwrap()
            .iter()
            .any(|e| e.entry.action == "accepted")
    );
}

pub async fn claim_orders_per_key(store: &dyn Store) {
    let c = "order";
    let now = Utc::now();
    let ds: Vec<_> = ["1", "2", "3"]
        .iter()
        .map(|i| {
            delivery(
                c,
                &format!("o{i}"),
                if *i == "3" { "other" } else { "same" },
                now,
            )
        })
        .collect();
    store.accept_batch(&ds).await.unwrap();
    let first = store.claim(c, 10, now, lease(now)).await.unwrap();
    let keys: Vec<_> = first
        .iter()
        .map(|j| (j.order_key.as_str(), j.alert_id.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![("same", "alert-o1"), ("other", "alert-o3")],
        "head of each key only"
    );
    assert!(
        store
            .claim(c, 10, now, lease(now))
            .await
            .unwrap()
            .is_empty(),
        "keys in flight"
    );
    assert!(
        store
            .claim("nobody", 10, now, lease(now))
            .await
            .unwrap()
            .is_empty()
    );
    let j1 = &first[0];
    assert_eq!(j1.kind, JobKind::Event);
    store.save(j1, &[], &[], true).await.unwrap();
    let next = store.claim(c, 10, now, lease(now)).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].alert_id, "alert-o2");
    // An expired lease is claimable again; the old holder lost it.
    let later = now + Duration::seconds(120);
    let stolen = store.claim(c, 10, later, lease(later)).await.unwrap();
    assert_eq!(stolen.len(), 2);
    assert!(matches!(
        store.save(&next[0], &[], &[], true).await,
        Err(StoreError::LeaseLost(_))
    ));
    for j in &stolen {
        store.save(j, &[], &[], true).await.unwrap();
    }
    assert!(
        store
            .claim(c, 10, later, lease(later))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn retry_and_lease_rules(store: &dyn Store) {
    let c = "retry";
    let now = Utc::now();
    store
        .accept_batch(&[delivery(c, "r1", "k", now), delivery(c, "r2", "k", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    assert_eq!(j.attempts, 0);
    store
        .retry(&j, now + Duration::seconds(30), "HTTP 503", true)
        .await
        .unwrap();
    assert!(
        store
            .claim(c, 10, now, lease(now))
            .await
            .unwrap()
            .is_empty(),
        "head waits; r2 blocked"
    );
    let t = now + Duration::seconds(31);
    let j = store.claim(c, 10, t, lease(t)).await.unwrap().remove(0);
    assert_eq!((j.attempts, j.last_error.as_deref()), (1, Some("HTTP 503")));
    store.retry(&j, t, "throttled", false).await.unwrap();
    let j = store.claim(c, 10, t, lease(t)).await.unwrap().remove(0);
    assert_eq!(j.attempts, 1, "throttled waits are not counted");
    store.release(&j).await.unwrap();
    assert!(matches!(
        store.release(&j).await,
        Err(StoreError::LeaseLost(_))
    ));
    let j = store.claim(c, 10, t, lease(t)).await.unwrap().remove(0);
    store.save(&j, &[], &[], true).await.unwrap();
    let j2 = store.claim(c, 10, t, lease(t)).await.unwrap().remove(0);
    assert_eq!(j2.alert_id, "alert-r2");
    store.save(&j2, &[], &[], true).await.unwrap();
}

pub async fn create_started_survives_retry_and_release(store: &dyn Store) {
    let c = "create-mark";
    let now = Utc::now();
    store
        .accept_batch(&[delivery(c, "m1", "k", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    assert!(!j.create_started, "a new job has not called create");
    store.mark_create_started(&j, now).await.unwrap();
    store.mark_create_started(&j, now).await.unwrap();
    store.release(&j).await.unwrap();
    assert!(matches!(
        store.mark_create_started(&j, now).await,
        Err(StoreError::LeaseLost(_))
    ));
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    assert!(j.create_started, "the mark survives a release");
    store.retry(&j, now, "HTTP 503", true).await.unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    assert!(j.create_started, "the mark survives a retry");
    store.save(&j, &[], &[], true).await.unwrap();
}

pub async fn correlations_and_audit(store: &dyn Store) {
    let c = "corr";
    let now = DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    store
        .accept_batch(&[delivery(c, "c1", "k", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    assert_eq!(store.correlation(c, "key").await.unwrap(), None);
    let mut rec = CorrelationRecord::new(c, "key", "k", "alert-c1", now);
    rec.state = TrackedState::Open;
    rec.work_item = Some(WorkItemRef {
        id: "sys1".to_owned(),
        number: Some("INC1".to_owned()),
        url: None,
    });
    rec.opened_at = Some(now);
    rec.last_fired_at = Some(now);
    rec.last_event_at = Some(now);
    rec.fired_count = 1;
    rec.auto_close_at = Some(now + Duration::hours(1));
    rec.last_job_id = Some(j.id);
    let audit = NewAudit {
        at: now,
        connection: c.to_owned(),
        alert_id: "alert-c1".to_owned(),
        correlation_key: Some("key".to_owned()),
        action: "create".to_owned(),
        work_item: Some("INC1".to_owned()),
        detail: "created".to_owned(),
    };
    store
        .save(
            &j,
            std::slice::from_ref(&rec),
            std::slice::from_ref(&audit),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        store.correlation(c, "key").await.unwrap(),
        Some(rec.clone())
    );
    rec.state = TrackedState::Resolved;
    rec.fired_count = 2;
    store
        .save(&j, std::slice::from_ref(&rec), &[], true)
        .await
        .unwrap();
    assert_eq!(store.correlation(c, "key").await.unwrap(), Some(rec));
    let h = store.history("alert-c1").await.unwrap();
    let actions: Vec<_> = h.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(actions, vec!["accepted", "create"]);
    assert_eq!(h[1].entry, audit);
}

pub async fn dead_letters_and_replay(store: &dyn Store) {
    let c = "dead";
    let now = Utc::now();
    let before = store.dead_letter_count().await.unwrap();
    store
        .accept_batch(&[delivery(c, "d1", "k", now), delivery(c, "d2", "k", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    store.retry(&j, now, "boom", true).await.unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    let id = store
        .dead_letter(&j, "HTTP 400: bad field", now)
        .await
        .unwrap();
    assert_eq!(store.dead_letter_count().await.unwrap(), before + 1);
    let dl = store
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .unwrap();
    assert_eq!(dl.reason, "HTTP 400: bad field");
    assert_eq!(dl.attempts, 1);
    assert_eq!(dl.raw_body.as_deref(), Some(br#"{"idem":"d1"}"#.as_slice()));
    // The next job of the key is no longer blocked.
    let j2 = store.claim(c, 10, now, lease(now)).await.unwrap().remove(0);
    assert_eq!(j2.alert_id, "alert-d2");
    store.save(&j2, &[], &[], true).await.unwrap();
    assert!(store.replay_dead_letter(id, now).await.unwrap());
    assert!(
        !store.replay_dead_letter(id, now).await.unwrap(),
        "replayed once"
    );
    assert!(!store.replay_dead_letter(-5, now).await.unwrap());
    assert_eq!(store.dead_letter_count().await.unwrap(), before);
    let again = store.claim(c, 10, now, lease(now)).await.unwrap().remove(0);
    assert_eq!((again.alert_id.as_str(), again.attempts), ("alert-d1", 0));
    assert!(
        again.create_started,
        "a replayed job asks the backend before creating (the dead one may have created)"
    );
    store.save(&again, &[], &[], true).await.unwrap();
    let actions: Vec<_> = store
        .history("alert-d1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect();
    assert_eq!(actions, vec!["accepted", "dead_letter", "replay"]);
}

pub async fn quarantine_roundtrip(store: &dyn Store) {
    let now = Utc::now();
    let id = store
        .quarantine("q", b"{\"not\":\"an alert\"}", "missing data", now)
        .await
        .unwrap();
    let q = store
        .quarantined()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.id == id)
        .unwrap();
    assert_eq!(
        (q.connection.as_str(), q.reason.as_str()),
        ("q", "missing data")
    );
    assert_eq!(q.raw_body, b"{\"not\":\"an alert\"}");
    assert!(store.mark_quarantine_replayed(id, now).await.unwrap());
    assert!(!store.mark_quarantine_replayed(id, now).await.unwrap());
    assert!(
        store
            .quarantined()
            .await
            .unwrap()
            .iter()
            .all(|q| q.id != id)
    );
}

pub async fn auto_close_scheduling(store: &dyn Store) {
    let c = "auto";
    let now = Utc::now();
    store
        .accept_batch(&[delivery(c, "a1", "ok", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    let mut rec = CorrelationRecord::new(c, "ck", "ok", "alert-a1", now);
    rec.state = TrackedState::Open;
    rec.auto_close_at = Some(now + Duration::seconds(10));
    store.save(&j, &[rec], &[], true).await.unwrap();
    assert_eq!(store.schedule_auto_close(now).await.unwrap(), 0);
    let due = now + Duration::seconds(11);
    assert_eq!(store.schedule_auto_close(due).await.unwrap(), 1);
    assert_eq!(
        store.schedule_auto_close(due).await.unwrap(),
        0,
        "scheduled once"
    );
    let job = store.claim(c, 10, due, lease(due)).await.unwrap().remove(0);
    assert_eq!(job.kind, JobKind::AutoClose);
    assert_eq!(job.target_key.as_deref(), Some("ck"));
    assert_eq!(job.order_key, "ok");
    assert_eq!(
        store
            .correlation(c, "ck")
            .await
            .unwrap()
            .unwrap()
            .auto_close_at,
        None
    );
    store.save(&job, &[], &[], true).await.unwrap();
}

pub async fn job_ids_are_never_reused(store: &dyn Store) {
    let c = "ids";
    let now = Utc::now();
    store
        .accept_batch(&[delivery(c, "i1", "k", now)])
        .await
        .unwrap();
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    store.save(&j, &[], &[], true).await.unwrap();
    let AcceptOutcome::New { job_id, .. } = store
        .accept_batch(&[delivery(c, "i2", "k", now)])
        .await
        .unwrap()[0]
    else {
        panic!("not new")
    };
    assert!(
        job_id > j.id,
        "job ids must grow even after deletes ({job_id} <= {})",
        j.id
    );
    let j2 = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    store.save(&j2, &[], &[], true).await.unwrap();
}

pub async fn purge_keeps_what_is_needed(store: &dyn Store) {
    let c = "purge";
    let old = Utc::now() - Duration::days(40);
    let now = Utc::now();
    // An old delivery whose job is done, and an old one whose job is still queued.
    let done = delivery(c, "p-done", "k1", old);
    let queued = delivery(c, "p-queued", "k2", old);
    let out = store
        .accept_batch(&[done.clone(), queued.clone()])
        .await
        .unwrap();
    let AcceptOutcome::New {
        delivery_id: queued_id,
        ..
    } = out[1]
    else {
        panic!("{out:?}")
    };
    let j = store.claim(c, 1, now, lease(now)).await.unwrap().remove(0);
    let mut closed = CorrelationRecord::new(c, "closed", "k1", "alert-p-done", old);
    closed.state = TrackedState::Resolved;
    let mut open = CorrelationRecord::new(c, "open", "k1", "alert-p-done", old);
    open.state = TrackedState::Open;
    store.save(&j, &[closed, open], &[], true).await.unwrap();
    let cutoff = now - Duration::days(30);
    assert!(store.purge(cutoff).await.unwrap() >= 2);
    assert_eq!(store.correlation(c, "closed").await.unwrap(), None);
    assert!(store.correlation(c, "open").await.unwrap().is_some());
    assert!(
        store.delivery_body(queued_id).await.unwrap().is_some(),
        "referenced by a job"
    );
    // The purged delivery would be accepted again; the queued one is still a duplicate.
    let again = store.accept_batch(&[queued, done]).await.unwrap();
    assert!(
        matches!(again[0], AcceptOutcome::Duplicate { .. }),
        "{again:?}"
    );
    assert!(matches!(again[1], AcceptOutcome::New { .. }), "{again:?}");
    for j in store.claim(c, 10, now, lease(now)).await.unwrap() {
        store.save(&j, &[], &[], true).await.unwrap();
    }
    for j in store.claim(c, 10, now, lease(now)).await.unwrap() {
        store.save(&j, &[], &[], true).await.unwrap();
    }
}
