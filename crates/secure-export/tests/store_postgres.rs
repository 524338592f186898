//! The store conformance suite, and what only many processes can get wrong, against PostgreSQL.
//!
//! Runs when `SECURE_EXPORT_TEST_PG_URL` names a database (`.ci/postgres.sh` starts a
//! throwaway one and prints its URL); otherwise every test prints a "skipped" line and passes.
//! Each test creates its own schema (`se_test_<name>_<uuid>`) and drops it afterwards, so runs
//! and tests do not interfere. Two `PostgresStore`s on one schema stand for two receiver
//! processes: separate pools, separate sessions, nothing shared but the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use secure_export::lifecycle::TrackedState;
use secure_export::store::conformance;
use secure_export::store::{
    AcceptOutcome, CorrelationRecord, JobKind, PostgresOptions, PostgresStore, Store, StoreError,
};
use sqlx::postgres::PgPoolOptions;

const URL_VAR: &str = "SECURE_EXPORT_TEST_PG_URL";

/// The database URL, or `None` after printing why the test is skipped. Written to the real
/// stderr (not the captured test output) so the skip shows in a plain `cargo test`.
fn pg_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: set {URL_VAR} to a PostgreSQL URL (e.g. \
                 `export {URL_VAR}=\"$(.ci/postgres.sh)\"`) to run the PostgreSQL store tests"
            );
            None
        }
    }
}

/// A database schema owned by one test.
#[derive(Debug, Clone)]
struct TestDb {
    url: String,
    schema: String,
}

impl TestDb {
    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(
            &self.url,
            PostgresOptions {
                schema: Some(self.schema.clone()),
                max_connections: 8,
                ..PostgresOptions::default()
            },
        )
        .await
        .unwrap()
    }

    /// A plain pool for checks behind the stores' backs.
    async fn admin(&self) -> sqlx::PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

/// Runs `body` with a fresh schema, then drops the schema (also when `body` panics).
async fn with_schema<F, Fut>(test: &str, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = pg_url(test) else { return };
    let db = TestDb {
        url,
        schema: format!("se_test_{test}_{}", uuid::Uuid::new_v4().simple()),
    };
    let admin = db.admin().await;
    let outcome = tokio::spawn(body(db.clone())).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", db.schema))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn conformance_suite() {
    with_schema("conformance", |db| async move {
        let store = db.store().await;
        conformance::run_all(&store).await;
        // A second process connecting to a migrated schema finds it ready.
        let again = db.store().await;
        again.ping().await.unwrap();
        assert!(!format!("{again:?}").contains(&db.url), "{again:?}");
        store.close().await;
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_))
        ));
    })
    .await;
}

/// What the workers saw, to check the claims against.
#[derive(Debug, Default)]
struct Seen {
    claimed: HashSet<i64>,
    last_claimed: HashMap<String, i64>,
    in_flight: HashMap<String, i64>,
    per_store: [usize; 2],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_claim_one_job_or_two_jobs_of_a_key() {
    with_schema("concurrency", |db| async move {
        const CONN: &str = "conc";
        const KEYS: usize = 12;
        const BATCHES: usize = 15;
        const PER_BATCH: usize = 8;
        let stores = [Arc::new(db.store().await), Arc::new(db.store().await)];
        let admin = db.admin().await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let producing = Arc::new(AtomicUsize::new(stores.len()));
        let mut accepted = HashSet::new();

        // Producers: both processes accept batches touching the same keys, while workers of
        // both claim (so jobs of one key are inserted from two sessions concurrently).
        let mut producers = Vec::new();
        for (p, store) in stores.iter().enumerate() {
            let store = Arc::clone(store);
            let producing = Arc::clone(&producing);
            producers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for b in 0..BATCHES {
                    let now = Utc::now();
                    let batch: Vec<_> = (0..PER_BATCH)
                        .map(|i| {
                            let key = format!("k{}", (p * 7 + b * 3 + i) % KEYS);
                            conformance::delivery(CONN, &format!("p{p}-b{b}-i{i}"), &key, now)
                        })
                        .collect();
                    for out in store.accept_batch(&batch).await.unwrap() {
                        let AcceptOutcome::New { job_id, .. } = out else {
                            panic!("unexpected duplicate {out:?}")
                        };
                        ids.push(job_id);
                    }
                    tokio::task::yield_now().await;
                }
                producing.fetch_sub(1, Ordering::SeqCst);
                ids
            }));
        }

