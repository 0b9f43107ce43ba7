use super::*;

#[test]
fn in_memory_urls_are_recognized() {
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory&cache=private",
    ] {
        assert!(is_in_memory(url), "{url}");
    }
    for url in [
        "sqlite://sessions.db",
        "sqlite:///var/lib/x.db?mode=rwc",
        "sqlite:memory.db",
    ] {
        assert!(!is_in_memory(url), "{url}");
    }
}
