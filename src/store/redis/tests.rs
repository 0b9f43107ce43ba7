use std::time::UNIX_EPOCH;

use redis::Client;

use super::index::INDEX_PAGE;
use super::*;

/// A raw connection to the server in `REDIS_URL`, or `None` when it is unset.
async fn shared_server() -> Option<redis::aio::MultiplexedConnection> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return None;
    };
    let client = Client::open(url).expect("REDIS_URL parses");
    Some(
        client
            .get_multiplexed_async_connection()
            .await
            .expect("REDIS_URL is set but the server is unreachable"),
    )
}

async fn zcard(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> usize {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(conn)
        .await
        .expect("ZCARD")
}

#[tokio::test]
async fn each_index_walking_script_call_examines_at_most_one_page() {
    let Some(mut conn) = shared_server().await else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let layout = KeyLayout::new(format!("sessionware-unit:{nanos:x}:"), DEFAULT_EXPIRY_GRACE);
    let index = layout.index_key("u");
    // 1,000 members without a session, scored an hour ahead so that nothing prunes them
    // as stale: only the walk can drop them.
    let now = to_unix_millis(SystemTime::now(), "now").expect("now");
    let mut zadd = redis::cmd("ZADD");
    zadd.arg(&index);
    for n in 0..1_000_u64 {
        zadd.arg(now + 3_600_000 + n).arg(format!("{n:064x}"));
    }
    let () = zadd.query_async(&mut conn).await.expect("ZADD");

    let (examined, kept, listed): (usize, usize, Vec<String>) = SCRIPTS
        .list
        .key(&index)
        .arg(&layout.session_prefix)
        .arg(now)
        .arg(layout.grace_millis)
        .arg(0)
        .arg(INDEX_PAGE)
        .invoke_async(&mut conn)
        .await
        .expect("list");
    assert_eq!((examined, kept, listed.len()), (INDEX_PAGE, 0, 0));
    assert_eq!(zcard(&mut conn, &index).await, 1_000 - INDEX_PAGE);

    let (revoked, full): (u64, u64) = SCRIPTS
        .revoke_user
        .key(&index)
        .arg(&layout.session_prefix)
        .arg("")
        .arg(now)
        .arg(layout.grace_millis)
        .arg(INDEX_PAGE)
        .invoke_async(&mut conn)
        .await
        .expect("revoke_user");
    assert_eq!((revoked, full), (0, 1));
    assert_eq!(zcard(&mut conn, &index).await, 1_000 - 2 * INDEX_PAGE);

    let _: i64 = redis::cmd("DEL")
        .arg(&index)
        .query_async(&mut conn)
        .await
        .expect("DEL");
}
