//! The session lifecycle as a user lives it, and the layer's other observable behaviour.

use std::time::Duration;
use std::time::SystemTime;

use crate::common::erased;
use crate::common::{Client, Instrumented, app, send, store_key_of};
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use sessionware::{
    Key, LoadOutcome, ManualClock, MemoryStore, SaveOutcome, Session, SessionLayer, SessionStore,
};
use tower::{ServiceBuilder, ServiceExt as _};

#[tokio::test]
async fn a_user_logs_in_is_served_times_out_after_five_idle_minutes_and_logs_out() {
    let clock = ManualClock::default();
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate())
        .idle_timeout(Duration::from_secs(5 * 60))
        .clock(clock.clone());
    let app = app().layer(layer);
    let mut browser = Client::new(app.clone());

    // Anonymous: no access, and no cookie is handed out for nothing.
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.set_cookies().is_empty());

    // Log in: the session cookie is set.
    let reply = browser.send("POST", "/login/alice").await;
    let cookie = reply
        .session_cookie()
        .expect("login sets the session cookie");
    assert_eq!(cookie.max_age(), Some(300));

    // Requests with it are granted, for as long as they keep coming.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(4 * 60));
        assert_eq!(browser.send("GET", "/user").await.body, "alice");
    }

    // Five minutes of inactivity: denied, and the stale cookie is removed.
    let kept = browser.cookie.clone();
    clock.advance(Duration::from_secs(5 * 60));
    let reply = browser.send("GET", "/user").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.session_cookie().unwrap().is_removal());

    // Log in again and log out: the session is cleared and the old cookie no longer works.
    browser.send("POST", "/login/alice").await;
    let before_logout = browser.cookie.clone().unwrap();
    browser.send("POST", "/set/theme/dark").await;
    let reply = browser.send("POST", "/logout").await;
    assert!(reply.session_cookie().unwrap().is_removal());
    assert!(browser.cookie.is_none());
    assert_eq!(
        browser.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    let header = format!("__Host-session={before_logout}");
    let replay = send(&app, "GET", "/user", Some(&header)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&app, "GET", "/get/theme", Some(&header)).await.body,
        "none"
    );
    // The cookie from before the timeout stays dead too.
    let header = format!("__Host-session={}", kept.unwrap());
    assert_eq!(
        send(&app, "GET", "/user", Some(&header)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn untouched_sessions_cost_no_store_io_and_reads_touch_only_when_due() {
    let store = Instrumented::new(MemoryStore::default());
    let clock = ManualClock::default();
    let layer = SessionLayer::new(store.clone(), Key::generate())
        .idle_timeout(Duration::from_secs(600))
        .touch_after(Duration::from_secs(120))
        .clock(clock.clone());
    let app = app().layer(layer);
    let mut client = Client::new(app);
    client.send("POST", "/set/k/v").await;
    let total = store.calls.total();

    // A route that never touches the session: no store call, no header.
    let reply = client.send("GET", "/plain").await;
    assert_eq!(store.calls.total(), total);
    assert!(reply.set_cookies().is_empty());
    assert!(reply.header(header::VARY).is_none());

    // A read inside the touch interval: one load, no write, no new cookie.
    clock.advance(Duration::from_secs(60));
    let reply = client.send("GET", "/get/k").await;
    assert_eq!(reply.body, "v");
    assert_eq!(store.calls.get(&store.calls.load), 1);
    assert_eq!(store.calls.get(&store.calls.touch), 0);
    assert!(reply.set_cookies().is_empty());

    // Past the touch interval: one touch (no save) and a refreshed Max-Age.
    clock.advance(Duration::from_secs(61));
    let reply = client.send("GET", "/get/k").await;
    assert_eq!(store.calls.get(&store.calls.touch), 1);
    assert_eq!(store.calls.get(&store.calls.save), 0);
    assert_eq!(reply.session_cookie().unwrap().max_age(), Some(600));

    // An unchanged write (same value) still saves, since the handler asked for it.
    let saves = store.calls.get(&store.calls.save);
    client.send("POST", "/set/k/v2").await;
    assert_eq!(store.calls.get(&store.calls.save), saves + 1);
}

#[tokio::test]
async fn writes_that_leave_an_anonymous_session_empty_store_nothing() {
    let store = MemoryStore::default();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let reply = send(&app, "POST", "/remove/k", None).await;
    assert!(reply.set_cookies().is_empty());
    let reply = send(&app, "POST", "/clear", None).await;
    assert!(reply.set_cookies().is_empty());
    let reply = send(&app, "POST", "/cycle", None).await;
    assert!(reply.set_cookies().is_empty());
    assert!(store.is_empty());
}

#[tokio::test]
async fn clear_and_remove_persist() {
    let app = app().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app);
    client.send("POST", "/login/alice").await;
    client.send("POST", "/set/a/1").await;
    client.send("POST", "/set/b/2").await;
    client.send("POST", "/remove/a").await;
    assert_eq!(client.send("GET", "/get/a").await.body, "none");
    assert_eq!(client.send("GET", "/get/b").await.body, "2");
    client.send("POST", "/clear").await;
    assert_eq!(client.send("GET", "/get/b").await.body, "none");
    assert_eq!(
        client.send("GET", "/user").await.body,
        "alice",
        "clear keeps the login"
    );
}

#[tokio::test]
async fn a_custom_error_response_replaces_the_handlers_on_store_failure() {
    let store = Instrumented::new(MemoryStore::default());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let layer = SessionLayer::new(store.clone(), Key::generate())
        .error_response(|_| {
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header("retry-after", "5")
                .body(())
                .unwrap()
        })
        .on_error(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    let app = app().layer(layer);
    store.set_failing(true);
    // The handler itself does not fail (insert needs no I/O on a new session), the commit does.
    let reply = send(&app, "POST", "/set/k/v", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header(header::RETRY_AFTER).as_deref(), Some("5"));
    assert!(reply.set_cookies().is_empty());
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn works_without_axum_through_request_extensions_and_a_dyn_store() {
    let layer = SessionLayer::new(erased(MemoryStore::default()), Key::generate());
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: Request<Body>| async move {
                let session = request
                    .extensions()
                    .get::<Session>()
                    .expect("layer installed")
                    .clone();
                let n = session
                    .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                    .await?;
                Ok::<_, sessionware::SessionError>(Response::new(Body::from(n.to_string())))
            });
    let first = service
        .clone()
        .oneshot(Request::new(Body::empty()))
        .await
        .unwrap();
    let cookie = first
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let second = service
        .clone()
        .oneshot(
            Request::builder()
                .header(header::COOKIE, pair)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(second.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"2");
}

#[tokio::test]
async fn the_axum_extractor_names_the_missing_layer_and_option_session_is_none() {
    let app = axum::Router::new()
        .route(
            "/needs",
            axum::routing::get(|_: Session| async { "unreachable" }),
        )
        .route(
            "/optional",
            axum::routing::get(|session: Option<Session>| async move {
                if session.is_some() { "some" } else { "none" }
            }),
        );
    let reply = send(&app, "GET", "/needs", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply.body.contains("is the SessionLayer installed?"),
        "{}",
        reply.body
    );
    assert_eq!(send(&app, "GET", "/optional", None).await.body, "none");
    let with_layer = app.layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    assert_eq!(
        send(&with_layer, "GET", "/optional", None).await.body,
        "some"
    );
}

#[tokio::test]
async fn the_vary_header_is_merged_with_the_handlers() {
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|session: Session| async move {
                session.get::<String>("k").await.unwrap();
                ([(header::VARY, "accept-encoding")], "ok")
            }),
        )
        .layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let reply = send(&app, "GET", "/", None).await;
    let vary: Vec<_> = reply
        .headers
        .get_all(header::VARY)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(vary, vec!["accept-encoding", "cookie"]);
}

#[tokio::test]
async fn values_are_read_from_the_stored_record_and_a_corrupt_one_fails_only_value_reads() {
    let store = MemoryStore::default();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut browser = Client::new(app.clone());
    browser.send("POST", "/login/alice").await;
    browser.send("POST", "/set/theme/dark").await;
    browser.send("POST", "/set/lang/en").await;

    // Reads see every stored value; a write to one key keeps the others.
    assert_eq!(browser.send("GET", "/get/theme").await.body, "dark");
    browser.send("POST", "/set/theme/light").await;
    assert_eq!(browser.send("GET", "/get/theme").await.body, "light");
    assert_eq!(browser.send("GET", "/get/lang").await.body, "en");
    assert_eq!(browser.send("GET", "/get/missing").await.body, "none");
    browser.send("POST", "/remove/lang").await;
    assert_eq!(browser.send("GET", "/get/lang").await.body, "none");
    assert_eq!(browser.send("GET", "/get/theme").await.body, "light");

    // Damage the stored values behind the layer's back.
    let key = store_key_of(browser.cookie.as_deref().unwrap());
    let now = std::time::SystemTime::now();
    let LoadOutcome::Found(mut record) = store.load(&key, now).await.unwrap() else {
        panic!("the session is stored");
    };
    let version = record.version;
    record.version += 1;
    record.data = b"{\"theme\": not json".to_vec();
    assert_eq!(
        store.save(&key, &record, version, now).await.unwrap(),
        SaveOutcome::Saved
    );

    // Reading a value fails with a server error and sets no cookie; what does not need the
    // values (the logged-in user) still works, and nothing was written over the record.
    let reply = browser.send("GET", "/get/theme").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(browser.send("GET", "/user").await.body, "alice");
    let LoadOutcome::Found(after) = store.load(&key, now).await.unwrap() else {
        panic!("the session is still stored");
    };
    assert_eq!(after.data, record.data);
}

#[tokio::test]
async fn a_session_lists_and_revokes_its_users_other_sessions_with_the_layers_clock() {
    // Years in the past: by the system clock these sessions expired long ago, so a listing
    // or a revocation that read it instead of the layer's clock would see none of them.
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate()).clock(clock);
    let app = app().layer(layer);
    let mut phone = Client::new(app.clone());
    let mut laptop = Client::new(app.clone());
    let mut stranger = Client::new(app);
    phone.send("POST", "/login/alice").await;
    laptop.send("POST", "/login/alice").await;
    stranger.send("POST", "/login/bob").await;
    assert_eq!(stranger.send("GET", "/sessions").await.body, "1");
    assert_eq!(phone.send("GET", "/sessions").await.body, "2");

    let revoked = phone.send("POST", "/revoke-others").await;
    assert_eq!(
        (revoked.status, revoked.body.as_str()),
        (StatusCode::OK, "1")
    );
    assert_eq!(phone.send("GET", "/sessions").await.body, "1");
    assert_eq!(phone.send("GET", "/user").await.body, "alice");
    assert_eq!(
        laptop.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stranger.send("GET", "/user").await.body, "bob");
}
