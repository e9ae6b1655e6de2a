//! How the clients map what happened on the wire to ok / fail / info.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use leasehold_workloads::{LockClient, ReferenceLockClient, StorageClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{fail, info};

const SHORT: Duration = Duration::from_millis(300);

/// What a fake node does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers, holding the connection open.
    Silent,
    /// Reads the request and closes the connection without a reply.
    Hangup,
    /// Answers with these raw bytes.
    Reply(&'static str),
}

async fn fake_node(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match behaviour {
                    Behaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Behaviour::Hangup => drop(socket),
                    Behaviour::Reply(reply) => {
                        let _ = socket.write_all(reply.as_bytes()).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
        }
    });
    addr
}

/// An address on loopback where nothing listens.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn clients(addr: SocketAddr) -> (ReferenceLockClient, StorageClient) {
    let addr = addr.to_string();
    (
        ReferenceLockClient::new(&addr, "w1", SHORT).unwrap(),
        StorageClient::new(&addr, "w1", SHORT).unwrap(),
    )
}

#[tokio::test]
async fn connection_refused_is_fail() {
    let (mut lock, store) = clients(closed_port().await);
    let e = fail(lock.acquire("L", SHORT).await);
    assert!(e.starts_with("cannot connect"), "{e}");
    fail(lock.renew("L", 1, SHORT).await);
    fail(lock.release("L", 1).await);
    fail(store.write("k", "d", 1).await);
    fail(store.read("k").await);
    assert!(!store.health().await);
    assert!(!lock.health().await);
}

#[tokio::test]
async fn a_node_that_never_answers_is_info() {
    let (mut lock, store) = clients(fake_node(Behaviour::Silent).await);
    let started = Instant::now();
    let e = info(lock.acquire("L", SHORT).await);
    assert!(e.starts_with("timeout"), "{e}");
    assert!(started.elapsed() < SHORT * 5, "{:?}", started.elapsed());
    info(lock.release("L", 1).await);
    info(store.write("k", "d", 1).await);
    info(store.read("k").await);
    assert!(!store.health().await);
}

#[tokio::test]
async fn a_connection_broken_after_sending_is_info() {
    let (mut lock, store) = clients(fake_node(Behaviour::Hangup).await);
    info(lock.acquire("L", SHORT).await);
    info(store.write("k", "d", 1).await);
}

#[tokio::test]
async fn a_server_error_is_info() {
    let reply = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: 28\r\n\r\n{\"error\":\"cannot persist\"}  ";
    let (mut lock, store) = clients(fake_node(Behaviour::Reply(reply)).await);
    let e = info(lock.acquire("L", SHORT).await);
    assert!(e.contains("500"), "{e}");
    info(store.write("k", "d", 1).await);
}

#[tokio::test]
async fn a_malformed_ok_reply_is_info() {
    let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]";
    let (mut lock, store) = clients(fake_node(Behaviour::Reply(reply)).await);
    info(lock.acquire("L", SHORT).await);
    info(store.write("k", "d", 1).await);
}

#[tokio::test]
async fn conflicts_and_bad_requests_are_fail() {
    let reply = "HTTP/1.1 409 Conflict\r\ncontent-length: 32\r\n\r\n{\"error\":\"busy\",\"holder\":\"w2\"}  ";
    let (mut lock, _) = clients(fake_node(Behaviour::Reply(reply)).await);
    assert_eq!(fail(lock.acquire("L", SHORT).await), "busy (holder w2)");

    let reply = "HTTP/1.1 409 Conflict\r\ncontent-length: 40\r\n\r\n{\"decision\":\"rejected\",\"high_water\":34}\n";
    let (_, store) = clients(fake_node(Behaviour::Reply(reply)).await);
    assert_eq!(
        fail(store.write("k", "d", 33).await),
        "rejected: high water 34"
    );

    let reply = "HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad";
    let (mut lock, _) = clients(fake_node(Behaviour::Reply(reply)).await);
    let e = fail(lock.acquire("L", SHORT).await);
    assert!(e.contains("400") && e.contains("bad"), "{e}");
}

#[test]
fn bad_addresses_are_refused_up_front() {
    for addr in ["localhost", "http://127.0.0.1:1", "127.0.0.1:1/v1", ""] {
        assert!(
            ReferenceLockClient::new(addr, "w1", SHORT).is_err(),
            "{addr}"
        );
        assert!(StorageClient::new(addr, "w1", SHORT).is_err(), "{addr}");
    }
}
