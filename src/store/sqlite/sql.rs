//! The store's SQL, kept in `sql/*.sql` (the migration in `sql/migration/`).
//!
//! Every statement names the table, so each is a template filled in once per store by
//! [`render`].

use std::sync::Arc;

use sqlx::AssertSqlSafe;

use crate::store::ROTATION_MARKER_VERSION;

#[cfg(doc)]
use super::names::check_identifier;

/// Opens every write: takes the database's write lock at once, so that the busy timeout
/// covers waiting for it. A deferred transaction that reads first and writes later cannot
/// wait: SQLite fails its write with `SQLITE_BUSY` when another writer committed meanwhile.
pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The store's SQL, built once from the validated table name. Kept as `Arc<str>` so each
/// query borrows it with a reference-count bump.
pub(super) struct Statements {
    pub(super) create_table: Arc<str>,
    pub(super) create_expires_index: Arc<str>,
    pub(super) create_user_index: Arc<str>,
    pub(super) load: Arc<str>,
    pub(super) insert: Arc<str>,
    pub(super) save: Arc<str>,
    pub(super) live_version: Arc<str>,
    pub(super) touch: Arc<str>,
    pub(super) delete: Arc<str>,
    pub(super) rotate_move: Arc<str>,
    pub(super) rotate_marker: Arc<str>,
    pub(super) delete_expired_batch: Arc<str>,
    pub(super) sessions_of: Arc<str>,
    pub(super) revoke_user: Arc<str>,
}

impl Statements {
    /// `table` must have passed [`check_identifier`]: it is formatted into SQL inside double
    /// quotes, which is injection-free only for plain identifiers.
    pub(super) fn new(table: &str, expires_index: &str, user_index: &str) -> Self {
        let sql =
            |template: &str| Arc::<str>::from(render(template, table, expires_index, user_index));
        Self {
            create_table: sql(include_str!("sql/migration/create_table.sql")),
            create_expires_index: sql(include_str!("sql/migration/create_expires_index.sql")),
            create_user_index: sql(include_str!("sql/migration/create_user_index.sql")),
            load: sql(include_str!("sql/load.sql")),
            insert: sql(include_str!("sql/insert.sql")),
            save: sql(include_str!("sql/save.sql")),
            live_version: sql(include_str!("sql/live_version.sql")),
            touch: sql(include_str!("sql/touch.sql")),
            delete: sql(include_str!("sql/delete.sql")),
            // The row changes key in place and the marker takes the old key, in one
            // transaction: a `revoke_user` sees the session under one key or the other.
            rotate_move: sql(include_str!("sql/rotate_move.sql")),
            rotate_marker: sql(include_str!("sql/rotate_marker.sql")),
            delete_expired_batch: sql(include_str!("sql/delete_expired_batch.sql")),
            sessions_of: sql(include_str!("sql/sessions_of.sql")),
            // Expired rows of the user go too, but only live ones are counted: they are the
            // sessions that were actually revoked.
            revoke_user: sql(include_str!("sql/revoke_user.sql")),
        }
    }
}

/// Fills in a statement template of `sql/`: the one place where text is spliced into the
/// store's SQL.
///
/// The placeholders are `{table}`, `{expires_index}` and `{user_index}` (each name
/// double-quoted) and `{marker_version}` ([`ROTATION_MARKER_VERSION`], an integer). The
/// names must have passed [`check_identifier`], so they hold no quote and no brace.
fn render(template: &str, table: &str, expires_index: &str, user_index: &str) -> String {
    template
        .replace("{table}", &format!("\"{table}\""))
        .replace("{expires_index}", &format!("\"{expires_index}\""))
        .replace("{user_index}", &format!("\"{user_index}\""))
        .replace("{marker_version}", &ROTATION_MARKER_VERSION.to_string())
}

/// Wraps SQL built by [`Statements::new`] for sqlx, which accepts only literal SQL unless
/// told otherwise.
pub(super) fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    // Safe: the only dynamic part is a table name checked by `check_identifier` and
    // double-quoted; every value is a bound parameter.
    AssertSqlSafe(Arc::clone(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in() {
        let sql = Statements::new(
            "sessions",
            "sessions_expires_at_idx",
            "sessions_user_id_idx",
        );
        let all = [
            &sql.create_table,
            &sql.create_expires_index,
            &sql.create_user_index,
            &sql.load,
            &sql.insert,
            &sql.save,
            &sql.live_version,
            &sql.touch,
            &sql.delete,
            &sql.rotate_move,
            &sql.rotate_marker,
            &sql.delete_expired_batch,
            &sql.sessions_of,
            &sql.revoke_user,
        ];
        for statement in all {
            assert!(!statement.contains(['{', '}']), "{statement}");
        }
        assert_eq!(&*sql.delete, "DELETE FROM \"sessions\" WHERE key = ?1\n");
        assert!(
            sql.rotate_move
                .contains(&format!("version <> {ROTATION_MARKER_VERSION}"))
        );
    }
}
