//! Create, load, save, touch and delete of one record.

use super::*;

/// `load` of a key never written is `Missing`.
pub async fn load_of_missing_key<S: SessionStore>(store: &S) {
    let outcome = store
        .load(&fresh_key(), now_millis())
        .await
        .expect("load failed");
    assert_eq!(outcome, LoadOutcome::Missing, "load of a missing key");
}

/// What `create` writes, `load` returns exactly (all fields, data bytes included).
pub async fn create_then_load_round_trips<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let mut record = sample_record(Some(&fresh_user()), r#"{"a":1,"text":"é \" \\ ünïcode"}"#);
    record.expiry = Some(crate::Expiry::OnInactivity(Duration::from_secs(90)));
    assert_eq!(
        store
            .create(&key, &record, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Created
    );
    let loaded = found(store, &key, now_millis()).await;
    assert_eq!(
        loaded.as_ref(),
        Some(&record),
        "load must return what create wrote"
    );

    let key = fresh_key();
    let mut big = String::from("{");
    for i in 0..2000 {
        big.push_str(&format!("\"k{i}\":\"{}\",", "x".repeat(16)));
    }
    big.push_str("\"end\":null}");
    let record = sample_record(None, &big);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    assert_eq!(
        found(store, &key, now_millis()).await.as_ref(),
        Some(&record),
        "a 40 KB record must round-trip"
    );
}

/// A record's label comes back as written from `load` (through `save`, which may change or
/// drop it, and `rotate`), and from `sessions_of` on a store with a per-user index.
pub async fn labels_are_kept_verbatim<S: SessionStore>(store: &S) {
    let (key, new) = (fresh_key(), fresh_key());
    let user = fresh_user();
    let now = now_millis();
    let mut record = sample_record(Some(&user), "{}");
    record.label = Some("Firefox on Linux · ünïcode \"quoted\" =".to_owned());
    store
        .create(&key, &record, now)
        .await
        .expect("create failed");
    assert_eq!(found(store, &key, now).await.as_ref(), Some(&record));
    if let Some(index) = store.user_index() {
        let listed = index
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed");
        let labels: Vec<Option<&str>> = listed.iter().map(|info| info.label.as_deref()).collect();
        assert_eq!(
            labels,
            [record.label.as_deref()],
            "sessions_of lists the label"
        );
    }
    for (version, label) in [
        (2, None),
        (3, Some(String::new())),
        (4, Some("x".repeat(200))),
    ] {
        let previous = record.version;
        record.version = version;
        record.label = label;
        assert_eq!(
            store
                .save(&key, &record, previous, now)
                .await
                .expect("save failed"),
            SaveOutcome::Saved
        );
        assert_eq!(
            found(store, &key, now).await.as_ref(),
            Some(&record),
            "save must write the label as given"
        );
    }
    let mut moved = record.clone();
    moved.version = 5;
    assert_eq!(
        store
            .rotate(&key, &new, &moved, 4, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        found(store, &new, now).await,
        Some(moved),
        "rotate keeps the label"
    );
}

/// `create` on an occupied key reports a collision and leaves the record untouched.
pub async fn create_never_overwrites<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let original = sample_record(None, r#"{"owner":"first"}"#);
    store
        .create(&key, &original, now_millis())
        .await
        .expect("create failed");
    let intruder = sample_record(None, r#"{"owner":"second"}"#);
    assert_eq!(
        store
            .create(&key, &intruder, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Collision,
        "create over an existing record must report a collision"
    );
    assert_eq!(
        found(store, &key, now_millis()).await,
        Some(original),
        "a collision must leave the existing record untouched"
    );
}

/// `save` writes only when the stored version is the expected one.
pub async fn save_is_compare_and_swap<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let first = sample_record(None, r#"{"n":1}"#);
    store
        .create(&key, &first, now_millis())
        .await
        .expect("create failed");

    let mut second = first.clone();
    second.version = 2;
    second.data = br#"{"n":2}"#.to_vec();
    second.last_active = now + Duration::from_secs(1);
    assert_eq!(
        store
            .save(&key, &second, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Saved
    );
    assert_eq!(found(store, &key, now).await.as_ref(), Some(&second));

    let mut stale = first.clone();
    stale.version = 2;
    stale.data = br#"{"n":"stale"}"#.to_vec();
    assert_eq!(
        store.save(&key, &stale, 1, now).await.expect("save failed"),
        SaveOutcome::Conflict,
        "a save expecting an old version must conflict"
    );
    assert_eq!(
        found(store, &key, now).await.as_ref(),
        Some(&second),
        "a conflicting save must write nothing"
    );
}

/// `save` of a missing or expired record writes nothing.
pub async fn save_never_recreates<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let mut record = sample_record(None, "{}");
    record.version = 2;
    assert_eq!(
        store
            .save(&key, &record, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Missing
    );
    assert_eq!(
        store.load(&key, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "save must never create a record"
    );

    let key = fresh_key();
    let mut expired = sample_record(None, "{}");
    expired.expires_at = now - Duration::from_secs(1);
    store
        .create(&key, &expired, now_millis())
        .await
        .expect("create failed");
    let mut revived = sample_record(None, r#"{"revived":true}"#);
    revived.version = 2;
    assert_eq!(
        store
            .save(&key, &revived, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Missing,
        "save must not revive an expired record"
    );
}

/// `touch` moves `last_active` and `expires_at` only, and never recreates.
pub async fn touch_extends_without_rewriting<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(None, r#"{"keep":"me"}"#);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    let later = now + Duration::from_secs(10);
    let new_deadline = now + Duration::from_secs(7200);
    assert_eq!(
        store
            .touch(&key, record.version, later, new_deadline, now)
            .await
            .expect("touch failed"),
        TouchOutcome::Touched,
        "touch of a live record"
    );
    let touched = found(store, &key, now).await.expect("record vanished");
    assert_eq!(touched.last_active, later);
    assert_eq!(touched.expires_at, new_deadline);
    assert_eq!(
        touched.version, record.version,
        "touch must not bump the version"
    );
    assert_eq!(touched.data, record.data, "touch must not rewrite data");

    let missing = fresh_key();
    assert_eq!(
        store
            .touch(&missing, 1, later, new_deadline, now)
            .await
            .expect("touch failed"),
        TouchOutcome::Missing
    );
    assert_eq!(
        store.load(&missing, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "touch must never create a record"
    );
}

/// `touch` with a version other than the stored one changes nothing (S38): a reader that
/// loaded before a save must not move the deadline that save set.
pub async fn touch_refuses_a_stale_version<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(None, "{}");
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    let mut fixed = record.clone();
    fixed.version = 2;
    fixed.expires_at = now + Duration::from_secs(60);
    assert_eq!(
        store.save(&key, &fixed, 1, now).await.expect("save failed"),
        SaveOutcome::Saved
    );
    let stale = store
        .touch(&key, 1, now, now + Duration::from_secs(7200), now)
        .await
        .expect("touch failed");
    assert_eq!(stale, TouchOutcome::Conflict, "a stale touch was applied");
    let stored = found(store, &key, now).await.expect("record vanished");
    assert_eq!(stored, fixed, "a stale touch changed the record");
}

/// `delete` removes the record and reports whether there was one.
pub async fn delete_removes<S: SessionStore>(store: &S) {
    let key = fresh_key();
    store
        .create(&key, &sample_record(None, "{}"), now_millis())
        .await
        .expect("create failed");
    assert!(
        store
            .delete(&key, now_millis())
            .await
            .expect("delete failed")
    );
    assert_eq!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Missing
    );
    assert!(
        !store
            .delete(&key, now_millis())
            .await
            .expect("delete failed")
    );
}
