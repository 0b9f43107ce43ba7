//! Replays the committed fuzz corpus, `fuzz/corpus/<target>/`, through the fuzz targets'
//! entry points in `sessionware::fuzz`, so that CI (which runs no fuzzer) checks every input
//! on every run. Set `SESSIONWARE_FUZZ_STRICT=1` to check without the known issues the
//! targets tolerate.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

/// Runs every file of the target's corpus through `run`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    files.sort();
    for path in &files {
        let data = std::fs::read(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            eprintln!("fuzz target {target} fails on {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn cookie_header_corpus() {
    replay("cookie_header", sessionware::fuzz::cookie_header);
}

#[test]
fn memory_record_corpus() {
    replay("memory_record", sessionware::fuzz::memory_record);
}

#[test]
fn json_value_corpus() {
    replay("json_value", sessionware::fuzz::json_value);
}

#[test]
fn service_corpus() {
    replay("service", sessionware::fuzz::service);
}

const TARGETS: [&str; 4] = ["cookie_header", "memory_record", "json_value", "service"];

/// The seeds that `sessionware::fuzz::seeds` renders are the ones committed.
#[test]
fn the_seed_corpus_is_up_to_date() {
    for target in TARGETS {
        let seeds = sessionware::fuzz::seeds(target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (name, bytes) in seeds {
            let path = corpus_dir(target).join(&name);
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} differs from its seed: run `cargo test --test suite fuzz_corpus -- --ignored \
                 write_seed_corpus` and commit the result",
                path.display()
            );
        }
    }
}

/// Writes the seeds into `fuzz/corpus/<target>/seed-*`, replacing the old seeds (the
/// inputs the fuzzer found, named by their hash, stay).
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn write_seed_corpus() {
    for target in TARGETS {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for entry in std::fs::read_dir(&dir).expect("read the corpus directory") {
            let path = entry.expect("a directory entry").path();
            let is_seed = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("seed-"));
            if is_seed {
                std::fs::remove_file(&path).expect("remove an old seed");
            }
        }
        for (name, bytes) in sessionware::fuzz::seeds(target) {
            std::fs::write(dir.join(name), bytes).expect("write a seed");
        }
    }
}
