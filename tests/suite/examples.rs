//! Runs the compiled examples and speaks HTTP to them: `examples/axum.rs` and
//! `examples/hyper.rs` start, keep sessions and refuse a bad key as their docs say.
//!
//! The binaries are the ones cargo puts next to this test's own (`target/<profile>/examples/`);
//! see [`example_binary`] for how they are kept up to date. Each example is started on port 0
//! and prints the address it bound, so parallel tests never race for a port.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long an example may take to start, or to exit when it must refuse to start. Generous
/// for a loaded two-core machine; only a failing test ever waits this long.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one HTTP exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// A valid 32-byte key, base64: "sessionware examples test key!!!".
const TEST_KEY: &str = "c2Vzc2lvbndhcmUgZXhhbXBsZXMgdGVzdCBrZXkhISE=";
/// Variables the examples read; cleared so that the caller's environment cannot change them.
const EXAMPLE_VARS: &[&str] = &[
    "SESSIONWARE_ADDR",
    "SESSION_KEY",
    "SESSION_IDLE_SECS",
    "SESSION_ANONYMOUS_SECS",
    "SESSION_STORE",
    "SESSIONWARE_INSECURE_COOKIE",
    "SESSION_ENCRYPT",
    "SQLITE_PATH",
    "RUST_LOG",
];

#[test]
fn axum_example_logs_in_counts_and_logs_out() {
    logs_in_counts_and_logs_out(&[], Revocation::Server);
}

#[test]
fn axum_example_on_sqlite_logs_in_counts_and_logs_out() {
    if !cfg!(feature = "sqlite") {
        eprintln!("skipping: the `sqlite` feature is off");
        return;
    }
    logs_in_counts_and_logs_out(&[("SESSION_STORE", "sqlite")], Revocation::Server);
}

#[test]
fn axum_example_on_mysql_logs_in_counts_and_logs_out() {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return;
    };
    if !cfg!(feature = "mysql") {
        eprintln!("skipping: the `mysql` feature is off");
        return;
    }
    logs_in_counts_and_logs_out(
        &[("SESSION_STORE", "mysql"), ("MYSQL_URL", &url)],
        Revocation::Server,
    );
}

#[test]
fn axum_example_on_sealed_cookies_logs_in_counts_and_logs_out() {
    if !cfg!(feature = "cookie-store") {
        eprintln!("skipping: the `cookie-store` feature is off");
        return;
    }
    logs_in_counts_and_logs_out(&[("SESSION_STORE", "cookie")], Revocation::BrowserOnly);
}

#[test]
fn axum_example_with_encryption_at_rest_logs_in_counts_and_logs_out() {
    if !cfg!(feature = "encryption") {
        eprintln!("skipping: the `encryption` feature is off");
        return;
    }
    logs_in_counts_and_logs_out(&[("SESSION_ENCRYPT", "1")], Revocation::Server);
}

/// What a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    /// The session, on the server: a replayed cookie is anonymous.
    Server,
    /// Only the browser's copy of a sealed cookie: a replayed one still opens.
    BrowserOnly,
}

