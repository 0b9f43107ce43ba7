//! The per-user index, on stores that have one.

use super::*;

/// `sessions_of`, `revoke_user` (with and without an exception) and `revoke`.
pub async fn user_index_lists_and_revokes<S: SessionStore>(store: &S) {
    let now = now_millis();
    let user = fresh_user();
    let other = fresh_user();
    let keys: Vec<StoreKey> = (0..3).map(|_| fresh_key()).collect();
    for key in &keys {
        store
            .create(key, &sample_record(Some(&user), "{}"), now_millis())
            .await
            .expect("create failed");
    }
    let bystander = fresh_key();
    store
        .create(&bystander, &sample_record(Some(&other), "{}"), now_millis())
        .await
        .expect("create failed");
    let expired = fresh_key();
    let mut record = sample_record(Some(&user), "{}");
    record.expires_at = now - Duration::from_secs(1);
    store
        .create(&expired, &record, now_millis())
        .await
        .expect("create failed");

    let listed: HashSet<SessionHandle> = index(store)
        .sessions_of(&user, now)
        .await
        .expect("sessions_of failed")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    let expected: HashSet<SessionHandle> = keys
        .iter()
        .map(|key| SessionHandle::from_store_key(*key))
        .collect();
    assert_eq!(
        listed, expected,
        "sessions_of must list exactly the live sessions"
    );

    let keep = SessionHandle::from_store_key(keys[0]);
    let revoked = index(store)
        .revoke_user(&user, Some(&keep), now_millis())
        .await
        .expect("revoke_user failed");
    assert_eq!(revoked, 2, "revoke_user must report what it deleted");
    assert!(
        found(store, &keys[0], now).await.is_some(),
        "the kept session"
    );
    for key in &keys[1..] {
        assert!(found(store, key, now).await.is_none(), "a revoked session");
    }
    assert!(
        found(store, &bystander, now).await.is_some(),
        "revoke_user must not touch other users"
    );

    assert!(
        index(store)
            .revoke(&keep, now_millis())
            .await
            .expect("revoke failed")
    );
    assert!(found(store, &keys[0], now).await.is_none());
    assert!(
        !index(store)
            .revoke(&keep, now_millis())
            .await
            .expect("revoke failed")
    );
    assert!(
        index(store)
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed")
            .is_empty()
    );
    assert_eq!(
        index(store)
            .revoke_user(&other, None, now_millis())
            .await
            .expect("revoke_user failed"),
        1
    );
    assert!(found(store, &bystander, now).await.is_none());
}

/// The index follows a session through `rotate` and through a `save` that changes its user.
pub async fn user_index_follows_rotation_and_user_change<S: SessionStore>(store: &S) {
    let now = now_millis();
    let (alice, bob) = (fresh_user(), fresh_user());
    let (old, new) = (fresh_key(), fresh_key());
    let record = sample_record(Some(&alice), "{}");
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    store
        .rotate(&old, &new, &moved, 1, now)
        .await
        .expect("rotate failed");
    let listed: Vec<SessionHandle> = index(store)
        .sessions_of(&alice, now)
        .await
        .expect("sessions_of failed")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    assert_eq!(listed, vec![SessionHandle::from_store_key(new)]);

    let mut switched = moved.clone();
    switched.version = 3;
    switched.user = Some(bob.clone());
    store
        .save(&new, &switched, 2, now)
        .await
        .expect("save failed");
    assert!(
        index(store)
            .sessions_of(&alice, now)
            .await
            .expect("sessions_of failed")
            .is_empty(),
        "a session that changed user must leave the old user's index"
    );
    assert_eq!(
        index(store)
            .revoke_user(&alice, None, now_millis())
            .await
            .expect("revoke_user failed"),
        0,
        "revoking the old user must not delete the session now owned by another"
    );
    assert_eq!(
        index(store)
            .sessions_of(&bob, now)
            .await
            .expect("sessions_of failed")
            .len(),
        1
    );
    index(store)
        .revoke_user(&bob, None, now_millis())
        .await
        .expect("revoke_user failed");
}
