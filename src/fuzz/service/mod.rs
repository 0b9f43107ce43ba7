//! The `service` target: requests through the layer over a small memory store, driven by
//! the input (`input`) to a handler that uses the session as the route says (`handler`),
//! each response checked against what a user relies on (`check`).

use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use http::Request;
use tower_layer::Layer as _;

use self::check::send;
use self::handler::{Handler, ROUTES};
use self::input::{ADVANCES, Input, METHODS, Pool, request_headers};
use super::{CURRENT_SECRET, PREVIOUS_SECRET, keyring};
use crate::key::{Key, Keyring};
use crate::{
    ManualClock, MemoryStore, SessionError, SessionLayer, SessionService, SessionStore as _,
};

mod check;
pub(super) mod encode;
mod handler;
mod input;

/// The most sessions the `service` target's store holds: small, so that requests make
/// it purge and evict.
const CAPACITY: usize = 4;
/// The most requests one input of the `service` target sends.
const MAX_REQUESTS: usize = 6;
/// How often the target polls a response future before calling it stuck: the memory
/// store answers without waiting, so every future is ready at the first poll or after a
/// few polls of the handler.
const MAX_POLLS: usize = 1_000;

/// Polls `future` with a no-op waker until it is ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..MAX_POLLS {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("a future over the memory store is still pending after {MAX_POLLS} polls");
}

/// The layer of the `service` target, built once.
struct Fixture {
    service: SessionService<Handler>,
    store: MemoryStore,
    clock: ManualClock,
    current: Keyring,
    previous: Keyring,
    /// The session errors the layer handled itself during the current request.
    layer_errors: &'static Mutex<Vec<String>>,
}

fn fixture() -> &'static Fixture {
    static LAYER_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store = MemoryStore::builder().capacity(CAPACITY).build();
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_750_000_000));
        let key = |secret: &[u8; 32]| Key::from_bytes(secret).expect("a valid key");
        let layer = SessionLayer::new(store.clone(), key(&CURRENT_SECRET))
            .previous_keys([key(&PREVIOUS_SECRET)])
            .anonymous_timeout(Duration::from_secs(6 * 3600))
            .clock(clock.clone())
            .on_error(|error| {
                let mut errors = LAYER_ERRORS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                errors.push(match error {
                    SessionError::Store(crate::store::StoreError::CapacityExceeded) => {
                        "capacity".to_owned()
                    }
                    other => format!("{other:?}"),
                });
            });
        Fixture {
            service: layer.layer(Handler {
                clock: clock.clone(),
            }),
            store,
            clock,
            current: keyring(&CURRENT_SECRET),
            previous: keyring(&PREVIOUS_SECRET),
            layer_errors: &LAYER_ERRORS,
        }
    })
}

/// Fuzz target `service`: `data` is a sequence of requests, each its method and route,
/// how far the clock moves before it, and its headers (several `Cookie` headers among
/// them, with values the earlier responses set, truncated, tampered with, re-signed with
/// the previous key, over-long, under other names, or raw bytes).
///
/// Each goes through a [`SessionLayer`] over a small [`MemoryStore`] to a handler that
/// reads, writes, logs in, cycles the ID or destroys, as the route says. Checks what a
/// user relies on: no server error the handler did not answer with (client input is
/// never an error; a store full of authenticated sessions is the one documented
/// exception), at most one `Set-Cookie`, and one only for a value the current key signed
/// or the removal, `Cache-Control: no-store` with every `Set-Cookie`, `Vary: cookie`
/// whenever the handler used the session, no cookie from an untouched session except to
/// re-issue one signed with the previous key, and no new session cookie on a server
/// error.
pub fn service(data: &[u8]) {
    let fixture = fixture();
    // The sessions of earlier inputs are all past their absolute timeout: purge them, so
    // that every input starts from an empty store.
    fixture.clock.advance(Duration::from_secs(24 * 3600));
    let now = crate::Clock::now(&fixture.clock);
    block_on(fixture.store.delete_expired(now)).expect("the memory store purges");
    assert!(
        fixture.store.is_empty(),
        "{} sessions outlived their absolute timeout",
        fixture.store.len()
    );

    let mut input = Input { bytes: data };
    let mut pool = Pool { values: Vec::new() };
    for _ in 0..MAX_REQUESTS {
        if input.is_empty() {
            break;
        }
        let head = input.byte();
        let method = METHODS[usize::from(head & 3)].clone();
        let (path, route) = ROUTES[usize::from(head >> 2) % ROUTES.len()];
        fixture
            .clock
            .advance(ADVANCES[usize::from(input.byte()) % ADVANCES.len()]);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .expect("a valid request");
        request_headers(&mut input, &pool, fixture, &mut request);
        if let Some(value) = send(fixture, request, route) {
            pool.add(&value);
        }
    }
}
