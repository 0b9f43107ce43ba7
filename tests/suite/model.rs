//! The concurrency model test: clients, each a browser with one cookie jar, issue seeded
//! random sequences of logins (some double-submitted), writes, increments (some from two
//! tabs at once), ID cycles, fixed deadlines, logouts, revocations of a user's sessions and of
//! their own session, replays of cookies they held before, and clock moves, all at once
//! against one layer, or against two instances over Redis or PostgreSQL. Each client checks
//! what it sees against a model of its own session, and a checker goes over the whole log
//! afterwards. The invariants:
//!
//! - no response is a 5xx (nothing here injects faults);
//! - a cookie the client held before (pre-login, rotated, destroyed, revoked) is never served
//!   as a session again;
//! - a session that existed when a revocation of its user started is never served after the
//!   revocation ended;
//! - no increment is lost: each returns the model's count plus one, unless a revocation or a
//!   deadline may have ended the session, and then only a fresh session's first;
//! - a fixed deadline holds: after it, the session is gone, whatever readers did before;
//! - a double-submitted login leaves the browser logged in, whichever response arrives last.
//!
//! Seeded and reproducible: `MODEL_SEED` picks the first seed (default 1) and `MODEL_CASES`
//! how many cases run per store (default 6). A failure names its seed; rerun it with
//! `MODEL_SEED=<seed> MODEL_CASES=1 cargo test --all-features --test suite model::`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{DynStore, erased};
use crate::common::{Instrumented, Reply, send};
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use sessionware::store::conformance::fresh_key;
use sessionware::{
    Clock, Expiry, Key, ManualClock, MemoryStore, Session, SessionError, SessionHandle,
    SessionLayer, SessionStore,
};

const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 40;
const USERS: [&str; 3] = ["u0", "u1", "u2"];

