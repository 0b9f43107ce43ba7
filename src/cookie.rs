//! Finding the session cookie in a request, and rendering `Set-Cookie`.

use std::time::Duration;

use http::header::{COOKIE, HeaderMap, HeaderValue};

use crate::config::ConfigError;

/// Cookie values longer than this are ignored without further inspection.
pub(crate) const MAX_COOKIE_VALUE_LEN: usize = 4096;

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only on same-site requests.
    Strict,
    /// Sent on same-site requests and top-level cross-site navigations. The default.
    #[default]
    Lax,
    /// Sent on all requests; requires `Secure`.
    None,
}

/// The session cookie's name and attributes.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "__Host-session".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            same_site: SameSite::Lax,
            partitioned: false,
        }
    }
}

impl CookieConfig {
    /// Checks the combination of settings; browsers silently drop cookies that break these
    /// rules, so a mistake here would otherwise show up as "sessions do not stick".
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(ConfigError::InvalidCookieName);
        }
        let attribute_ok = |value: &str| {
            !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        };
        if !attribute_ok(&self.path) || !self.domain.as_deref().is_none_or(attribute_ok) {
            return Err(ConfigError::InvalidCookieAttribute);
        }
        let host_prefixed = self.name.starts_with("__Host-");
        if host_prefixed && self.domain.is_some() {
            return Err(ConfigError::HostPrefixWithDomain);
        }
        if host_prefixed && self.path != "/" {
            return Err(ConfigError::HostPrefixWithPath);
        }
        if (host_prefixed || self.name.starts_with("__Secure-")) && !self.secure {
            return Err(ConfigError::PrefixWithoutSecure);
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if self.partitioned && !self.secure {
            return Err(ConfigError::PartitionedWithoutSecure);
        }
        Ok(())
    }

    fn builder(&self, value: String) -> cookie::CookieBuilder<'static> {
        let same_site = match self.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        };
        let mut builder = cookie::Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(true)
            .same_site(same_site)
            .partitioned(self.partitioned);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// `Set-Cookie` for a session cookie carrying `value`, with `Max-Age` when given,
    /// rendered entirely by the `cookie` crate: the reference for [`CookieTemplate`].
    #[cfg(test)]
    fn render(&self, value: String, max_age: Option<Duration>) -> HeaderValue {
        let mut builder = self.builder(value);
        if let Some(max_age) = max_age {
            let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            builder = builder.max_age(cookie::time::Duration::seconds(seconds));
        }
        to_header_value(&builder.build())
    }

    /// `Set-Cookie` that removes the session cookie: same name, Path, Domain and Secure, an
    /// empty value, `Max-Age=0` and an `Expires` in the past.
    fn render_removal(&self) -> HeaderValue {
        let mut cookie = self.builder(String::new()).build();
        cookie.make_removal();
        to_header_value(&cookie)
    }
}

/// The session cookie's `Set-Cookie` values, rendered by the `cookie` crate once per layer:
/// a response only splices its value and `Max-Age` into them, cheaper than rendering through
/// `Display` for every response, which formats every attribute again.
#[derive(Debug, Clone)]
pub(crate) struct CookieTemplate {
    /// `name=`
    prefix: String,
    /// `; HttpOnly; SameSite=Lax; Secure; Path=/` and any `Domain`.
    attributes: String,
    removal: HeaderValue,
}

impl CookieTemplate {
    pub(crate) fn new(config: &CookieConfig) -> Self {
        let rendered = config.builder(String::new()).build().to_string();
        let split = rendered.find(';').unwrap_or(rendered.len());
        let (prefix, attributes) = rendered.split_at(split);
        Self {
            prefix: prefix.to_owned(),
            attributes: attributes.to_owned(),
            removal: config.render_removal(),
        }
    }

    /// `Set-Cookie` for a session cookie carrying `value` (signed, so base64 and `.`), with
    /// `Max-Age` when given.
    pub(crate) fn render(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut header =
            String::with_capacity(self.prefix.len() + value.len() + self.attributes.len() + 32);
        header.push_str(&self.prefix);
        header.push_str(value);
        header.push_str(&self.attributes);
        if let Some(max_age) = max_age {
            header.push_str("; Max-Age=");
            header.push_str(&max_age.as_secs().to_string());
        }
        HeaderValue::try_from(header).expect("validated cookie renders as ASCII")
    }

    /// The removal `Set-Cookie`; see [`CookieConfig::render_removal`].
    pub(crate) fn removal(&self) -> HeaderValue {
        self.removal.clone()
    }
}

fn to_header_value(cookie: &cookie::Cookie<'_>) -> HeaderValue {
    // Name, value and attributes were validated (or are base64), so the rendering is
    // visible ASCII and always a valid header value.
    HeaderValue::try_from(cookie.to_string()).expect("validated cookie renders as ASCII")
}

