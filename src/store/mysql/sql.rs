//! The store's SQL, kept in `sql/*.sql` (the migration in `sql/migration/`).
//!
//! Statements that name the table are templates, filled in once per store by [`render`].

use std::sync::Arc;

use sqlx::AssertSqlSafe;

use crate::store::ROTATION_MARKER_VERSION;

#[cfg(doc)]
use super::names::check_identifier;

/// Takes the named lock serializing migrations (for the session, until released).
pub(super) const MIGRATION_LOCK: &str = include_str!("sql/migration/lock.sql");

/// Releases the migration lock.
pub(super) const MIGRATION_UNLOCK: &str = include_str!("sql/migration/unlock.sql");

/// The names of the table's indexes, from `information_schema` (MySQL 8 has no
/// `CREATE INDEX IF NOT EXISTS`).
pub(super) const EXISTING_INDEXES: &str = include_str!("sql/migration/existing_indexes.sql");
/// `1` if the table exists in the connection's database, else `0`.
pub(super) const TABLE_EXISTS: &str = include_str!("sql/migration/table_exists.sql");

/// The name of the index on `expires_at` (index names are per table in MySQL).
pub(super) const EXPIRES_INDEX: &str = "expires_at_idx";

/// The name of the index on `user_id`.
pub(super) const USER_INDEX: &str = "user_id_idx";

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
    pub(super) move_row: Arc<str>,
    pub(super) insert_marker: Arc<str>,
    pub(super) delete_expired_batch: Arc<str>,
    pub(super) sessions_of: Arc<str>,
    pub(super) count_live_of_user: Arc<str>,
    pub(super) revoke_user: Arc<str>,
}

impl Statements {
    /// `table` must have passed [`check_identifier`]: it is formatted into SQL inside
    /// backticks, which is injection-free only for plain identifiers.
    pub(super) fn new(table: &str) -> Self {
        let sql = |template: &str| Arc::<str>::from(render(template, table));
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
            // The row changes key in place: a concurrent `revoke_user` that waits for the
            // row lock finds the moved row under its user and deletes it, where a DELETE
            // plus INSERT could leave it a row it never saw. The marker follows in the same
            // transaction.
            move_row: sql(include_str!("sql/move_row.sql")),
            insert_marker: sql(include_str!("sql/insert_marker.sql")),
            delete_expired_batch: sql(include_str!("sql/delete_expired_batch.sql")),
            sessions_of: sql(include_str!("sql/sessions_of.sql")),
            // MySQL has no `DELETE ... RETURNING`: the live rows are counted under lock in
            // the transaction that deletes them.
            count_live_of_user: sql(include_str!("sql/count_live_of_user.sql")),
            revoke_user: sql(include_str!("sql/revoke_user.sql")),
        }
    }
}

/// Fills in a statement template of `sql/`: the one place where text is spliced into the
/// store's SQL.
///
/// The placeholders are `{table}` (the table, backtick-quoted), `{expires_index}` and
/// `{user_index}` (the index names, backtick-quoted), and `{marker_version}`
/// ([`ROTATION_MARKER_VERSION`], an integer). The table name must have passed
/// [`check_identifier`], so it holds no backtick and no brace.
fn render(template: &str, table: &str) -> String {
    template
        .replace("{table}", &format!("`{table}`"))
        .replace("{expires_index}", &format!("`{EXPIRES_INDEX}`"))
        .replace("{user_index}", &format!("`{USER_INDEX}`"))
        .replace("{marker_version}", &ROTATION_MARKER_VERSION.to_string())
}

/// Wraps SQL built by [`Statements::new`] for sqlx, which accepts only literal SQL unless
/// told otherwise.
pub(super) fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    // Safe: the only dynamic part is a table name checked by `check_identifier` and
    // backtick-quoted; every value is a bound parameter.
    AssertSqlSafe(Arc::clone(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in() {
        let sql = Statements::new("sessions");
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
            &sql.move_row,
            &sql.insert_marker,
            &sql.delete_expired_batch,
            &sql.sessions_of,
            &sql.count_live_of_user,
            &sql.revoke_user,
        ];
        for statement in all {
            assert!(!statement.contains(['{', '}']), "{statement}");
        }
        assert_eq!(&*sql.delete, "DELETE FROM `sessions` WHERE `key` = ?\n");
        assert!(
            sql.move_row
                .contains(&format!("version <> {ROTATION_MARKER_VERSION}"))
        );
    }
}
