//! The store's Lua scripts, kept in `scripts/*.lua`.
//!
//! Every script runs after a few Lua locals defined from the Rust constants (`INDEX_PRUNE_BATCH`,
//! `MARKER_VERSION`, `MARKER_LIFETIME_MS`), so that the scripts and the store cannot disagree,
//! and after the helpers of `prelude.lua`.

use std::sync::LazyLock;

use redis::Script;

use crate::store::ROTATION_MARKER_LIFETIME;

#[cfg(doc)]
use super::RedisStore;
#[cfg(doc)]
use super::record::{decode_record, encode_record};

/// [`ROTATION_MARKER_VERSION`](crate::store::ROTATION_MARKER_VERSION) as the `version`
/// field holds it (a unit test checks that the two agree).
pub(super) const MARKER_VERSION: &str = "0";

/// The most stale entries one write that adds to a user's index removes from it (see
/// "Index upkeep" on [`RedisStore`]): enough to outpace the rate at which sessions can
/// expire, small enough that the write stays a constant cost.
const INDEX_PRUNE_BATCH: usize = 32;

/// Helpers shared by every script, after a line defining `INDEX_PRUNE_BATCH` (see
/// [`SCRIPTS`]). Field names here must match those written by [`encode_record`] and read by
/// [`decode_record`].
const LUA_PRELUDE: &str = include_str!("scripts/prelude.lua");

/// KEYS: session, `[index]`. ARGV: member, expires, grace, now, field/value pairs...
/// Returns 1 when created, 0 on a collision.
const LUA_CREATE: &str = include_str!("scripts/create.lua");

/// KEYS: session, `[index]`. ARGV: member, expires, grace, expected version, now, pairs...
/// Returns 1 when saved, 0 when missing or expired, 2 on a version conflict, 3 on a rotation
/// marker.
const LUA_SAVE: &str = include_str!("scripts/save.lua");

/// KEYS: session. ARGV: member, last active, expires, now, grace, expected version.
/// Returns 1 when touched, 0 when missing or expired, 2 on a version conflict.
const LUA_TOUCH: &str = include_str!("scripts/touch.lua");

/// KEYS: session. ARGV: member, grace. Returns how many keys it deleted (0 or 1).
const LUA_DELETE: &str = include_str!("scripts/delete.lua");

/// KEYS: old session, new session, [new index]. ARGV: old member, new member, expires, grace,
/// expected version, now, pairs... Returns 1 when rotated, 0 when the old record is missing
/// or expired, 2 on a version conflict, 3 when the new key is taken, 4 when the old key holds
/// a rotation marker.
const LUA_ROTATE: &str = include_str!("scripts/rotate.lua");

/// KEYS: candidate session keys. ARGV: now, grace. Deletes those expired at `now` and
/// returns how many.
const LUA_PURGE: &str = include_str!("scripts/purge.lua");

/// KEYS: index. ARGV: session key prefix, now, grace, first rank, page size. Examines the
/// members ranked first .. first + page - 1 and drops those whose session is gone or owned
/// by another index. Returns {examined, kept, {member, created, active, expires, ...}}: how
/// many members it looked at, how many of them it left in place (so the next page starts at
/// first + kept), and the live sessions among those. A field missing from a record is sent
/// as an empty string, for the caller to refuse.
const LUA_LIST: &str = include_str!("scripts/list.lua");

/// KEYS: index. ARGV: session key prefix, member to keep (or empty), now, grace, page size.
/// Examines the `page` lowest-ranked members: deletes each session the index owns except the
/// kept one, and drops every member but the kept one. Returns {how many of the deleted
/// sessions were live at `now`, 1 if it examined a full page and 0 otherwise}.
///
/// Every call starts again from the lowest rank, never from a score cursor: a session rotated
/// or re-scored (a `set_expiry` can lower a deadline) between two calls re-enters the index
/// with a score anywhere, and the next call must still find it. The kept member is examined
/// again by each call rather than skipped with an offset, because any member, the new one of
/// a rotation included, can rank below it.
const LUA_REVOKE_USER: &str = include_str!("scripts/revoke_user.lua");

/// The scripts, hashed once per process. Each is the prelude, preceded by the definition of
/// `INDEX_PRUNE_BATCH`, followed by its own body.
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) save: Script,
    pub(super) touch: Script,
    pub(super) delete: Script,
    pub(super) rotate: Script,
    pub(super) purge: Script,
    pub(super) list: Script,
    pub(super) revoke_user: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    // The locals, the prelude and the body, a blank line apart.
    let script = |body: &str| {
        Script::new(&format!(
            "local INDEX_PRUNE_BATCH = {INDEX_PRUNE_BATCH}\n\
             local MARKER_VERSION = '{MARKER_VERSION}'\n\
             local MARKER_LIFETIME_MS = {}\n\n{LUA_PRELUDE}\n{body}",
            ROTATION_MARKER_LIFETIME.as_millis()
        ))
    };
    Scripts {
        create: script(LUA_CREATE),
        save: script(LUA_SAVE),
        touch: script(LUA_TOUCH),
        delete: script(LUA_DELETE),
        rotate: script(LUA_ROTATE),
        purge: script(LUA_PURGE),
        list: script(LUA_LIST),
        revoke_user: script(LUA_REVOKE_USER),
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_version_is_the_stores_own() {
        assert_eq!(
            MARKER_VERSION,
            crate::store::ROTATION_MARKER_VERSION.to_string()
        );
    }
}
