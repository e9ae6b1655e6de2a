//! The reference lock service: lease semantics, token order, restart.

use std::time::Duration;

use leasehold_workloads::LockClient;

use crate::{fail, lock_client, ok, start_lock};

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn acquire_busy_release() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_lock(dir.path()).await;
    let mut w1 = lock_client(&node, "w1");
    let mut w2 = lock_client(&node, "w2");
    assert!(w1.health().await);

    let first = ok(w1.acquire("L", LONG).await);
    assert_eq!(first.lease_ms, 30_000);
    assert_eq!(fail(w2.acquire("L", LONG).await), "busy (holder w1)");
    // Not reentrant: the holder asking again is refused too.
    assert_eq!(fail(w1.acquire("L", LONG).await), "busy (holder w1)");

    // Locks are independent, tokens are shared.
    let other = ok(w2.acquire("M", LONG).await);
    assert!(other.token > first.token);

    // Only the holder, with its token, can release.
    assert_eq!(fail(w2.release("L", first.token).await), "not held");
    assert_eq!(fail(w1.release("L", first.token + 100).await), "not held");
    ok(w1.release("L", first.token).await);
    assert_eq!(fail(w1.release("L", first.token).await), "not held");

    let next = ok(w2.acquire("L", LONG).await);
    assert!(next.token > other.token);
    node.stop().await;
}

#[tokio::test]
async fn an_expired_lease_is_free_and_lost() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_lock(dir.path()).await;
    let mut w1 = lock_client(&node, "w1");
    let mut w2 = lock_client(&node, "w2");

    let grant = ok(w1.acquire("L", Duration::from_millis(150)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fail(w1.renew("L", grant.token, LONG).await), "lease lost");
    assert_eq!(fail(w1.release("L", grant.token).await), "not held");
    let taken = ok(w2.acquire("L", LONG).await);
    assert!(taken.token > grant.token);
    // The old holder's token is foreign now.
    assert_eq!(fail(w1.renew("L", grant.token, LONG).await), "lease lost");
    node.stop().await;
}

#[tokio::test]
async fn renew_extends_the_lease_from_now() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_lock(dir.path()).await;
    let mut w1 = lock_client(&node, "w1");
    let mut w2 = lock_client(&node, "w2");
    let ttl = Duration::from_millis(1000);

    let grant = ok(w1.acquire("L", ttl).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let renewed = ok(w1.renew("L", grant.token, ttl).await);
    assert_eq!(renewed.token, grant.token);
    assert_eq!(renewed.lease_ms, 1000);
    // Past the first lease's end, within the renewed one.
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(fail(w2.acquire("L", ttl).await), "busy (holder w1)");
    // A wrong token or another client cannot renew.
    assert_eq!(
        fail(w1.renew("L", grant.token + 1, ttl).await),
        "lease lost"
    );
    assert_eq!(fail(w2.renew("L", grant.token, ttl).await), "lease lost");
    ok(w1.release("L", grant.token).await);
    node.stop().await;
}

#[tokio::test]
async fn tokens_increase_across_locks_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(1000);
    let mut last = 0;
    let mut held = None;
    for round in 0..2 {
        let node = start_lock(dir.path()).await;
        let mut w1 = lock_client(&node, "w1");
        if round > 0 {
            // Leases granted before the restart may still run: refuse.
            assert_eq!(fail(w1.acquire("L", ttl).await), "busy (holder recovering)");
            assert_eq!(
                fail(w1.acquire("fresh", ttl).await),
                "busy (holder recovering)"
            );
            // The service forgot the lease; it cannot be renewed.
            let (lock, token) = held.take().unwrap();
            assert_eq!(fail(w1.renew(lock, token, ttl).await), "lease lost");
            tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        }
        for lock in ["L", "M", "N"] {
            let grant = ok(w1.acquire(lock, ttl).await);
            assert!(grant.token > last, "{} after {last}", grant.token);
            last = grant.token;
            held = Some((lock, grant.token));
        }
        node.stop().await;
    }
    assert_eq!(last, 6);
}

#[tokio::test]
async fn a_fresh_data_dir_grants_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_lock(&dir.path().join("not/yet/there")).await;
    let mut w1 = lock_client(&node, "w1");
    assert_eq!(ok(w1.acquire("L", LONG).await).token, 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquires_get_one_winner_and_distinct_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_lock(dir.path()).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut same = lock_client(&node, &format!("w{i}"));
        let mut own = lock_client(&node, &format!("w{i}"));
        tasks.push(tokio::spawn(async move {
            let same = same.acquire("L", LONG).await;
            let own = own.acquire(&format!("own{i}"), LONG).await;
            (same, ok(own).token)
        }));
    }
    let mut winners = 0;
    let mut tokens = Vec::new();
    for task in tasks {
        let (same, own) = task.await.unwrap();
        match same {
            leasehold_workloads::Completion::Ok(g) => {
                winners += 1;
                tokens.push(g.token);
            }
            other => assert!(fail(other).starts_with("busy (holder w")),
        }
        tokens.push(own);
    }
    assert_eq!(winners, 1);
    let count = tokens.len();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), count, "a token was granted twice");
    assert_eq!(*tokens.last().unwrap(), 17);
    node.stop().await;
}
