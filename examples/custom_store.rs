//! A complete session store of your own, in one file: a `HashMap` behind a mutex.
//!
//! It implements the core `SessionStore` trait only (no per-user index, so
//! `Session::user_sessions` answers `StoreError::Unsupported`), passes the crate's
//! conformance suite (`tests/suite/custom_store.rs` runs it), and serves a layer here.
//!
//! Run it with `cargo run --example custom_store`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sessionware::store::{ROTATION_MARKER_LIFETIME, ROTATION_MARKER_VERSION};
use sessionware::{
    CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionStore, StoreError,
    StoreFuture, StoreKey, TouchOutcome,
};

/// Sessions in a map, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct HashMapStore {
    records: Arc<Mutex<HashMap<StoreKey, Record>>>,
}

impl HashMapStore {
    fn records(&self) -> MutexGuard<'_, HashMap<StoreKey, Record>> {
        // A panic while the lock was held leaves no half-written record: every operation
        // changes the map in one step.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a key holds at `now`, as the trait's outcomes see it.
enum Slot<'a> {
    Live(&'a Record),
    Marker,
    Gone,
}

fn slot(record: Option<&Record>, now: SystemTime) -> Slot<'_> {
    match record {
        Some(record) if record.is_expired(now) => Slot::Gone,
        Some(record) if record.version == ROTATION_MARKER_VERSION => Slot::Marker,
        Some(record) => Slot::Live(record),
        None => Slot::Gone,
    }
}

fn marker(now: SystemTime) -> Record {
    Record {
        version: ROTATION_MARKER_VERSION,
        user: None,
        created_at: now,
        last_active: now,
        expires_at: now + ROTATION_MARKER_LIFETIME,
        expiry: None,
        data: Vec::new(),
        label: None,
    }
}

// Every operation completes under the lock, before it returns: the futures are ready.
impl SessionStore for HashMapStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        let records = self.records();
        let outcome = match (records.get(key), slot(records.get(key), now)) {
            (_, Slot::Live(record)) => LoadOutcome::Found(record.clone()),
            (_, Slot::Marker) => LoadOutcome::Moved,
            (Some(_), Slot::Gone) => LoadOutcome::Expired,
            (None, Slot::Gone) => LoadOutcome::Missing,
        };
        StoreFuture::ready(Ok(outcome))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        let mut records = self.records();
        // An expired record that no purge has removed yet still takes the key.
        let outcome = if records.contains_key(key) {
            CreateOutcome::Collision
        } else {
            records.insert(*key, record.clone());
            CreateOutcome::Created
        };
        StoreFuture::ready(Ok(outcome))
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        let mut records = self.records();
        let outcome = match slot(records.get(key), now) {
            Slot::Live(stored) if stored.version != expected_version => SaveOutcome::Conflict,
            Slot::Live(_) => {
                records.insert(*key, record.clone());
                SaveOutcome::Saved
            }
            Slot::Marker => SaveOutcome::Moved,
            Slot::Gone => SaveOutcome::Missing,
        };
        StoreFuture::ready(Ok(outcome))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        let mut records = self.records();
        let outcome = match slot(records.get(key), now) {
            Slot::Live(stored) if stored.version != expected_version => TouchOutcome::Conflict,
            Slot::Live(_) => {
                if let Some(stored) = records.get_mut(key) {
                    stored.last_active = last_active;
                    stored.expires_at = expires_at;
                }
                TouchOutcome::Touched
            }
            Slot::Marker => TouchOutcome::Conflict,
            Slot::Gone => TouchOutcome::Missing,
        };
        StoreFuture::ready(Ok(outcome))
    }

    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::ready(Ok(self.records().remove(key).is_some()))
    }

    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        let mut records = self.records();
        let outcome = match slot(records.get(old), now) {
            Slot::Live(stored) if stored.version != expected_version => RotateOutcome::Conflict,
            Slot::Live(_) if records.contains_key(new) => RotateOutcome::Collision,
            Slot::Live(_) => {
                // One lock, one step: nobody sees the session under neither key.
                records.insert(*new, record.clone());
                records.insert(*old, marker(now));
                RotateOutcome::Rotated
            }
            Slot::Marker => RotateOutcome::Moved,
            Slot::Gone => RotateOutcome::Missing,
        };
        StoreFuture::ready(Ok(outcome))
    }

    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| !record.is_expired(now));
        StoreFuture::ready(Ok((before - records.len()) as u64))
    }

    fn is_immediate(&self) -> bool {
        true
    }
}

/// Serves two requests through a layer on the store: the first creates a session, the
/// second, with its cookie, reads it back.
#[cfg_attr(test, allow(dead_code))]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    use http::{Request, Response, header};
    use sessionware::{Key, Session, SessionLayer};
    use tower::{ServiceBuilder, ServiceExt as _, service_fn};

    let store = HashMapStore::default();
    let app = ServiceBuilder::new()
        .layer(SessionLayer::new(store.clone(), Key::generate()))
        .service(service_fn(|request: Request<()>| async move {
            let session = request.extensions().get::<Session>().cloned();
            let session = session.expect("the layer puts a session in every request");
            let visits = session
                .update("visits", |visits: Option<u64>| visits.unwrap_or(0) + 1)
                .await?;
            Ok::<_, sessionware::SessionError>(Response::new(format!("visit {visits}")))
        }));

    let first = app.clone().oneshot(Request::new(())).await.expect("first");
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ASCII cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let second = Request::builder()
        .header(header::COOKIE, cookie)
        .body(())
        .expect("request");
    let second = app.oneshot(second).await.expect("second");
    println!("{} then {}", first.body(), second.body());
    println!("{} session(s) stored", store.records().len());
}
