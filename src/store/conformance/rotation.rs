//! Rotation: one step, its refusals, and the marker it leaves.

use super::*;

/// `rotate` leaves a marker under the old key for [`ROTATION_MARKER_LIFETIME`]: loads, saves
/// and rotations of it answer `Moved`, a touch `Conflict`, a create `Collision`; it belongs
/// to nobody's index and expires like a record.
pub async fn rotation_leaves_a_short_lived_marker<S: SessionStore>(store: &S) {
    let (old, new) = (fresh_key(), fresh_key());
    let user = fresh_user();
    let now = now_millis();
    let record = sample_record(Some(&user), r#"{"a":1}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        store.load(&old, now).await.expect("load failed"),
        LoadOutcome::Moved,
        "the old key must hold a rotation marker"
    );
    let mut next = moved.clone();
    next.version = 3;
    assert_eq!(
        store.save(&old, &next, 1, now).await.expect("save failed"),
        SaveOutcome::Moved
    );
    assert_eq!(
        store
            .rotate(&old, &fresh_key(), &next, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Moved
    );
    assert_eq!(
        store
            .touch(&old, 1, now, now + Duration::from_secs(60), now)
            .await
            .expect("touch failed"),
        TouchOutcome::Conflict
    );
    assert_eq!(
        store
            .create(&old, &record, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Collision
    );
    if let Some(index) = store.user_index() {
        let listed = index
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed");
        assert_eq!(
            listed.iter().map(|info| info.handle).collect::<Vec<_>>(),
            vec![SessionHandle::from_store_key(new)],
            "the marker must not be listed"
        );
    }
    assert_eq!(found(store, &new, now).await, Some(moved), "the new record");

    let after = now + ROTATION_MARKER_LIFETIME;
    assert!(
        matches!(
            store.load(&old, after).await.expect("load failed"),
            LoadOutcome::Missing | LoadOutcome::Expired
        ),
        "the marker must expire after ROTATION_MARKER_LIFETIME"
    );
    store.delete(&new, now).await.expect("delete failed");
    store.delete(&old, now).await.expect("delete failed");
}

/// `rotate` leaves the new record, with the contents given, and a marker under the old key.
pub async fn rotate_moves_in_one_step<S: SessionStore>(store: &S) {
    let (old, new) = (fresh_key(), fresh_key());
    let now = now_millis();
    let record = sample_record(None, r#"{"cart":[1,2]}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        store.load(&old, now).await.expect("load failed"),
        LoadOutcome::Moved,
        "the old key must hold only a rotation marker after a rotation"
    );
    assert_eq!(found(store, &new, now).await, Some(moved));
}

/// `rotate` writes nothing on a version conflict, a missing old record or an occupied new key.
pub async fn rotate_refuses_conflicts_and_collisions<S: SessionStore>(store: &S) {
    let now = now_millis();
    let (old, new) = (fresh_key(), fresh_key());
    let record = sample_record(None, r#"{"v":"old"}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 8;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 7, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Conflict
    );
    assert_eq!(found(store, &old, now).await.as_ref(), Some(&record));
    assert_eq!(
        store.load(&new, now).await.expect("load failed"),
        LoadOutcome::Missing
    );

    let occupant = sample_record(None, r#"{"v":"occupant"}"#);
    store
        .create(&new, &occupant, now_millis())
        .await
        .expect("create failed");
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Collision
    );
    assert_eq!(found(store, &old, now).await.as_ref(), Some(&record));
    assert_eq!(found(store, &new, now).await.as_ref(), Some(&occupant));

    let (gone, target) = (fresh_key(), fresh_key());
    assert_eq!(
        store
            .rotate(&gone, &target, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Missing
    );
    assert_eq!(
        store.load(&target, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "a rotation of a missing record must not create the new one"
    );
}
