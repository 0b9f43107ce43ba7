//! Criterion benchmarks: sessionware against tower-sessions 0.15 and a no-layer baseline,
//! in-process through an axum `Router`, plus the stores alone and the cryptographic floor.
//!
//! ```text
//! cargo bench -p sessionware-bench --bench sessions            # everything, about 5 minutes
//! cargo bench -p sessionware-bench --bench sessions -- case2   # one case (a criterion filter)
//! ```
//!
//! At the end it prints a table of the medians: per case, the time of each app, the
//! overhead of each layer over the baseline, and the ratio of sessionware's overhead to
//! tower-sessions'. The machine this was written on is noisy (criterion medians of one case
//! moved by tens of percent between runs); `benches/rounds.rs` measures the same cases in
//! interleaved rounds, which is steadier. See `docs/performance.md`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use tokio::runtime::Runtime;

use sessionware_bench::stores::{SessionwareStore, TowerStore};
use sessionware_bench::{App, COOKIE_NAME, Case, Rng, Variant};

/// Live sessions in the stores of case 6.
const STORE_SESSIONS: usize = 1_000_000;

fn main() {
    let started = SystemTime::now();
    let mut criterion = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    request_cases(&mut criterion, &runtime);
    floor(&mut criterion);
    stores_alone(&mut criterion, &runtime);
    criterion.final_summary();
    print_summary(started);
}

/// Cases 1 to 5, each with the three apps.
fn request_cases(criterion: &mut Criterion, runtime: &Runtime) {
    let apps: Vec<App> = Variant::ALL
        .iter()
        .map(|&variant| runtime.block_on(App::new(variant)))
        .collect();
    for case in Case::ALL {
        let mut group = criterion.benchmark_group(case.name());
        for app in &apps {
            if !app.variant.measures(case) {
                // A floor is measured only in the cases it bounds.
                continue;
            }
            if case == Case::IncrementGetInsert && app.variant == Variant::TowerSessions {
                // Identical to its case 3: tower-sessions has only get + insert.
                continue;
            }
            if case == Case::NewSession {
                bench_new_sessions(&mut group, runtime, app.variant);
                continue;
            }
            group.bench_function(app.variant.name(), |b| {
                b.to_async(runtime).iter(|| app.call(case));
            });
        }
        group.finish();
    }
}

/// Case 4 grows the store by one session per iteration: each sample starts from a fresh
/// app (built outside the timed loop), so the store holds at most one sample's sessions.
fn bench_new_sessions(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    variant: Variant,
) {
    group.bench_function(variant.name(), |b| {
        b.to_async(runtime).iter_custom(|iters| async move {
            let app = App::new(variant).await;
            let start = Instant::now();
            for _ in 0..iters {
                app.call(Case::NewSession).await;
            }
            start.elapsed()
        });
    });
}

/// The work a request with a session cookie cannot avoid: find the cookie, decode 32
/// bytes of base64, one HMAC-SHA256 with a pre-keyed state, one SHA-256 for the store key,
/// one hash-map lookup.
fn floor(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("floor");
    let mut keyed = Hmac::<Sha256>::new_from_slice(&[7; 32]).expect("any key length");
    keyed.update(b"sessionware/session/v1");
    let id = [42u8; 32];
    let encoded = URL_SAFE_NO_PAD.encode(id);
    let cookie_header = format!("theme=dark; {}={encoded}.tag; lang=en", COOKIE_NAME);
    let mut map = std::collections::HashMap::new();
    map.insert(<[u8; 32]>::from(Sha256::digest(id)), 1u64);

    group.bench_function("hmac_sha256_prekeyed", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&id));
            black_box(mac.finalize().into_bytes())
        });
    });
    group.bench_function("sha256_32_bytes", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&id))));
    });
    group.bench_function("all_of_it", |b| {
        b.iter(|| {
            let value = black_box(&cookie_header)
                .split(';')
                .map(str::trim)
                .find_map(|pair| pair.strip_prefix(COOKIE_NAME)?.strip_prefix('='))
                .expect("cookie present");
            let mut decoded = [0u8; 32];
            URL_SAFE_NO_PAD
                .decode_slice(&value.as_bytes()[..43], &mut decoded)
                .expect("valid base64");
            let mut mac = keyed.clone();
            mac.update(&decoded);
            black_box(mac.finalize().into_bytes());
            let store_key: [u8; 32] = Sha256::digest(decoded).into();
            black_box(map.get(&store_key))
        });
    });
    group.finish();
}

