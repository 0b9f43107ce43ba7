//! The steadier measurements: interleaved rounds, thread scaling, the stores alone over a
//! million sessions, and memory per session.
//!
//! ```text
//! cargo bench -p sessionware-bench --bench rounds                # everything, about 3 minutes
//! SESSIONWARE_BENCH=rounds cargo bench -p sessionware-bench --bench rounds
//! ```
//!
//! `SESSIONWARE_BENCH` picks sections, comma-separated (default: all of them):
//!
//! - `rounds`: cases 1 to 5 for the three apps in interleaved rounds. Each round runs every
//!   (app, case) pair `SESSIONWARE_ROUND_REQUESTS` times (default 2000) in a shuffled order;
//!   `SESSIONWARE_ROUNDS` rounds (default 100) follow one unrecorded warm-up round. Reported
//!   per case: the median per-request time of each app, and the median over rounds of the
//!   per-round difference between an app and the baseline (its overhead), with the 25th and
//!   75th percentiles of that difference. Noise from other processes hits neighbouring
//!   blocks alike, so the differences are steadier than either time. Shuffled in with them:
//!   two layers that measure case 1's floors (`Identity`, and a layer that only inserts an
//!   `Arc` handle), the minimal session layer of `src/minimal.rs` (the floor of cases 1,
//!   2, 3 and 5 for any layer built to the design), and two blocks without any app
//!   (`Floor`): one cookie check, and the read floor (the check, SHA-256 of the ID, one map
//!   lookup).
//! - `modes`: cases 2, 3 and 4 of sessionware on the memory store, with encryption at rest,
//!   and on sealed cookies, with the baseline, in interleaved rounds as above
//!   (`SESSIONWARE_ROUNDS`, `SESSIONWARE_ROUND_REQUESTS`): each mode's overhead over the
//!   baseline, and what it adds to the plain store's.
//! - `scaling`: case 2 driven from 1 and from 2 threads (each thread its own
//!   current-thread runtime and its own session, all sharing one app), requests per second,
//!   for the baseline, the minimal layer, sessionware and tower-sessions; and the most two
//!   threads could give a layered app when its no-layer share scales as the baseline does
//!   and the layer's share perfectly.
//! - `stores`: case 6, each `MemoryStore` alone with `SESSIONWARE_STORE_SESSIONS` live
//!   sessions (default 1,000,000): random loads, and saves, from 1 and 2 threads.
//! - `memory`: bytes per live session of each `MemoryStore` (one small value each), as the
//!   growth of the resident set of a fresh process (this binary, re-run with
//!   `--memory-child`) that fills the store, at 100,000 and 1,000,000 sessions.
//!
//! `SESSIONWARE_SECONDS` (default 1) is the length of each timed window of `scaling` and
//! `stores`; each is measured 5 times, alternating 1 and 2 threads, and the medians are
//! reported.
//!
//! One more section, never part of `all`, is for profilers: `profile` runs one case of one
//! app in a loop for `SESSIONWARE_SECONDS`, chosen with `SESSIONWARE_PROFILE_CASE` (a case
//! name such as `case2_read`) and `SESSIONWARE_PROFILE_APP` (`baseline`, `sessionware`,
//! `tower-sessions`, `sessionware-encrypted` or `sessionware-sealed`):
//!
//! ```text
//! SESSIONWARE_BENCH=profile SESSIONWARE_PROFILE_CASE=case2_read SESSIONWARE_SECONDS=10 \
//!     perf record -g target/release/deps/rounds-<hash>
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::HeaderMap;
use http::header::COOKIE;
use sha2::{Digest as _, Sha256};
use tokio::runtime::Runtime;

use sessionware_bench::stores::{SessionwareStore, TowerStore, sessionware_record, tower_record};
use sessionware_bench::{App, COOKIE_NAME, Case, Rng, Variant, median, percentile, resident_bytes};

