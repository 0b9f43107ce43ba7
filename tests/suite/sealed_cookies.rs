//! Sealed cookie sessions (`SessionLayer::sealed_cookies`): the conformance behaviours that
//! apply to a session with no store (lifecycle, timeouts, rotation, tampering, oversize,
//! bad input is an anonymous session), and the limits its docs state.
#![cfg(feature = "cookie-store")]

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use sessionware::{Key, ManualClock, MemoryStore, Session, SessionError, SessionLayer};

use crate::common::{Client, app, send, tamper};

const IDLE: Duration = Duration::from_secs(5 * 60);
const ABSOLUTE: Duration = Duration::from_secs(20 * 60);

/// The behaviour tests' app plus routes that store a value of a given size.
fn sealed_app(layer: SessionLayer<sessionware::SealedCookies>) -> Router {
    app()
        .route("/big/{len}", post(insert_big))
        .route("/big-update/{len}", post(update_big))
        .layer(layer)
}

fn layer(key: Key, clock: &ManualClock) -> SessionLayer<sessionware::SealedCookies> {
    SessionLayer::sealed_cookies(key)
        .idle_timeout(IDLE)
        .absolute_timeout(ABSOLUTE)
        .clock(clock.clone())
}

async fn insert_big(session: Session, Path(len): Path<usize>) -> Result<String, SessionError> {
    session.insert("big", "x".repeat(len)).await?;
    Ok("set".to_owned())
}

/// Reports `update`'s error as the body, with a 200, so that the test sees what the handler
/// got.
async fn update_big(session: Session, Path(len): Path<usize>) -> String {
    match session
        .update("big", |_: Option<String>| "x".repeat(len))
        .await
    {
        Ok(_) => "updated".to_owned(),
        Err(error @ SessionError::CookieTooLarge { .. }) => format!("too large: {error}"),
        Err(error) => format!("other error: {error}"),
    }
}

fn cookie_header(value: &str) -> String {
    format!("__Host-session={value}")
}

#[tokio::test]
async fn a_session_lives_in_its_cookie_from_first_write_to_logout() {
    let clock = ManualClock::default();
    let app = sealed_app(layer(Key::generate(), &clock));
    let mut browser = Client::new(app.clone());

    // Anonymous and untouched: no cookie for nothing.
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.set_cookies().is_empty());

    // A write hands out the cookie, with the layer's secure attributes.
    let reply = browser.send("POST", "/set/theme/dark").await;
    let cookie = reply.session_cookie().expect("a write sets the cookie");
    assert!(cookie.has("HttpOnly") && cookie.has("Secure"));
    assert_eq!(cookie.attribute("SameSite").as_deref(), Some("Lax"));
    assert_eq!(cookie.attribute("Path").as_deref(), Some("/"));
    assert_eq!(cookie.max_age(), Some(IDLE.as_secs()));
    assert_eq!(
        reply.header(axum::http::header::CACHE_CONTROL).as_deref(),
        Some("no-store")
    );
    // The values are sealed: the cookie does not show them.
    let raw = URL_SAFE_NO_PAD
        .decode(&cookie.value)
        .expect("the cookie value is base64url");
    assert!(!raw.windows(4).any(|window| window == b"dark"));
    assert!(!raw.windows(5).any(|window| window == b"theme"));

    // The next request reads it back from the cookie alone, and sends no new cookie.
    let reply = browser.send("GET", "/get/theme").await;
    assert_eq!(reply.body, "dark");
    assert!(reply.set_cookies().is_empty());
    // A request that does not use the session does not open it, nor send a cookie.
    assert!(browser.send("GET", "/plain").await.set_cookies().is_empty());

    // Log in: a new ID (the handle changes), the values kept, the user recorded.
    let before = browser.send("GET", "/handle").await.body;
    let anonymous_cookie = browser.cookie.clone().expect("cookie");
    assert!(
        browser
            .send("POST", "/login/alice")
            .await
            .session_cookie()
            .is_some()
    );
    let after = browser.send("GET", "/handle").await.body;
    assert_ne!(before, after);
    assert_eq!(browser.send("GET", "/user").await.body, "alice");
    assert_eq!(browser.send("GET", "/get/theme").await.body, "dark");
    // The pre-login cookie is not the logged-in session (fixation gains nothing): it still
    // opens, as its docs say, but only as the anonymous session it was.
    let replay = send(
        &app,
        "GET",
        "/user",
        Some(&cookie_header(&anonymous_cookie)),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);

    // Counters work within and across requests.
    assert_eq!(browser.send("POST", "/incr/n").await.body, "1");
    assert_eq!(browser.send("POST", "/incr/n").await.body, "2");

    // Log out: the browser's cookie is removed.
    let logged_in = browser.cookie.clone().expect("cookie");
    let reply = browser.send("POST", "/logout").await;
    assert!(reply.session_cookie().expect("removal").is_removal());
    assert_eq!(
        browser.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    // ... and only that: a copy of the cookie still opens until its deadline, which is what
    // `SealedCookies` warns about first.
    let copy = send(&app, "GET", "/user", Some(&cookie_header(&logged_in))).await;
    assert_eq!(copy.body, "alice");
}

