//! The store's SQL, kept in `sql/*.sql` (the migration in `sql/migration/`).
//!
//! Statements that name the table are templates, filled in once per store by [`render`].

use std::sync::Arc;

use sqlx::AssertSqlSafe;

use crate::store::ROTATION_MARKER_VERSION;

#[cfg(doc)]
use super::names::check_identifier;

/// Takes the advisory lock serializing migrations, until the end of the transaction.
pub(super) const MIGRATION_LOCK: &str = include_str!("sql/migration/lock.sql");

/// Which schema, table and index names already exist.
pub(super) const EXISTING_OBJECTS: &str = include_str!("sql/migration/existing_objects.sql");

/// The store's SQL, built once from the validated schema and table names. Kept as
/// `Arc<str>` so each query borrows it with a reference-count bump.
pub(super) struct Statements {
    pub(super) create_schema: Arc<str>,
    pub(super) create_table: Arc<str>,
    pub(super) create_expires_index: Arc<str>,
    pub(super) create_user_index: Arc<str>,
    pub(super) add_label_and_format: Arc<str>,
    pub(super) load: Arc<str>,
    pub(super) insert: Arc<str>,
    pub(super) save: Arc<str>,
    pub(super) live_version: Arc<str>,
    pub(super) touch: Arc<str>,
    pub(super) delete: Arc<str>,
    pub(super) rotate: Arc<str>,
    pub(super) delete_expired_batch: Arc<str>,
    pub(super) sessions_of: Arc<str>,
    pub(super) revoke_user: Arc<str>,
}

impl Statements {
    /// `schema` and `table` must have passed [`check_identifier`]: they are formatted into
    /// SQL inside double quotes, which is injection-free only for plain identifiers.
    pub(super) fn new(schema: &str, table: &str, expires_index: &str, user_index: &str) -> Self {
        let sql = |template: &str| {
            Arc::<str>::from(render(template, schema, table, expires_index, user_index))
        };
        Self {
            create_schema: sql(include_str!("sql/migration/create_schema.sql")),
            create_table: sql(include_str!("sql/migration/create_table.sql")),
            create_expires_index: sql(include_str!("sql/migration/create_expires_index.sql")),
            create_user_index: sql(include_str!("sql/migration/create_user_index.sql")),
            // Upgrades a table of a release before record formats; `format` 0 marks the
            // rows that release wrote (and any it still writes during a rolling upgrade).
            add_label_and_format: sql(include_str!("sql/migration/add_label_and_format.sql")),
            load: sql(include_str!("sql/load.sql")),
            insert: sql(include_str!("sql/insert.sql")),
            save: sql(include_str!("sql/save.sql")),
            live_version: sql(include_str!("sql/live_version.sql")),
            touch: sql(include_str!("sql/touch.sql")),
            delete: sql(include_str!("sql/delete.sql")),
            // The row changes key in place: a concurrent `revoke_user` that waits for the
            // row lock re-checks its condition on the moved row and deletes it, where a
            // DELETE plus INSERT would leave it a row its snapshot never saw.
            // In the same statement, a rotation marker takes the old key.
            rotate: sql(include_str!("sql/rotate.sql")),
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
/// The placeholders are `{table}` (the schema-qualified table, `"schema"."table"`),
/// `{schema}`, `{expires_index}` and `{user_index}` (each name double-quoted), and
/// `{marker_version}` ([`ROTATION_MARKER_VERSION`], an integer). The names must have passed
/// [`check_identifier`] (index names are built from a checked table name by
/// [`index_name`](super::names::index_name)), so they hold no quote and no brace: a
/// substituted name can neither end its quoting nor form another placeholder.
fn render(
    template: &str,
    schema: &str,
    table: &str,
    expires_index: &str,
    user_index: &str,
) -> String {
    template
        .replace("{table}", &format!("\"{schema}\".\"{table}\""))
        .replace("{schema}", &format!("\"{schema}\""))
        .replace("{expires_index}", &format!("\"{expires_index}\""))
        .replace("{user_index}", &format!("\"{user_index}\""))
        .replace("{marker_version}", &ROTATION_MARKER_VERSION.to_string())
}

/// Wraps SQL built by [`Statements::new`] for sqlx, which accepts only literal SQL unless
/// told otherwise.
pub(super) fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    // Safe: the only dynamic parts are schema and table names checked by
    // `check_identifier` and double-quoted; every value is a bound parameter.
    AssertSqlSafe(Arc::clone(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in() {
        let sql = Statements::new(
            "app",
            "sessions",
            "sessions_expires_at_idx",
            "sessions_user_id_idx",
        );
        let all = [
            &sql.create_schema,
            &sql.create_table,
            &sql.create_expires_index,
            &sql.create_user_index,
            &sql.load,
            &sql.insert,
            &sql.save,
            &sql.live_version,
            &sql.touch,
            &sql.delete,
            &sql.rotate,
            &sql.delete_expired_batch,
            &sql.sessions_of,
            &sql.revoke_user,
        ];
        for statement in all {
            assert!(!statement.contains(['{', '}']), "{statement}");
        }
        assert_eq!(&*sql.create_schema, "CREATE SCHEMA IF NOT EXISTS \"app\"\n");
        assert_eq!(
            &*sql.delete,
            "DELETE FROM \"app\".\"sessions\" WHERE key = $1\n"
        );
        assert!(
            sql.rotate
                .contains(&format!("version <> {ROTATION_MARKER_VERSION} RETURNING 1"))
        );
        assert!(sql.create_user_index.starts_with(
            "CREATE INDEX IF NOT EXISTS \"sessions_user_id_idx\" ON \"app\".\"sessions\""
        ));
    }
}
