#![allow(dead_code, unreachable_pub)]
//! A TCP proxy of the test's own in front of a server, so that a test can pause or cut its
//! connections without touching a server other tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the traffic, shared with its connections.
#[derive(Default)]
struct Faults {
    /// Stops forwarding bytes, as a server stopped with SIGSTOP would.
    paused: AtomicBool,
    /// Closes every connection and refuses new ones, as a dead server would.
    cut: AtomicBool,
    /// Forwards the next bytes a client sends, then closes that connection before the
    /// server's reply comes back: a connection lost in the middle of an operation.
    cut_after_next_request: AtomicBool,
}

/// The proxy; stopped when dropped.
pub struct Proxy {
    pub port: u16,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let faults = Arc::new(Faults::default());
        let task = tokio::spawn({
            let faults = faults.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    if faults.cut.load(Ordering::SeqCst) {
                        continue; // dropped: refused, as by a dead server
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    let faults = faults.clone();
                    tokio::spawn(async move {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::select! {
                            () = pipe(client_read, server_write, &faults, true) => {}
                            () = pipe(server_read, client_write, &faults, false) => {}
                        }
                    });
                }
            }
        });
        Self { port, faults, task }
    }

    pub fn pause(&self, paused: bool) {
        self.faults.paused.store(paused, Ordering::SeqCst);
    }

    pub fn cut(&self, cut: bool) {
        self.faults.cut.store(cut, Ordering::SeqCst);
    }

    pub fn cut_after_next_request(&self) {
        self.faults
            .cut_after_next_request
            .store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, faults: &Faults, upstream: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if faults.cut.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
        };
        let Ok(n @ 1..) = read else {
            return;
        };
        while faults.paused.load(Ordering::SeqCst) {
            if faults.cut.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if faults.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if upstream && faults.cut_after_next_request.swap(false, Ordering::SeqCst) {
            // Give the server the request, then lose the connection before its reply.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    }
}

/// The first address of `host:port`.
async fn resolve(host: &str, port: u16) -> SocketAddr {
    tokio::net::lookup_host((host, port))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address")
}

/// A proxy in front of the PostgreSQL server `database_url` names, and the URL that reaches
/// the same database through it.
#[cfg(feature = "postgres")]
pub async fn in_front_of_postgres(database_url: &str) -> (Proxy, String) {
    let options: sqlx::postgres::PgConnectOptions = database_url.parse().expect("DATABASE_URL");
    let proxy = Proxy::start(resolve(options.get_host(), options.get_port()).await).await;
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        options.get_username(),
        proxy.port,
        options.get_database().unwrap_or("postgres")
    );
    (proxy, url)
}

/// A proxy in front of the MySQL server `url` names, and connect options reaching the same
/// database through it (the URL's credentials and options kept).
#[cfg(feature = "mysql")]
pub async fn in_front_of_mysql(url: &str) -> (Proxy, sqlx::mysql::MySqlConnectOptions) {
    let options: sqlx::mysql::MySqlConnectOptions = url.parse().expect("MYSQL_URL parses");
    let proxy = Proxy::start(resolve(options.get_host(), options.get_port()).await).await;
    let through = options.host("127.0.0.1").port(proxy.port);
    (proxy, through)
}

/// One store operation's name, how long it took, and its outcome.
pub type Timed = (&'static str, Duration, Result<(), sessionware::StoreError>);

/// Every operation the layer uses on `store` (which must have a per-user index), with how
/// long each took.
pub async fn every_operation<S: sessionware::SessionStore>(store: &S) -> Vec<Timed> {
    use sessionware::store::conformance::{fresh_key, now_millis, sample_record};
    use std::time::{Instant, SystemTime};
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(Some("someone"), "{}");
    let index = store.user_index().expect("a per-user index");
    let mut results = Vec::new();
    macro_rules! time {
        ($name:literal, $call:expr) => {{
            let started = Instant::now();
            let result = $call.await.map(|_| ());
            results.push(($name, started.elapsed(), result));
        }};
    }
    time!("ping", store.ping());
    time!("load", store.load(&key, now));
    time!("create", store.create(&key, &record, SystemTime::now()));
    time!("save", store.save(&key, &record, 1, now));
    time!("touch", store.touch(&key, 1, now, now, now));
    time!("rotate", store.rotate(&key, &fresh_key(), &record, 1, now));
    time!("delete", store.delete(&key, SystemTime::now()));
    time!("sessions_of", index.sessions_of("someone", now));
    time!(
        "revoke_user",
        index.revoke_user("someone", None, SystemTime::now())
    );
    time!("delete_expired", store.delete_expired(now));
    results
}

/// S44 through `proxy`, in front of `store`'s server: every operation works, fails with a
/// timeout within `bound` while the proxy is paused, works again once it resumes, fails
/// within `bound` as unavailable or timed out while the proxy is cut, and works again after,
/// all on the same store.
pub async fn operations_are_bounded_and_recover<S: sessionware::SessionStore>(
    store: &S,
    proxy: &Proxy,
    bound: Duration,
) {
    use sessionware::StoreError;
    for (name, _, result) in every_operation(store).await {
        assert!(result.is_ok(), "{name} before the fault: {result:?}");
    }
    proxy.pause(true);
    for (name, elapsed, result) in every_operation(store).await {
        eprintln!("paused: {name} answered in {elapsed:?}");
        assert!(elapsed < bound, "{name} took {elapsed:?} while paused");
        assert!(
            matches!(result, Err(StoreError::Timeout { .. })),
            "{name} while paused: {result:?}"
        );
    }
    proxy.pause(false);
    for (name, _, result) in every_operation(store).await {
        assert!(result.is_ok(), "{name} after the pause: {result:?}");
    }
    proxy.cut(true);
    for (name, elapsed, result) in every_operation(store).await {
        eprintln!("cut: {name} answered in {elapsed:?}");
        assert!(
            elapsed < bound,
            "{name} took {elapsed:?} with the server gone"
        );
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Timeout { .. })
            ),
            "{name} with the server gone: {result:?}"
        );
    }
    proxy.cut(false);
    for (name, _, result) in every_operation(store).await {
        assert!(result.is_ok(), "{name} after recovery: {result:?}");
    }
}
