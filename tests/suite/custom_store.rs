//! The one-file store of `examples/custom_store.rs` (shown in `docs/custom-store.md`): it
//! passes the conformance suite, serves a layer, and its missing per-user index is a typed
//! error at run time.

#[path = "../../examples/custom_store.rs"]
#[allow(dead_code, unreachable_pub)]
mod example;

use axum::http::StatusCode;
use sessionware::store::conformance::run_all;
use sessionware::{Key, SessionLayer};

use crate::common::{Client, app};
use example::HashMapStore;

#[tokio::test(flavor = "multi_thread")]
async fn the_example_store_conforms() {
    run_all(&HashMapStore::default()).await;
}

#[tokio::test]
async fn the_example_store_serves_a_layer_and_its_missing_index_is_unsupported() {
    let app = app().layer(SessionLayer::new(HashMapStore::default(), Key::generate()));
    let mut client = Client::new(app);
    assert_eq!(client.send("POST", "/set/k/v").await.status, StatusCode::OK);
    assert_eq!(client.send("GET", "/get/k").await.body, "v");
    client.send("POST", "/login/alice").await;
    let listed = client.send("GET", "/sessions").await;
    assert_eq!(listed.status, StatusCode::NOT_IMPLEMENTED, "{listed:?}");
}

#[test]
fn the_docs_show_the_example_file_as_it_is() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/custom-store.md")).expect("the doc");
    let example =
        std::fs::read_to_string(root.join("examples/custom_store.rs")).expect("the example");
    let start = doc.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let end = start + doc[start..].find("\n```").expect("the block's end") + 1;
    assert_eq!(
        &doc[start..end],
        example,
        "docs/custom-store.md differs from the example"
    );
}