/// Timed windows per configuration in `scaling` and `stores`.
const REPEATS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--memory-child") {
        let store = args.get(at + 1).expect("--memory-child STORE SESSIONS");
        let sessions = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .expect("a count");
        memory_child(store, sessions);
        return;
    }
    let sections = std::env::var("SESSIONWARE_BENCH").unwrap_or_else(|_| "all".to_owned());
    let wants = |name: &str| sections == "all" || sections.split(',').any(|s| s.trim() == name);
    let window = Duration::from_secs_f64(env_number("SESSIONWARE_SECONDS", 1.0));
    let runtime = current_thread_runtime();
    print_context();
    if wants("rounds") {
        let rounds = env_number("SESSIONWARE_ROUNDS", 100.0) as usize;
        let per_block = env_number("SESSIONWARE_ROUND_REQUESTS", 2000.0) as usize;
        interleaved_rounds(&runtime, rounds, per_block);
    }
    if wants("modes") {
        let rounds = env_number("SESSIONWARE_ROUNDS", 100.0) as usize;
        let per_block = env_number("SESSIONWARE_ROUND_REQUESTS", 2000.0) as usize;
        modes(&runtime, rounds, per_block);
    }
    if wants("scaling") {
        scaling(&runtime, window);
    }
    if wants("stores") {
        let sessions = env_number("SESSIONWARE_STORE_SESSIONS", 1_000_000.0) as usize;
        stores_alone(&runtime, sessions, window);
    }
    if wants("memory") {
        memory();
    }
    if sections.split(',').any(|s| s.trim() == "profile") {
        profile(&runtime, window);
    }
}

/// The work any signed-cookie session layer must do to read a session, without the layer:
/// find the cookie among three in a `Cookie` header, base64-decode its ID and tag, check the
/// tag with a pre-keyed HMAC-SHA256 (constant time), hash the ID with SHA-256 into the store
/// key, and look that up in a map.
struct Floor {
    headers: HeaderMap,
    keyed: Hmac<Sha256>,
    map: HashMap<[u8; 32], u64>,
}

impl Floor {
    fn new() -> Self {
        let mut keyed = Hmac::<Sha256>::new_from_slice(&[7; 32]).expect("any key length");
        keyed.update(b"sessionware/session/v1");
        let id = [42u8; 32];
        let mut mac = keyed.clone();
        mac.update(&id);
        let tag = mac.finalize().into_bytes();
        let value = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(id),
            URL_SAFE_NO_PAD.encode(tag)
        );
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; {}={value}; lang=en", COOKIE_NAME);
        headers.insert(COOKIE, cookie.parse().expect("a valid header"));
        let map = (0..1000u64)
            .map(|n| (<[u8; 32]>::from(Sha256::digest(n.to_le_bytes())), n))
            .chain([(<[u8; 32]>::from(Sha256::digest(id)), 1)])
            .collect();
        let floor = Self {
            headers,
            keyed,
            map,
        };
        assert_eq!(floor.read(), Some(1), "the floor finds its session");
        floor
    }

    /// The cookie check alone: the ID, if the cookie is genuine.
    fn check(&self) -> Option<[u8; 32]> {
        let header = black_box(&self.headers).get(COOKIE)?.to_str().ok()?;
        let value = header
            .split(';')
            .map(str::trim)
            .find_map(|pair| pair.strip_prefix(COOKIE_NAME)?.strip_prefix('='))?;
        let (id, tag) = value.split_once('.')?;
        let (mut id_bytes, mut tag_bytes) = ([0u8; 32], [0u8; 32]);
        URL_SAFE_NO_PAD.decode_slice(id, &mut id_bytes).ok()?;
        URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_bytes).ok()?;
        let mut mac = self.keyed.clone();
        mac.update(&id_bytes);
        mac.verify_slice(&tag_bytes).ok()?;
        Some(id_bytes)
    }

    /// The check, then the store key and the lookup.
    fn read(&self) -> Option<u64> {
        let id = self.check()?;
        let store_key: [u8; 32] = Sha256::digest(id).into();
        self.map.get(&store_key).copied()
    }
}

