//! Embedded schema migrations, tracked in SQLite's `user_version`.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

/// `(version, SQL)`, in order. A released migration is never edited: add the next one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/0002_create_started.sql"),
    ),
];

fn setup(what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Setup(format!("{what}: {e}"))
}

/// The schema version of `conn`'s database: `user_version`, or for a database written by
/// versions that migrated with sqlx, the last version recorded in `_sqlx_migrations`.
fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| setup("cannot read the schema version", e))?;
    if version != 0 {
        return Ok(version);
    }
    let sqlx_table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| setup("cannot read the schema version", e))?;
    if sqlx_table.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        [],
        |row| row.get(0),
    )
    .map_err(|e| setup("cannot read _sqlx_migrations", e))
}

/// Brings the schema to the latest version, each migration in a transaction of its own.
/// Refuses a database written by a newer version of this crate.
pub(super) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    let current = current_version(conn)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::Setup(format!(
            "the database has schema version {current}, newer than this build knows ({latest}): \
             run the newer secure-export or restore a backup"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let what = format!("migration {version} failed");
        let tx = conn.transaction().map_err(|e| setup(&what, e))?;
        tx.execute_batch(sql).map_err(|e| setup(&what, e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| setup(&what, e))?;
        tx.commit().map_err(|e| setup(&what, e))?;
        tracing::info!(event = "store.migrated", version);
    }
    if current != 0 && current < latest {
        tracing::info!(event = "store.upgraded", from = current, to = latest);
    }
    // A database of the sqlx era already had the schema: record its version here too.
    if current != 0 && current == latest {
        conn.pragma_update(None, "user_version", current)
            .map_err(|e| setup("cannot record the schema version", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_gets_every_migration_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 2);
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn database_migrated_by_sqlx_is_recognised() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, \
             installed_on TIMESTAMP, success BOOLEAN, checksum BLOB, execution_time BIGINT); \
             INSERT INTO _sqlx_migrations VALUES (1, 'init', 0, TRUE, x'00', 0);",
        )
        .unwrap();
        // Running 0001 again would fail ("table deliveries already exists"); 0002 runs.
        run(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        conn.execute("UPDATE jobs SET create_started_at = 1", [])
            .unwrap();
    }

    #[test]
    fn newer_schema_is_refused_with_its_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let e = run(&mut conn).unwrap_err();
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}
