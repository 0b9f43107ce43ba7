//! Concurrent requests on one session: different keys all survive, `update` never loses an
//! increment, and a logout racing a write is never undone (S16, S17).

use std::sync::Arc;

use crate::common::{Client, app, send, store_key_of};
use axum::http::StatusCode;
use sessionware::{
    Key, LoadOutcome, MemoryStore, Session, SessionError, SessionLayer, SessionStore,
};
use tokio::sync::Barrier;

fn cookie(value: &str) -> String {
    format!("__Host-session={value}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s17_concurrent_writes_to_different_keys_all_persist() {
    let app = app().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/set/seed/1").await;
    let value = client.cookie.clone().unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            let header = cookie(&value);
            tokio::spawn(async move {
                let reply = send(
                    &app,
                    "POST",
                    &format!("/set/key{i}/value{i}"),
                    Some(&header),
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for i in 0..64 {
        assert_eq!(
            client.send("GET", &format!("/get/key{i}")).await.body,
            format!("value{i}")
        );
    }
    assert_eq!(client.send("GET", "/get/seed").await.body, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s17_same_key_is_last_writer_wins_without_whole_record_overwrite() {
    let app = app().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/set/other/kept").await;
    let value = client.cookie.clone().unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let app = app.clone();
            let header = cookie(&value);
            tokio::spawn(async move {
                send(&app, "POST", &format!("/set/shared/w{i}"), Some(&header)).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let winner = client.send("GET", "/get/shared").await.body;
    assert!(winner.starts_with('w'), "one of the writers won: {winner}");
    assert_eq!(client.send("GET", "/get/other").await.body, "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_key_lose_no_increment() {
    let app = app().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/incr/n").await;
    let value = client.cookie.clone().unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            let header = cookie(&value);
            tokio::spawn(async move {
                let reply = send(&app, "POST", "/incr/n", Some(&header)).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                reply.body.parse::<u64>().unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (2..=201).collect::<Vec<u64>>(),
        "every update committed a distinct value"
    );
    assert_eq!(client.send("POST", "/incr/n").await.body, "202");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_racing_writes_of_other_keys_keep_every_write_and_increment() {
    let app = app().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/set/seed/1").await;
    let value = client.cookie.clone().unwrap();
    // An update with nothing else pending rewrites its one value in the stored JSON; the
    // inserts save whole records by compare-and-swap. Each side's conflicts must re-apply
    // onto the other's writes.
    let mut tasks = Vec::new();
    for i in 0..50 {
        for path in ["/incr/n".to_owned(), format!("/set/key{i}/value{i}")] {
            let app = app.clone();
            let header = cookie(&value);
            tasks.push(tokio::spawn(async move {
                let reply = send(&app, "POST", &path, Some(&header)).await;
                assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(client.send("POST", "/incr/n").await.body, "51");
    for i in 0..50 {
        assert_eq!(
            client.send("GET", &format!("/get/key{i}")).await.body,
            format!("value{i}")
        );
    }
    assert_eq!(client.send("GET", "/get/seed").await.body, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_in_one_request_share_the_session() {
    // Clones of one Session handed to several tasks of the same request.
    let barrier = Arc::new(Barrier::new(16));
    let handler = move |session: Session| {
        let barrier = barrier.clone();
        async move {
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let session = session.clone();
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        session.insert(&format!("k{i}"), i).await
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap()?;
            }
            Ok::<_, SessionError>("ok")
        }
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(handler))
        .route("/get/{key}", axum::routing::get(|session: Session, axum::extract::Path(key): axum::extract::Path<String>| async move {
            session.get::<u64>(&key).await.map(|v| format!("{v:?}"))
        }))
        .layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut client = Client::new(app);
    client.send("POST", "/").await;
    for i in 0..16 {
        assert_eq!(
            client.send("GET", &format!("/get/k{i}")).await.body,
            format!("Some({i})")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s16_a_write_racing_a_logout_never_recreates_the_session() {
    let store = MemoryStore::default();
    let interrupted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = interrupted.clone();
    let layer = SessionLayer::new(store.clone(), Key::generate()).on_error(move |error| {
        if matches!(error, SessionError::Interrupted) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // The writer reads the session, then waits until the logout has happened, then writes.
    let loaded = Arc::new(Barrier::new(2));
    let logged_out = Arc::new(Barrier::new(2));
    let (l1, o1) = (loaded.clone(), logged_out.clone());
    let app = app()
        .route(
            "/slow-write",
            axum::routing::post(move |session: Session| {
                let (loaded, logged_out) = (l1.clone(), o1.clone());
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
    let mut client = Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    let value = client.cookie.clone().unwrap();

    let writer = {
        let app = app.clone();
        let header = cookie(&value);
        tokio::spawn(async move { send(&app, "POST", "/slow-write", Some(&header)).await })
    };
    loaded.wait().await;
    let logout = send(&app, "POST", "/logout", Some(&cookie(&value))).await;
    assert!(logout.session_cookie().unwrap().is_removal());
    logged_out.wait().await;
    let late = writer.await.unwrap();

    assert_eq!(
        late.status,
        StatusCode::OK,
        "the handler's response passes through"
    );
    let set = late
        .session_cookie()
        .expect("the late request removes its cookie");
    assert!(
        set.is_removal(),
        "no cookie carrying the old (or any) ID: {}",
        set.raw
    );
    assert!(store.is_empty(), "the session was recreated");
    let now = std::time::SystemTime::now();
    assert_eq!(
        store.load(&store_key_of(&value), now).await.unwrap(),
        LoadOutcome::Missing
    );
    assert_eq!(
        interrupted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "reported through the error hook"
    );
    assert_eq!(layer.security_events().interrupted, 1);
    assert_eq!(
        send(&app, "GET", "/user", Some(&cookie(&value)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_racing_a_logout_fails_with_interrupted() {
    let store = MemoryStore::default();
    let loaded = Arc::new(Barrier::new(2));
    let logged_out = Arc::new(Barrier::new(2));
    let (l1, o1) = (loaded.clone(), logged_out.clone());
    let app = app()
        .route(
            "/slow-update",
            axum::routing::post(move |session: Session| {
                let (loaded, logged_out) = (l1.clone(), o1.clone());
                async move {
                    session.get::<u64>("n").await?;
                    loaded.wait().await;
                    logged_out.wait().await;
                    let result = session
                        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .await;
                    Ok::<_, SessionError>(format!(
                        "{}",
                        matches!(result, Err(SessionError::Interrupted))
                    ))
                }
            }),
        )
        .layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/incr/n").await;
    let value = client.cookie.clone().unwrap();
    let racer = {
        let app = app.clone();
        let header = cookie(&value);
        tokio::spawn(async move { send(&app, "POST", "/slow-update", Some(&header)).await })
    };
    loaded.wait().await;
    send(&app, "POST", "/logout", Some(&cookie(&value))).await;
    logged_out.wait().await;
    let reply = racer.await.unwrap();
    assert_eq!(reply.body, "true");
    assert!(reply.session_cookie().unwrap().is_removal());
    assert!(store.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_racing_writes_keeps_every_write() {
    let store = MemoryStore::default();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    let value = client.cookie.clone().unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        let header = cookie(&value);
        tasks.push(tokio::spawn(async move {
            send(&app, "POST", &format!("/set/k{i}/v{i}"), Some(&header)).await
        }));
    }
    let rotation = send(&app, "POST", "/cycle", Some(&cookie(&value))).await;
    let rotated = rotation.session_cookie().unwrap().value;
    for task in tasks {
        task.await.unwrap();
    }
    // Writes that loaded the session before the rotation were re-applied on top of it and
    // moved with it, or found it moved and were dropped; writes that arrived after it were
    // anonymous (the old ID is dead) and got fresh sessions of their own. Never is the old
    // record re-created (its key holds only the rotation's marker), and alice has exactly
    // one session.
    let old_key = store_key_of(&value);
    let now = std::time::SystemTime::now();
    assert_eq!(store.load(&old_key, now).await.unwrap(), LoadOutcome::Moved);
    let alices = store
        .user_index()
        .expect("a per-user index")
        .sessions_of("alice", now)
        .await
        .unwrap();
    assert_eq!(alices.len(), 1);
    assert_eq!(
        alices[0].handle,
        sessionware::SessionHandle::from_store_key(store_key_of(&rotated))
    );
    let mut fresh = Client::new(app.clone());
    fresh.cookie = Some(rotated);
    assert_eq!(fresh.send("GET", "/user").await.body, "alice");
}