/// One case of one app in a loop, for a profiler.
fn profile(runtime: &Runtime, window: Duration) {
    let case_name =
        std::env::var("SESSIONWARE_PROFILE_CASE").unwrap_or_else(|_| "case2_read".into());
    let app_name =
        std::env::var("SESSIONWARE_PROFILE_APP").unwrap_or_else(|_| "sessionware".into());
    let case = Case::ALL
        .into_iter()
        .find(|case| case.name() == case_name)
        .expect("SESSIONWARE_PROFILE_CASE names a case");
    let variant = Variant::ALL
        .into_iter()
        .chain(Variant::MODES)
        .find(|variant| variant.name() == app_name)
        .expect("SESSIONWARE_PROFILE_APP names an app, such as sessionware");
    let app = runtime.block_on(App::new(variant));
    let requests = runtime.block_on(async {
        let start = Instant::now();
        let mut requests = 0u64;
        while start.elapsed() < window {
            for _ in 0..256 {
                app.call(case).await;
            }
            requests += 256;
        }
        requests
    });
    println!(
        "profile: {requests} requests of {case_name} through {app_name}, {:.3} µs each",
        window.as_secs_f64() * 1e6 / requests as f64
    );
}

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn print_context() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "available parallelism: {threads}; load average at start: {}",
        load.trim()
    );
}

/// Cases 1 to 5 in interleaved rounds; prints one table.
fn interleaved_rounds(runtime: &Runtime, rounds: usize, per_block: usize) {
    let apps: Vec<App> = Variant::ALL
        .iter()
        .map(|&variant| runtime.block_on(App::new(variant)))
        .collect();
    // The last block is the floor (see `Floor`), measured in the same rounds.
    let mut blocks: Vec<(usize, Case)> = Vec::new();
    for (index, app) in apps.iter().enumerate() {
        for case in Case::ALL {
            // tower-sessions' case 3b is its case 3 (it has only get + insert).
            let duplicate =
                app.variant == Variant::TowerSessions && case == Case::IncrementGetInsert;
            // A floor is measured only in the cases it bounds.
            if !duplicate && app.variant.measures(case) {
                blocks.push((index, case));
            }
        }
    }
    let floor = Floor::new();
    let (check_block, floor_block) = (blocks.len(), blocks.len() + 1);
    // times[block][round]: nanoseconds per request.
    let mut times = vec![Vec::with_capacity(rounds); blocks.len() + 2];
    let mut order: Vec<usize> = (0..blocks.len() + 2).collect();
    let mut rng = Rng::new(0x0dd_5eed);
    let started = Instant::now();
    runtime.block_on(async {
        for round in 0..=rounds {
            rng.shuffle(&mut order);
            for &block in &order {
                let start = Instant::now();
                if block == check_block {
                    for _ in 0..per_block {
                        black_box(floor.check());
                    }
                } else if block == floor_block {
                    for _ in 0..per_block {
                        black_box(floor.read());
                    }
                } else {
                    let (app, case) = blocks[block];
                    for _ in 0..per_block {
                        apps[app].call(case).await;
                    }
                }
                let per_request = start.elapsed().as_nanos() as f64 / per_block as f64;
                // Round 0 warms caches, allocator and branch predictors up.
                if round > 0 {
                    times[block].push(per_request);
                }
            }
        }
    });
    let elapsed = started.elapsed();
    let series = |variant: Variant, case: Case| -> &Vec<f64> {
        let case = if variant == Variant::TowerSessions && case == Case::IncrementGetInsert {
            Case::Increment
        } else {
            case
        };
        let index = blocks
            .iter()
            .position(|&(app, c)| apps[app].variant == variant && c == case)
            .expect("measured");
        &times[index]
    };
    println!();
    println!(
        "## Interleaved rounds: {rounds} rounds x {per_block} requests per (app, case), \
         shuffled; {:.1} s",
        elapsed.as_secs_f64()
    );
    println!();
    println!("Times are medians over rounds of the per-request time, in µs. Overheads are");
    println!("medians over rounds of (app - baseline) in the same round, with [p25, p75].");
    println!();
    println!(
        "| case | baseline | sessionware | tower-sessions | sessionware overhead | \
         tower-sessions overhead | ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for case in Case::ALL {
        let base = series(Variant::Baseline, case);
        let time = |variant| median(&mut series(variant, case).clone()) / 1000.0;
        let overhead = |variant| {
            let mut diffs: Vec<f64> = series(variant, case)
                .iter()
                .zip(base)
                .map(|(app, base)| (app - base) / 1000.0)
                .collect();
            (
                median(&mut diffs),
                percentile(&mut diffs, 0.25),
                percentile(&mut diffs, 0.75),
            )
        };
        let ours = overhead(Variant::Sessionware);
        let theirs = overhead(Variant::TowerSessions);
        let ratio = if theirs.0 > 0.0 {
            format!("{:.2}", ours.0 / theirs.0)
        } else {
            "-".to_owned()
        };
        let show = |(mid, low, high): (f64, f64, f64)| format!("{mid:.3} [{low:.3}, {high:.3}]");
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {} | {} | {ratio} |",
            case.name(),
            time(Variant::Baseline),
            time(Variant::Sessionware),
            time(Variant::TowerSessions),
            show(ours),
            show(theirs),
        );
    }
    println!();
    for (variant, case, what) in [
        (
            Variant::IdentityLayer,
            Case::NoCookie,
            "Any layer through `Router::layer` (tower's `Identity`)",
        ),
        (
            Variant::HandleLayer,
            Case::NoCookie,
            "A layer that only inserts an `Arc` handle into the extensions",
        ),
        (
            Variant::MinimalSession,
            Case::NoCookie,
            "The minimal session layer (bench/src/minimal.rs)",
        ),
        (
            Variant::MinimalSession,
            Case::Read,
            "The minimal session layer (bench/src/minimal.rs)",
        ),
        (
            Variant::MinimalSession,
            Case::Increment,
            "The minimal session layer (bench/src/minimal.rs)",
        ),
        (
            Variant::MinimalSession,
            Case::Forged,
            "The minimal session layer (bench/src/minimal.rs)",
        ),
    ] {
        let base = series(Variant::Baseline, case);
        let mut diffs: Vec<f64> = series(variant, case)
            .iter()
            .zip(base)
            .map(|(app, base)| (app - base) / 1000.0)
            .collect();
        println!(
            "{what}, {}: overhead {:.3} [{:.3}, {:.3}] µs",
            case.name(),
            median(&mut diffs),
            percentile(&mut diffs, 0.25),
            percentile(&mut diffs, 0.75)
        );
    }
    let check_times = &mut times[check_block].clone();
    println!(
        "One cookie check (find the cookie, decode ID and tag, HMAC check; no layer): {:.3} \
         [{:.3}, {:.3}] µs",
        median(check_times) / 1000.0,
        percentile(check_times, 0.25) / 1000.0,
        percentile(check_times, 0.75) / 1000.0,
    );
    let floor_times = &mut times[floor_block].clone();
    let tower_case2: Vec<f64> = series(Variant::TowerSessions, Case::Read)
        .iter()
        .zip(series(Variant::Baseline, Case::Read))
        .map(|(app, base)| (app - base) / 1000.0)
        .collect();
    println!(
        "Floor of a session read (find the cookie, decode ID and tag, HMAC check, SHA-256, \
         map lookup; no layer, no Session): {:.3} [{:.3}, {:.3}] µs; a quarter of \
         tower-sessions' case 2 overhead: {:.3} µs",
        median(floor_times) / 1000.0,
        percentile(floor_times, 0.25) / 1000.0,
        percentile(floor_times, 0.75) / 1000.0,
        median(&mut tower_case2.clone()) / 4.0
    );
}

