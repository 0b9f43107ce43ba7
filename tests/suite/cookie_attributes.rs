//! Optional cookie attributes, as a browser sees them in `Set-Cookie`.

use axum::http::StatusCode;
use sessionware::{ConfigError, Key, MemoryStore, SameSite, SessionLayer};

use crate::common::{Client, app};

#[tokio::test]
async fn partitioned_cookies_carry_the_attribute_when_set_and_when_removed() {
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate())
        .same_site(SameSite::None)
        .partitioned(true);
    let mut client = Client::new(app().layer(layer));
    let reply = client.send("POST", "/login/alice").await;
    assert_eq!(reply.status, StatusCode::OK);
    let set = reply.session_cookie().expect("login sets the cookie");
    for attribute in ["Partitioned", "Secure", "SameSite=None", "HttpOnly"] {
        assert!(set.has(attribute), "{attribute} missing: {}", set.raw);
    }
    // A browser deletes a partitioned cookie only with the same attribute.
    let reply = client.send("POST", "/logout").await;
    let removal = reply.session_cookie().expect("logout removes the cookie");
    assert!(removal.value.is_empty(), "{}", removal.raw);
    assert!(removal.has("Partitioned"), "{}", removal.raw);
}

#[tokio::test]
async fn cookies_are_not_partitioned_by_default() {
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate());
    let mut client = Client::new(app().layer(layer));
    let set = client
        .send("POST", "/set/k/v")
        .await
        .session_cookie()
        .expect("a cookie");
    assert!(!set.has("Partitioned"), "{}", set.raw);
}

#[test]
fn partitioned_without_secure_is_refused_when_the_layer_is_built() {
    let layer = SessionLayer::new(MemoryStore::default(), Key::generate())
        .dangerous_insecure_cookie_for_development()
        .partitioned(true);
    let error = layer.validate().expect_err("browsers drop such a cookie");
    assert_eq!(error, ConfigError::PartitionedWithoutSecure);
    assert!(error.to_string().contains("requires Secure"), "{error}");
}
