//! Connections a careless script or a prankster holds open: idle sockets, headers trickled a
//! byte at a time, idle keep-alive, and more sockets than the server can carry. Each must be
//! closed or refused cleanly, while a live stream (legitimately quiet) stays open.

use crate::common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_millis(800);

async fn app() -> common::TestApp {
    common::spawn_app(|s| s.header_timeout = TIMEOUT).await
}

/// Waits until the server closes `tcp` (EOF or reset), returning how long it took, or None.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn an_idle_socket_is_closed_after_the_header_timeout() {
    let app = app().await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let took = closed_within(&mut tcp, Duration::from_secs(5)).await.expect("the idle socket is closed");
    assert!(took >= TIMEOUT / 2, "closed too early: {took:?}");
}

#[tokio::test]
async fn a_trickled_header_is_cut_off() {
    let app = app().await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut = false;
    for byte in request {
        if tcp.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let cut = cut || closed_within(&mut tcp, Duration::from_millis(500)).await.is_some();
    assert!(cut, "a header trickled for {:?} was still being read", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4), "cut after {:?}", started.elapsed());
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app().await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    assert!(closed_within(&mut tcp, Duration::from_secs(5)).await.is_some(), "the keep-alive connection stayed open");
}

#[tokio::test]
async fn a_live_stream_outlives_the_header_timeout() {
    let app = app().await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /leaderboard/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut tcp, TIMEOUT * 3).await.is_none(), "a quiet live stream was cut by the header timeout");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_a_sentence() {
    let app = common::spawn_app(|s| {
        s.header_timeout = Duration::from_secs(3);
        s.max_connections = 4;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::Client::new().get(app.url("/healthz")).send().await.expect("an answer, not a hang");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert!(refused.text().await.unwrap().contains("too many open connections"));
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let healthy = reqwest::Client::new().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), 200, "freed connections are usable again");
}

#[tokio::test]
async fn idle_sockets_that_fill_the_cap_are_dropped_and_health_recovers() {
    let app = common::spawn_app(|s| {
        s.header_timeout = TIMEOUT;
        s.max_connections = 8;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(TIMEOUT * 2).await;
    let started = Instant::now();
    let healthy = reqwest::Client::new().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "/healthz took {:?}", started.elapsed());
}