#[tokio::test]
async fn the_idle_and_absolute_deadlines_travel_in_the_cookie_and_the_layer_enforces_them() {
    let clock = ManualClock::default();
    let app = sealed_app(layer(Key::generate(), &clock));
    let mut browser = Client::new(app.clone());
    browser.send("POST", "/login/alice").await;
    let first = browser.cookie.clone().expect("cookie");

    // Activity keeps it alive: each read after the touch interval re-seals the cookie with
    // a later deadline and a fresh Max-Age.
    clock.advance(Duration::from_secs(4 * 60));
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.body, "alice");
    let touched = reply.session_cookie().expect("the deadline moved");
    assert_eq!(touched.max_age(), Some(IDLE.as_secs()));
    assert_ne!(touched.value, first);

    // The first cookie's deadline passed (idle from its own last activity), the re-sealed
    // one's has not: the deadline is inside each cookie, whatever the client claims.
    clock.advance(Duration::from_secs(2 * 60));
    let stale = send(&app, "GET", "/user", Some(&cookie_header(&first))).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.session_cookie().expect("removal").is_removal());
    assert_eq!(browser.send("GET", "/user").await.body, "alice");

    // However active, the session ends at the absolute timeout.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(4 * 60));
        assert_eq!(browser.send("GET", "/user").await.body, "alice");
    }
    clock.advance(Duration::from_secs(4 * 60)); // 22 minutes after login
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        browser.cookie.is_none(),
        "the ended session's cookie is removed"
    );
}

