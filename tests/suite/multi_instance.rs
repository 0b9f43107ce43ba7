//! Two app instances (two independent layers and store clients) over one Redis, PostgreSQL
//! or MySQL server, as behind a load balancer. Reads `REDIS_URL`, `DATABASE_URL` and
//! `MYSQL_URL`; each store's tests print why and pass when its variable is unset.
#![cfg(all(feature = "redis", feature = "postgres"))]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::{Client, app, send, store_key_of};
use axum::http::StatusCode;
use sessionware::store::conformance::fresh_key;
use sessionware::{
    Key, LoadOutcome, PostgresStore, RedisStore, Session, SessionError, SessionLayer, SessionStore,
};
use tokio::sync::Barrier;

fn cookie(value: &str) -> String {
    format!("__Host-session={value}")
}

/// An instance: the test app plus a route whose write waits at two barriers, so a test can
/// interleave it with a logout on the other instance.
fn instance<S: SessionStore + Clone>(
    store: S,
    key: Key,
    gates: (Arc<Barrier>, Arc<Barrier>),
) -> (axum::Router, SessionLayer<S>) {
    let layer = SessionLayer::new(store, key);
    let router = app()
        .route(
            "/slow-write",
            axum::routing::post(move |session: Session| {
                let (loaded, logged_out) = gates.clone();
                async move {
                    session.get::<String>("k").await?;
                    loaded.wait().await;
                    logged_out.wait().await;
                    session.insert("k", "late").await?;
                    Ok::<_, SessionError>("wrote")
                }
            }),
        )
        .layer(layer.clone());
    (router, layer)
}

