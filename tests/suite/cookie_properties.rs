//! Property tests for cookie parsing and verification: arbitrary input never panics and never
//! reaches the store unless it is a valid signed value.

use crate::common::{Client, Instrumented, app};
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use proptest::prelude::*;
use sessionware::{Key, MemoryStore, SessionLayer};
use tower::ServiceExt as _;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: Instrumented<MemoryStore>,
    app: axum::Router,
    valid: String,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Instrumented::new(MemoryStore::default());
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let valid = runtime.block_on(async {
        let mut client = Client::new(app.clone());
        client.send("POST", "/login/alice").await;
        client.cookie.unwrap()
    });
    Fixture {
        runtime,
        store,
        app,
        valid,
    }
}

impl Fixture {
    /// Sends `GET /user` with a raw Cookie header; returns the status and the number of store
    /// calls it caused.
    fn probe(&self, cookie: &[u8]) -> (StatusCode, usize) {
        let Ok(value) = HeaderValue::from_bytes(cookie) else {
            return (StatusCode::UNAUTHORIZED, 0);
        };
        let before = self.store.calls.total();
        let request = Request::builder()
            .uri("/user")
            .header(header::COOKIE, value)
            .body(Body::empty())
            .unwrap();
        let response = self
            .runtime
            .block_on(self.app.clone().oneshot(request))
            .unwrap();
        (response.status(), self.store.calls.total() - before)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_cookie_headers_never_reach_the_store(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = fixture();
        let (status, calls) = f.probe(&bytes);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(calls, 0);
    }

    #[test]
    fn arbitrary_session_cookie_values_never_reach_the_store(value in "[ -~]{0,200}") {
        let f = fixture();
        let (status, calls) = f.probe(format!("__Host-session={value}").as_bytes());
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(calls, 0);
    }

    #[test]
    fn any_mutation_of_a_valid_value_is_rejected_before_the_store(
        position in 0usize..87,
        replacement in proptest::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".to_vec()
        ),
        truncate in proptest::option::of(0usize..87),
        extra in proptest::option::of("[A-Za-z0-9_-]{1,4}"),
    ) {
        let f = fixture();
        let mut mutated = f.valid.clone().into_bytes();
        mutated[position] = replacement;
        if let Some(len) = truncate {
            mutated.truncate(len);
        }
        if let Some(extra) = &extra {
            mutated.extend_from_slice(extra.as_bytes());
        }
        let mut header = b"__Host-session=".to_vec();
        header.extend_from_slice(&mutated);
        let (status, calls) = f.probe(&header);
        if mutated == f.valid.as_bytes() {
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(calls, 1);
        } else {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
            prop_assert_eq!(calls, 0, "a mutated value reached the store");
        }
    }

    #[test]
    fn a_valid_value_is_found_wherever_it_sits_among_other_cookies(
        before in proptest::collection::vec("[a-z]{1,8}=[ -:<-~]{0,20}", 0..20),
        after in proptest::collection::vec("[a-z]{1,8}=[ -:<-~]{0,20}", 0..20),
    ) {
        let f = fixture();
        let mut pairs = before.clone();
        pairs.push(format!("__Host-session={}", f.valid));
        pairs.extend(after);
        let (status, calls) = f.probe(pairs.join("; ").as_bytes());
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(calls, 1);
    }
}
