//! One test per security requirement (S01..S34) that the layer and the memory store cover.
//! S01, S02, S07, S09 and S25's unit part live beside the code (src/id.rs, src/key.rs,
//! src/cookie.rs); the store-level parts of S10 and S24 are in each store's tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::common::{
    Client, Instrumented, Reply, app, capture_tracing, send, store_key_of, tamper,
};
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use sessionware::{
    ConfigError, CreateOutcome, Key, LoadOutcome, ManualClock, MemoryStore, Record, SameSite,
    SessionLayer, SessionStore, StoreError, StoreFuture, StoreKey,
};
use tower::ServiceExt as _;

type Store = Instrumented<MemoryStore>;

struct Setup {
    store: Store,
    clock: ManualClock,
    layer: SessionLayer<Store>,
    app: axum::Router,
}

fn setup_with(key: Key) -> Setup {
    let store = Instrumented::new(MemoryStore::default());
    let clock = ManualClock::default();
    let layer = SessionLayer::new(store.clone(), key)
        .idle_timeout(Duration::from_secs(300))
        .absolute_timeout(Duration::from_secs(3600))
        .clock(clock.clone());
    let app = app().layer(layer.clone());
    Setup {
        store,
        clock,
        layer,
        app,
    }
}

fn setup() -> Setup {
    setup_with(Key::generate())
}

/// Logs a client in and returns it holding the session cookie.
async fn logged_in(app: &axum::Router, user: &str) -> Client<axum::Router> {
    let mut client = Client::new(app.clone());
    let reply = client.send("POST", &format!("/login/{user}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.cookie.is_some(), "login sets a cookie");
    client
}

fn cookie(value: &str) -> String {
    format!("__Host-session={value}")
}

async fn record_of(store: &Store, cookie_value: &str) -> Option<Record> {
    match store
        .inner
        .load(&store_key_of(cookie_value), std::time::SystemTime::now())
        .await
        .expect("load")
    {
        LoadOutcome::Found(record) => Some(record),
        _ => None,
    }
}

#[tokio::test]
async fn s03_unknown_id_gets_a_fresh_id_never_the_clients() {
    let s = setup();
    let client = logged_in(&s.app, "alice").await;
    let planted = client.cookie.clone().unwrap();
    // The ID is well formed and validly signed, but its record is gone: an attacker's
    // planted ID, or a server-side deletion.
    assert!(
        s.store
            .inner
            .delete(&store_key_of(&planted), SystemTime::now())
            .await
            .unwrap()
    );

    let reply = send(&s.app, "POST", "/set/k/v", Some(&cookie(&planted))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let issued = reply.session_cookie().expect("a new session cookie");
    assert_ne!(issued.value, planted);
    assert_ne!(store_key_of(&issued.value), store_key_of(&planted));
    assert!(
        record_of(&s.store, &planted).await.is_none(),
        "a record was created under the client's ID"
    );
    assert!(record_of(&s.store, &issued.value).await.is_some());
}

/// A store that, on the first `create`, plants a victim record under the key the layer asked
/// for, so that the layer's create collides with it.
#[derive(Clone)]
struct Colliding {
    inner: MemoryStore,
    victim: Arc<Mutex<Option<StoreKey>>>,
}

// A store of its own on the core trait only: no per-user index.
impl SessionStore for Colliding {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        self.inner.load(key, now)
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            let first = {
                let mut victim = self.victim.lock().unwrap();
                victim.is_none().then(|| *victim.insert(*key))
            };
            if first.is_some() {
                let mut planted = record.clone();
                planted.data = br#"{"owner":"victim"}"#.to_vec();
                assert_eq!(
                    self.inner.create(key, &planted, now).await?,
                    CreateOutcome::Created
                );
            }
            self.inner.create(key, record, now).await
        })
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<sessionware::SaveOutcome, StoreError>> {
        self.inner.save(key, record, expected, now)
    }
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<sessionware::TouchOutcome, StoreError>> {
        self.inner
            .touch(key, expected, last_active, expires_at, now)
    }
    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        self.inner.delete(key, now)
    }
    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<sessionware::RotateOutcome, StoreError>> {
        self.inner.rotate(old, new, record, expected, now)
    }
    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        self.inner.delete_expired(now)
    }
}

