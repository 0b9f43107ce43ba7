//! The per-user index: which sessions each user has, listing and revoking them.

use std::collections::HashSet;
use std::time::SystemTime;

use crate::id::{SessionHandle, StoreKey};
use crate::store::SessionInfo;
use crate::store::StoreError;

use super::Inner;
use crate::store::codec::View;

/// `revoke_user` re-reads the index when a session it meant to delete moved (a rotation in
/// flight); this bounds the number of passes under a storm of concurrent rotations.
const MAX_REVOKE_PASSES: usize = 16;

impl Inner {
    pub(super) fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let mut sessions = Vec::new();
        for key in self.keys_of(user) {
            let Some(entry) = self.sessions.get(&key) else {
                continue;
            };
            let stored = View::decode(entry.value())?;
            if stored.user == Some(user) && !stored.is_expired(now) {
                sessions.push(SessionInfo {
                    handle: SessionHandle::from_store_key(key),
                    created_at: stored.created_at,
                    last_active: stored.last_active,
                    expires_at: stored.expires_at,
                    label: stored.label.map(str::to_owned),
                    current: false,
                });
            }
        }
        sessions.sort_by_key(|info| info.created_at);
        Ok(sessions)
    }

    pub(super) fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for _ in 0..MAX_REVOKE_PASSES {
            // A key that is gone by the time we reach it may have been rotated to a new key,
            // which the rotation indexed before removing the old one: look again.
            let mut moved = false;
            for key in self.keys_of(user) {
                if except.is_some_and(|kept| kept.store_key() == &key) {
                    continue;
                }
                match self.remove_if(&key, now, |stored| stored.user == Some(user))? {
                    Some(removed) => revoked += u64::from(!removed.was_expired),
                    None => moved = true,
                }
            }
            if !moved {
                break;
            }
        }
        Ok(revoked)
    }

    /// A snapshot of the keys indexed under `user`, taken without holding the guard after.
    fn keys_of(&self, user: &str) -> Vec<StoreKey> {
        self.users
            .get(user)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(super) fn index_add(&self, user: &str, key: &StoreKey) {
        if let Some(mut keys) = self.users.get_mut(user) {
            keys.insert(*key);
            return;
        }
        self.users
            .entry(user.into())
            .or_insert_with(|| HashSet::with_hasher(self.key_hasher.clone()))
            .insert(*key);
    }

    pub(super) fn index_remove(&self, user: &str, key: &StoreKey) {
        let now_empty = match self.users.get_mut(user) {
            Some(mut keys) => {
                keys.remove(key);
                keys.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.users.remove_if(user, |_, keys| keys.is_empty());
        }
    }
}
