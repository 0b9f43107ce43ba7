//! The behaviour suites, in one test binary so that CI links one executable rather than
//! one per file. Tests that need a process of their own (the allocation counter, the log
//! flood that installs a global subscriber) are separate binaries beside this folder.

mod common;
mod concurrency;
mod cookie_attributes;
mod cookie_properties;
mod custom_store;
mod edges;
mod encryption;
mod examples;
mod faults;
mod fuzz_corpus;
mod lifecycle;
mod memory_store;
mod model;
mod multi_instance;
mod mysql_store;
mod postgres_store;
mod redis_store;
mod sealed_cookies;
mod security;
mod sqlite_store;
mod test_helpers;
mod user_sessions;
