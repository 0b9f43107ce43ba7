//! `SessionLayer::test_session`: an application's tests get a logged-in session without an
//! HTTP login, on every kind of layer.
#![cfg(all(feature = "cookie-store", feature = "encryption"))]

use std::time::Duration;

use axum::http::StatusCode;
use sessionware::{Key, ManualClock, MemoryStore, SessionError, SessionLayer};

use crate::common::{app, send};

#[tokio::test]
async fn a_test_session_is_a_logged_in_session_with_its_values_on_every_kind_of_layer() {
    let clock = ManualClock::default();
    let idle = Duration::from_secs(300);
    let store_layer = SessionLayer::new(MemoryStore::default(), Key::generate())
        .idle_timeout(idle)
        .clock(clock.clone());
    let encrypted = SessionLayer::new(MemoryStore::default(), Key::generate())
        .idle_timeout(idle)
        .clock(clock.clone())
        .encrypt_data_at_rest();
    let sealed = SessionLayer::sealed_cookies(Key::generate())
        .idle_timeout(idle)
        .clock(clock.clone());
    let cookies = [
        (
            app().layer(store_layer.clone()),
            store_layer
                .test_session(Some("alice"), serde_json::json!({ "theme": "dark" }))
                .await
                .expect("created"),
        ),
        (
            app().layer(encrypted.clone()),
            encrypted
                .test_session(Some("alice"), serde_json::json!({ "theme": "dark" }))
                .await
                .expect("created"),
        ),
        (
            app().layer(sealed.clone()),
            sealed
                .test_session(Some("alice"), serde_json::json!({ "theme": "dark" }))
                .await
                .expect("created"),
        ),
    ];
    for (app, cookie) in &cookies {
        assert!(cookie.starts_with("__Host-session="), "{cookie}");
        assert_eq!(send(app, "GET", "/user", Some(cookie)).await.body, "alice");
        assert_eq!(
            send(app, "GET", "/get/theme", Some(cookie)).await.body,
            "dark"
        );
        // An ordinary session: it counts, and it ends with the layer's idle timeout.
        assert_eq!(send(app, "POST", "/incr/n", Some(cookie)).await.body, "1");
    }
    clock.advance(idle + Duration::from_secs(1));
    for (app, cookie) in &cookies {
        let reply = send(app, "GET", "/user", Some(cookie)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // A cookie for one layer is no session on another.
    let (other_app, _) = &cookies[1];
    let (_, first_cookie) = &cookies[0];
    let reply = send(other_app, "GET", "/user", Some(first_cookie)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_anonymous_test_session_and_values_that_are_not_an_object() {
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate());
    let app = app().layer(layer.clone());
    #[derive(serde::Serialize)]
    struct Cart {
        theme: &'static str,
    }
    let cookie = layer
        .test_session(None, Cart { theme: "light" })
        .await
        .expect("created");
    assert_eq!(
        send(&app, "GET", "/get/theme", Some(&cookie)).await.body,
        "light"
    );
    let reply = send(&app, "GET", "/user", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let error = layer.test_session(Some("alice"), [1, 2, 3]).await;
    assert!(
        matches!(error, Err(SessionError::Serialization(_))),
        "{error:?}"
    );
    let small = layer.max_data_len(8);
    let error = small
        .test_session(Some("alice"), serde_json::json!({ "theme": "dark" }))
        .await;
    assert!(
        matches!(error, Err(SessionError::DataTooLarge { .. })),
        "{error:?}"
    );
}