#[tokio::test]
async fn a_tampered_forged_or_foreign_cookie_is_an_anonymous_session() {
    let clock = ManualClock::default();
    let key = Key::generate();
    let layer = layer(key.clone(), &clock);
    let events = layer.clone();
    let app = sealed_app(layer);
    let mut browser = Client::new(app.clone());
    browser.send("POST", "/login/alice").await;
    let good = browser.cookie.clone().expect("cookie");

    // Every character of the value counts.
    for at in 0..good.len() {
        let reply = send(
            &app,
            "GET",
            "/user",
            Some(&cookie_header(&tamper(&good, at))),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "character {at}");
        // Never treated as a session that ended: nothing is sent back.
        assert!(reply.set_cookies().is_empty(), "character {at}");
    }
    assert_eq!(events.security_events().forged, good.len() as u64);

    // Truncated, not base64, empty, oversized: anonymous, no error.
    for bad in [
        good[..good.len() / 2].to_owned(),
        "not base64!".to_owned(),
        String::new(),
        "A".repeat(5000),
    ] {
        let reply = send(&app, "GET", "/user", Some(&cookie_header(&bad))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }

    // Sealed by another key: anonymous.
    let other = sealed_app(SessionLayer::sealed_cookies(Key::generate()));
    let reply = send(&other, "GET", "/user", Some(&cookie_header(&good))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // A signed session ID from a store layer with the same key does not open as a sealed
    // session, nor does a sealed cookie pass as a signed ID: the purposes have their own keys.
    let stored = app_with_store(key.clone());
    let mut store_browser = Client::new(stored.clone());
    store_browser.send("POST", "/login/bob").await;
    let signed = store_browser.cookie.clone().expect("cookie");
    let reply = send(&app, "GET", "/user", Some(&cookie_header(&signed))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(&stored, "GET", "/user", Some(&cookie_header(&good))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Two cookies that open to different sessions: neither is trusted.
    let mut second = Client::new(app.clone());
    second.send("POST", "/login/carol").await;
    let carol = second.cookie.clone().expect("cookie");
    let both = format!("__Host-session={good}; __Host-session={carol}");
    let reply = send(&app, "GET", "/user", Some(&both)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // The same one twice, or beside junk: that session.
    let twice = format!("__Host-session=junk; __Host-session={good}; __Host-session={good}");
    assert_eq!(send(&app, "GET", "/user", Some(&twice)).await.body, "alice");
}

fn app_with_store(key: Key) -> Router {
    app().layer(SessionLayer::new(MemoryStore::default(), key))
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_refused_and_nothing_is_sent() {
    let clock = ManualClock::default();
    let app = sealed_app(layer(Key::generate(), &clock));
    let mut browser = Client::new(app.clone());
    browser.send("POST", "/set/theme/dark").await;
    let before = browser.cookie.clone().expect("cookie");

    // Up to the limit, the cookie is sent, and fits in 4096 bytes with its name.
    let mut largest = 0;
    for len in [1000, 2000, 2800] {
        let reply = browser.send("POST", &format!("/big/{len}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{len} bytes");
        let cookie = reply.session_cookie().expect("sent");
        largest = cookie.name.len() + 1 + cookie.value.len();
    }
    assert!(largest <= 4096, "{largest}");

    // Past it: a pending insert fails the response, with no cookie.
    let at_limit = browser.cookie.clone().expect("cookie");
    let reply = browser.send("POST", "/big/3100").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    // `update` returns the typed error to the handler, and its response sends nothing.
    let reply = browser.send("POST", "/big-update/3100").await;
    assert!(reply.body.starts_with("too large: "), "{}", reply.body);
    assert!(reply.body.contains("4096"), "{}", reply.body);
    assert!(reply.set_cookies().is_empty());
    // The session the browser holds is the last one that fit.
    assert_eq!(browser.cookie.as_deref(), Some(at_limit.as_str()));
    assert_ne!(at_limit, before);
    assert_eq!(browser.send("GET", "/get/theme").await.body, "dark");
}

#[tokio::test]
async fn a_server_error_sends_no_cookie_and_leaves_the_old_one_working() {
    let clock = ManualClock::default();
    let app = sealed_app(layer(Key::generate(), &clock));
    let mut browser = Client::new(app.clone());
    browser.send("POST", "/set/theme/dark").await;
    // `/fail` writes a value and logs in, then answers 500.
    let reply = browser.send("POST", "/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(browser.send("GET", "/get/doomed").await.body, "none");
    assert_eq!(browser.send("GET", "/get/theme").await.body, "dark");
    assert_eq!(
        browser.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cookies_sealed_by_a_previous_key_open_and_are_resealed_under_the_current_one() {
    let clock = ManualClock::default();
    let old = Key::generate();
    let new = Key::generate();
    let before = sealed_app(layer(old.clone(), &clock));
    let mut browser = Client::new(before);
    browser.send("POST", "/login/alice").await;
    let sealed_by_old = browser.cookie.clone().expect("cookie");

    let after = sealed_app(layer(new.clone(), &clock).previous_keys([old]));
    browser.service = after;
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.body, "alice");
    let resealed = reply
        .session_cookie()
        .expect("re-sealed under the current key");
    assert_ne!(resealed.value, sealed_by_old);
    // Once resealed, it no longer needs the old key.
    let only_new = sealed_app(layer(new, &clock));
    let reply = send(
        &only_new,
        "GET",
        "/user",
        Some(&cookie_header(&resealed.value)),
    )
    .await;
    assert_eq!(reply.body, "alice");
    let reply = send(
        &only_new,
        "GET",
        "/user",
        Some(&cookie_header(&sealed_by_old)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn listing_and_revoking_sessions_fail_with_a_clear_error() {
    let clock = ManualClock::default();
    let app = sealed_app(layer(Key::generate(), &clock));
    let mut browser = Client::new(app);
    browser.send("POST", "/login/alice").await;
    // The test app answers 501 with the operation's name for `StoreError::Unsupported`.
    let listing = browser.send("GET", "/sessions").await;
    assert_eq!(listing.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(listing.body, "sessions_of");
    let revoking = browser.send("POST", "/revoke-others").await;
    assert_eq!(revoking.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(revoking.body, "revoke_user");
}

#[test]
fn a_sealed_layer_checks_its_configuration_like_any_other() {
    let layer = SessionLayer::sealed_cookies(Key::generate()).idle_timeout(Duration::ZERO);
    assert!(layer.validate().is_err());
    let layer = SessionLayer::sealed_cookies(Key::generate())
        .cookie_name("__Host-cart")
        .cookie_domain("example.com");
    assert!(layer.validate().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any cookie value at all is an anonymous session, never an error or a panic.
    #[test]
    fn any_cookie_value_is_an_anonymous_session(value in "[ -~]{0,300}") {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let app = sealed_app(SessionLayer::sealed_cookies(Key::generate()));
            let value = value.replace(';', "");
            let reply = send(&app, "GET", "/user", Some(&cookie_header(&value))).await;
            prop_assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            let reply = send(&app, "POST", "/incr/n", Some(&cookie_header(&value))).await;
            prop_assert_eq!(reply.status, StatusCode::OK);
            prop_assert_eq!(reply.body, "1");
            Ok(())
        })?;
    }
}