/// Maps a handler's session error to a status: an interruption by a concurrent logout or
/// revocation is the client's race, not a server failure.
fn status_of(error: &SessionError) -> StatusCode {
    match error {
        SessionError::Interrupted => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

type Answer = Result<String, (StatusCode, String)>;

fn answer(result: Result<String, SessionError>) -> Answer {
    result.map_err(|error| (status_of(&error), error.to_string()))
}

fn model_app(layer: SessionLayer<DynStore>) -> Router {
    Router::new()
        .route(
            "/login/{user}",
            post(|session: Session, Path(user): Path<String>| async move {
                answer(session.login(user).await.map(|()| "welcome".to_owned()))
            }),
        )
        .route(
            "/user",
            get(|session: Session| async move {
                answer(session.user().await.map(|user| user.unwrap_or_default()))
            }),
        )
        .route(
            "/n",
            get(|session: Session| async move {
                answer(
                    session
                        .get::<u64>("n")
                        .await
                        .map(|n| n.unwrap_or(0).to_string()),
                )
            }),
        )
        .route(
            "/incr",
            post(|session: Session| async move {
                answer(
                    session
                        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .await
                        .map(|n| n.to_string()),
                )
            }),
        )
        .route(
            "/set",
            post(|session: Session| async move {
                answer(session.insert("k", "v").await.map(|()| "set".to_owned()))
            }),
        )
        .route(
            "/cycle",
            post(|session: Session| async move {
                answer(session.cycle_id().await.map(|()| "cycled".to_owned()))
            }),
        )
        .route(
            "/logout",
            post(|session: Session| async move {
                answer(session.destroy().await.map(|()| "bye".to_owned()))
            }),
        )
        .route(
            "/handle",
            get(|session: Session| async move {
                answer(
                    session
                        .handle()
                        .await
                        .map(|handle| handle.map(|h| h.to_string()).unwrap_or_default()),
                )
            }),
        )
        .route(
            "/deadline",
            get(|session: Session| async move {
                answer(session.expiry().await.map(|expiry| match expiry {
                    Some(Expiry::AtDateTime(at)) => millis(at).to_string(),
                    _ => String::new(),
                }))
            }),
        )
        .route(
            "/fix-deadline/{secs}",
            post(|session: Session, Path(secs): Path<u64>| async move {
                let fixed = async {
                    let Some(created) = session.created_at().await? else {
                        return Ok(String::new());
                    };
                    let deadline = created + Duration::from_secs(secs);
                    session
                        .set_expiry(Some(Expiry::AtDateTime(deadline)))
                        .await?;
                    Ok(millis(deadline).to_string())
                };
                answer(fixed.await)
            }),
        )
        .layer(layer)
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A seeded xorshift generator: reproducible without depending on a crate's algorithm.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// One request as the log keeps it.
#[derive(Debug, Clone)]
struct Event {
    client: usize,
    #[allow(dead_code, reason = "shown in failure messages")]
    what: String,
    start: u64,
    #[allow(dead_code, reason = "shown in failure messages")]
    end: u64,
    sent: Option<String>,
    /// The user the response showed, for `/user` reads.
    user_seen: Option<String>,
}

#[derive(Debug, Clone)]
struct Revocation {
    user: String,
    start: u64,
    end: u64,
}

/// What all clients share: the instances, the clock, the logical time and the log.
struct World {
    apps: Vec<Router>,
    stores: Vec<DynStore>,
    clock: ManualClock,
    seq: AtomicU64,
    log: Mutex<Vec<Event>>,
    revocations: Mutex<Vec<Revocation>>,
    /// The logical time each cookie value was first handed to a client.
    issued: Mutex<HashMap<String, u64>>,
    /// Per user, how many revocations of it have started, and how many have ended.
    epochs: Vec<AtomicU64>,
    settled: Vec<AtomicU64>,
}

impl World {
    fn tick(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// How many revocations of `user` have started.
    fn epoch(&self, user: &str) -> u64 {
        self.epochs[user_index(user)].load(Ordering::SeqCst)
    }

    /// How many revocations of `user` have ended. Taken as the model's epoch, so that a
    /// revocation still running when the model was confirmed counts as one that may end the
    /// session later.
    fn settled(&self, user: &str) -> u64 {
        self.settled[user_index(user)].load(Ordering::SeqCst)
    }
}

fn user_index(user: &str) -> usize {
    USERS.iter().position(|u| *u == user).expect("a model user")
}

/// What a client believes about its own session.
#[derive(Debug, Default)]
struct Model {
    cookie: Option<String>,
    user: Option<String>,
    count: u64,
    deadline: Option<u64>,
    /// The revocation epoch of `user` when the model was last confirmed: a different epoch
    /// now means a revocation may have ended the session.
    epoch: u64,
    /// Cookies this client held before, all superseded or ended.
    old: Vec<String>,
}

impl Model {
    fn reset(&mut self) {
        if let Some(cookie) = self.cookie.take() {
            self.old.push(cookie);
        }
        self.user = None;
        self.count = 0;
        self.deadline = None;
    }

    /// Whether the session may have ended behind the client's back.
    fn may_have_ended(&self, world: &World) -> bool {
        let revoked = self
            .user
            .as_deref()
            .is_some_and(|user| world.epoch(user) != self.epoch);
        let past_deadline = self
            .deadline
            .is_some_and(|deadline| millis(world.clock.now()) >= deadline);
        revoked || past_deadline
    }

    fn confirm(&mut self, epoch_before: u64) {
        self.epoch = epoch_before;
    }
}

struct Client<'w> {
    id: usize,
    seed: u64,
    world: &'w World,
    rng: Rng,
    model: Model,
    /// What this client did, printed when a check fails.
    history: Vec<String>,
}

/// The new cookie value a response sets: `Some(None)` for a removal.
fn set_cookie(reply: &Reply) -> Option<Option<String>> {
    reply
        .session_cookie()
        .map(|set| (!set.is_removal()).then_some(set.value))
}

impl<'w> Client<'w> {
    fn fail(&self, message: String) -> ! {
        panic!(
            "seed {} client {}: {message}\nhistory:\n  {}\nmodel: {:?}",
            self.seed,
            self.id,
            self.history.join("\n  "),
            self.model
        );
    }

    async fn request(&mut self, method: &str, uri: &str, cookie: Option<&str>) -> Reply {
        let app = &self.world.apps[self.rng.below(self.world.apps.len() as u64) as usize];
        let header = cookie.map(|value| format!("__Host-session={value}"));
        let start = self.world.tick();
        let reply = send(app, method, uri, header.as_deref()).await;
        let end = self.world.tick();
        if reply.status.is_server_error() {
            self.fail(format!(
                "{method} {uri} answered {}: {}",
                reply.status, reply.body
            ));
        }
        if let Some(Some(value)) = set_cookie(&reply) {
            self.world
                .issued
                .lock()
                .unwrap()
                .entry(value)
                .or_insert(end);
        }
        let short = |value: &str| value.get(..6).unwrap_or(value).to_owned();
        self.history.push(format!(
            "{method} {uri} with {:?} -> {} {:?} set {:?}",
            cookie.map(short),
            reply.status.as_u16(),
            reply.body,
            set_cookie(&reply).map(|value| value.map(|value| short(&value)))
        ));
        let user_seen =
            (uri == "/user" && reply.status == StatusCode::OK && !reply.body.is_empty())
                .then(|| reply.body.clone());
        self.world.log.lock().unwrap().push(Event {
            client: self.id,
            what: format!("{method} {uri}"),
            start,
            end,
            sent: cookie.map(str::to_owned),
            user_seen,
        });
        reply
    }

    /// Another tab of this browser: its requests share the jar's cookie and are logged in
    /// this client's history afterwards.
    fn twin(&mut self) -> Client<'w> {
        Client {
            id: self.id,
            seed: self.seed,
            world: self.world,
            rng: Rng(self.rng.next() | 1),
            model: Model::default(),
            history: Vec::new(),
        }
    }

    /// Applies a response's cookie to the jar.
    fn take_cookie(&mut self, reply: &Reply) {
        match set_cookie(reply) {
            Some(Some(value)) if self.model.cookie.as_ref() != Some(&value) => {
                if let Some(old) = self.model.cookie.replace(value) {
                    self.model.old.push(old);
                }
            }
            Some(None) => self.model.reset(),
            _ => {}
        }
    }

    async fn run(mut self) {
        for _ in 0..OPS_PER_CLIENT {
            match self.rng.below(12) {
                0 | 1 => self.login().await,
                2 | 3 => self.increment().await,
                4 => self.set().await,
                5 => self.cycle().await,
                6 => self.logout().await,
                7 => self.read_user().await,
                8 => self.replay().await,
                9 => self.revoke_user().await,
                10 => self.fix_deadline_or_revoke_own().await,
                _ => {
                    let secs = 1 + self.rng.below(8);
                    self.world.clock.advance(Duration::from_secs(secs));
                }
            }
        }
    }

    async fn login(&mut self) {
        let user = USERS[self.rng.below(USERS.len() as u64) as usize].to_owned();
        let uri = format!("/login/{user}");
        let cookie = self.model.cookie.clone();
        // The layer flushes the data only when a different user was logged in.
        let flushes = self
            .model
            .user
            .as_deref()
            .is_some_and(|current| current != user);
        let epoch_before = self.world.settled(&user);
        let reply = if !self.rng.chance(3) {
            let reply = self.request("POST", &uri, cookie.as_deref()).await;
            self.expect_ok(&reply, &uri);
            reply
        } else {
            // A double-submitted login form: both responses reach the browser, in either
            // order, and it must end logged in both ways.
            let mut twin = self.twin();
            let (first, second) = tokio::join!(
                self.request("POST", &uri, cookie.as_deref()),
                twin.request("POST", &uri, cookie.as_deref())
            );
            self.history
                .extend(twin.history.drain(..).map(|line| format!("(twin) {line}")));
            self.expect_ok(&first, &uri);
            self.expect_ok(&second, &uri);
            for (label, order) in [
                ("first, second", [&first, &second]),
                ("second, first", [&second, &first]),
            ] {
                let mut jar = cookie.clone();
                for reply in order {
                    if let Some(value) = set_cookie(reply) {
                        jar = value;
                    }
                }
                let seen = match &jar {
                    Some(jar) => self.request("GET", "/user", Some(jar)).await.body,
                    None => String::new(),
                };
                if seen != user
                    && !self.model.may_have_ended(self.world)
                    && !self.revoked_since(&user, epoch_before)
                {
                    self.fail(format!(
                        "after a double-submitted login ({label}) the browser holds no \
                         session of {user} (cookie {jar:?}, user {seen:?})"
                    ));
                }
            }
            if self.rng.chance(2) { first } else { second }
        };
        match set_cookie(&reply) {
            Some(Some(_)) => {}
            // The login lost to a concurrent end of the session it started from.
            _ if self.model.may_have_ended(self.world) => {
                self.take_cookie(&reply);
                self.model.reset();
                return;
            }
            other => self.fail(format!("a login set no new cookie ({other:?}): {reply:?}")),
        }
        self.take_cookie(&reply);
        if flushes {
            self.model.count = 0;
            self.model.deadline = None;
        }
        self.model.user = Some(user);
        self.model.confirm(epoch_before);
        // A login on a session that a revocation or a deadline ended starts afresh.
        self.resync().await;
    }

    /// Whether a revocation of `user` started after the epoch `since` was read.
    fn revoked_since(&self, user: &str, since: u64) -> bool {
        self.world.epoch(user) != since
    }

    /// Reads the count back when the model cannot know it (a login may have landed on a
    /// session that had just ended): the value must be the model's, or 0. The fixed
    /// deadline is read back too: a login on an ended session starts one without.
    async fn resync(&mut self) {
        let Some(cookie) = self.model.cookie.clone() else {
            return;
        };
        let deadline = self.request("GET", "/deadline", Some(&cookie)).await;
        if set_cookie(&deadline) == Some(None) {
            // The login built on a session whose fixed deadline passed meanwhile.
            if !self.model.may_have_ended(self.world) {
                self.fail(format!("a fresh login's session is gone: {deadline:?}"));
            }
            self.take_cookie(&deadline);
            self.model.reset();
            return;
        }
        self.model.deadline = deadline.body.parse().ok();
        let reply = self.request("GET", "/n", Some(&cookie)).await;
        let n: u64 = reply
            .body
            .parse()
            .unwrap_or_else(|_| self.fail(format!("/n: {reply:?}")));
        if n != self.model.count && n != 0 {
            self.fail(format!(
                "count {n} where the model has {}",
                self.model.count
            ));
        }
        self.model.count = n;
    }

    async fn increment(&mut self) {
        let cookie = self.model.cookie.clone();
        let user_epoch = self
            .model
            .user
            .as_deref()
            .map(|user| self.world.settled(user));
        if self.rng.chance(3) && cookie.is_some() {
            // Two tabs at once.
            let mut twin = self.twin();
            let (a, b) = tokio::join!(
                self.request("POST", "/incr", cookie.as_deref()),
                twin.request("POST", "/incr", cookie.as_deref())
            );
            self.history
                .extend(twin.history.drain(..).map(|line| format!("(twin) {line}")));
            let mut values = Vec::new();
            for reply in [&a, &b] {
                match reply.status {
                    StatusCode::OK => values.push(reply.body.parse::<u64>().unwrap()),
                    StatusCode::CONFLICT
                        if self.model.may_have_ended(self.world)
                            || self.revoked_now(user_epoch) => {}
                    _ => self.fail(format!("POST /incr from two tabs: {reply:?}")),
                }
            }
            values.sort_unstable();
            let expected: Vec<u64> = (1..=values.len() as u64)
                .map(|i| self.model.count + i)
                .collect();
            if values != expected
                && !(self.model.may_have_ended(self.world) || self.revoked_now(user_epoch))
            {
                self.fail(format!(
                    "two tabs' increments returned {values:?}, expected {expected:?}"
                ));
            }
            if values.len() == 2 && values == expected {
                for reply in [&a, &b] {
                    self.take_cookie(reply);
                }
                self.model.count += 2;
            } else {
                // The session ended under the two tabs (one of them saw it go), and one may
                // have started a fresh one: forget the jar without counting its cookie as
                // ended.
                self.model.cookie = None;
                self.model.user = None;
                self.model.count = 0;
                self.model.deadline = None;
            }
            return;
        }
        let reply = self.request("POST", "/incr", cookie.as_deref()).await;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::CONFLICT
                if self.model.may_have_ended(self.world) || self.revoked_now(user_epoch) =>
            {
                self.take_cookie(&reply);
                self.model.reset();
                return;
            }
            _ => self.fail(format!("POST /incr: {reply:?}")),
        }
        let value: u64 = reply.body.parse().unwrap();
        let fresh = set_cookie(&reply)
            .flatten()
            .filter(|new| Some(new) != cookie.as_ref());
        if value == self.model.count + 1 && (fresh.is_none() || cookie.is_none()) {
            self.model.count = value;
        } else if value == 1
            && fresh.is_some()
            && (self.model.may_have_ended(self.world) || self.revoked_now(user_epoch))
        {
            // The session had ended: the increment started a fresh, anonymous one.
            self.model.reset();
            self.model.count = 1;
        } else {
            self.fail(format!(
                "increment returned {value} (new cookie: {}) where the model has {}",
                fresh.is_some(),
                self.model.count
            ));
        }
        self.take_cookie(&reply);
    }

    fn revoked_now(&self, epoch: Option<u64>) -> bool {
        match (self.model.user.as_deref(), epoch) {
            (Some(user), Some(epoch)) => self.world.epoch(user) != epoch,
            _ => false,
        }
    }

    async fn set(&mut self) {
        let cookie = self.model.cookie.clone();
        let reply = self.request("POST", "/set", cookie.as_deref()).await;
        if reply.status == StatusCode::CONFLICT {
            self.take_cookie(&reply);
            self.model.reset();
            return;
        }
        self.expect_ok(&reply, "/set");
        if cookie.is_some()
            && set_cookie(&reply)
                .flatten()
                .is_some_and(|new| Some(&new) != cookie.as_ref())
        {
            // A fresh session: the one the cookie named had ended.
            if !self.model.may_have_ended(self.world) {
                self.fail(format!("a write replaced a live session: {reply:?}"));
            }
            self.model.reset();
        }
        self.take_cookie(&reply);
    }

    async fn cycle(&mut self) {
        let Some(cookie) = self.model.cookie.clone() else {
            return;
        };
        let reply = self.request("POST", "/cycle", Some(&cookie)).await;
        if reply.status == StatusCode::CONFLICT {
            self.take_cookie(&reply);
            self.model.reset();
            return;
        }
        self.expect_ok(&reply, "/cycle");
        self.take_cookie(&reply);
    }

    async fn logout(&mut self) {
        let cookie = self.model.cookie.clone();
        let reply = self.request("POST", "/logout", cookie.as_deref()).await;
        self.expect_ok(&reply, "/logout");
        self.take_cookie(&reply);
        self.model.reset();
    }

    async fn read_user(&mut self) {
        let cookie = self.model.cookie.clone();
        // Clocks only move forward: past the fixed deadline now, the session is gone
        // whatever any reader did before (a stale touch must not have moved it).
        let past_deadline = self
            .model
            .deadline
            .is_some_and(|deadline| millis(self.world.clock.now()) >= deadline);
        let reply = self.request("GET", "/user", cookie.as_deref()).await;
        self.expect_ok(&reply, "/user");
        let seen = (!reply.body.is_empty()).then(|| reply.body.clone());
        if past_deadline {
            let n = self.request("GET", "/n", cookie.as_deref()).await;
            if seen.is_some() || n.body != "0" {
                self.fail(format!(
                    "served past its fixed deadline: user {seen:?}, n {:?}",
                    n.body
                ));
            }
            self.take_cookie(&reply);
            self.model.reset();
            return;
        }
        if seen != self.model.user {
            if seen.is_none() && self.model.may_have_ended(self.world) {
                self.take_cookie(&reply);
                self.model.reset();
                return;
            }
            self.fail(format!(
                "/user showed {seen:?} where the model has {:?}",
                self.model.user
            ));
        }
        self.take_cookie(&reply);
    }

    /// Sends a cookie this client held before: it must be served as no session at all.
    async fn replay(&mut self) {
        if self.model.old.is_empty() {
            return;
        }
        let old = self.model.old[self.rng.below(self.model.old.len() as u64) as usize].clone();
        let user = self.request("GET", "/user", Some(&old)).await;
        let n = self.request("GET", "/n", Some(&old)).await;
        if !user.body.is_empty() || n.body != "0" {
            self.fail(format!(
                "a superseded cookie was served: user {:?}, n {:?}",
                user.body, n.body
            ));
        }
    }

    async fn revoke_user(&mut self) {
        let user = USERS[self.rng.below(USERS.len() as u64) as usize];
        let store = &self.world.stores[self.rng.below(self.world.stores.len() as u64) as usize];
        self.world.epochs[user_index(user)].fetch_add(1, Ordering::SeqCst);
        let start = self.world.tick();
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(user, None, SystemTime::now())
            .await
            .unwrap_or_else(|error| self.fail(format!("revoke_user: {error}")));
        let end = self.world.tick();
        self.world.settled[user_index(user)].fetch_add(1, Ordering::SeqCst);
        self.world.revocations.lock().unwrap().push(Revocation {
            user: user.to_owned(),
            start,
            end,
        });
        if self.model.user.as_deref() == Some(user) {
            self.model.reset();
        }
    }

    async fn fix_deadline_or_revoke_own(&mut self) {
        let Some(cookie) = self.model.cookie.clone() else {
            return;
        };
        if self.rng.chance(2) {
            let reply = self.request("GET", "/handle", Some(&cookie)).await;
            self.expect_ok(&reply, "/handle");
            if let Ok(handle) = reply.body.parse::<SessionHandle>() {
                let store = &self.world.stores[0];
                store
                    .user_index()
                    .expect("a per-user index")
                    .revoke(&handle, SystemTime::now())
                    .await
                    .unwrap_or_else(|error| self.fail(format!("revoke: {error}")));
                self.model.reset();
            } else {
                self.take_cookie(&reply);
                self.model.reset();
            }
            return;
        }
        let secs = 5 + self.rng.below(40);
        let uri = format!("/fix-deadline/{secs}");
        let reply = if self.rng.chance(2) {
            self.request("POST", &uri, Some(&cookie)).await
        } else {
            // A reader in another tab, whose touch (if due) must not undo the deadline.
            let mut twin = self.twin();
            let (reply, read) = tokio::join!(
                self.request("POST", &uri, Some(&cookie)),
                twin.request("GET", "/n", Some(&cookie))
            );
            self.history
                .extend(twin.history.drain(..).map(|line| format!("(twin) {line}")));
            self.expect_ok(&read, "/n from another tab");
            reply
        };
        if reply.status == StatusCode::CONFLICT {
            self.take_cookie(&reply);
            self.model.reset();
            return;
        }
        self.expect_ok(&reply, "/fix-deadline");
        self.take_cookie(&reply);
        match reply.body.parse::<u64>() {
            // A deadline already past ends the session at once (its cookie may be removed).
            Ok(deadline) if self.model.cookie.is_some() => self.model.deadline = Some(deadline),
            Ok(_) => {}
            // No session stored (it had ended): nothing to fix.
            Err(_) => self.model.reset(),
        }
    }

    fn expect_ok(&self, reply: &Reply, what: &str) {
        if reply.status != StatusCode::OK {
            self.fail(format!("{what}: {reply:?}"));
        }
    }
}

/// The checks over the whole log.
fn check_log(world: &World, seed: u64) {
    let log = world.log.lock().unwrap();
    let revocations = world.revocations.lock().unwrap();
    let issued = world.issued.lock().unwrap();
    for event in log.iter() {
        let (Some(user), Some(sent)) = (&event.user_seen, &event.sent) else {
            continue;
        };
        let Some(&issued_at) = issued.get(sent) else {
            panic!(
                "seed {seed}: client {} sent a cookie never issued: {event:?}",
                event.client
            );
        };
        for revocation in revocations.iter() {
            if &revocation.user == user
                && revocation.end < event.start
                && issued_at < revocation.start
            {
                panic!(
                    "seed {seed}: a session of {user} issued at {issued_at} survived the \
                     revocation {revocation:?}: {event:?}"
                );
            }
        }
    }
}

async fn run_case(seed: u64, stores: Vec<DynStore>) {
    let key = Key::generate();
    let clock = ManualClock::default();
    let apps = stores
        .iter()
        .map(|store| {
            model_app(
                SessionLayer::new(store.clone(), key.clone())
                    .idle_timeout(Duration::from_secs(600))
                    // Reads extend the idle deadline often, so that stale touches race the
                    // fixed deadlines.
                    .touch_after(Duration::from_secs(2))
                    .absolute_timeout(Duration::from_secs(7200))
                    .clock(clock.clone()),
            )
        })
        .collect();
    let world = Arc::new(World {
        apps,
        stores,
        clock,
        seq: AtomicU64::new(0),
        log: Mutex::default(),
        revocations: Mutex::default(),
        issued: Mutex::default(),
        epochs: USERS.iter().map(|_| AtomicU64::new(0)).collect(),
        settled: USERS.iter().map(|_| AtomicU64::new(0)).collect(),
    });
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let world = world.clone();
        tasks.push(tokio::spawn(async move {
            let client = Client {
                id,
                seed,
                world: &world,
                rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (id as u64 + 1) | 1),
                model: Model::default(),
                history: Vec::new(),
            };
            client.run().await;
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            std::panic::resume_unwind(error.into_panic());
        }
    }
    check_log(&world, seed);
}

fn cases() -> std::ops::Range<u64> {
    let first = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let count: u64 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    first..first + count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_on_the_memory_store() {
    for seed in cases() {
        run_case(seed, vec![erased(MemoryStore::default())]).await;
        run_case(
            seed,
            vec![erased(Instrumented::new(MemoryStore::default()))],
        )
        .await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_on_two_instances_over_redis() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    };
    for seed in cases() {
        let prefix = format!("sw-model-{}:", &fresh_key().to_hex()[..12]);
        let mut stores = Vec::new();
        for _ in 0..2 {
            let store = sessionware::RedisStore::builder(&url)
                .key_prefix(prefix.clone())
                .build()
                .expect("valid Redis store settings")
                .await
                .expect("REDIS_URL is set but the server is unreachable");
            stores.push(erased(store));
        }
        run_case(seed, stores).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_on_two_instances_over_postgres() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    for seed in cases() {
        let schema = format!("sw_model_{}", &fresh_key().to_hex()[..12]);
        let mut stores = Vec::new();
        let mut first_pool = None;
        for _ in 0..2 {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(8)
                .connect(&url)
                .await
                .expect("DATABASE_URL is set but the server is unreachable");
            let store = sessionware::PostgresStore::builder(pool.clone())
                .schema(schema.clone())
                .build()
                .expect("valid configuration");
            store.migrate().await.expect("migrate");
            first_pool.get_or_insert(pool);
            stores.push(erased(store));
        }
        run_case(seed, stores).await;
        let statement = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(first_pool.as_ref().unwrap())
            .await
            .expect("drop schema");
    }
}