        let mut workers = Vec::new();
        for (s, store) in stores.iter().enumerate() {
            for _ in 0..3 {
                let store = Arc::clone(store);
                let seen = Arc::clone(&seen);
                let producing = Arc::clone(&producing);
                let admin = admin.clone();
                let count_job =
                    format!("SELECT count(*) FROM \"{}\".jobs WHERE id = $1", db.schema);
                workers.push(tokio::spawn(async move {
                    loop {
                        let now = Utc::now();
                        let jobs = store
                            .claim(CONN, 4, now, now + chrono::Duration::seconds(60))
                            .await
                            .unwrap();
                        if jobs.is_empty() {
                            if producing.load(Ordering::SeqCst) == 0
                                && store.queue_depth().await.unwrap() == 0
                            {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                        let mut keys_here = HashSet::new();
                        for job in &jobs {
                            assert!(
                                keys_here.insert(job.order_key.clone()),
                                "one claim returned two jobs of key {}",
                                job.order_key
                            );
                            let previous = {
                                let mut seen = seen.lock().unwrap();
                                assert!(
                                    seen.claimed.insert(job.id),
                                    "job {} claimed twice",
                                    job.id
                                );
                                if let Some(&last) = seen.last_claimed.get(&job.order_key) {
                                    assert!(
                                        job.id > last,
                                        "key {} out of order: job {} after job {last}",
                                        job.order_key,
                                        job.id
                                    );
                                }
                                seen.last_claimed.insert(job.order_key.clone(), job.id);
                                seen.per_store[s] += 1;
                                seen.in_flight.insert(job.order_key.clone(), job.id)
                            };
                            // The tracker still lists the key's previous job: fine only if that
                            // job is already gone from the database (its worker committed the
                            // finish but has not updated the tracker yet).
                            if let Some(prev) = previous {
                                let n: i64 = sqlx::query_scalar(&count_job)
                                    .bind(prev)
                                    .fetch_one(&admin)
                                    .await
                                    .unwrap();
                                assert_eq!(
                                    n, 0,
                                    "key {}: job {} claimed while job {prev} is in flight",
                                    job.order_key, job.id
                                );
                            }
                        }
                        // "Work" long enough for a wrong claim elsewhere to overlap it.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        for job in &jobs {
                            store.save(job, &[], &[], true).await.unwrap();
                            let mut seen = seen.lock().unwrap();
                            if seen.in_flight.get(&job.order_key) == Some(&job.id) {
                                seen.in_flight.remove(&job.order_key);
                            }
                        }
                    }
                }));
            }
        }

        for p in producers {
            accepted.extend(p.await.unwrap());
        }
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(stores[0].queue_depth().await.unwrap(), 0);
        let seen = seen.lock().unwrap();
        assert_eq!(accepted.len(), 2 * BATCHES * PER_BATCH);
        assert_eq!(seen.claimed, accepted, "every job claimed exactly once");
        assert!(
            seen.per_store.iter().all(|&n| n > 0),
            "both processes claimed: {:?}",
            seen.per_store
        );
        let _ = writeln!(
            std::io::stderr(),
            "two processes: {} jobs over {KEYS} keys, claims per process {:?}",
            seen.claimed.len(),
            seen.per_store
        );
    })
    .await;
}

