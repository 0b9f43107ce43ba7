use super::*;

#[test]
fn a_miss_with_another_live_version_is_a_conflict() {
    assert!(matches!(classify_miss(Some(3), 2), MissReason::Conflict));
    assert!(matches!(classify_miss(None, 2), MissReason::Missing));
    assert!(matches!(classify_miss(Some(2), 2), MissReason::Missing));
}
