//! Builds `service` inputs, the inverse of the target's decoding (`input`), for the seeds.

use super::handler::ROUTES;

/// A request: its route (a path of `ROUTES`), method index, clock advance index and
/// headers.
pub(in crate::fuzz) fn request(
    path: &str,
    method: u8,
    advance: u8,
    headers: &[Vec<u8>],
) -> Vec<u8> {
    let route = ROUTES
        .iter()
        .position(|(route, _)| *route == path)
        .expect("a known route");
    let route = u8::try_from(route).expect("few routes");
    let mut out = vec![
        (route << 2) | method,
        advance,
        u8::try_from(headers.len()).expect("few"),
    ];
    for header in headers {
        out.extend_from_slice(header);
    }
    out
}

/// A `Cookie` header of these pairs, `"; "`-separated.
pub(in crate::fuzz) fn cookies(pairs: &[Vec<u8>]) -> Vec<u8> {
    cookies_separated(0x00, pairs)
}

/// The same with the separator that `kind >> 4` chooses.
pub(in crate::fuzz) fn cookies_separated(kind: u8, pairs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![kind, u8::try_from(pairs.len() - 1).expect("1 to 4 pairs")];
    for pair in pairs {
        out.extend_from_slice(pair);
    }
    out
}

/// A raw `Cookie` header.
pub(in crate::fuzz) fn raw_cookie(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![3];
    out.extend_from_slice(&chunk(bytes));
    out
}

/// Another header (an index of `OTHER_HEADERS`) with a raw value.
pub(in crate::fuzz) fn other(name: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![4, name];
    out.extend_from_slice(&chunk(bytes));
    out
}

fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(bytes.len()).expect("a short chunk")];
    out.extend_from_slice(bytes);
    out
}

pub(in crate::fuzz) fn pooled(index: u8) -> Vec<u8> {
    vec![0, index]
}
pub(in crate::fuzz) fn truncated(index: u8, len: u8) -> Vec<u8> {
    vec![2, index, len]
}
pub(in crate::fuzz) fn tampered(index: u8, position: u8, replacement: u8) -> Vec<u8> {
    vec![3, index, position, replacement]
}
pub(in crate::fuzz) fn previous_key(index: u8) -> Vec<u8> {
    vec![4, index]
}
pub(in crate::fuzz) fn over_long(index: u8, extra: u8) -> Vec<u8> {
    vec![5, index, extra]
}
pub(in crate::fuzz) fn raw_pair(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![6];
    out.extend_from_slice(&chunk(bytes));
    out
}
pub(in crate::fuzz) fn other_name(name: u8, index: u8) -> Vec<u8> {
    vec![7, name, index]
}
pub(in crate::fuzz) fn padded(index: u8, how: u8) -> Vec<u8> {
    vec![8, index, how]
}