#[tokio::test]
async fn a_crashed_process_lease_is_taken_over_after_expiry() {
    with_schema("lease", |db| async move {
        let (a, b) = (db.store().await, db.store().await);
        let now = Utc::now();
        let lease = chrono::Duration::seconds(60);
        a.accept_batch(&[
            conformance::delivery("lease", "l1", "k", now),
            conformance::delivery("lease", "l2", "k", now),
        ])
        .await
        .unwrap();
        let held = a.claim("lease", 10, now, now + lease).await.unwrap();
        assert_eq!(held.len(), 1);
        // Process A "crashes" holding the lease. Process B sees the key in flight...
        assert!(
            b.claim("lease", 10, now, now + lease)
                .await
                .unwrap()
                .is_empty()
        );
        // ...until the lease expires; then it takes the same job over, in order.
        let later = now + lease + chrono::Duration::seconds(1);
        let taken = b.claim("lease", 10, later, later + lease).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].id, held[0].id);
        assert_eq!(taken[0].alert_id, "alert-l1");
        // A comes back to life: every write about the job fails, nothing is overwritten.
        assert!(matches!(
            a.save(&held[0], &[], &[], true).await,
            Err(StoreError::LeaseLost(_))
        ));
        assert!(matches!(
            a.retry(&held[0], now, "late", true).await,
            Err(StoreError::LeaseLost(_))
        ));
        assert!(matches!(
            a.dead_letter(&held[0], "late", now).await,
            Err(StoreError::LeaseLost(_))
        ));
        b.save(&taken[0], &[], &[], true).await.unwrap();
        let next = a.claim("lease", 10, later, later + lease).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].alert_id, "alert-l2");
        a.save(&next[0], &[], &[], true).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_large_batch_is_recorded_in_order_with_its_repeats() {
    with_schema("batch", |db| async move {
        let store = db.store().await;
        let now = Utc::now();
        // 1,500 deliveries over 50 keys; every tenth repeats the delivery just before it.
        let mut batch = Vec::new();
        for i in 0..1500 {
            let idem = if i % 10 == 9 { i - 1 } else { i };
            batch.push(conformance::delivery(
                "batch",
                &format!("b{idem}"),
                &format!("k{}", idem % 50),
                now,
            ));
        }
        let out = store.accept_batch(&batch).await.unwrap();
        assert_eq!(out.len(), batch.len());
        let mut last_job: HashMap<&str, i64> = HashMap::new();
        let mut first_delivery: HashMap<&str, i64> = HashMap::new();
        for (d, o) in batch.iter().zip(&out) {
            match *o {
                AcceptOutcome::New {
                    delivery_id,
                    job_id,
                } => {
                    assert!(
                        first_delivery
                            .insert(&d.idempotency_key, delivery_id)
                            .is_none()
                    );
                    if let Some(prev) = last_job.insert(&d.order_key, job_id) {
                        assert!(job_id > prev, "key {} in batch order", d.order_key);
                    }
                }
                AcceptOutcome::Duplicate { delivery_id } => {
                    assert_eq!(first_delivery[d.idempotency_key.as_str()], delivery_id);
                }
            }
        }
        assert_eq!(first_delivery.len(), 1350);
        assert_eq!(store.queue_depth().await.unwrap(), 1350);
        let again = store.accept_batch(&batch[..20]).await.unwrap();
        assert!(
            again
                .iter()
                .all(|o| matches!(o, AcceptOutcome::Duplicate { .. }))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_auto_close_and_replay_happen_once_across_processes() {
    with_schema("once", |db| async move {
        let stores = [Arc::new(db.store().await), Arc::new(db.store().await)];
        let now = Utc::now();

        // The same delivery posted to both processes at once, ten times each: one job.
        let d = conformance::delivery("once", "same", "k", now);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = Arc::clone(&stores[i % 2]);
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                store.accept_batch(&[d]).await.unwrap().remove(0)
            }));
        }
        let mut new = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), AcceptOutcome::New { .. }) {
                new += 1;
            }
        }
        assert_eq!(new, 1, "one delivery recorded");
        assert_eq!(stores[0].queue_depth().await.unwrap(), 1);

        // Twenty correlations due for auto-close; both processes schedule at once.
        let job = stores[0]
            .claim("once", 1, now, now + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .remove(0);
        let records: Vec<_> = (0..20)
            .map(|i| {
                let mut r =
                    CorrelationRecord::new("once", format!("ck{i}"), "k", "alert-same", now);
                r.state = TrackedState::Open;
                r.auto_close_at = Some(now);
                r
            })
            .collect();
        stores[0].save(&job, &records, &[], true).await.unwrap();
        let due = now + chrono::Duration::seconds(1);
        let mut tasks = Vec::new();
        for store in &stores {
            for _ in 0..2 {
                let store = Arc::clone(store);
                tasks.push(tokio::spawn(async move {
                    store.schedule_auto_close(due).await.unwrap()
                }));
            }
        }
        let mut scheduled = 0;
        for t in tasks {
            scheduled += t.await.unwrap();
        }
        assert_eq!(scheduled, 20, "each correlation scheduled once");
        assert_eq!(stores[1].queue_depth().await.unwrap(), 20);

        // Dead-letter one auto-close job, then both processes replay it at once.
        let later = due + chrono::Duration::seconds(1);
        let mut jobs = stores[1]
            .claim("once", 100, later, later + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1, "all twenty share order key k: one at a time");
        let job = jobs.remove(0);
        assert_eq!(job.kind, JobKind::AutoClose);
        let dead = stores[1]
            .dead_letter(&job, "permanent", later)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let store = Arc::clone(&stores[i % 2]);
            tasks.push(tokio::spawn(async move {
                store.replay_dead_letter(dead, later).await.unwrap()
            }));
        }
        let mut replayed = 0;
        for t in tasks {
            if t.await.unwrap() {
                replayed += 1;
            }
        }
        assert_eq!(replayed, 1, "replayed once");
        assert_eq!(stores[0].queue_depth().await.unwrap(), 20);
        assert_eq!(stores[0].dead_letter_count().await.unwrap(), 0);
    })
    .await;
}

