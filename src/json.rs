//! Reading and writing one value of a session's stored JSON object without parsing the rest.
//!
//! A read finds its key in the stored bytes and deserializes only its value; `update` splices
//! the new value into the bytes. Both agree with parsing the object into a map (the property
//! tests below check it), which is what the handle falls back to once a change needs the
//! values parsed.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::SessionError;
use crate::store::StoreError;

pub(crate) fn parse_data(bytes: &[u8]) -> Result<Map<String, Value>, SessionError> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    serde_json::from_slice(bytes)
        .map_err(|error| SessionError::Store(StoreError::corrupt("data", error)))
}

/// Reads the value under `key` straight from a stored JSON object, skipping the other
/// entries without allocating. Agrees with parsing the object into a map and reading the
/// key there (objects written by the layer have no duplicate keys; of duplicates, the last
/// one is returned, as a map would keep it). A value that is not a `T` is a
/// [`SessionError::Serialization`]; a malformed object is a store error, as it is for
/// [`parse_data`].
pub(crate) fn find_value<T: DeserializeOwned>(
    data: &[u8],
    key: &str,
) -> Result<Option<T>, SessionError> {
    if data.is_empty() {
        return Ok(None);
    }
    let in_value = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let found = de::Deserializer::deserialize_map(
        &mut deserializer,
        FindValue {
            key,
            in_value: &in_value,
            value: PhantomData,
        },
    )
    .and_then(|found| deserializer.end().map(|()| found));
    found.map_err(|error| {
        if in_value.get() && error.is_data() {
            SessionError::from(error)
        } else {
            SessionError::Store(StoreError::corrupt("data", error))
        }
    })
}

