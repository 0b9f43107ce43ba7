//! The `memory_record` target: the memory store's entry codec.

use crate::store::codec::View;

/// Fuzz target `memory_record`: `data` is an entry of the memory store.
///
/// Checks that whatever decodes re-encodes (every decoded time is one the stores keep)
/// into an entry that decodes to the same record (decode ∘ encode ∘ decode = decode),
/// that this encoding is a fixed point (encode ∘ decode ∘ encode = encode), and that the
/// record's data is the entry's tail.
pub fn memory_record(data: &[u8]) {
    let Ok(view) = View::decode(data) else {
        return;
    };
    let record = view.to_record();
    assert!(
        data.ends_with(&record.data),
        "the data is not the entry's tail"
    );
    let encoded = match View::from_record(&record).encode() {
        Ok(encoded) => encoded,
        Err(error) => panic!("a decoded record does not re-encode: {error}"),
    };
    let again = match View::decode(&encoded) {
        Ok(view) => view.to_record(),
        Err(error) => panic!("a decoded record re-encodes into {encoded:?}: {error}"),
    };
    assert_eq!(again, record, "decode(encode(record)) is not the record");
    let encoded_again = View::from_record(&again)
        .encode()
        .expect("the record encoded once");
    assert_eq!(encoded_again, encoded, "the encoding is not a fixed point");
}
