//! S34's reporting under a flood: every rejected cookie is counted, few are logged at `info`.
//!
//! A test binary of its own, so that the global subscriber it installs sees only this
//! test's layer.

#[path = "suite/common/mod.rs"]
mod common;

use common::{Client, app, capture_tracing, send, tamper};
use sessionware::{Key, MemoryStore, SessionLayer};

#[tokio::test]
async fn s34_a_flood_of_forged_cookies_is_counted_in_full_and_logged_sparsely() {
    let (captured, _guard) = capture_tracing();

    let layer = SessionLayer::new(MemoryStore::default(), Key::generate());
    let app = app().layer(layer.clone());
    let mut client = Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    let value = client.cookie.clone().unwrap();
    for n in 0..100 {
        let forged = tamper(&value, 44 + n % 40);
        let reply = send(
            &app,
            "GET",
            "/user",
            Some(&format!("__Host-session={forged}")),
        )
        .await;
        assert_eq!(reply.status, axum::http::StatusCode::UNAUTHORIZED);
    }
    assert_eq!(layer.security_events().forged, 100);

    let logs = captured.text();
    let forged: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("sessionware::security") && line.contains("forged"))
        .collect();
    let totals_at = |level: &str| -> Vec<u64> {
        forged
            .iter()
            .filter(|line| line.contains(level))
            .map(|line| {
                let total = line.split("total=").nth(1).expect("a total field");
                total
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(totals_at(" INFO "), vec![1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(totals_at("DEBUG ").len(), 93);
    assert!(!logs.contains(value.split('.').next().unwrap()));
}
