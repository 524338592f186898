//! The SQLite store's own tests (the shared suite is `store::conformance`).
use chrono::Utc;

use super::*;
use crate::metrics::Metrics;
use crate::store::conformance;

#[tokio::test]
async fn conformance_in_memory() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn conformance_on_disk_and_reopen_releases_leases() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    conformance::run_all(&store).await;
    let now = Utc::now();
    let d = conformance::delivery("c", "reopen-1", "k", now);
    store.accept_batch(&[d]).await.unwrap();
    let claimed = store
        .claim("c", 10, now, now + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    let again = reopened
        .claim("c", 10, now, now + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "a crashed process's lease is released on open"
    );
    assert_eq!(again[0].id, claimed[0].id);
}

#[tokio::test]
async fn accept_batch_reports_duplicates_inside_and_across_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let now = Utc::now();
    let first = store
        .accept_batch(&[conformance::delivery("c", "a", "k1", now)])
        .await
        .unwrap();
    let AcceptOutcome::New { delivery_id: a, .. } = first[0] else {
        panic!("{first:?}")
    };
    let batch = [
        conformance::delivery("c", "b", "k2", now),
        conformance::delivery("c", "a", "k1", now),
        conformance::delivery("c", "b", "k2", now),
        conformance::delivery("c", "c", "k2", now),
    ];
    let out = store.accept_batch(&batch).await.unwrap();
    let (
        AcceptOutcome::New {
            delivery_id: b,
            job_id: jb,
        },
        AcceptOutcome::New { job_id: jc, .. },
    ) = (out[0], out[3])
    else {
        panic!("{out:?}")
    };
    assert_eq!(out[1], AcceptOutcome::Duplicate { delivery_id: a });
    assert_eq!(out[2], AcceptOutcome::Duplicate { delivery_id: b });
    assert!(jb < jc, "job ids follow acceptance order");
    assert_eq!(store.queue_depth().await.unwrap(), 3);
}

#[tokio::test]
async fn a_lost_lease_in_a_batch_does_not_fail_the_other_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let now = Utc::now();
    let later = now + chrono::Duration::hours(1);
    store
        .accept_batch(&[
            conformance::delivery("c", "x", "kx", now),
            conformance::delivery("c", "y", "ky", now),
        ])
        .await
        .unwrap();
    let jobs = store.claim("c", 10, now, later).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let mut stale = jobs[0].clone();
    stale.lease_token = "not-the-lease".to_owned();
    // Queued together: they run in one transaction of the writer.
    let z = [conformance::delivery("c", "z", "kz", now)];
    let (lost, saved, accepted) = tokio::join!(
        store.save(&stale, &[], &[], true),
        store.save(&jobs[1], &[], &[], true),
        store.accept_batch(&z),
    );
    assert!(matches!(lost, Err(StoreError::LeaseLost(_))), "{lost:?}");
    saved.unwrap();
    accepted.unwrap();
    // Job x (lease kept) and z are left; y is done.
    assert_eq!(store.queue_depth().await.unwrap(), 2);
}

#[tokio::test]
async fn open_reports_unusable_directory() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let e = SqliteStore::open(&file.path().join("sub"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Setup(_)), "{e}");
}

#[tokio::test]
async fn the_writer_reports_its_commits_to_the_attached_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let metrics = Metrics::new();
    store.attach_metrics(&metrics);
    let now = Utc::now();
    let first = [conformance::delivery("m", "m1", "k1", now)];
    let second = [conformance::delivery("m", "m2", "k2", now)];
    let (a, b) = tokio::join!(store.accept_batch(&first), store.accept_batch(&second));
    a.unwrap();
    b.unwrap();
    let commits = metrics.counter("secure_export_store_commits_total", &[("outcome", "ok")]);
    assert!((1..=2).contains(&commits), "{commits} commits");
    assert_eq!(
        metrics.counter("secure_export_store_write_operations_total", &[]),
        2
    );
    let text = metrics.render();
    assert!(
        text.contains("secure_export_store_commit_seconds_count"),
        "{text}"
    );
}