/// What each thread of a timed run carries.
struct Lane {
    index: usize,
    lanes: usize,
    rng: Rng,
    sessionware_record: sessionware::Record,
    tower_record: tower_sessions::session::Record,
}

/// Runs `op` in a loop on `threads` threads (each with its own current-thread runtime)
/// for `window`, and returns the operations per second of all threads together.
/// Encryption at rest and sealed cookies against the plain memory store, in interleaved
/// rounds (see the module docs).
fn modes(runtime: &Runtime, rounds: usize, per_block: usize) {
    const CASES: [Case; 3] = [Case::Read, Case::Increment, Case::NewSession];
    let apps: Vec<App> = Variant::MODES
        .iter()
        .map(|&variant| runtime.block_on(App::new(variant)))
        .collect();
    let blocks: Vec<(usize, Case)> = (0..apps.len())
        .flat_map(|app| CASES.map(|case| (app, case)))
        .collect();
    let mut times = vec![Vec::with_capacity(rounds); blocks.len()];
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    let mut rng = Rng::new(0x005e_a1ed);
    let started = Instant::now();
    runtime.block_on(async {
        for round in 0..=rounds {
            rng.shuffle(&mut order);
            for &block in &order {
                let (app, case) = blocks[block];
                let start = Instant::now();
                for _ in 0..per_block {
                    apps[app].call(case).await;
                }
                // Round 0 warms up.
                if round > 0 {
                    times[block].push(start.elapsed().as_nanos() as f64 / per_block as f64);
                }
            }
        }
    });
    let series = |variant: Variant, case: Case| -> &Vec<f64> {
        let index = blocks
            .iter()
            .position(|&(app, c)| apps[app].variant == variant && c == case)
            .expect("measured");
        &times[index]
    };
    println!();
    println!(
        "## Modes: {rounds} rounds x {per_block} requests per (app, case), shuffled; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("Overheads over the baseline in µs: medians over rounds of (app - baseline) in");
    println!("the same round, with [p25, p75]; `added` is the median of (mode - plain store).");
    println!();
    println!("| case | plain store | encrypted at rest | added | sealed cookies | added |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for case in CASES {
        let difference = |a: Variant, b: Variant| -> Vec<f64> {
            series(a, case)
                .iter()
                .zip(series(b, case))
                .map(|(a, b)| (a - b) / 1000.0)
                .collect()
        };
        let cell = |mut values: Vec<f64>| -> String {
            let (p25, p50, p75) = (
                percentile(&mut values, 0.25),
                median(&mut values),
                percentile(&mut values, 0.75),
            );
            format!("{p50:.3} [{p25:.3}, {p75:.3}]")
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            case.name(),
            cell(difference(Variant::Sessionware, Variant::Baseline)),
            cell(difference(Variant::SessionwareEncrypted, Variant::Baseline)),
            cell(difference(
                Variant::SessionwareEncrypted,
                Variant::Sessionware
            )),
            cell(difference(Variant::SessionwareSealed, Variant::Baseline)),
            cell(difference(Variant::SessionwareSealed, Variant::Sessionware)),
        );
    }
}

fn per_second<F>(threads: usize, window: Duration, op: F) -> f64
where
    F: AsyncFn(&mut Lane) + Sync,
{
    let barrier = Barrier::new(threads);
    let rates: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let (barrier, op) = (&barrier, &op);
                scope.spawn(move || {
                    let runtime = current_thread_runtime();
                    let mut lane = Lane {
                        index,
                        lanes: threads,
                        rng: Rng::new(0x1a9e + index as u64),
                        sessionware_record: sessionware_record(std::time::SystemTime::now()),
                        tower_record: tower_record(tower_sessions::session::Id(0)),
                    };
                    barrier.wait();
                    runtime.block_on(async {
                        let start = Instant::now();
                        let mut done = 0u64;
                        loop {
                            for _ in 0..64 {
                                op(&mut lane).await;
                            }
                            done += 64;
                            let elapsed = start.elapsed();
                            if elapsed >= window {
                                return done as f64 / elapsed.as_secs_f64();
                            }
                        }
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("worker thread"))
            .collect()
    });
    rates.iter().sum()
}

/// Measures `op` from 1 and from 2 threads, alternating, and prints one table row:
/// median operations per second of each and their ratio.
fn one_vs_two_threads<F>(label: &str, window: Duration, op: F) -> (f64, f64)
where
    F: AsyncFn(&mut Lane) + Sync,
{
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        one.push(per_second(1, window, &op));
        two.push(per_second(2, window, &op));
    }
    let (one, two) = (median(&mut one), median(&mut two));
    println!("| {label} | {one:.0} | {two:.0} | {:.2} |", two / one);
    (one, two)
}

/// Case 2 from 1 and 2 threads.
fn scaling(runtime: &Runtime, window: Duration) {
    println!();
    println!(
        "## Scaling: case 2 (existing session, read one value) from 1 and 2 threads, \
         requests/s, median of {REPEATS} windows of {:.1} s",
        window.as_secs_f64()
    );
    println!();
    println!("| app | 1 thread | 2 threads | 2 / 1 |");
    println!("| --- | ---: | ---: | ---: |");
    let mut rates = Vec::new();
    for variant in [
        Variant::Baseline,
        Variant::MinimalSession,
        Variant::Sessionware,
        Variant::TowerSessions,
    ] {
        let first = runtime.block_on(App::new(variant));
        // Each thread reads its own session, as two clients would.
        let apps = [
            first.clone(),
            runtime.block_on(first.with_own_read_session()),
        ];
        let rate = one_vs_two_threads(variant.name(), window, async |lane: &mut Lane| {
            apps[lane.index].call(Case::Read).await;
        });
        rates.push((variant, rate));
    }
    // The most two threads could give a layered app: its no-layer share of the time scaling
    // as the no-layer app does, and the layer's share perfectly (2x).
    let rate = |wanted: Variant| {
        rates
            .iter()
            .find(|(v, _)| *v == wanted)
            .expect("measured")
            .1
    };
    let (base_one, base_two) = rate(Variant::Baseline);
    println!();
    for variant in [Variant::MinimalSession, Variant::Sessionware] {
        let (one, _) = rate(variant);
        let base_share = one / base_one;
        let bound = 1.0 / (base_share / (base_two / base_one) + (1.0 - base_share) / 2.0);
        println!(
            "Bound for {}: the no-layer work is {:.0}% of its one-thread time; with that \
             part scaling {:.2}x and the layer's 2.00x, two threads give at most {bound:.2}x",
            variant.name(),
            base_share * 100.0,
            base_two / base_one
        );
    }
}

/// Case 6: each store alone, loads and saves from 1 and 2 threads.
fn stores_alone(runtime: &Runtime, sessions: usize, window: Duration) {
    println!();
    println!(
        "## Stores alone: {sessions} live sessions, random keys, operations/s, median of \
         {REPEATS} windows of {:.1} s",
        window.as_secs_f64()
    );
    println!();
    println!("| store, operation | 1 thread | 2 threads | 2 / 1 |");
    println!("| --- | ---: | ---: | ---: |");
    let ours = runtime.block_on(SessionwareStore::filled(sessions, true));
    one_vs_two_threads("sessionware load", window, async |lane: &mut Lane| {
        ours.load(&mut lane.rng).await;
    });
    one_vs_two_threads("sessionware save", window, async |lane: &mut Lane| {
        let Lane {
            rng,
            sessionware_record,
            index,
            lanes,
            ..
        } = lane;
        ours.save(rng, sessionware_record, *index, *lanes).await;
    });
    drop(ours);
    let theirs = runtime.block_on(TowerStore::filled(sessions, true));
    one_vs_two_threads("tower-sessions load", window, async |lane: &mut Lane| {
        theirs.load(&mut lane.rng).await;
    });
    one_vs_two_threads("tower-sessions save", window, async |lane: &mut Lane| {
        let Lane {
            rng,
            tower_record,
            index,
            lanes,
            ..
        } = lane;
        theirs.save(rng, tower_record, *index, *lanes).await;
    });
}

/// Bytes per session of each store, each measured in a fresh process.
fn memory() {
    println!();
    println!("## Memory: resident-set growth of a fresh process filling the store");
    println!();
    println!("| store | sessions | RSS growth (MiB) | bytes per session |");
    println!("| --- | ---: | ---: | ---: |");
    let exe = std::env::current_exe().expect("own path");
    for sessions in [100_000u64, 1_000_000] {
        for store in ["sessionware", "tower-sessions"] {
            let output = Command::new(&exe)
                .args(["--memory-child", store, &sessions.to_string()])
                .output()
                .expect("run the memory child");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let growth: u64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("a byte count");
            println!(
                "| {store} | {sessions} | {:.1} | {:.0} |",
                growth as f64 / (1024.0 * 1024.0),
                growth as f64 / sessions as f64
            );
        }
    }
}

/// In a fresh process: fills `store` with `sessions` sessions and prints the growth of the
/// resident set in bytes.
fn memory_child(store: &str, sessions: usize) {
    let runtime = current_thread_runtime();
    let before = resident_bytes();
    let growth = match store {
        "sessionware" => measure(&runtime, SessionwareStore::filled(sessions, false), before),
        "tower-sessions" => measure(&runtime, TowerStore::filled(sessions, false), before),
        other => panic!("unknown store {other}"),
    };
    println!("{growth}");
}

/// Resident-set growth since `before` once `fill` is done, with the store still alive.
fn measure<T>(runtime: &Runtime, fill: impl Future<Output = T>, before: u64) -> u64 {
    let store = runtime.block_on(fill);
    let after = resident_bytes();
    drop(store);
    after.saturating_sub(before)
}
