//! The seed corpus: the inputs committed under `fuzz/corpus/<target>/`.

#[cfg(feature = "memory-store")]
use std::time::{Duration, UNIX_EPOCH};

use super::{COOKIE_NAME, FIXED_ID, cookie_fixture, keyring};
use crate::id::SessionId;
#[cfg(feature = "memory-store")]
use crate::{Expiry, store::codec::View};

/// The seed inputs of the committed corpus of `target`, as (file name, bytes); empty for an
/// unknown target. `tests/suite/fuzz_corpus.rs` checks that they are committed under
/// `fuzz/corpus/<target>/`, and its ignored test `write_seed_corpus` writes them there.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let seeds = match target {
        "cookie_header" => cookie_header_seeds(),
        "json_value" => json_value_seeds(),
        #[cfg(feature = "memory-store")]
        "memory_record" => memory_record_seeds(),
        #[cfg(feature = "memory-store")]
        "service" => service_seeds(),
        _ => Vec::new(),
    };
    seeds
        .into_iter()
        .map(|(name, bytes)| (format!("seed-{name}"), bytes))
        .collect()
}

fn cookie_header_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (_, signed) = cookie_fixture();
    let signed = signed.as_str();
    let base64 = |index: usize| {
        char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index])
    };
    let position = |c: char| {
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .find(c)
            .expect("base64")
    };
    // The last character of the ID with a trailing bit set: the same ID bytes, encoded
    // non-canonically.
    let mut non_canonical: Vec<char> = signed.chars().collect();
    non_canonical[42] = base64(position(non_canonical[42]) | 1);
    let non_canonical: String = non_canonical.into_iter().collect();
    let standard_alphabet = signed.replace('-', "+").replace('_', "/");
    let other_key = keyring(&[0x99; 32]).sign(&SessionId::from_bytes(FIXED_ID));
    let many_pairs: String = (0..200).map(|i| format!("k{i}=v{i}; ")).collect();
    let long_value = format!("{COOKIE_NAME}={}", "A".repeat(4100));
    let duplicates = format!("{COOKIE_NAME}={signed}; ").repeat(12);
    let seeds: Vec<(&'static str, String)> = vec![
        ("empty", String::new()),
        ("bare-signed-value", signed.to_owned()),
        ("signed", format!("{COOKIE_NAME}={signed}")),
        ("among-others", format!("a=1; {COOKIE_NAME}={signed}; b=2")),
        (
            "whitespace",
            format!(" \t{COOKIE_NAME} \t=\t {signed} \t; c=3"),
        ),
        ("two-headers", format!("a=1\n{COOKIE_NAME}={signed}")),
        (
            "three-headers-split",
            format!("x=1;\n;{COOKIE_NAME}={signed};\n{COOKIE_NAME}=second"),
        ),
        ("duplicates", duplicates),
        ("long-value", long_value),
        (
            "long-signed-prefix",
            format!("{COOKIE_NAME}={signed}{}", "B".repeat(4096)),
        ),
        (
            "non-canonical-base64",
            format!("{COOKIE_NAME}={non_canonical}"),
        ),
        (
            "standard-alphabet",
            format!("{COOKIE_NAME}={standard_alphabet}"),
        ),
        (
            "padded",
            format!("{COOKIE_NAME}={}=.{}=", &signed[..43], &signed[44..]),
        ),
        (
            "no-dot",
            format!("{COOKIE_NAME}={}{}", &signed[..43], &signed[44..]),
        ),
        ("truncated", format!("{COOKIE_NAME}={}", &signed[..86])),
        ("one-longer", format!("{COOKIE_NAME}={signed}A")),
        ("other-key", format!("{COOKIE_NAME}={other_key}")),
        ("quoted", format!("{COOKIE_NAME}=\"{signed}\"")),
        (
            "other-names",
            format!("__host-session={signed}; __Host-session2={signed}; x__Host-session={signed}"),
        ),
        (
            "empty-pairs",
            "=;=;;;; ;=x; novalue; __Host-session=".to_owned(),
        ),
        ("many-pairs", many_pairs),
        (
            "swapped-halves",
            format!("{COOKIE_NAME}={}.{}", &signed[44..], &signed[..43]),
        ),
    ];
    let mut seeds: Vec<(&'static str, Vec<u8>)> = seeds
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect();
    seeds.push((
        "non-utf8",
        b"\xff\xfe; ;=; novalue; __Host-session=\xc3\x28; \x80=\x81".to_vec(),
    ));
    seeds
}

