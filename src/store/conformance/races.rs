//! Racing writers, and the futures of stores that answer at once.

use super::*;

/// Of many saves racing on one version, exactly one wins.
pub async fn concurrent_saves_admit_one_winner<S: SessionStore + Clone>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    store
        .create(&key, &sample_record(None, "{}"), now_millis())
        .await
        .expect("create failed");
    let attempts = (0..16).map(|i| {
        let mut record = sample_record(None, &format!(r#"{{"writer":{i}}}"#));
        record.version = 2;
        let store = store.clone();
        async move {
            store
                .save(&key, &record, 1, now)
                .await
                .expect("save failed")
        }
    });
    let outcomes = join_all(attempts).await;
    let winners = outcomes
        .iter()
        .filter(|outcome| **outcome == SaveOutcome::Saved)
        .count();
    assert_eq!(winners, 1, "exactly one racing save must win: {outcomes:?}");
}

/// Of many creates racing on one key, exactly one wins.
pub async fn concurrent_creates_admit_one_winner<S: SessionStore + Clone>(store: &S) {
    let key = fresh_key();
    let attempts = (0..16).map(|i| {
        let record = sample_record(None, &format!(r#"{{"creator":{i}}}"#));
        let store = store.clone();
        async move {
            store
                .create(&key, &record, now_millis())
                .await
                .expect("create failed")
        }
    });
    let outcomes = join_all(attempts).await;
    let winners = outcomes
        .iter()
        .filter(|outcome| **outcome == CreateOutcome::Created)
        .count();
    assert_eq!(
        winners, 1,
        "exactly one racing create must win: {outcomes:?}"
    );
}

/// Runs the futures as separate tokio tasks (in parallel on a multi-threaded runtime) and
/// collects their outputs in order.
async fn join_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a racing task panicked"));
    }
    outputs
}

/// A store that says it [is immediate](SessionStore::is_immediate) returns futures that are
/// ready at once: polled once, each operation is complete.
pub async fn immediate_futures_are_ready<S: SessionStore>(store: &S) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn now_or_never<T>(future: impl Future<Output = T>) -> Option<T> {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => Some(value),
            Poll::Pending => None,
        }
    }

    if !store.is_immediate() {
        return;
    }
    let now = now_millis();
    let (key, moved_to) = (fresh_key(), fresh_key());
    let record = sample_record(Some(&fresh_user()), r#"{"via":"ready"}"#);
    let pending = "an immediate store returned a pending future";
    assert_eq!(
        now_or_never(store.create(&key, &record, now))
            .expect(pending)
            .expect("create failed"),
        CreateOutcome::Created
    );
    assert_eq!(
        now_or_never(store.load(&key, now))
            .expect(pending)
            .expect("load failed"),
        LoadOutcome::Found(record.clone())
    );
    let mut next = record.clone();
    next.version = 2;
    assert_eq!(
        now_or_never(store.save(&key, &next, 1, now))
            .expect(pending)
            .expect("save failed"),
        SaveOutcome::Saved
    );
    assert_eq!(
        now_or_never(store.touch(&key, 2, now, now + Duration::from_secs(60), now))
            .expect(pending)
            .expect("touch failed"),
        TouchOutcome::Touched
    );
    let mut moved = next.clone();
    moved.version = 3;
    assert_eq!(
        now_or_never(store.rotate(&key, &moved_to, &moved, 2, now))
            .expect(pending)
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert!(
        now_or_never(store.delete(&moved_to, now))
            .expect(pending)
            .expect("delete failed")
    );
    assert!(
        now_or_never(store.delete(&key, now))
            .expect(pending)
            .expect("delete failed")
    );
    now_or_never(store.delete_expired(now))
        .expect(pending)
        .expect("delete_expired failed");
}

/// `ping` of a working store succeeds, or says the store does not check
/// ([`StoreError::Unsupported`](crate::store::StoreError::Unsupported), the default).
pub async fn ping_answers_when_the_store_is_up<S: SessionStore>(store: &S) {
    match store.ping().await {
        Ok(()) | Err(crate::store::StoreError::Unsupported { operation: "ping" }) => {}
        Err(error) => panic!("ping of a working store failed: {error}"),
    }
}
