//! Rotation: moving a session to a new key and leaving a marker under the old one.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use dashmap::mapref::entry::Entry;

use crate::id::StoreKey;
use crate::store::StoreError;
use crate::store::{Record, RotateOutcome};

use super::Inner;
use crate::store::codec::View;

/// Why a rotation of `stored` from `expected_version` at `now` is refused, if it is.
fn refusal(stored: &View<'_>, expected_version: u64, now: SystemTime) -> Option<RotateOutcome> {
    if stored.is_expired(now) {
        Some(RotateOutcome::Missing)
    } else if stored.is_marker() {
        Some(RotateOutcome::Moved)
    } else if stored.version != expected_version {
        Some(RotateOutcome::Conflict)
    } else {
        None
    }
}

impl Inner {
    pub(super) fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, StoreError> {
        // Nobody may see the session under neither key, so the new entry goes in first and
        // the old one goes out second, each under its own shard guard (holding both at once
        // could deadlock when they share a shard). A save on `old` in between makes the
        // removal fail, and the new entry is rolled back: nobody else can have used it, as
        // its key comes from a fresh random ID.
        if let Some(refusal) = self.check_rotatable(old, expected_version, now)? {
            return Ok(refusal);
        }
        let encoded = View::from_record(record).encode()?;
        match self.sessions.entry(*new) {
            Entry::Occupied(_) => return Ok(RotateOutcome::Collision),
            Entry::Vacant(vacant) => {
                if let Some(user) = &record.user {
                    self.index_add(user, new);
                }
                // Rotation does not grow the store, so it bypasses the capacity check.
                self.len.fetch_add(1, Ordering::AcqRel);
                vacant.insert(encoded);
            }
        }
        match self.leave_marker(old, expected_version, now) {
            Ok(None) => Ok(RotateOutcome::Rotated),
            Ok(Some(refusal)) => {
                self.remove_if(new, now, |_| true)?;
                Ok(refusal)
            }
            Err(error) => {
                self.remove_if(new, now, |_| true)?;
                Err(error)
            }
        }
    }

    /// Replaces the record under `old` with a rotation marker if it is live at `now` with
    /// `expected_version`, keeping the index in step; otherwise says why not.
    fn leave_marker(
        &self,
        old: &StoreKey,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        let marker = View::marker(now).encode()?;
        let Entry::Occupied(mut entry) = self.sessions.entry(*old) else {
            return Ok(Some(RotateOutcome::Missing));
        };
        let stored = View::decode(entry.get())?;
        if let Some(refusal) = refusal(&stored, expected_version, now) {
            return Ok(Some(refusal));
        }
        if let Some(user) = stored.user {
            self.index_remove(user, old);
        }
        // The marker takes the old entry's slot: it does not grow the store.
        *entry.get_mut() = marker;
        Ok(None)
    }

    /// Why `old` cannot be rotated, if it cannot: checked before writing anything, so that a
    /// refused rotation usually leaves no trace at all.
    fn check_rotatable(
        &self,
        old: &StoreKey,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        let Some(entry) = self.sessions.get(old) else {
            return Ok(Some(RotateOutcome::Missing));
        };
        let stored = View::decode(entry.value())?;
        Ok(refusal(&stored, expected_version, now))
    }
}