fn json_value_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    let long_key = "k".repeat(32);
    let seeds: Vec<(&'static str, &str, String)> = vec![
        ("one", "a", r#"{"a":1}"#.to_owned()),
        ("empty-data", "a", String::new()),
        ("empty-object", "a", "{}".to_owned()),
        ("spaced-empty-object", "k", " {\n\t} \r\n".to_owned()),
        (
            "missing",
            "missing",
            r#"{"a":1,"b":[true,false,null]}"#.to_owned(),
        ),
        ("duplicates", "a", r#"{"a":1,"b":2,"a":3}"#.to_owned()),
        (
            "escaped-keys",
            "né",
            r#"{"a":1,"n\u00e9":"x","nested":{"a":[1,{"a":2}]},"s":"q\"uo","a":3}"#.to_owned(),
        ),
        (
            "quote-key",
            "q\"uo",
            r#"{"q\"uo":{"x":"y"},"q\u0022uo":[2]}"#.to_owned(),
        ),
        ("empty-key", "", r#"{"":"empty","a":1}"#.to_owned()),
        (
            "nested",
            "nested",
            r#"{"nested":{"a":[1,{"a":2}],"b":{"c":{"d":[]}}},"z":0}"#.to_owned(),
        ),
        ("deep", "a", deep),
        ("spaced", "b", r#" { "a" : 1 , "b" : 22 } "#.to_owned()),
        (
            "unicode",
            "é",
            r#"{"é":"\u00e9\ud83d\ude00","a":"tab\tnewline\n"}"#.to_owned(),
        ),
        ("string-value", "a", r#"{"a":"text","b":1}"#.to_owned()),
        ("max-u64", "a", r#"{"a":18446744073709551615}"#.to_owned()),
        ("over-u64", "a", r#"{"a":18446744073709551616}"#.to_owned()),
        ("negative", "a", r#"{"a":-1,"b":-0}"#.to_owned()),
        (
            "floats",
            "a",
            r#"{"a":1.5,"b":1e308,"c":-2.5E-3}"#.to_owned(),
        ),
        ("long-key", "k", format!(r#"{{"{long_key}":1,"k":2}}"#)),
        ("array", "a", "[1,2]".to_owned()),
        ("null", "a", "null".to_owned()),
        ("unclosed", "a", r#"{"a":1"#.to_owned()),
        ("trailing", "a", r#"{"a":1}x"#.to_owned()),
        ("no-colon", "a", r#"{"a" 1}"#.to_owned()),
        ("trailing-comma", "a", r#"{"a":1,}"#.to_owned()),
        ("bad-escape", "b", r#"{"a":"\x","b":1}"#.to_owned()),
        (
            "control-character",
            "b",
            "{\"a\":\"\u{1}\",\"b\":1}".to_owned(),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, key, json)| {
            let mut bytes = vec![u8::try_from(key.len()).expect("a short key")];
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(json.as_bytes());
            (name, bytes)
        })
        .collect()
}

#[cfg(feature = "memory-store")]
fn memory_record_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let at = UNIX_EPOCH + Duration::from_millis(1_750_000_000_123);
    let exact = UNIX_EPOCH + Duration::new(1_750_000_000, 123_456_789);
    let record = |user: Option<&str>, label: Option<&str>, expiry, data: &[u8]| crate::Record {
        version: 1,
        user: user.map(str::to_owned),
        created_at: at,
        last_active: at,
        expires_at: at + Duration::from_secs(1800),
        expiry,
        data: data.to_vec(),
        label: label.map(str::to_owned),
    };
    let encode = |record: &crate::Record| {
        View::from_record(record)
            .encode()
            .expect("a seed record encodes")
            .into_vec()
    };
    let expiries: [Option<Expiry>; 4] = [
        None,
        Some(Expiry::OnInactivity(Duration::new(600, 0))),
        Some(Expiry::AtDateTime(exact)),
        Some(Expiry::OnBrowserClose),
    ];
    let names: [[&'static str; 4]; 4] = [
        ["none", "idle", "at", "browser"],
        ["user-none", "user-idle", "user-at", "user-browser"],
        ["label-none", "label-idle", "label-at", "label-browser"],
        [
            "user-label-none",
            "user-label-idle",
            "user-label-at",
            "user-label-browser",
        ],
    ];
    let owners = [
        (None, None),
        (Some("user-42"), None),
        (None, Some("Firefox on Linux")),
        (Some("ünïcode user"), Some("ünïcode label")),
    ];
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for (row, (user, label)) in owners.into_iter().enumerate() {
        for (column, expiry) in expiries.iter().enumerate() {
            let record = record(user, label, *expiry, br#"{"visits":5}"#);
            seeds.push((names[row][column], encode(&record)));
        }
    }
    let edge = crate::Record {
        version: u64::MAX,
        created_at: UNIX_EPOCH,
        last_active: UNIX_EPOCH + Duration::from_millis(1),
        expires_at: UNIX_EPOCH + Duration::from_millis((1 << 53) - 1),
        ..record(
            Some(""),
            Some(""),
            Some(Expiry::OnInactivity(Duration::new(u64::MAX, 999_999_999))),
            b"",
        )
    };
    seeds.push(("edge-times", encode(&edge)));
    let large = record(
        Some("u"),
        None,
        None,
        format!(r#"{{"cart":"{}"}}"#, "x".repeat(1500)).as_bytes(),
    );
    seeds.push(("large-data", encode(&large)));
    let valid = encode(&record(Some("user"), Some("label"), None, b"{}"));
    seeds.push(("truncated", valid[..valid.len() - 4].to_vec()));
    // flags (on inactivity), version, three times, idle seconds, then bad nanoseconds.
    let mut bad_nanos = vec![0b0000_0100];
    bad_nanos.extend_from_slice(&[0; 8 + 3 * 8 + 8]);
    bad_nanos.extend_from_slice(&1_000_000_000_u32.to_le_bytes());
    seeds.push(("bad-nanos", bad_nanos));
    // A time past 2^53 ms, which no store keeps.
    let mut far_time = vec![0x00];
    far_time.extend_from_slice(&[0; 8]);
    far_time.extend_from_slice(&(1_u64 << 53).to_le_bytes());
    far_time.extend_from_slice(&[0; 16]);
    seeds.push(("time-out-of-range", far_time));
    seeds.push(("unknown-flags", vec![0xff; 40]));
    let mut long_user = valid.clone();
    long_user[1 + 8 + 24..1 + 8 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    seeds.push(("user-length-out-of-range", long_user));
    seeds.push(("empty", Vec::new()));
    seeds
}

#[cfg(feature = "memory-store")]
fn service_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use super::service::encode::*;
    // Clock advances: 0 none, 1 a millisecond, 2 past the touch interval, 3 half the
    // idle timeout, 4 past the idle timeout, 5 past the absolute timeout.
    let get = 0;
    let post = 1;
    let with = |index: u8| vec![cookies(&[pooled(index)])];
    let seeds: Vec<(&'static str, Vec<Vec<u8>>)> = vec![
        ("untouched", vec![request("/", get, 0, &[])]),
        (
            "insert-read-count-login-destroy",
            vec![
                request("/insert", post, 0, &[]),
                request("/read", get, 1, &with(0)),
                request("/count", post, 1, &with(0)),
                request("/login/alice", post, 1, &with(0)),
                request("/read", get, 1, &with(1)),
                request("/destroy", post, 1, &with(1)),
            ],
        ),
        (
            "replay-after-destroy",
            vec![
                request("/insert", post, 0, &[]),
                request("/destroy", post, 0, &with(0)),
                request("/read", get, 0, &with(0)),
            ],
        ),
        (
            "touch",
            vec![
                request("/count", post, 0, &[]),
                request("/read", get, 2, &with(0)),
                request("/read", get, 3, &with(0)),
                request("/read", get, 2, &with(0)),
            ],
        ),
        (
            "idle-and-absolute-timeouts",
            vec![
                request("/insert", post, 0, &[]),
                request("/read", get, 4, &with(0)),
                request("/login/bob", post, 0, &[]),
                request("/count", post, 3, &with(1)),
                request("/read", get, 5, &with(1)),
            ],
        ),
        (
            "login-switch-user",
            vec![
                request("/login/alice", post, 0, &[]),
                request("/insert", post, 0, &with(0)),
                request("/login/bob", post, 0, &with(0)),
                request("/login/bob", post, 0, &with(1)),
                request("/read", get, 0, &with(0)),
                request("/read", get, 0, &with(2)),
            ],
        ),
        (
            "cycle-and-mixed",
            vec![
                request("/insert", post, 0, &[]),
                request("/cycle", post, 0, &with(0)),
                request("/read", get, 0, &with(0)),
                request("/mixed", post, 0, &with(1)),
                request("/mixed", post, 2, &with(2)),
                request("/mixed", post, 0, &[]),
            ],
        ),
        (
            "rejected-cookies",
            vec![
                request("/insert", post, 0, &[]),
                request("/read", get, 0, &[cookies(&[truncated(0, 86)])]),
                request("/read", get, 0, &[cookies(&[tampered(0, 50, 7)])]),
                request("/read", get, 0, &[cookies(&[tampered(0, 42, 0x81)])]),
                request("/read", get, 0, &[cookies(&[over_long(0, 6)])]),
                request("/read", get, 0, &[cookies(&[padded(0, 0), padded(0, 2)])]),
            ],
        ),
        (
            "previous-key",
            vec![
                request("/count", post, 0, &[]),
                request("/", get, 0, &[cookies(&[previous_key(0)])]),
                request("/read", get, 0, &[cookies(&[previous_key(0)])]),
                request("/count", post, 0, &[cookies(&[previous_key(0), pooled(0)])]),
                request("/", get, 0, &[cookies(&[previous_key(7)])]),
            ],
        ),
        (
            "duplicates-over-the-cap",
            vec![
                request("/insert", post, 0, &[]),
                request(
                    "/read",
                    get,
                    0,
                    &[
                        cookies(&[pooled(0), pooled(0), pooled(0), pooled(0)]),
                        cookies(&[pooled(0), pooled(0), pooled(0), pooled(0)]),
                        cookies(&[pooled(0)]),
                    ],
                ),
                request(
                    "/read",
                    get,
                    0,
                    &[
                        cookies(&[pooled(0), pooled(0), pooled(0), pooled(0)]),
                        cookies_separated(0x80, &[pooled(0), truncated(0, 3), pooled(0)]),
                    ],
                ),
            ],
        ),
        (
            "two-valid-cookies",
            vec![
                request("/insert", post, 0, &[]),
                request("/count", post, 0, &[]),
                request("/read", get, 0, &[cookies(&[pooled(0), pooled(1)])]),
                request(
                    "/count",
                    post,
                    0,
                    &[cookies(&[pooled(1)]), cookies(&[pooled(0)])],
                ),
            ],
        ),
        (
            "expiries",
            vec![
                request("/insert", post, 0, &[]),
                request("/expiry/at", post, 0, &with(0)),
                request("/read", get, 3, &with(0)),
                request("/expiry/browser", post, 0, &[]),
                request("/expiry/idle", post, 3, &with(1)),
                request("/expiry/none", post, 4, &with(1)),
            ],
        ),
        (
            "server-errors",
            vec![
                request("/insert", post, 0, &[]),
                request("/fail", post, 0, &with(0)),
                request("/fail", post, 0, &[]),
                request("/fail-after-read", get, 0, &with(0)),
                request("/login/alice", post, 0, &with(0)),
                request("/fail", post, 0, &with(1)),
            ],
        ),
        (
            "capacity",
            vec![
                request("/login/alice", post, 0, &[]),
                request("/login/alice", post, 0, &[]),
                request("/login/bob", post, 0, &[]),
                request("/login/bob", post, 0, &[]),
                request("/login/alice", post, 0, &[]),
                request("/count", post, 0, &[]),
            ],
        ),
        (
            "eviction",
            vec![
                request("/insert", post, 0, &[]),
                request("/count", post, 1, &[]),
                request("/insert", post, 1, &[]),
                request("/login/bob", post, 1, &[]),
                request("/count", post, 1, &[]),
                request("/read", get, 0, &with(0)),
            ],
        ),
        (
            "vary",
            vec![
                request("/vary", get, 0, &[]),
                request("/insert", post, 0, &[]),
                request("/vary", get, 0, &with(0)),
            ],
        ),
        (
            "destroy-then-insert-remove-clear",
            vec![
                request("/insert", post, 0, &[]),
                request("/remove", post, 0, &with(0)),
                request("/count", post, 0, &with(0)),
                request("/clear", post, 0, &with(0)),
                request("/destroy-then-insert", post, 0, &with(0)),
                request("/destroy-then-insert", post, 0, &[]),
            ],
        ),
        (
            "unknown-session",
            vec![
                request("/read", get, 0, &with(0)),
                request("/count", post, 0, &with(0)),
                request("/", get, 0, &with(0)),
            ],
        ),
        (
            "raw-and-other-headers",
            vec![
                request("/insert", post, 0, &[]),
                request(
                    "/read",
                    get,
                    0,
                    &[
                        raw_cookie(b"a=1; __Host-session=; =;;"),
                        other(0, b"text/html"),
                        other(3, b"__Host-session=forged"),
                        other(2, b"cookie"),
                        cookies(&[other_name(0, 0), other_name(1, 0), raw_pair(b"\xff\x80")]),
                        cookies_separated(0xc0, &[pooled(0), raw_pair(b"junk")]),
                    ],
                ),
                request("/count", 3, 0, &[raw_cookie(b"\x7f\x00bad")]),
            ],
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, requests)| (name, requests.concat()))
        .collect()
}
