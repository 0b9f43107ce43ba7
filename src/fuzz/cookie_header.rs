//! The `cookie_header` target: the cookie finder and the signature check.

use http::header::{COOKIE, HeaderMap, HeaderValue};

use super::{COOKIE_NAME, FIXED_ID, cookie_fixture};
use crate::cookie::cookie_values;
use crate::key::COOKIE_VALUE_LEN;

/// The `Cookie` headers of `data`: one per line (`\n`), or `None` if a line is not a valid
/// header value.
fn cookie_headers(data: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in data.split(|&byte| byte == b'\n') {
        headers.append(COOKIE, HeaderValue::from_bytes(line).ok()?);
    }
    Some(headers)
}

/// The values of the cookie `name` in the lines of `data`, by the plainest reading of RFC
/// 6265: split on `;`, trim spaces and tabs, split at the first `=`.
fn reference_cookie_values<'a>(data: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    fn trim(mut bytes: &[u8]) -> &[u8] {
        while let [b' ' | b'\t', rest @ ..] = bytes {
            bytes = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = bytes {
            bytes = rest;
        }
        bytes
    }
    let mut values = Vec::new();
    for line in data.split(|&byte| byte == b'\n') {
        for pair in line.split(|&byte| byte == b';') {
            let pair = trim(pair);
            if let Some(eq) = pair.iter().position(|&byte| byte == b'=')
                && trim(&pair[..eq]) == name.as_bytes()
            {
                values.push(trim(&pair[eq + 1..]));
            }
        }
    }
    values
}

/// Checks the cookie finder on `data` (lines are `Cookie` headers) against the reference
/// reading, and that of the values found only the fixed signed one verifies. Returns the
/// values found, or `None` if `data` is not a set of valid header values.
fn check_cookie_lines(data: &[u8]) -> Option<usize> {
    let (keys, signed) = cookie_fixture();
    let headers = cookie_headers(data)?;
    let found: Vec<&[u8]> = cookie_values(&headers, COOKIE_NAME).collect();
    assert_eq!(
        found,
        reference_cookie_values(data, COOKIE_NAME),
        "the cookie finder disagrees with a plain split of the header"
    );
    let mut verified = 0;
    for value in &found {
        if let Some((id, _)) = keys.verify(value) {
            assert_eq!(
                *value,
                signed.as_bytes(),
                "a value other than the one signed verifies"
            );
            assert_eq!(
                id.as_bytes(),
                &FIXED_ID,
                "the signed value verifies as another ID"
            );
            verified += 1;
        }
    }
    Some(verified)
}

/// Fuzz target `cookie_header`: `data` is the bytes of `Cookie` headers (one per line).
///
/// Checks that the crate's cookie finder returns what a plain split of the headers does,
/// that of everything it finds (and of `data` itself, as one cookie value) only the value
/// the fixed key signed for the fixed ID verifies, that this value still verifies when
/// embedded at a position chosen by `data`, and that one character changed in it does not.
pub fn cookie_header(data: &[u8]) {
    let (keys, signed) = cookie_fixture();
    if let Some((id, _)) = keys.verify(data) {
        assert_eq!(data, signed.as_bytes(), "a forged raw value verifies");
        assert_eq!(id.as_bytes(), &FIXED_ID);
    }
    let Some(verified_before) = check_cookie_lines(data) else {
        return;
    };

    // The signed value embedded as a cookie of its own, at a position `data` chooses, with
    // optional whitespace around it: it is found, and it verifies.
    let choice = data.first().copied().unwrap_or(0);
    let at = match data {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (data.len() + 1),
        _ => data.len(),
    };
    let (before, after) = data.split_at(at);
    let mut embedded = Vec::with_capacity(data.len() + COOKIE_VALUE_LEN + 24);
    embedded.extend_from_slice(before);
    embedded.extend_from_slice(if choice & 1 == 0 { b";" } else { b" ;\t" });
    embedded.extend_from_slice(COOKIE_NAME.as_bytes());
    embedded.extend_from_slice(if choice & 2 == 0 { b"=" } else { b" = " });
    embedded.extend_from_slice(signed.as_bytes());
    embedded.extend_from_slice(if choice & 4 == 0 { b";" } else { b"\t; " });
    embedded.extend_from_slice(after);
    let verified_after =
        check_cookie_lines(&embedded).expect("valid header bytes stay valid when joined");
    assert!(
        verified_after >= 1,
        "the signed value is not found where it was embedded"
    );
    // The split cuts at most one pair of `data`: at most one verified value is lost, and
    // one is added.
    assert!(
        verified_after >= verified_before,
        "embedding a cookie lost verified values"
    );

    // One character of the signed value changed (to one `data` chooses): rejected.
    if let [.., position, replacement] = data {
        let mut tampered = signed.clone().into_bytes();
        let position = usize::from(*position) % tampered.len();
        if tampered[position] != *replacement {
            tampered[position] = *replacement;
            assert!(
                keys.verify(&tampered).is_none(),
                "a value with byte {position} changed still verifies"
            );
        }
    }
}