#[tokio::test]
async fn s04_id_collision_draws_a_new_id_and_leaves_the_existing_record() {
    let store = Colliding {
        inner: MemoryStore::default(),
        victim: Arc::default(),
    };
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let reply = send(&app, "POST", "/set/k/mine", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let issued = reply.session_cookie().expect("cookie");
    let victim = store.victim.lock().unwrap().expect("a collision happened");
    assert_ne!(
        store_key_of(&issued.value),
        victim,
        "the colliding ID was issued"
    );
    let now = std::time::SystemTime::now();
    match store.inner.load(&victim, now).await.unwrap() {
        LoadOutcome::Found(record) => assert_eq!(record.data, br#"{"owner":"victim"}"#),
        other => panic!("victim record changed: {other:?}"),
    }
    let reply = send(&app, "GET", "/get/k", Some(&cookie(&issued.value))).await;
    assert_eq!(reply.body, "mine");
}

#[tokio::test]
async fn s05_malformed_values_cause_no_store_call_and_no_panic() {
    let s = setup();
    let valid = logged_in(&s.app, "alice").await.cookie.unwrap();
    let calls_before = s.store.calls.total();
    let (id_part, tag_part) = valid.split_once('.').unwrap();
    let malformed: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"short".to_vec(),
        format!("{valid}A").into_bytes(),             // wrong length
        valid.as_bytes()[..valid.len() - 1].to_vec(), // wrong length
        format!("{id_part}{tag_part}A").into_bytes(), // no separator, right length
        format!("{}.{tag_part}", "!".repeat(43)).into_bytes(), // bad base64
        format!("{id_part}.{}", "*".repeat(43)).into_bytes(),
        format!("{id_part}.{tag_part}")
            .replace('.', "+")
            .into_bytes(),
        {
            let mut bytes = valid.clone().into_bytes();
            bytes[3] = 0xff; // non-UTF-8
            bytes
        },
        "A".repeat(5000).into_bytes(), // over 4096 bytes
        format!("\"{valid}\"").into_bytes(),
    ];
    for value in malformed {
        let mut header = b"__Host-session=".to_vec();
        header.extend_from_slice(&value);
        let request = Request::builder()
            .uri("/get/k")
            .header(header::COOKIE, HeaderValue::from_bytes(&header).unwrap())
            .body(Body::empty())
            .unwrap();
        let response = s.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }
    assert_eq!(
        s.store.calls.total(),
        calls_before,
        "a malformed value reached the store"
    );
}

#[tokio::test]
async fn s06_forged_or_tampered_tags_never_reach_the_store() {
    let s = setup();
    let valid = logged_in(&s.app, "alice").await.cookie.unwrap();
    let calls_before = s.store.calls.total();
    let tampered_id = tamper(&valid, 5);
    let tampered_tag = tamper(&valid, 60);
    for forged in [&tampered_id, &tampered_tag] {
        let reply = send(&s.app, "GET", "/user", Some(&cookie(forged))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.set_cookies().is_empty());
        let reply = send(&s.app, "POST", "/set/k/v", Some(&cookie(forged))).await;
        let issued = reply.session_cookie().expect("fresh session");
        assert_ne!(store_key_of(&issued.value), store_key_of(forged));
    }
    assert_eq!(s.store.calls.get(&s.store.calls.load), 0);
    let seen = s.store.keys_seen.lock().unwrap().clone();
    assert!(!seen.contains(&store_key_of(&tampered_id)));
    assert!(
        s.store.calls.total() > calls_before,
        "the fresh sessions were created"
    );
}

#[tokio::test]
async fn s08_key_rotation_accepts_previous_keys_and_reissues_under_the_current() {
    let (old, new) = (Key::generate(), Key::generate());
    let store = MemoryStore::default();
    let before = app().layer(SessionLayer::new(store.clone(), old.clone()));
    let during =
        app().layer(SessionLayer::new(store.clone(), new.clone()).previous_keys([old.clone()]));
    let after = app().layer(SessionLayer::new(store.clone(), new.clone()));
    let only_old = app().layer(SessionLayer::new(store.clone(), old));

    let mut client = Client::new(before);
    client.send("POST", "/set/k/kept").await;
    let old_cookie = client.cookie.clone().unwrap();

    // During the rotation the old cookie works and is re-issued, with the same ID, under the
    // new key.
    let reply = send(&during, "GET", "/get/k", Some(&cookie(&old_cookie))).await;
    assert_eq!(reply.body, "kept");
    let reissued = reply.session_cookie().expect("re-issued cookie");
    assert_ne!(reissued.value, old_cookie);
    assert_eq!(store_key_of(&reissued.value), store_key_of(&old_cookie));
    assert!(reissued.max_age().unwrap() <= 30 * 60);
    // Even a request that never touches the session gets the re-issued cookie.
    let reply = send(&during, "GET", "/plain", Some(&cookie(&old_cookie))).await;
    assert!(reply.session_cookie().is_some());

    // The re-issued cookie is signed with the new key only.
    assert_eq!(
        send(&after, "GET", "/get/k", Some(&cookie(&reissued.value)))
            .await
            .body,
        "kept"
    );
    assert_eq!(
        send(&only_old, "GET", "/get/k", Some(&cookie(&reissued.value)))
            .await
            .body,
        "none"
    );
    // Once the old key is removed, cookies it signed are rejected.
    let reply = send(&after, "GET", "/get/k", Some(&cookie(&old_cookie))).await;
    assert_eq!(reply.body, "none");
    assert!(reply.set_cookies().is_empty());
    // New sessions during the rotation are signed with the new key.
    let fresh = send(&during, "POST", "/set/k/new", None)
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(
        send(&after, "GET", "/get/k", Some(&cookie(&fresh.value)))
            .await
            .body,
        "new"
    );
    assert_eq!(
        send(&only_old, "GET", "/get/k", Some(&cookie(&fresh.value)))
            .await
            .body,
        "none"
    );
}

#[tokio::test]
async fn s10_stores_are_keyed_by_sha256_and_a_store_key_is_no_cookie() {
    let s = setup();
    let client = logged_in(&s.app, "alice").await;
    let value = client.cookie.clone().unwrap();
    let key = store_key_of(&value);
    let seen = s.store.keys_seen.lock().unwrap().clone();
    assert!(seen.contains(&key), "the store was given SHA-256 of the ID");
    let (id_part, tag_part) = value.split_once('.').unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let id = b64.decode(id_part).unwrap();
    assert!(
        seen.iter()
            .all(|k| k.as_bytes().as_slice() != id.as_slice()),
        "a raw ID reached the store"
    );
    let record = record_of(&s.store, &value).await.unwrap();
    let stored = String::from_utf8_lossy(&record.data).into_owned();
    assert!(!stored.contains(id_part) && !stored.contains(&value));

    // The store key presented as a cookie (with the real tag, or as the whole value) fails.
    for forged in [
        format!("{}.{tag_part}", b64.encode(key.as_bytes())),
        key.to_hex(),
    ] {
        let reply = send(&s.app, "GET", "/user", Some(&cookie(&forged))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
}

/// Collects everything `tracing` emits while it is the default subscriber.
#[tokio::test]
async fn s11_the_raw_id_never_appears_in_logs_or_debug_output() {
    let (captured, _guard) = capture_tracing();
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    let value = client.cookie.clone().unwrap();
    client.send("POST", "/set/k/v").await;
    client.send("POST", "/cycle").await;
    let rotated = client.cookie.clone().unwrap();
    // Rejections and failures are logged: an unknown cookie, a forged one, a store error.
    send(&s.app, "GET", "/get/k", Some(&cookie(&value))).await;
    send(&s.app, "GET", "/get/k", Some(&cookie(&tamper(&value, 50)))).await;
    s.store.set_failing(true);
    let reply = client.send("POST", "/set/k/v2").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    s.store.set_failing(false);

    let logs = captured.text();
    assert!(
        logs.contains("sessionware::security"),
        "security events are logged: {logs}"
    );
    let request = Request::builder()
        .header(header::COOKIE, cookie(&rotated))
        .body(Body::empty())
        .unwrap();
    let debug_outputs = [
        format!("{:?}", s.layer),
        format!("{:?}", request),
        format!("{:?}", Key::generate()),
    ];
    for secret in [&value, &rotated] {
        let id_part = secret.split('.').next().unwrap();
        assert!(!logs.contains(id_part), "an ID leaked into the logs");
        for debug in &debug_outputs[..1] {
            assert!(!debug.contains(id_part), "an ID leaked into Debug output");
        }
    }
    // A Session's Debug output never shows the ID either.
    let shown = Arc::new(Mutex::new(String::new()));
    let seen = shown.clone();
    let probe = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move |session: sessionware::Session| {
                let seen = seen.clone();
                async move {
                    session.get::<String>("k").await.unwrap();
                    *seen.lock().unwrap() = format!("{session:?}");
                }
            }),
        )
        .layer(s.layer.clone());
    send(&probe, "GET", "/", Some(&cookie(&rotated))).await;
    let shown = shown.lock().unwrap().clone();
    assert!(shown.starts_with("Session"), "{shown}");
    assert!(
        !shown.contains(rotated.split('.').next().unwrap()),
        "{shown}"
    );
}

#[tokio::test]
async fn s12_cycle_id_keeps_data_and_the_old_cookie_becomes_anonymous() {
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    client.send("POST", "/set/cart/3-items").await;
    let before = client.cookie.clone().unwrap();
    let reply = client.send("POST", "/cycle").await;
    let after = reply.session_cookie().expect("new cookie").value;
    assert_ne!(store_key_of(&before), store_key_of(&after));
    assert_eq!(client.send("GET", "/get/cart").await.body, "3-items");
    assert_eq!(client.send("GET", "/user").await.body, "alice");
    let old = send(&s.app, "GET", "/get/cart", Some(&cookie(&before))).await;
    assert_eq!(old.body, "none");
    assert_eq!(
        send(&s.app, "GET", "/user", Some(&cookie(&before)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert!(record_of(&s.store, &before).await.is_none());
}

#[tokio::test]
async fn s13_login_rotates_the_id_every_time_even_for_the_same_user() {
    let s = setup();
    let mut client = Client::new(s.app.clone());
    client.send("POST", "/set/pre/login").await;
    let anonymous = client.cookie.clone().unwrap();
    client.send("POST", "/login/alice").await;
    let first = client.cookie.clone().unwrap();
    assert_ne!(store_key_of(&anonymous), store_key_of(&first));
    client.send("POST", "/login/alice").await;
    let second = client.cookie.clone().unwrap();
    assert_ne!(store_key_of(&first), store_key_of(&second));
    for old in [&anonymous, &first] {
        let reply = send(&s.app, "GET", "/user", Some(&cookie(old))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(client.send("GET", "/user").await.body, "alice");
    // The same user logging in again keeps the data.
    assert_eq!(client.send("GET", "/get/pre").await.body, "login");
}

#[tokio::test]
async fn s14_login_as_a_different_user_flushes_the_old_data() {
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    client.send("POST", "/set/secret/alices").await;
    client.send("POST", "/login/bob").await;
    assert_eq!(client.send("GET", "/user").await.body, "bob");
    assert_eq!(client.send("GET", "/get/secret").await.body, "none");
    let handles: Vec<_> = s
        .layer
        .store()
        .user_index()
        .expect("a per-user index")
        .sessions_of("alice", std::time::SystemTime::now())
        .await
        .unwrap();
    assert!(handles.is_empty(), "the session left alice's index");
}

#[tokio::test]
async fn s15_destroy_deletes_the_record_and_removes_the_cookie_with_the_same_attributes() {
    let store = MemoryStore::default();
    let layer = SessionLayer::new(store.clone(), Key::generate())
        .cookie_name("sid")
        .cookie_path("/")
        .cookie_domain("example.com");
    let app = app().layer(layer);
    let mut client = Client::new(app.clone());
    client.cookie_name = "sid".into();
    let login = client
        .send("POST", "/login/alice")
        .await
        .session_cookie()
        .unwrap();
    let value = client.cookie.clone().unwrap();
    let reply = client.send("POST", "/logout").await;
    let removal = reply.session_cookie().expect("removal cookie");
    assert!(removal.is_removal(), "{removal:?}");
    assert_eq!(removal.name, login.name);
    for attribute in ["Path", "Domain"] {
        assert_eq!(
            removal.attribute(attribute),
            login.attribute(attribute),
            "{attribute}"
        );
    }
    assert_eq!(removal.has("Secure"), login.has("Secure"));
    assert!(removal.has("Secure"));
    assert!(store.is_empty(), "the record is deleted");
    let replay = send(&app, "GET", "/user", Some(&format!("sid={value}"))).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn s18_revoking_a_users_sessions_takes_effect_on_the_next_request() {
    let s = setup();
    let mut laptop = logged_in(&s.app, "alice").await;
    let mut phone = logged_in(&s.app, "alice").await;
    let mut tablet = logged_in(&s.app, "alice").await;
    let mut bob = logged_in(&s.app, "bob").await;
    let keep: sessionware::SessionHandle =
        laptop.send("GET", "/handle").await.body.parse().unwrap();
    let revoked = s
        .layer
        .store()
        .user_index()
        .expect("a per-user index")
        .revoke_user("alice", Some(&keep), SystemTime::now())
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert_eq!(laptop.send("GET", "/user").await.body, "alice");
    assert_eq!(
        phone.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        tablet.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bob.send("GET", "/user").await.body, "bob");
    // "Log out everywhere" includes the current device.
    s.layer
        .store()
        .user_index()
        .expect("a per-user index")
        .revoke_user("alice", None, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(
        laptop.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn s19_idle_timeout_is_enforced_server_side() {
    let s = setup();
    let client = logged_in(&s.app, "alice").await;
    let value = client.cookie.clone().unwrap();
    s.clock.advance(Duration::from_secs(299));
    assert_eq!(
        send(&s.app, "GET", "/user", Some(&cookie(&value)))
            .await
            .body,
        "alice"
    );
    // That read extended the idle deadline (touch), so the window restarts from here.
    s.clock.advance(Duration::from_secs(299));
    assert_eq!(
        send(&s.app, "GET", "/user", Some(&cookie(&value)))
            .await
            .body,
        "alice"
    );
    s.clock.advance(Duration::from_secs(301));
    let reply = send(&s.app, "GET", "/user", Some(&cookie(&value))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.session_cookie().unwrap().is_removal());
    assert_eq!(s.layer.security_events().expired, 1);
}

#[tokio::test]
async fn s20_absolute_timeout_holds_despite_activity_rotation_and_login() {
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    let mut elapsed = 0;
    while elapsed < 3600 - 240 {
        s.clock.advance(Duration::from_secs(240));
        elapsed += 240;
        let reply = client.send("POST", "/set/k/v").await;
        assert_eq!(reply.status, StatusCode::OK);
        if elapsed % 960 == 0 {
            client.send("POST", "/cycle").await;
        }
        if elapsed % 1200 == 0 {
            client.send("POST", "/login/alice").await;
        }
        assert_eq!(
            client.send("GET", "/user").await.body,
            "alice",
            "at {elapsed}s"
        );
    }
    s.clock.advance(Duration::from_secs(3600 - elapsed));
    assert_eq!(
        client.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn s21_expiry_lives_in_the_server_record_not_the_cookie() {
    let s = setup();
    let client = logged_in(&s.app, "alice").await;
    // A client that strips Max-Age/Expires keeps sending the cookie forever.
    let value = client.cookie.clone().unwrap();
    s.clock.advance(Duration::from_secs(301));
    let reply = send(&s.app, "GET", "/user", Some(&cookie(&value))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Nothing in the cookie value carries time: the same value, re-signed or not, cannot
    // extend the session. The record is what decides.
    use sessionware::Clock as _;
    let now = s.clock.now();
    assert!(
        record_of(&s.store, &value)
            .await
            .is_none_or(|record| record.expires_at <= now)
    );
}

#[tokio::test]
async fn s22_max_age_never_exceeds_idle_or_remaining_absolute_lifetime() {
    let store = MemoryStore::default();
    let clock = ManualClock::default();
    let layer = SessionLayer::new(store, Key::generate())
        .idle_timeout(Duration::from_secs(300))
        .absolute_timeout(Duration::from_secs(600))
        .clock(clock.clone());
    let app = app().layer(layer);
    let mut client = Client::new(app);
    let first = client
        .send("POST", "/login/alice")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(first.max_age(), Some(300));
    clock.advance(Duration::from_secs(250));
    let second = client
        .send("POST", "/set/k/v")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(second.max_age(), Some(300));
    clock.advance(Duration::from_secs(250));
    let third = client
        .send("POST", "/set/k/w")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(third.max_age(), Some(100), "remaining absolute lifetime");
    // A long per-session idle timeout is capped too.
    let fourth = client
        .send("POST", "/expiry/idle/86400")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(fourth.max_age(), Some(100));
}

#[tokio::test]
async fn s23_per_session_expiry_behaves_as_documented() {
    // A shorter idle duration.
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    let set = client
        .send("POST", "/expiry/idle/60")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(set.max_age(), Some(60));
    s.clock.advance(Duration::from_secs(61));
    assert_eq!(
        client.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A fixed deadline that activity does not move.
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    let set = client
        .send("POST", "/expiry/at/200")
        .await
        .session_cookie()
        .unwrap();
    assert!(set.max_age().unwrap() <= 200);
    for _ in 0..3 {
        s.clock.advance(Duration::from_secs(60));
        assert_eq!(client.send("POST", "/set/k/v").await.status, StatusCode::OK);
        assert_eq!(client.send("GET", "/user").await.body, "alice");
    }
    s.clock.advance(Duration::from_secs(21));
    assert_eq!(
        client.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A browser session: no Max-Age, but the server still ends it after the idle timeout.
    let s = setup();
    let mut client = logged_in(&s.app, "alice").await;
    let set = client
        .send("POST", "/expiry/browser")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(set.max_age(), None);
    assert!(set.attribute("Expires").is_none());
    s.clock.advance(Duration::from_secs(250));
    assert_eq!(client.send("GET", "/user").await.body, "alice");
    s.clock.advance(Duration::from_secs(301));
    assert_eq!(
        client.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn s24_expired_sessions_are_never_served_before_cleanup() {
    let s = setup();
    let client = logged_in(&s.app, "alice").await;
    let value = client.cookie.clone().unwrap();
    s.clock.advance(Duration::from_secs(301));
    assert_eq!(s.store.inner.len(), 1, "no cleanup has run");
    let reply = send(&s.app, "GET", "/user", Some(&cookie(&value))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    use sessionware::Clock as _;
    let later = s.clock.now() + Duration::from_secs(1);
    s.store.inner.delete_expired(later).await.unwrap();
    assert!(s.store.inner.is_empty());
}

#[tokio::test]
async fn s25_default_cookie_is_host_prefixed_secure_httponly_lax() {
    let s = setup();
    let reply = send(&s.app, "POST", "/set/k/v", None).await;
    let set = reply.session_cookie().unwrap();
    assert_eq!(set.name, "__Host-session");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.has(attribute), "{attribute} missing: {}", set.raw);
    }
    assert!(set.attribute("Domain").is_none(), "{}", set.raw);
}

#[test]
fn s26_inconsistent_configuration_fails_when_the_layer_is_built() {
    let layer = || SessionLayer::new(MemoryStore::default(), Key::generate());
    assert_eq!(
        layer().cookie_domain("example.com").validate(),
        Err(ConfigError::HostPrefixWithDomain)
    );
    assert_eq!(
        layer().cookie_path("/app").validate(),
        Err(ConfigError::HostPrefixWithPath)
    );
    assert_eq!(
        layer()
            .dangerous_insecure_cookie_for_development()
            .cookie_name("__Host-session")
            .validate(),
        Err(ConfigError::PrefixWithoutSecure)
    );
    assert_eq!(
        layer()
            .cookie_name("sid")
            .dangerous_insecure_cookie_for_development()
            .same_site(SameSite::None)
            .validate(),
        Err(ConfigError::SameSiteNoneWithoutSecure)
    );
    assert_eq!(
        Key::from_bytes(&[7; 31]).unwrap_err(),
        ConfigError::KeyTooShort { len: 31 }
    );
    assert!(
        ConfigError::KeyTooShort { len: 31 }
            .to_string()
            .contains("at least 32"),
        "the message names the fix"
    );
    assert!(layer().validate().is_ok());
    assert!(
        layer()
            .dangerous_insecure_cookie_for_development()
            .validate()
            .is_ok()
    );
    let built = std::panic::catch_unwind(|| {
        tower::Layer::layer(
            &layer().cookie_domain("example.com"),
            tower::service_fn(|_: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(axum::http::Response::new(Body::empty()))
            }),
        )
    });
    let message = built
        .err()
        .and_then(|panic| panic.downcast::<String>().ok())
        .expect("layer() panics");
    assert!(message.contains("must not have a Domain"), "{message}");
}

#[tokio::test]
async fn s27_the_id_is_accepted_only_from_the_named_cookie() {
    let s = setup();
    let value = logged_in(&s.app, "alice").await.cookie.unwrap();
    let loads_before = s.store.calls.get(&s.store.calls.load);
    let encoded = value.replace('=', "%3D");
    for uri in [
        format!("/user?session={encoded}"),
        format!("/user?__Host-session={encoded}"),
        format!("/user;jsessionid={encoded}"),
    ] {
        let reply = send(&s.app, "GET", &uri, None).await;
        assert_ne!(reply.status, StatusCode::OK, "{uri}");
        assert_ne!(reply.body, "alice", "{uri}");
    }
    for (name, header_value) in [
        ("authorization", format!("Bearer {value}")),
        ("x-session-id", value.clone()),
        ("cookie", format!("session={value}")),
        ("cookie", format!("__host-session={value}")),
        ("set-cookie", cookie(&value)),
    ] {
        let request = Request::builder()
            .uri("/user")
            .header(name, header_value)
            .body(Body::empty())
            .unwrap();
        let response = s.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    assert_eq!(s.store.calls.get(&s.store.calls.load), loads_before);
}

#[tokio::test]
async fn s28_vary_cookie_when_read_and_no_store_when_a_cookie_is_set() {
    let s = setup();
    let plain = send(&s.app, "GET", "/plain", None).await;
    assert!(plain.header(header::VARY).is_none());
    assert!(plain.header(header::CACHE_CONTROL).is_none());
    let read = send(&s.app, "GET", "/get/k", None).await;
    assert_eq!(read.header(header::VARY).as_deref(), Some("cookie"));
    assert!(read.header(header::CACHE_CONTROL).is_none());
    let mut client = Client::new(s.app.clone());
    let login = client.send("POST", "/login/alice").await;
    assert!(login.session_cookie().is_some());
    assert_eq!(
        login.header(header::CACHE_CONTROL).as_deref(),
        Some("no-store")
    );
    assert_eq!(login.header(header::VARY).as_deref(), Some("cookie"));
    let reread = client.send("GET", "/user").await;
    assert!(reread.session_cookie().is_none());
    assert_eq!(reread.header(header::VARY).as_deref(), Some("cookie"));
    let logout = client.send("POST", "/logout").await;
    assert!(logout.session_cookie().unwrap().is_removal());
    assert_eq!(
        logout.header(header::CACHE_CONTROL).as_deref(),
        Some("no-store")
    );
}

#[tokio::test]
async fn s29_duplicate_cookie_names_do_not_depend_on_order_nor_delete_a_victims_record() {
    let s = setup();
    let victim = logged_in(&s.app, "victim").await.cookie.unwrap();
    let attacker = logged_in(&s.app, "attacker").await.cookie.unwrap();
    let forged = tamper(&victim, 70);
    for header_value in [
        format!("__Host-session={victim}; __Host-session={attacker}"),
        format!("__Host-session={attacker}; __Host-session={victim}"),
    ] {
        let reply = send(&s.app, "GET", "/user", Some(&header_value)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "two sessions: anonymous"
        );
        let reply = send(&s.app, "POST", "/logout", Some(&header_value)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.set_cookies().is_empty(),
            "no removal of either cookie"
        );
    }
    assert!(
        record_of(&s.store, &victim).await.is_some(),
        "the victim's record survives"
    );
    assert!(record_of(&s.store, &attacker).await.is_some());
    // A forged duplicate does not hide a valid cookie, whatever the order.
    for header_value in [
        format!("__Host-session={forged}; __Host-session={victim}"),
        format!("__Host-session={victim}; __Host-session={forged}"),
        format!("__Host-session={victim}; __Host-session={victim}"),
    ] {
        let reply = send(&s.app, "GET", "/user", Some(&header_value)).await;
        assert_eq!(reply.body, "victim");
    }
    assert!(s.layer.security_events().ambiguous >= 4);
}

#[tokio::test]
async fn s30_ten_thousand_random_forged_or_anonymous_requests_create_nothing() {
    let s = setup();
    let genuine = logged_in(&s.app, "alice").await.cookie.unwrap();
    let records_before = s.store.inner.len();
    let creates_before = s.store.calls.get(&s.store.calls.create);
    let mut rng_state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    for i in 0..10_000 {
        let header_value = match i % 4 {
            0 => None,
            1 => Some(cookie(&format!("{:x}{:x}", next(), next()))),
            2 => {
                // A forged value of exactly the right shape.
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let bytes: Vec<u8> = (0..64).map(|_| next() as u8).collect();
                Some(cookie(&format!(
                    "{}.{}",
                    b64.encode(&bytes[..32]),
                    b64.encode(&bytes[32..])
                )))
            }
            _ => Some(cookie(&tamper(&genuine, i % 87))),
        };
        let uri = if i % 2 == 0 { "/logout" } else { "/get/k" };
        let reply = send(
            &s.app,
            if uri == "/logout" { "POST" } else { "GET" },
            uri,
            header_value.as_deref(),
        )
        .await;
        assert!(
            reply.set_cookies().is_empty(),
            "request {i} got a Set-Cookie"
        );
    }
    assert_eq!(s.store.inner.len(), records_before, "records were created");
    assert_eq!(s.store.calls.get(&s.store.calls.create), creates_before);
}

#[tokio::test]
async fn s31_nothing_is_saved_on_a_5xx_response_or_a_panic() {
    let s = setup();
    // A new session written by a failing handler is not created.
    let reply = send(&s.app, "POST", "/fail", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert!(s.store.inner.is_empty());
    // An existing session is left as it was.
    let mut client = Client::new(s.app.clone());
    client.send("POST", "/set/doomed/no").await;
    let value = client.cookie.clone().unwrap();
    let before = record_of(&s.store, &value).await.unwrap();
    let reply = client.send("POST", "/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(record_of(&s.store, &value).await.unwrap(), before);
    // A panicking handler saves nothing either.
    let app = s.app.clone();
    let cookie_header = client.cookie_header();
    let outcome =
        tokio::spawn(async move { send(&app, "POST", "/panic", cookie_header.as_deref()).await })
            .await;
    assert!(outcome.is_err(), "the handler panicked");
    assert_eq!(record_of(&s.store, &value).await.unwrap(), before);
    assert_eq!(client.send("GET", "/get/doomed").await.body, "no");
    // `update` commits at once, but a session it created is removed again on a 5xx.
    let reply = send(&s.app, "POST", "/incr-then-fail/n", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(s.store.inner.len(), 1, "only the earlier session remains");
}

#[tokio::test]
async fn s32_a_cookie_header_with_a_thousand_pairs_is_handled() {
    let s = setup();
    let value = logged_in(&s.app, "alice").await.cookie.unwrap();
    for pairs in [1_000, 100_000] {
        let mut header_value: String = (0..pairs - 1).map(|i| format!("c{i}=v{i}; ")).collect();
        header_value.push_str(&cookie(&value));
        let reply = send(&s.app, "GET", "/user", Some(&header_value)).await;
        assert_eq!(reply.body, "alice", "{pairs} pairs");
        // The same number of pairs split over many headers.
        let mut request = Request::builder().uri("/user");
        for i in 0..pairs.min(1_000) - 1 {
            request = request.header(header::COOKIE, format!("c{i}=v{i}"));
        }
        let request = request
            .header(header::COOKIE, cookie(&value))
            .body(Body::empty())
            .unwrap();
        let response = s.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn s33_a_store_failure_fails_closed_without_cookie_or_partial_write() {
    let s = setup();
    // Creating a new session.
    s.store.set_failing(true);
    let reply = send(&s.app, "POST", "/set/k/v", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert!(reply.body.is_empty());
    s.store.set_failing(false);
    assert!(s.store.inner.is_empty());
    // Rotating an existing one: the old record is intact, no new cookie.
    let mut client = logged_in(&s.app, "alice").await;
    let value = client.cookie.clone().unwrap();
    client.send("POST", "/set/k/before").await;
    let before = record_of(&s.store, &value).await.unwrap();
    let loaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Fail only the write: load the session first, then flip the store to failing.
    let failing = s.store.clone();
    let flag = loaded.clone();
    let app = axum::Router::new()
        .route(
            "/rotate-and-fail",
            axum::routing::post(move |session: sessionware::Session| {
                let failing = failing.clone();
                let flag = flag.clone();
                async move {
                    session.get::<String>("k").await.unwrap();
                    session.insert("k", "after").await.unwrap();
                    session.login("alice").await.unwrap();
                    failing.set_failing(true);
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    "ok"
                }
            }),
        )
        .layer(s.layer.clone());
    let reply: Reply = send(
        &app,
        "POST",
        "/rotate-and-fail",
        client.cookie_header().as_deref(),
    )
    .await;
    assert!(loaded.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    s.store.set_failing(false);
    assert_eq!(record_of(&s.store, &value).await.unwrap(), before);
    assert_eq!(s.store.inner.len(), 1, "no half-written second record");
    assert_eq!(client.send("GET", "/get/k").await.body, "before");
}

#[tokio::test]
async fn s34_rejected_ids_are_counted_and_reported_without_the_raw_value() {
    let (captured, _guard) = capture_tracing();
    let s = setup();
    let value = logged_in(&s.app, "alice").await.cookie.unwrap();
    let forged = tamper(&value, 80);
    send(&s.app, "GET", "/user", Some(&cookie(&forged))).await;
    send(&s.app, "GET", "/user", Some(&cookie("garbage"))).await;
    let stale = logged_in(&s.app, "bob").await.cookie.unwrap();
    s.store
        .inner
        .delete(&store_key_of(&stale), SystemTime::now())
        .await
        .unwrap();
    send(&s.app, "GET", "/user", Some(&cookie(&stale))).await;
    s.clock.advance(Duration::from_secs(400));
    send(&s.app, "GET", "/user", Some(&cookie(&value))).await;
    let events = s.layer.security_events();
    assert_eq!(events.forged, 2);
    assert_eq!(events.unknown, 1);
    assert_eq!(events.expired, 1);
    let logs = captured.text();
    for kind in ["forged", "unknown", "expired"] {
        assert!(
            logs.lines()
                .any(|line| line.contains("sessionware::security") && line.contains(kind)),
            "no {kind} event in {logs}"
        );
    }
    for secret in [&value, &forged, &stale] {
        assert!(!logs.contains(secret.split('.').next().unwrap()));
        assert!(!logs.contains(secret.split('.').nth(1).unwrap()));
    }
}