/// RFC 9110 token characters, the ones allowed in a cookie name.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Every value of a cookie named `name` across all `Cookie` headers, in order.
///
/// Works on bytes (header values need not be UTF-8), allocates nothing, and looks at each
/// byte of the headers a bounded number of times: linear in the header size.
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| pairs(header.as_bytes()))
        .filter_map(move |pair| {
            let pair = trim_ows(pair);
            let eq = memchr::memchr(b'=', pair)?;
            let (pair_name, value) = (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..]));
            (pair_name == name.as_bytes()).then_some(value)
        })
}

/// The `;`-separated pieces of one `Cookie` header. `memchr` finds the separators a vector
/// at a time, cheaper than a byte-at-a-time split on every request that carries a cookie.
fn pairs(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(b';', current) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn splits_a_header_like_a_plain_split_on_semicolons() {
        for header in [
            &b""[..],
            b";",
            b";;a=1;",
            b"a=1",
            b"a=1; b=2",
            b" a = 1 ;b=;=c;; d",
            b"\xff;\x00=;",
        ] {
            let expected: Vec<&[u8]> = header.split(|&b| b == b';').collect();
            assert_eq!(pairs(header).collect::<Vec<_>>(), expected, "{header:?}");
        }
    }

    #[test]
    fn finds_the_named_cookie_among_others_and_across_headers() {
        let map = headers(&[
            b"a=1; __Host-session=xyz; b=2",
            b"c=3;__Host-session = second ",
        ]);
        let found: Vec<&[u8]> = cookie_values(&map, "__Host-session").collect();
        assert_eq!(found, vec![&b"xyz"[..], &b"second"[..]]);
        assert_eq!(cookie_values(&map, "missing").count(), 0);
        assert_eq!(cookie_values(&map, "__Host-sessio").count(), 0);
    }

    #[test]
    fn tolerates_junk_and_non_utf8() {
        let map = headers(&[b"\xff\xfe; ;=; novalue; __Host-session=\xc3\x28"]);
        let found: Vec<&[u8]> = cookie_values(&map, "__Host-session").collect();
        assert_eq!(found, vec![&b"\xc3\x28"[..]]);
    }

    #[test]
    fn s25_default_cookie_attributes() {
        let config = CookieConfig::default();
        config.validate().unwrap();
        let rendered = CookieTemplate::new(&config).render("v", Some(Duration::from_secs(60)));
        let text = rendered.to_str().unwrap();
        assert!(text.starts_with("__Host-session=v"), "{text}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(
                text.split("; ").any(|a| a == attribute),
                "{attribute} missing: {text}"
            );
        }
        assert!(!text.contains("Domain"), "{text}");
    }

    #[test]
    fn the_template_renders_what_the_cookie_crate_renders() {
        let configs = [
            CookieConfig::default(),
            CookieConfig {
                name: "sid".into(),
                path: "/app".into(),
                domain: Some("example.com".into()),
                secure: false,
                same_site: SameSite::Strict,
                partitioned: false,
            },
            CookieConfig {
                same_site: SameSite::None,
                partitioned: true,
                ..CookieConfig::default()
            },
        ];
        for config in configs {
            let template = CookieTemplate::new(&config);
            for max_age in [None, Some(Duration::ZERO), Some(Duration::from_secs(1800))] {
                let mut ours: Vec<String> = template
                    .render("abc.def", max_age)
                    .to_str()
                    .unwrap()
                    .split("; ")
                    .map(str::to_owned)
                    .collect();
                let mut theirs: Vec<String> = config
                    .render("abc.def".into(), max_age)
                    .to_str()
                    .unwrap()
                    .split("; ")
                    .map(str::to_owned)
                    .collect();
                assert_eq!(ours[0], theirs[0], "name=value comes first");
                ours.sort();
                theirs.sort();
                assert_eq!(ours, theirs);
            }
            // `Expires` is a year before the moment of rendering: compare the rest.
            let without_expires = |value: HeaderValue| -> Vec<String> {
                value
                    .to_str()
                    .unwrap()
                    .split("; ")
                    .filter(|attribute| !attribute.starts_with("Expires="))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(
                without_expires(template.removal()),
                without_expires(config.render_removal())
            );
        }
    }

    #[test]
    fn removal_keeps_name_path_domain_and_secure() {
        let config = CookieConfig {
            name: "sid".into(),
            path: "/app".into(),
            domain: Some("example.com".into()),
            ..CookieConfig::default()
        };
        let text = CookieTemplate::new(&config)
            .removal()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(text.starts_with("sid=;"), "{text}");
        for attribute in ["Secure", "Path=/app", "Domain=example.com", "Max-Age=0"] {
            assert!(
                text.split("; ").any(|a| a == attribute),
                "{attribute} missing: {text}"
            );
        }
        assert!(text.contains("Expires="), "{text}");
    }

    #[test]
    fn validation_rejects_bad_names_and_attributes() {
        let bad_name = CookieConfig {
            name: "a b".into(),
            ..CookieConfig::default()
        };
        assert_eq!(bad_name.validate(), Err(ConfigError::InvalidCookieName));
        let bad_path = CookieConfig {
            name: "sid".into(),
            path: "/a;b".into(),
            ..CookieConfig::default()
        };
        assert_eq!(
            bad_path.validate(),
            Err(ConfigError::InvalidCookieAttribute)
        );
    }
}