/// Case 6 with one thread: load and save over a million live sessions. The one- and
/// two-thread throughput is in `benches/rounds.rs`.
fn stores_alone(criterion: &mut Criterion, runtime: &Runtime) {
    if !criterion_selects(&["case6", "store"]) {
        // Filling the stores takes seconds; skip it when a filter excludes this group.
        return;
    }
    let mut group = criterion.benchmark_group("case6_store_1M");
    let ours = runtime.block_on(SessionwareStore::filled(STORE_SESSIONS, true));
    group.bench_function("sessionware_load", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let ours = &ours;
            async move {
                let mut rng = Rng::new(iters);
                let start = Instant::now();
                for _ in 0..iters {
                    ours.load(&mut rng).await;
                }
                start.elapsed()
            }
        });
    });
    group.bench_function("sessionware_save", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let ours = &ours;
            async move {
                let mut rng = Rng::new(iters);
                let mut record = sessionware_bench::stores::sessionware_record(ours.now);
                let start = Instant::now();
                for _ in 0..iters {
                    ours.save(&mut rng, &mut record, 0, 1).await;
                }
                start.elapsed()
            }
        });
    });
    drop(ours);
    let theirs = runtime.block_on(TowerStore::filled(STORE_SESSIONS, true));
    group.bench_function("tower-sessions_load", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let theirs = &theirs;
            async move {
                let mut rng = Rng::new(iters);
                let start = Instant::now();
                for _ in 0..iters {
                    theirs.load(&mut rng).await;
                }
                start.elapsed()
            }
        });
    });
    group.bench_function("tower-sessions_save", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let theirs = &theirs;
            async move {
                let mut rng = Rng::new(iters);
                let mut record = sessionware_bench::stores::tower_record(theirs.ids[0]);
                let start = Instant::now();
                for _ in 0..iters {
                    theirs.save(&mut rng, &mut record, 0, 1).await;
                }
                start.elapsed()
            }
        });
    });
    group.finish();
}

/// Whether the command line's filter (criterion's first free argument) can match a group
/// containing one of `names`.
fn criterion_selects(names: &[&str]) -> bool {
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    filter.is_none_or(|filter| {
        names
            .iter()
            .any(|name| name.contains(&filter) || filter.contains(name))
    })
}

/// Prints the medians criterion just measured as one table.
fn print_summary(started: SystemTime) {
    let median = |group: &str, function: &str| read_median_ns(group, function, started);
    println!();
    println!("Medians (criterion), µs per request; overhead = app - baseline");
    println!(
        "| case | baseline | sessionware | tower-sessions | sessionware overhead | tower-sessions overhead | ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for case in Case::ALL {
        let Some(base) = median(case.name(), Variant::Baseline.name()) else {
            continue;
        };
        let ours = median(case.name(), Variant::Sessionware.name());
        let tower_case = if case == Case::IncrementGetInsert {
            Case::Increment
        } else {
            case
        };
        let theirs = median(tower_case.name(), Variant::TowerSessions.name());
        let us = |ns: Option<f64>| ns.map_or("-".to_owned(), |ns| format!("{:.3}", ns / 1000.0));
        let over = |ns: Option<f64>| ns.map(|ns| ns - base);
        let ratio = match (over(ours), over(theirs)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {ratio} |",
            case.name(),
            us(Some(base)),
            us(ours),
            us(theirs),
            us(over(ours)),
            us(over(theirs)),
        );
    }
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
            "The minimal session layer",
        ),
        (
            Variant::MinimalSession,
            Case::Read,
            "The minimal session layer",
        ),
        (
            Variant::MinimalSession,
            Case::Increment,
            "The minimal session layer",
        ),
        (
            Variant::MinimalSession,
            Case::Forged,
            "The minimal session layer",
        ),
    ] {
        if let (Some(floor), Some(base)) = (
            median(case.name(), variant.name()),
            median(case.name(), Variant::Baseline.name()),
        ) {
            println!(
                "{what}, {}: overhead {:.3} µs",
                case.name(),
                (floor - base) / 1000.0
            );
        }
    }
    for (group, functions) in [
        (
            "floor",
            &["hmac_sha256_prekeyed", "sha256_32_bytes", "all_of_it"][..],
        ),
        (
            "case6_store_1M",
            &[
                "sessionware_load",
                "sessionware_save",
                "tower-sessions_load",
                "tower-sessions_save",
            ][..],
        ),
    ] {
        for function in functions {
            if let Some(ns) = median(group, function) {
                println!("{group}/{function}: {:.3} µs", ns / 1000.0);
            }
        }
    }
}

/// The median criterion recorded for `group/function` in this run (a file written since
/// `started`), in nanoseconds.
fn read_median_ns(group: &str, function: &str, started: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Where criterion writes its results; the same rules as criterion's own. `cargo bench`
/// runs this binary in `bench/`, so the workspace's target directory comes from
/// `cargo metadata`, not from the working directory.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(cargo_target_directory)
        .map_or_else(
            || PathBuf::from("target/criterion"),
            |target| target.join("criterion"),
        )
}

/// The workspace's target directory, as `cargo metadata` reports it.
fn cargo_target_directory() -> Option<PathBuf> {
    let output = std::process::Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["target_directory"].as_str().map(PathBuf::from)
}