/// The example's whole flow, on the backend `env` selects.
fn logs_in_counts_and_logs_out(env: &[(&str, &str)], revocation: Revocation) {
    let Some(binary) = example_binary("axum") else {
        return;
    };
    let server = Server::start(&binary, env);
    assert!(
        server.stderr_shows("SESSION_KEY is not set"),
        "the example should say it generated a key; stderr:\n{}",
        server.stderr()
    );
    let stderr = server.stderr();
    assert!(
        !stderr
            .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c)))
            .any(|word| word.len() >= 43),
        "the example printed something shaped like a key:\n{stderr}"
    );

    let plain = server.request("GET", "/plain", None, None);
    assert_eq!((plain.status, plain.body.as_str()), (200, "ok"));
    assert!(plain.set_cookies().is_empty(), "{plain:?}");

    let ready = server.request("GET", "/ready", None, None);
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    assert!(ready.set_cookies().is_empty(), "{ready:?}");

    let anonymous = server.request("GET", "/me", None, None);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let home = server.request("GET", "/", None, None);
    assert_eq!(home.status, 200, "{home:?}");
    assert!(home.body.contains(r#"action="/login""#), "{home:?}");
    assert!(
        home.set_cookies().is_empty(),
        "an anonymous visit must not create a session: {home:?}"
    );

    let login = server.request("POST", "/login", None, Some("username=alice"));
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/"));
    let mut cookie = login.session_cookie();
    let set_cookie = &login.set_cookies()[0];
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    // The crate's secure defaults, unless SESSIONWARE_INSECURE_COOKIE=1.
    assert!(set_cookie.starts_with("__Host-session="), "{set_cookie}");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    let me = server.request("GET", "/me", Some(&cookie), None);
    assert_eq!((me.status, me.body.as_str()), (200, "alice"), "{me:?}");
    assert!(
        me.header("content-type")
            .is_some_and(|value| value.starts_with("text/plain")),
        "{me:?}"
    );

    for expected in ["1", "2"] {
        let counter = server.request("POST", "/counter", Some(&cookie), None);
        assert_eq!((counter.status, counter.body.as_str()), (200, expected));
        cookie = counter.session_cookie_or(cookie);
    }
    let counter = server.request("GET", "/counter", Some(&cookie), None);
    assert_eq!((counter.status, counter.body.as_str()), (200, "2"));
    cookie = counter.session_cookie_or(cookie);

    for expected_visits in ["1", "2"] {
        let home = server.request("GET", "/", Some(&cookie), None);
        assert_eq!(home.status, 200, "{home:?}");
        assert!(home.body.contains("Hello, alice!"), "{home:?}");
        assert!(
            home.body.contains(&format!("session: {expected_visits}.")),
            "{home:?}"
        );
        assert!(home.body.contains(r#"action="/logout""#), "{home:?}");
        cookie = home.session_cookie_or(cookie);
    }

    let too_long = format!("username={}", "a".repeat(65));
    let rejected = server.request("POST", "/login", None, Some(&too_long));
    assert_eq!(rejected.status, 400, "{rejected:?}");
    assert!(rejected.set_cookies().is_empty(), "{rejected:?}");
    let empty = server.request("POST", "/login", None, Some("username="));
    assert_eq!(empty.status, 400, "{empty:?}");
    for control in ["a%07b", "%0D%0Aforged%20log%20line", "tab%09bed"] {
        let rejected = server.request("POST", "/login", None, Some(&format!("username={control}")));
        assert_eq!(rejected.status, 400, "{control}: {rejected:?}");
        assert!(rejected.set_cookies().is_empty(), "{rejected:?}");
    }
    let longest = format!("username={}", "a".repeat(64));
    let accepted = server.request("POST", "/login", None, Some(&longest));
    assert_eq!(accepted.status, 303, "{accepted:?}");

    let logout = server.request("POST", "/logout", Some(&cookie), None);
    assert_eq!(logout.status, 303, "{logout:?}");
    assert_eq!(logout.header("location"), Some("/"));
    let removal = logout.set_cookies();
    assert!(
        removal
            .iter()
            .any(|value| value.starts_with("__Host-session=;") && value.contains("Max-Age=0")),
        "expected a removal cookie: {logout:?}"
    );
    let replayed = server.request("GET", "/me", Some(&cookie), None);
    match revocation {
        Revocation::Server => assert_eq!(replayed.status, 401, "{replayed:?}"),
        Revocation::BrowserOnly => assert_eq!(replayed.status, 200, "{replayed:?}"),
    }
}

#[test]
fn axum_example_lists_and_revokes_the_users_sessions() {
    let Some(binary) = example_binary("axum") else {
        return;
    };
    let server = Server::start(&binary, &[]);
    let laptop = server
        .request("POST", "/login", None, Some("username=dana"))
        .session_cookie();
    let phone = server
        .request("POST", "/login", None, Some("username=dana"))
        .session_cookie();
    let anonymous = server.request("GET", "/sessions", None, None);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    let page = server.request("GET", "/sessions", Some(&laptop), None);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body.matches("<tr><td>").count(), 2, "{}", page.body);
    assert_eq!(page.body.matches("(this one)").count(), 1, "{}", page.body);
    // The test's requests send no User-Agent.
    assert!(page.body.contains("Unknown browser"), "{}", page.body);
    let handles: Vec<&str> = page
        .body
        .split(r#"name="handle" value=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(handles.len(), 2, "{}", page.body);
    // The row marked as this one comes with "Log out"; revoke the other.
    let other = page
        .body
        .split("<tr><td>")
        .skip(1)
        .find(|row| !row.contains("(this one)"))
        .and_then(|row| row.split(r#"name="handle" value=""#).nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the other session's row");
    let revoke = server.request(
        "POST",
        "/sessions/revoke",
        Some(&laptop),
        Some(&format!("handle={other}")),
    );
    assert_eq!(revoke.status, 303, "{revoke:?}");
    assert_eq!(revoke.header("location"), Some("/sessions"));
    let phone_me = server.request("GET", "/me", Some(&phone), None);
    assert_eq!(phone_me.status, 401, "{phone_me:?}");
    let laptop_me = server.request("GET", "/me", Some(&laptop), None);
    assert_eq!((laptop_me.status, laptop_me.body.as_str()), (200, "dana"));
    let bad = server.request("POST", "/sessions/revoke", Some(&laptop), Some("handle=x"));
    assert_eq!(bad.status, 400, "{bad:?}");
}

#[test]
fn axum_example_escapes_the_user_name() {
    let Some(binary) = example_binary("axum") else {
        return;
    };
    let server = Server::start(
        &binary,
        &[
            ("SESSION_KEY", TEST_KEY),
            ("SESSIONWARE_INSECURE_COOKIE", "1"),
        ],
    );
    let login = server.request(
        "POST",
        "/login",
        None,
        Some("username=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E"),
    );
    assert_eq!(login.status, 303, "{login:?}");
    // The development switch drops `Secure` and with it the `__Host-` prefix.
    let set_cookie = &login.set_cookies()[0];
    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = login.session_cookie();
    let home = server.request("GET", "/", Some(&cookie), None);
    assert_eq!(home.status, 200, "{home:?}");
    assert!(
        home.body
            .contains("Hello, &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;!"),
        "{home:?}"
    );
    assert!(!home.body.contains("<script>"), "{home:?}");
}

#[test]
fn axum_example_refuses_a_short_key() {
    let Some(binary) = example_binary("axum") else {
        return;
    };
    // base64 of "short": 5 bytes.
    let (status, stderr) = run_to_exit(&binary, &[("SESSION_KEY", "c2hvcnQ=")]);
    assert!(!status.success(), "exited with {status}; stderr:\n{stderr}");
    assert!(stderr.contains("at least 32"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "a bad key is an error message, not a panic; stderr:\n{stderr}"
    );
}

#[test]
fn hyper_example_counts() {
    let Some(binary) = example_binary("hyper") else {
        return;
    };
    let server = Server::start(&binary, &[("SESSION_KEY", TEST_KEY)]);

    let plain = server.request("GET", "/plain", None, None);
    assert_eq!((plain.status, plain.body.as_str()), (200, "ok"));
    assert!(plain.set_cookies().is_empty(), "{plain:?}");
    let unset = server.request("GET", "/counter", None, None);
    assert_eq!((unset.status, unset.body.as_str()), (200, "0"));

    let first = server.request("POST", "/counter", None, None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"));
    let mut cookie = first.session_cookie();
    let second = server.request("POST", "/counter", Some(&cookie), None);
    assert_eq!((second.status, second.body.as_str()), (200, "2"));
    cookie = second.session_cookie_or(cookie);
    let read = server.request("GET", "/counter", Some(&cookie), None);
    assert_eq!((read.status, read.body.as_str()), (200, "2"));

    let missing = server.request("GET", "/nowhere", Some(&cookie), None);
    assert_eq!(missing.status, 404, "{missing:?}");
}

#[test]
fn axum_examples_share_sessions_through_redis() {
    two_instances_share_sessions("redis", "REDIS_URL", cfg!(feature = "redis"));
}

#[test]
fn axum_examples_share_sessions_through_postgres() {
    two_instances_share_sessions("postgres", "DATABASE_URL", cfg!(feature = "postgres"));
}

#[test]
fn axum_examples_share_sessions_through_mysql() {
    two_instances_share_sessions("mysql", "MYSQL_URL", cfg!(feature = "mysql"));
}

/// Two instances of the axum example with one key and one shared store serve the same
/// sessions: what the example's docs promise for a fleet.
fn two_instances_share_sessions(store: &str, url_var: &str, feature_enabled: bool) {
    let Ok(url) = std::env::var(url_var) else {
        eprintln!("skipping: {url_var} is not set");
        return;
    };
    if !feature_enabled {
        eprintln!("skipping: the `{store}` feature is off");
        return;
    }
    let Some(binary) = example_binary("axum") else {
        return;
    };
    let env = [
        ("SESSION_KEY", TEST_KEY),
        ("SESSION_STORE", store),
        (url_var, url.as_str()),
    ];
    let first = Server::start(&binary, &env);
    let second = Server::start(&binary, &env);

    let login = first.request("POST", "/login", None, Some("username=carol"));
    assert_eq!(login.status, 303, "{login:?}");
    let mut cookie = login.session_cookie();
    let me = second.request("GET", "/me", Some(&cookie), None);
    assert_eq!((me.status, me.body.as_str()), (200, "carol"), "{me:?}");

    for (server, expected) in [(&first, "1"), (&second, "2"), (&first, "3")] {
        let counter = server.request("POST", "/counter", Some(&cookie), None);
        assert_eq!((counter.status, counter.body.as_str()), (200, expected));
        cookie = counter.session_cookie_or(cookie);
    }

    let logout = second.request("POST", "/logout", Some(&cookie), None);
    assert_eq!(logout.status, 303, "{logout:?}");
    let replayed = first.request("GET", "/me", Some(&cookie), None);
    assert_eq!(replayed.status, 401, "{replayed:?}");
}

/// The example binary `name`, built if needed, or `None` (saying why) when it cannot be.
///
/// A plain `cargo test` builds the examples before running the tests, but
/// `cargo test --test suite` builds the test binary only, so the binary may be missing or out of
/// date. Asking cargo to build it, with the features and profile this test was built with,
/// costs a fingerprint check when it is up to date and never rebuilds the library with
/// another feature set.
fn example_binary(name: &'static str) -> Option<PathBuf> {
    static AXUM: OnceLock<Option<PathBuf>> = OnceLock::new();
    static HYPER: OnceLock<Option<PathBuf>> = OnceLock::new();
    let cell = match name {
        "axum" => &AXUM,
        "hyper" => &HYPER,
        _ => panic!("unknown example {name}"),
    };
    // Once per example: the tests run in parallel and would queue on cargo's lock.
    cell.get_or_init(|| build_example(name)).clone()
}

fn build_example(name: &str) -> Option<PathBuf> {
    // This test runs as <target dir>/<profile dir>/deps/suite-<hash>.
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let target_dir = profile_dir.parent()?;
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let profile = match profile_dir.file_name()?.to_str()? {
        "debug" => "dev",
        other => other,
    };
    let features: Vec<&str> = [
        ("memory-store", cfg!(feature = "memory-store")),
        ("redis", cfg!(feature = "redis")),
        ("postgres", cfg!(feature = "postgres")),
        ("mysql", cfg!(feature = "mysql")),
        ("sqlite", cfg!(feature = "sqlite")),
        ("cookie-store", cfg!(feature = "cookie-store")),
        ("encryption", cfg!(feature = "encryption")),
        ("axum", cfg!(feature = "axum")),
        ("test-util", cfg!(feature = "test-util")),
    ]
    .into_iter()
    .filter_map(|(feature, enabled)| enabled.then_some(feature))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--example", name, "--no-default-features"])
        .arg("--features")
        .arg(features.join(","))
        .arg("--profile")
        .arg(profile)
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) => {
            eprintln!(
                "skipping: cannot run {} to build example `{name}`: {err}",
                cargo.display()
            );
            return None;
        }
    };
    assert!(
        output.status.success(),
        "building example `{name}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    if !binary.exists() {
        eprintln!(
            "skipping: example `{name}` was built, but not at {} (a --target build?)",
            binary.display()
        );
        return None;
    }
    Some(binary)
}

fn command(binary: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary);
    for name in EXAMPLE_VARS {
        command.env_remove(name);
    }
    command
        .env("SESSIONWARE_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs an example that must refuse to start; returns its exit status and stderr.
fn run_to_exit(binary: &Path, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let child = command(binary, env).spawn().expect("start the example");
    let mut server = Running::new(child);
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = server.child.try_wait().expect("poll the example") {
            server.join_output();
            return (status, server.stderr());
        }
        assert!(
            Instant::now() < deadline,
            "the example was expected to exit but still runs after {STARTUP_TIMEOUT:?}; \
             stderr:\n{}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A running example process, its output drained by two threads so that it never blocks
/// on a full pipe. Killed when dropped, also when a test fails.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    /// Receives the address from the example's "listening on http://..." line.
    listening: mpsc::Receiver<String>,
}

impl Running {
    fn new(mut child: Child) -> Self {
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sender, listening) = mpsc::channel();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                    let _ = sender.send(addr.to_owned());
                }
            }
        });
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self {
            child,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
            listening,
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits for the output threads once the process has exited, so that nothing it wrote
    /// is missed.
    fn join_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            self.join_output();
            eprintln!("--- stderr of the example ---\n{}", self.stderr());
        }
    }
}

/// An example serving HTTP.
struct Server {
    process: Running,
    addr: SocketAddr,
}

impl Server {
    /// Starts the example and waits until it listens.
    fn start(binary: &Path, env: &[(&str, &str)]) -> Self {
        let child = command(binary, env).spawn().expect("start the example");
        let mut process = Running::new(child);
        let addr = match process.listening.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => addr.parse().expect("the example prints a socket address"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process.child.wait().expect("wait for the example");
                process.join_output();
                panic!(
                    "the example exited ({status}) without listening; stderr:\n{}",
                    process.stderr()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the example did not listen within {STARTUP_TIMEOUT:?}")
            }
        };
        Self { process, addr }
    }

    fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// The example's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id()))
            .expect("the example's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS")
    }

    /// Whether the example's stderr shows `text`, waiting a little for it: stdout and stderr
    /// are read by different threads, so a line written before the address may arrive later.
    fn stderr_shows(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(text) {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// One HTTP/1.1 exchange on a new connection; `form` is sent URL-encoded.
    fn request(&self, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Reply {
        self.try_request(method, path, cookie, form)
            .unwrap_or_else(|err| panic!("{method} {path} failed: {err}"))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> io::Result<Reply> {
        Endpoint(self.addr).try_request(method, path, cookie, form)
    }
}

/// Where an example listens: what client threads share.
#[derive(Debug, Clone, Copy)]
struct Endpoint(SocketAddr);

impl Endpoint {
    fn try_request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> io::Result<Reply> {
        let addr = self.0;
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(cookie) = cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Reply::parse(&raw)
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Header names in lower case, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> io::Result<Self> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| invalid("no end of headers"))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("no status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
        let body = if chunked {
            dechunk(body).ok_or_else(|| invalid("bad chunked body"))?
        } else {
            body.to_owned()
        };
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The `name=value` pair of the session cookie this response sets, if it sets one.
    fn new_session_cookie(&self) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .filter_map(|value| value.split(';').next())
            .find(|pair| {
                ["__Host-session=", "session="]
                    .iter()
                    .any(|name| pair.starts_with(name) && pair.len() > name.len())
            })
            .map(str::to_owned)
    }

    fn session_cookie(&self) -> String {
        self.new_session_cookie()
            .unwrap_or_else(|| panic!("expected a session cookie: {self:?}"))
    }

    /// The session cookie this response sets, or `current` if it sets none (the layer
    /// re-sends the cookie only when it must change).
    fn session_cookie_or(&self, current: String) -> String {
        self.new_session_cookie().unwrap_or(current)
    }
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// How long the soak drives the examples: `SOAK_SECS`, default 60 (what CI runs); run it
/// for 600 locally: `SOAK_SECS=600 cargo test --all-features --test suite soak -- --nocapture`.
fn soak_duration() -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Client threads per store in the soak, besides the bursts' own.
const SOAK_WORKERS: usize = 3;

/// What one soak worker saw.
#[derive(Default)]
struct SoakTally {
    requests: u64,
    server_errors: Vec<String>,
    latencies: Vec<Duration>,
}

impl SoakTally {
    fn record(&mut self, what: &str, started: Instant, reply: &io::Result<Reply>) {
        self.requests += 1;
        self.latencies.push(started.elapsed());
        match reply {
            Ok(reply) if reply.status >= 500 => {
                self.server_errors.push(format!("{what}: {}", reply.status));
            }
            Ok(_) => {}
            Err(err) => self.server_errors.push(format!("{what}: {err}")),
        }
    }
}

/// Drives one example with mixed traffic until `deadline`: logins, reads, writes, home
/// pages, logouts, forged and oversized cookies, an anonymous flood, and bursts of
/// concurrent increments of one session (whose count must come out exact).
fn soak_worker(server: Endpoint, worker: usize, deadline: Instant) -> SoakTally {
    let mut tally = SoakTally::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut cookie: Option<String> = None;
    let mut logins = 0;
    while Instant::now() < deadline {
        let Some(current) = cookie.clone() else {
            logins += 1;
            let form = format!("username=soak-{worker}-{logins}");
            let started = Instant::now();
            let reply = server.try_request("POST", "/login", None, Some(&form));
            tally.record("login", started, &reply);
            cookie = reply.ok().and_then(|reply| reply.new_session_cookie());
            continue;
        };
        let roll = next() % 100;
        let (what, method, path, sent) = match roll {
            0..=29 => ("increment", "POST", "/counter", Some(current.clone())),
            30..=49 => ("read", "GET", "/counter", Some(current.clone())),
            50..=59 => ("home", "GET", "/", Some(current.clone())),
            60..=69 => {
                let forged = format!("__Host-session={}", "A".repeat(87));
                ("forged cookie", "GET", "/me", Some(forged))
            }
            70..=74 => {
                let oversized = format!("__Host-session={}", "B".repeat(5000));
                ("oversized cookie", "GET", "/me", Some(oversized))
            }
            75..=84 => ("anonymous flood", "POST", "/counter", None),
            85..=89 => {
                let started = Instant::now();
                let reply = server.try_request("POST", "/logout", Some(&current), None);
                tally.record("logout", started, &reply);
                cookie = None;
                continue;
            }
            _ => {
                soak_burst(server, &current, &mut tally);
                continue;
            }
        };
        let started = Instant::now();
        let reply = server.try_request(method, path, sent.as_deref(), None);
        tally.record(what, started, &reply);
        if let Ok(reply) = &reply
            && sent.as_deref() == Some(current.as_str())
        {
            cookie = Some(reply.session_cookie_or(current));
        }
    }
    tally
}

/// Eight concurrent increments of one session: all succeed and none is lost.
fn soak_burst(server: Endpoint, cookie: &str, tally: &mut SoakTally) {
    const BURST: u64 = 8;
    let before = server
        .try_request("GET", "/counter", Some(cookie), None)
        .ok()
        .and_then(|reply| reply.body.parse::<u64>().ok());
    let replies: Vec<(Instant, io::Result<Reply>)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..BURST)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    (
                        started,
                        server.try_request("POST", "/counter", Some(cookie), None),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    for (started, reply) in &replies {
        tally.record("burst", *started, reply);
    }
    let after = server
        .try_request("GET", "/counter", Some(cookie), None)
        .ok()
        .and_then(|reply| reply.body.parse::<u64>().ok());
    if let (Some(before), Some(after)) = (before, after) {
        let succeeded = replies
            .iter()
            .filter(|(_, reply)| reply.as_ref().is_ok_and(|reply| reply.status == 200))
            .count() as u64;
        if after != before + succeeded || succeeded != BURST {
            tally.server_errors.push(format!(
                "burst: {succeeded} of {BURST} succeeded, count {before} -> {after}"
            ));
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q) as usize)
        .copied()
        .unwrap_or_default()
}

#[test]
fn axum_example_soak() {
    let Some(binary) = example_binary("axum") else {
        return;
    };
    let mut stores: Vec<(&str, Vec<(&str, String)>)> = vec![("memory", Vec::new())];
    for (store, var, enabled) in [
        ("redis", "REDIS_URL", cfg!(feature = "redis")),
        ("postgres", "DATABASE_URL", cfg!(feature = "postgres")),
    ] {
        match std::env::var(var) {
            Ok(url) if enabled => stores.push((store, vec![(var, url)])),
            _ => eprintln!("soak: skipping the {store} store ({var} unset or feature off)"),
        }
    }
    let duration = soak_duration();
    let report: Vec<String> =
        thread::scope(|scope| {
            let runs: Vec<_> =
                stores
                    .iter()
                    .map(|(store, vars)| {
                        let binary = &binary;
                        scope.spawn(move || {
                    let mut env = vec![("SESSION_KEY", TEST_KEY), ("SESSION_STORE", *store)];
                    env.extend(vars.iter().map(|(name, value)| (*name, value.as_str())));
                    env.push(("RUST_LOG", "warn"));
                    let server = Server::start(binary, &env);
                    let rss_start = server.rss_kib();
                    let deadline = Instant::now() + duration;
                    let tallies: Vec<SoakTally> = thread::scope(|workers| {
                        let handles: Vec<_> = (0..SOAK_WORKERS)
                            .map(|worker| {
                                let endpoint = Endpoint(server.addr);
                                workers.spawn(move || soak_worker(endpoint, worker, deadline))
                            })
                            .collect();
                        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
                    });
                    let rss_end = server.rss_kib();
                    let requests: u64 = tallies.iter().map(|tally| tally.requests).sum();
                    let errors: Vec<&String> =
                        tallies.iter().flat_map(|tally| &tally.server_errors).collect();
                    let mut latencies: Vec<Duration> =
                        tallies.iter().flat_map(|tally| tally.latencies.clone()).collect();
                    latencies.sort();
                    let line = format!(
                        "soak {store}: {requests} requests in {duration:?}, {} 5xx or failed, \
                         p50 {:?}, p99 {:?}, RSS {rss_start} KiB -> {rss_end} KiB",
                        errors.len(),
                        percentile(&latencies, 0.5),
                        percentile(&latencies, 0.99),
                    );
                    eprintln!("{line}");
                    assert!(
                        errors.is_empty(),
                        "{line}; first errors: {:?}; stderr:\n{}",
                        &errors[..errors.len().min(10)],
                        server.stderr()
                    );
                    line
                })
                    })
                    .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
    assert_eq!(report.len(), stores.len());
}