/// Every multi-instance guarantee, for two store clients `a` and `b` of one server.
async fn two_instances_share_sessions<S: SessionStore + Clone>(a: S, b: S) {
    let key = Key::generate();
    let gates = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (app_a, _) = instance(a.clone(), key.clone(), gates.clone());
    let (app_b, layer_b) = instance(b.clone(), key, gates.clone());

    // A session created on A is valid on B, and changes on either are seen by both.
    let mut on_a = Client::new(app_a.clone());
    on_a.send("POST", "/login/alice").await;
    let value = on_a.cookie.clone().unwrap();
    let mut on_b = Client::new(app_b.clone());
    on_b.cookie = Some(value.clone());
    assert_eq!(on_b.send("GET", "/user").await.body, "alice");
    on_b.send("POST", "/set/from/b").await;
    assert_eq!(on_a.send("GET", "/get/from").await.body, "b");

    // Concurrent writes on A and B to different keys both persist.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let app = if i % 2 == 0 {
                app_a.clone()
            } else {
                app_b.clone()
            };
            let header = cookie(&value);
            tokio::spawn(async move {
                let reply = send(&app, "POST", &format!("/set/k{i}/v{i}"), Some(&header)).await;
                assert_eq!(reply.status, StatusCode::OK);
            })
        })
        .collect();
    for write in writes {
        write.await.unwrap();
    }
    for i in 0..20 {
        assert_eq!(
            on_b.send("GET", &format!("/get/k{i}")).await.body,
            format!("v{i}")
        );
    }

    // Concurrent increments through both instances lose nothing.
    let increments: Vec<_> = (0..40)
        .map(|i| {
            let app = if i % 2 == 0 {
                app_a.clone()
            } else {
                app_b.clone()
            };
            let header = cookie(&value);
            tokio::spawn(async move { send(&app, "POST", "/incr/n", Some(&header)).await })
        })
        .collect();
    for increment in increments {
        assert_eq!(increment.await.unwrap().status, StatusCode::OK);
    }
    assert_eq!(on_a.send("POST", "/incr/n").await.body, "41");

    // A write on A racing a logout on B never recreates the session.
    let writer = {
        let app = app_a.clone();
        let header = cookie(&value);
        tokio::spawn(async move { send(&app, "POST", "/slow-write", Some(&header)).await })
    };
    gates.0.wait().await;
    let logout = send(&app_b, "POST", "/logout", Some(&cookie(&value))).await;
    assert!(logout.session_cookie().unwrap().is_removal());
    gates.1.wait().await;
    let late = writer.await.unwrap();
    assert!(
        late.session_cookie().unwrap().is_removal(),
        "no cookie for the dead session"
    );
    assert_eq!(
        a.load(&store_key_of(&value), SystemTime::now())
            .await
            .unwrap(),
        LoadOutcome::Missing,
        "the late write recreated the session"
    );
    // Logout on B is effective on A.
    assert_eq!(
        send(&app_a, "GET", "/user", Some(&cookie(&value)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // revoke_user on B logs the user out on A, on the very next request.
    let user = format!("user-{}", &fresh_key().to_hex()[..12]);
    let mut device_1 = Client::new(app_a.clone());
    device_1.send("POST", &format!("/login/{user}")).await;
    let mut device_2 = Client::new(app_a.clone());
    device_2.send("POST", &format!("/login/{user}")).await;
    assert_eq!(device_1.send("GET", "/user").await.body, user);
    let keep: sessionware::SessionHandle =
        device_2.send("GET", "/handle").await.body.parse().unwrap();
    assert_eq!(
        layer_b
            .store()
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, Some(&keep), SystemTime::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        device_1.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(device_2.send("GET", "/user").await.body, user);
    layer_b
        .store()
        .user_index()
        .expect("a per-user index")
        .revoke_user(&user, None, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(
        device_2.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_two_instances_share_sessions() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    };
    let prefix = format!("sw-multi-{}:", &fresh_key().to_hex()[..12]);
    let open = || async {
        RedisStore::builder(&url)
            .key_prefix(prefix.clone())
            .build()
            .expect("valid Redis store settings")
            .await
            .expect("REDIS_URL is set but the server is unreachable")
    };
    two_instances_share_sessions(open().await, open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_share_sessions() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let table = format!("sw_multi_{}", &fresh_key().to_hex()[..12]);
    let open = || async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .expect("DATABASE_URL is set but the server is unreachable");
        let store = PostgresStore::builder(pool)
            .table(table.clone())
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        store
    };
    let (a, b) = (open().await, open().await);
    two_instances_share_sessions(a.clone(), b).await;
    let drop_table = format!("DROP TABLE \"public\".\"{table}\"");
    sqlx::query(sqlx::AssertSqlSafe(drop_table))
        .execute(a.pool())
        .await
        .unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_two_instances_share_sessions() {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return;
    };
    let table = format!("sw_multi_{}", &fresh_key().to_hex()[..12]);
    let open = || async {
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .expect("MYSQL_URL is set but the server is unreachable");
        let store = sessionware::MySqlStore::builder(pool)
            .table(table.clone())
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        store
    };
    let (a, b) = (open().await, open().await);
    two_instances_share_sessions(a.clone(), b).await;
    let drop_table = format!("DROP TABLE `{table}`");
    sqlx::query(sqlx::AssertSqlSafe(drop_table))
        .execute(a.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn s10_a_redis_dump_holds_no_usable_cookie() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    };
    let prefix = format!("sw-dump-{}:", &fresh_key().to_hex()[..12]);
    let store = RedisStore::builder(&url)
        .key_prefix(prefix.clone())
        .build()
        .expect("valid Redis store settings")
        .await
        .unwrap();
    let app = app().layer(SessionLayer::new(store, Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    client.send("POST", "/set/k/v").await;
    let value = client.cookie.clone().unwrap();
    let id_part = value.split('.').next().unwrap().to_owned();

    let redis = redis::Client::open(url.as_str()).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&store_key_of(&value).to_hex()))
    );
    let mut dump = keys.join("\n");
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut connection)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut connection)
                .await
                .unwrap(),
            other => panic!("unexpected key type {other}"),
        };
        for bytes in values {
            dump.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(
        !dump.contains(&id_part),
        "the session ID is in the Redis dump"
    );
    assert!(!dump.contains(&value));
    // Every key in the dump, presented as a cookie, is rejected.
    for key in &keys {
        let name = key.rsplit(':').next().unwrap();
        let reply = send(&app, "GET", "/user", Some(&cookie(name))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn s10_a_postgres_dump_holds_no_usable_cookie() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let table = format!("sw_dump_{}", &fresh_key().to_hex()[..12]);
    let store = PostgresStore::builder(sqlx::PgPool::connect(&url).await.unwrap())
        .table(table.clone())
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    client.send("POST", "/set/k/v").await;
    let value = client.cookie.clone().unwrap();
    use base64::Engine as _;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.split('.').next().unwrap())
        .unwrap();

    let dump: Vec<(Vec<u8>, Vec<u8>, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(
        format!("SELECT key, data, user_id FROM \"public\".\"{table}\""),
    ))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(dump.len(), 1);
    let (key, data, user) = &dump[0];
    assert_eq!(key.as_slice(), store_key_of(&value).as_bytes());
    assert_ne!(key, &id, "the raw ID is the row key");
    let text = String::from_utf8_lossy(data);
    assert!(!text.contains(value.split('.').next().unwrap()));
    assert_eq!(user.as_deref(), Some("alice"));
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let as_cookie = URL_SAFE_NO_PAD.encode(key);
    let reply = send(&app, "GET", "/user", Some(&cookie(&as_cookie))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE \"public\".\"{table}\""
    )))
    .execute(store.pool())
    .await
    .unwrap();
}
