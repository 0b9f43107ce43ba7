//! [`ConfigError`]: a mistake in the settings of a key, a layer or a store, reported when it
//! is built. Below every other module: the builders of the layer and of the stores use it.

use std::error::Error as StdError;
use std::fmt;

/// A configuration mistake, reported when a key or a layer is built.
///
/// Each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The signing key has fewer than 32 bytes.
    KeyTooShort {
        /// The length that was given.
        len: usize,
    },
    /// The signing key could not be read: the environment variable is missing or is not
    /// valid base64.
    KeyUnreadable {
        /// Where the key was read from (an environment variable's name, or "base64 input").
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// A cookie named with the `__Host-` prefix has a `Domain` attribute.
    HostPrefixWithDomain,
    /// A cookie named with the `__Host-` prefix has a `Path` other than `/`.
    HostPrefixWithPath,
    /// A `__Host-` or `__Secure-` cookie is not marked `Secure`.
    PrefixWithoutSecure,
    /// `SameSite=None` without `Secure`: browsers reject such cookies.
    SameSiteNoneWithoutSecure,
    /// `Partitioned` without `Secure`: browsers reject such cookies.
    PartitionedWithoutSecure,
    /// The cookie name is empty or contains characters not allowed in a cookie name.
    InvalidCookieName,
    /// The cookie path or domain contains characters not allowed in a cookie attribute.
    InvalidCookieAttribute,
    /// A store setting is invalid (for example a PostgreSQL table name that is not a plain
    /// identifier).
    InvalidStoreSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// A timeout is zero, or the idle timeout exceeds the absolute timeout.
    InvalidTimeout {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyTooShort { len } => write!(
                f,
                "session key has {len} bytes; at least 32 random bytes are required \
                 (generate one with `Key::generate()` or `openssl rand -base64 32`)"
            ),
            Self::KeyUnreadable {
                source_name,
                reason,
            } => write!(
                f,
                "session key from {source_name} could not be read: {reason}; \
                 set it to the base64 encoding of at least 32 random bytes"
            ),
            Self::HostPrefixWithDomain => f.write_str(
                "a `__Host-` cookie must not have a Domain: remove `cookie_domain(..)` \
                 or choose a name without the `__Host-` prefix",
            ),
            Self::HostPrefixWithPath => f.write_str(
                "a `__Host-` cookie must have Path=/: remove `cookie_path(..)` \
                 or choose a name without the `__Host-` prefix",
            ),
            Self::PrefixWithoutSecure => f.write_str(
                "a `__Host-` or `__Secure-` cookie must be Secure: keep Secure on, or choose \
                 a name without the prefix (e.g. `dangerous_insecure_cookie_for_development`)",
            ),
            Self::SameSiteNoneWithoutSecure => f.write_str(
                "SameSite=None requires Secure: keep Secure on or use SameSite=Lax/Strict",
            ),
            Self::PartitionedWithoutSecure => f.write_str(
                "a Partitioned cookie requires Secure: keep Secure on or drop `partitioned`",
            ),
            Self::InvalidCookieName => f.write_str(
                "cookie name must be a non-empty token (letters, digits and !#$%&'*+-.^_`|~)",
            ),
            Self::InvalidCookieAttribute => {
                f.write_str("cookie path and domain must be visible ASCII without `;` or `,`")
            }
            Self::InvalidStoreSetting { setting, reason } => {
                write!(f, "invalid session store setting `{setting}`: {reason}")
            }
            Self::InvalidTimeout { reason } => write!(f, "invalid session timeout: {reason}"),
        }
    }
}

impl StdError for ConfigError {}
