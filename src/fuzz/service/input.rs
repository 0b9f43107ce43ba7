//! How the target reads its input: the requests, their cookies and other headers.

use std::time::Duration;

use http::header::{COOKIE, HeaderName, HeaderValue};
use http::{Method, Request};

use super::Fixture;
use crate::fuzz::COOKIE_NAME;
use crate::id::SessionId;
use crate::key::COOKIE_VALUE_LEN;

/// Reads an input front to back; past its end every byte is zero.
pub(super) struct Input<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    /// A length byte, then that many bytes (fewer at the end of the input).
    fn chunk(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte()).min(self.bytes.len());
        let (chunk, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        chunk
    }
}

/// How far the clock moves before a request: nothing, a millisecond, past the touch
/// interval, half the idle timeout, past the idle timeout, past the absolute one.
pub(super) const ADVANCES: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_secs(61),
    Duration::from_secs(16 * 60),
    Duration::from_secs(31 * 60),
    Duration::from_secs(13 * 3600),
];

pub(super) const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::HEAD, Method::DELETE];

const OTHER_HEADERS: [&str; 6] = [
    "accept",
    "user-agent",
    "vary",
    "set-cookie",
    "authorization",
    "x-session",
];

const OTHER_NAMES: [&str; 5] = ["session", "__host-session", "__Host-sessio", "", "id"];

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The most signed cookie values an input keeps to send again.
const MAX_POOL: usize = 8;

/// The cookie values the current input has seen set, and the fixed ones.
pub(super) struct Pool {
    pub(super) values: Vec<String>,
}

impl Pool {
    fn pick(&self, input: &mut Input<'_>, fixture: &Fixture) -> String {
        let index = usize::from(input.byte());
        if self.values.is_empty() {
            // A validly signed value for a session that does not exist.
            fixture.current.sign(&SessionId::from_bytes([0x33; 32]))
        } else {
            self.values[index % self.values.len()].clone()
        }
    }

    pub(super) fn add(&mut self, value: &str) {
        if self.values.len() == MAX_POOL {
            self.values.remove(0);
        }
        self.values.push(value.to_owned());
    }
}

/// One `name=value` pair of a `Cookie` header, built from the input.
fn cookie_pair(input: &mut Input<'_>, pool: &Pool, fixture: &Fixture, out: &mut Vec<u8>) {
    let kind = input.byte();
    let mut name = COOKIE_NAME;
    let value: Vec<u8> = match kind % 9 {
        0 | 1 => pool.pick(input, fixture).into_bytes(),
        2 => {
            // Truncated.
            let mut value = pool.pick(input, fixture).into_bytes();
            value.truncate(usize::from(input.byte()) % COOKIE_VALUE_LEN);
            value
        }
        3 => {
            // One character replaced by another base64 character or by the byte given.
            let mut value = pool.pick(input, fixture).into_bytes();
            let position = usize::from(input.byte()) % value.len();
            let replacement = input.byte();
            value[position] = if replacement & 0x80 == 0 {
                BASE64[usize::from(replacement) % 64]
            } else {
                replacement & 0x7f
            };
            value
        }
        4 => {
            // The same ID signed with the previous key (re-issued under the current one).
            let value = pool.pick(input, fixture);
            match fixture.current.verify(value.as_bytes()) {
                Some((id, _)) => fixture.previous.sign(&id).into_bytes(),
                None => fixture
                    .previous
                    .sign(&SessionId::from_bytes([0x44; 32]))
                    .into_bytes(),
            }
        }
        5 => {
            // Over 4096 bytes (or just under), a valid value at its start.
            let mut value = pool.pick(input, fixture).into_bytes();
            let len = 4090 + usize::from(input.byte() % 12);
            value.resize(len, b'A');
            value
        }
        6 => input.chunk().to_vec(),
        7 => {
            name = OTHER_NAMES[usize::from(input.byte()) % OTHER_NAMES.len()];
            pool.pick(input, fixture).into_bytes()
        }
        _ => {
            // A pooled value, with padding or whitespace around it.
            let value = pool.pick(input, fixture);
            match input.byte() % 3 {
                0 => format!("{value}="),
                1 => format!(" \t{value} "),
                _ => format!("\"{value}\""),
            }
            .into_bytes()
        }
    };
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(&value);
}

/// The `Cookie` headers and other headers of one request.
pub(super) fn request_headers(
    input: &mut Input<'_>,
    pool: &Pool,
    fixture: &Fixture,
    request: &mut Request<()>,
) {
    let count = input.byte() % 9;
    for _ in 0..count {
        let kind = input.byte();
        let (name, bytes) = match kind % 5 {
            0..=2 => {
                let mut header = Vec::new();
                let pairs = 1 + input.byte() % 4;
                for index in 0..pairs {
                    if index > 0 {
                        header.extend_from_slice(match kind >> 4 {
                            0..=7 => b"; ",
                            8..=11 => b";",
                            _ => b" ; ",
                        });
                    }
                    cookie_pair(input, pool, fixture, &mut header);
                }
                (COOKIE, header)
            }
            3 => (COOKIE, input.chunk().to_vec()),
            _ => {
                let name = OTHER_HEADERS[usize::from(input.byte()) % OTHER_HEADERS.len()];
                (HeaderName::from_static(name), input.chunk().to_vec())
            }
        };
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            request.headers_mut().append(name, value);
        }
    }
}