/// The visitor of [`find_value`] and [`find_value_and_span`]: deserializes the value of
/// `key` (the last one, as a map would keep it), ignores the rest.
struct FindValue<'a, T> {
    key: &'a str,
    /// Set while the value of `key` is being deserialized, to tell a type mismatch in it
    /// from a malformed object.
    in_value: &'a Cell<bool>,
    value: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for FindValue<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of session values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(self.key))? {
            if matches {
                self.in_value.set(true);
                found = Some(map.next_value::<T>()?);
                self.in_value.set(false);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Like [`find_value`], and also returns where the value sits in `data` (its byte range),
/// for [`splice_value`].
pub(crate) fn find_value_and_span<T: DeserializeOwned>(
    data: &[u8],
    key: &str,
) -> Result<(Option<T>, Option<Range<usize>>), SessionError> {
    if data.is_empty() {
        return Ok((None, None));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let in_value = Cell::new(false);
    let finder = FindValue::<&RawValue> {
        key,
        in_value: &in_value,
        value: PhantomData,
    };
    // Any error here is the object's: a raw value takes whatever JSON is there.
    let raw = de::Deserializer::deserialize_map(&mut deserializer, finder)
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(|error| SessionError::Store(StoreError::corrupt("data", error)))?;
    let Some(raw) = raw.map(RawValue::get) else {
        return Ok((None, None));
    };
    // A borrowed `RawValue` is a slice of `data`: its offset is the distance between the
    // two pointers.
    let start = raw.as_ptr() as usize - data.as_ptr() as usize;
    let value = serde_json::from_str(raw)?;
    Ok((Some(value), Some(start..start + raw.len())))
}

/// The JSON object `data` with the value at `span` replaced by `value`, or, without a span,
/// with `"key":value` added at its end. `data` is an object (or empty, which counts as
/// `{}`), as [`find_value_and_span`] checked; key order does not matter to a reader.
pub(crate) fn splice_value(
    data: &[u8],
    key: &str,
    span: Option<Range<usize>>,
    value: &[u8],
) -> Result<Vec<u8>, SessionError> {
    let data = if data.is_empty() { b"{}" } else { data };
    let mut out = Vec::with_capacity(data.len() + key.len() + value.len() + 4);
    match span {
        Some(span) => {
            out.extend_from_slice(&data[..span.start]);
            out.extend_from_slice(value);
            out.extend_from_slice(&data[span.end..]);
        }
        None => {
            // Only whitespace may follow the object's closing brace.
            let close = data
                .iter()
                .rposition(|&byte| byte == b'}')
                .ok_or_else(|| SessionError::Store(StoreError::corrupt("data", NotAnObject)))?;
            let inside = &data[..close];
            let empty = inside.iter().rev().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
            out.extend_from_slice(inside);
            if !empty {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key)?;
            out.push(b':');
            out.extend_from_slice(value);
            out.extend_from_slice(&data[close..]);
        }
    }
    Ok(out)
}

/// Stored session data that is not a JSON object.
#[derive(Debug)]
struct NotAnObject;

impl fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stored session data is not a JSON object")
    }
}

impl std::error::Error for NotAnObject {}

/// Deserializes a map key into whether it equals the wanted one, borrowing it from the
/// input when it has no escapes.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value `find_value` reads, compared with parsing the whole object into a map.
    fn through_map<T: DeserializeOwned>(data: &[u8], key: &str) -> Option<T> {
        parse_data(data)
            .unwrap()
            .get(key)
            .map(|value| T::deserialize(value).unwrap())
    }

    #[test]
    fn reads_one_value_from_stored_json_as_a_parsed_map_would() {
        let data = br#"{"a":1,"n\u00e9":"x","nested":{"a":[1,{"a":2}]},"s":"q\"uo","a":3}"#;
        for key in ["a", "né", "nested", "s", "missing", ""] {
            assert_eq!(
                find_value::<Value>(data, key).unwrap(),
                through_map::<Value>(data, key),
                "key {key:?}"
            );
        }
        assert_eq!(find_value::<u64>(data, "a").unwrap(), Some(3));
        assert_eq!(find_value::<u64>(b"", "a").unwrap(), None);
        assert_eq!(find_value::<u64>(b"{}", "a").unwrap(), None);
    }

    #[test]
    fn tells_a_type_mismatch_from_a_malformed_record() {
        let data = br#"{"a":"text","b":1}"#;
        assert!(matches!(
            find_value::<u64>(data, "a"),
            Err(SessionError::Serialization(_))
        ));
        // Other keys still read, and a mismatch elsewhere does not matter.
        assert_eq!(find_value::<u64>(data, "b").unwrap(), Some(1));
        for malformed in [
            &b"[1,2]"[..],
            b"{\"a\":1",
            b"{\"a\":1}x",
            b"{\"a\" 1}",
            b"null",
        ] {
            let error = find_value::<u64>(malformed, "a").unwrap_err();
            assert!(
                !matches!(error, SessionError::Serialization(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(malformed)
            );
            assert!(parse_data(malformed).is_err());
        }
    }

    /// `data` with `key` set to `value`, by splicing, parsed back into a map.
    fn spliced(data: &[u8], key: &str, value: &Value) -> Map<String, Value> {
        let (_, span) = find_value_and_span::<Value>(data, key).unwrap();
        let value = serde_json::to_vec(value).unwrap();
        parse_data(&splice_value(data, key, span, &value).unwrap()).unwrap()
    }

    /// The same through the map.
    fn through_map_set(data: &[u8], key: &str, value: &Value) -> Map<String, Value> {
        let mut map = parse_data(data).unwrap();
        map.insert(key.to_owned(), value.clone());
        map
    }

    #[test]
    fn splicing_a_value_in_is_setting_it_in_the_parsed_map() {
        let data = br#"{"a":1,"n\u00e9":"x","nested":{"a":[1,{"a":2}]},"s":"q\"uo","a":3}"#;
        let value = serde_json::json!({"new": [1, "two"]});
        for key in ["a", "né", "nested", "s", "missing", "", "q\"uo"] {
            assert_eq!(
                spliced(data, key, &value),
                through_map_set(data, key, &value),
                "key {key:?}"
            );
        }
        for empty in [&b""[..], b"{}", b" { } ", b"{\n}\n"] {
            assert_eq!(
                spliced(empty, "k", &value),
                through_map_set(b"{}", "k", &value),
                "{:?}",
                String::from_utf8_lossy(empty)
            );
        }
        let (found, span) = find_value_and_span::<u64>(br#"{"a":1, "b" : 22 }"#, "b").unwrap();
        assert_eq!((found, span), (Some(22), Some(14..16)));
    }

    #[test]
    fn splicing_refuses_what_reading_refuses() {
        assert!(matches!(
            find_value_and_span::<u64>(br#"{"a":"text"}"#, "a"),
            Err(SessionError::Serialization(_))
        ));
        for malformed in [&b"[1,2]"[..], b"{\"a\":1", b"{\"a\":1}x", b"null"] {
            let error = find_value_and_span::<u64>(malformed, "a").unwrap_err();
            assert!(
                !matches!(error, SessionError::Serialization(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(malformed)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn splicing_agrees_with_the_parsed_map(
            entries in proptest::collection::vec(("[a-c\"\\\\é]{0,3}", proptest::option::of(0u64..5)), 0..8),
            key in "[a-c\"\\\\é]{0,3}",
            value in proptest::option::of(0u64..1000),
        ) {
            let mut object = Map::new();
            for (name, value) in entries {
                object.insert(name, value.map_or(Value::Null, Value::from));
            }
            let data = serde_json::to_vec(&object).unwrap();
            let value = value.map_or(Value::Null, Value::from);
            proptest::prop_assert_eq!(
                find_value_and_span::<Option<u64>>(&data, &key).unwrap().0,
                through_map::<Option<u64>>(&data, &key)
            );
            proptest::prop_assert_eq!(
                spliced(&data, &key, &value),
                through_map_set(&data, &key, &value)
            );
        }

        #[test]
        fn find_value_agrees_with_the_parsed_map(
            entries in proptest::collection::vec(("[a-c\"\\\\é]{0,3}", proptest::option::of(0u64..5)), 0..8),
            key in "[a-c\"\\\\é]{0,3}",
        ) {
            let mut object = Map::new();
            for (name, value) in entries {
                object.insert(name, value.map_or(Value::Null, Value::from));
            }
            let data = serde_json::to_vec(&object).unwrap();
            proptest::prop_assert_eq!(
                find_value::<Option<u64>>(&data, &key).unwrap(),
                through_map::<Option<u64>>(&data, &key)
            );
        }
    }
}