mod engine_support;

/// Two engines ("receiver processes") on one database and one ITSM backend: alerts posted to
/// either, redeliveries posted to both at once, all reach the backend exactly once in effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_database_deliver_each_change_once() {
    use engine_support::{AlertSpec, fast_options, wait_until};
    use secure_export::engine::{ConnectionRuntime, Engine};
    use secure_export::metrics::Metrics;
    use secure_export_itsm::WorkItemState;
    use secure_export_itsm::mock::{MockConnector, MockOp};

    with_schema("engines", |db| async move {
        const ALERTS: usize = 10;
        let mock = MockConnector::new();
        let mut engines = Vec::new();
        for _ in 0..2 {
            let store: Arc<dyn Store> = Arc::new(db.store().await);
            let rt = ConnectionRuntime::new("default", Arc::new(mock.clone()));
            let engine = Engine::new(store, vec![rt], fast_options(), Metrics::new())
                .await
                .unwrap();
            let workers = engine.start_workers();
            engines.push((engine, workers));
        }
        let events = |i: usize| {
            let id = format!("scale-{i}");
            [
                AlertSpec::fired(&id, "2024-05-01T10:00:00Z"),
                AlertSpec::fired(&id, "2024-05-01T10:05:00Z"),
                AlertSpec::resolved(&id, "2024-05-01T10:00:00Z", "2024-05-01T10:30:00Z"),
            ]
        };
        // Each event is posted three times, to both engines concurrently (Azure redelivering
        // through a load balancer); events of one alert are posted in order.
        let mut posts = Vec::new();
        for i in 0..ALERTS {
            let engines: Vec<Engine> = engines.iter().map(|(e, _)| e.clone()).collect();
            posts.push(tokio::spawn(async move {
                let mut new = 0;
                for spec in events(i) {
                    let (alert, body) = spec.alert();
                    let copies = (0..3).map(|c| {
                        let engine = engines[(i + c) % 2].clone();
                        let (alert, body) = (alert.clone(), body.clone());
                        async move { engine.accept("default", &alert, &body).await.unwrap() }
                    });
                    for accepted in futures::future::join_all(copies).await {
                        if matches!(accepted, secure_export::engine::Accepted::New { .. }) {
                            new += 1;
                        }
                    }
                }
                new
            }));
        }
        let mut new = 0;
        for p in posts {
            new += p.await.unwrap();
        }
        assert_eq!(new, 3 * ALERTS, "each event recorded once");
        let engine = engines[0].0.clone();
        wait_until("both engines drained the shared outbox", || async {
            engine.queue_depth().await.unwrap() == 0
        })
        .await;
        for (_, workers) in engines {
            workers.shutdown().await;
        }
        let tickets = mock.tickets();
        assert_eq!(tickets.len(), ALERTS, "one work item per alert");
        assert!(
            tickets.iter().all(|t| t.state == WorkItemState::Resolved),
            "{tickets:?}"
        );
        assert!(tickets.iter().all(|t| t.notes.len() == 1), "{tickets:?}");
        assert_eq!(mock.call_count(MockOp::Create), ALERTS);
        assert_eq!(mock.call_count(MockOp::Resolve), ALERTS);
    })
    .await;
}
