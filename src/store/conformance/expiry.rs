//! Expired records: never returned, purged by `delete_expired`.

use super::*;

/// A record is invisible to `load` from its deadline on, before any cleanup.
pub async fn expired_records_are_never_returned<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let mut record = sample_record(None, "{}");
    record.expires_at = now + Duration::from_secs(60);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    assert!(found(store, &key, now).await.is_some());
    let at_deadline = record.expires_at;
    assert!(
        found(store, &key, at_deadline).await.is_none(),
        "load must not return a record at its deadline"
    );
    assert!(
        found(store, &key, at_deadline + Duration::from_secs(3600))
            .await
            .is_none(),
        "load must not return an expired record"
    );
}

/// `delete_expired` removes expired records and keeps live ones.
pub async fn delete_expired_purges_only_expired<S: SessionStore>(store: &S) {
    let now = now_millis();
    let mut expired_keys = Vec::new();
    for _ in 0..5 {
        let key = fresh_key();
        let mut record = sample_record(None, "{}");
        record.expires_at = now + Duration::from_secs(5);
        store
            .create(&key, &record, now_millis())
            .await
            .expect("create failed");
        expired_keys.push(key);
    }
    let live = fresh_key();
    let mut record = sample_record(None, "{}");
    record.expires_at = now + Duration::from_secs(7200);
    store
        .create(&live, &record, now_millis())
        .await
        .expect("create failed");

    let later = now + Duration::from_secs(60);
    let purged = store
        .delete_expired(later)
        .await
        .expect("delete_expired failed");
    assert!(
        purged >= 5,
        "delete_expired reported {purged}, expected at least 5"
    );
    for key in &expired_keys {
        assert!(
            !store
                .delete(key, now_millis())
                .await
                .expect("delete failed"),
            "delete_expired left an expired record behind"
        );
    }
    assert!(
        found(store, &live, later).await.is_some(),
        "delete_expired removed a live record"
    );
}
