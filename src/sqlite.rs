//! Versioned SQLite migrations on `PRAGMA user_version`, shared by the sandbox's store and the
//! client's cache: migration N (1-based) brings a database from version N-1 to N, each in its
//! own transaction, and a database written by a newer build is refused rather than damaged.

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database was written by a newer kycdash (schema {found}; this build knows up to {supported})"
    )]
    Newer { found: i64, supported: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Applies the migrations the database has not seen yet; returns the version it was at.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<i64, MigrateError> {
    let supported = migrations.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > supported {
        return Err(MigrateError::Newer { found, supported });
    }
    for (index, sql) in migrations.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [&str; 2] = [
        "CREATE TABLE a (x INTEGER);",
        "ALTER TABLE a ADD COLUMN y INTEGER;",
    ];

    #[test]
    fn migrations_apply_once_in_order_and_newer_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &M[..1]).unwrap();
        conn.execute("INSERT INTO a (x) VALUES (1)", []).unwrap();
        migrate(&mut conn, &M).unwrap();
        migrate(&mut conn, &M).unwrap();
        let y: Option<i64> = conn.query_row("SELECT y FROM a", [], |r| r.get(0)).unwrap();
        assert_eq!(y, None);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        let err = migrate(&mut conn, &M[..1]).unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::Newer {
                    found: 2,
                    supported: 1
                }
            ),
            "{err}"
        );
    }
}
