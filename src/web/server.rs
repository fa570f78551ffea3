//! The accept loop: HTTP/1.1 connections driven by hyper directly (axum::serve cannot set a
//! header-read timeout), with a cap on open connections and graceful shutdown.
//!
//! - A connection must send a complete request head within `header_timeout` of connecting or
//!   of its previous answer, else hyper closes it: idle sockets, headers trickled a byte at a
//!   time and idle keep-alive connections all go. An answer being streamed (SSE) is not
//!   reading a head, so it is never cut.
//! - Past `max_connections`, a new connection gets a short 503 sentence and is closed, so the
//!   process keeps descriptors for the provider, the database and the grader.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Refusals being written at once; past it, surplus connections are closed without a word, so
/// a flood cannot turn the refusals themselves into held sockets.
const MAX_REFUSALS: usize = 64;

/// The refusal: a whole HTTP/1.1 answer, then the socket closes.
const REFUSAL: &str = "The server has too many open connections right now; please try again in a few seconds.\n";

/// Serves `router` on `listener` until `stop` resolves, then lets open connections finish
/// (idle ones close at once; streams end when they see the shutdown flag).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let open = Arc::new(Semaphore::new(max as usize));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (closing, closing_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    let mut accept_failing = false;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    accept_failing = false;
                    pair
                }
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                    // moment rather than spin; idle connections time out meanwhile.
                    if !accept_failing {
                        tracing::warn!(error = %e, "cannot accept connections");
                        accept_failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm may hold
        // each one back until the previous is acknowledged.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let Ok(permit) = open.clone().try_acquire_owned() else {
            crate::metrics::refused(crate::metrics::Limit::MaxConnections);
            if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(tcp).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let router = router.clone();
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move { Ok::<_, Infallible>(router.call(request).await.unwrap_or_else(|never| match never {})) }
            });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(tcp), service));
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(%peer, "connection ended: {e}");
                    }
                }
                _ = async { drop(closing.wait_for(|closing| *closing).await) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a permit until it is done.
    let _ = open.acquire_many(max).await;
}

/// Answers 503 with a sentence and closes. Reads what the client sent first (briefly), so
/// closing does not reset the connection before the client reads the answer.
async fn refuse(mut tcp: TcpStream) {
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut scratch)).await;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL}",
        REFUSAL.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// The connection cap when none is set: half the open-file limit (each chat stream also holds
/// a socket to the provider), at least 16.
pub fn automatic_connection_cap(open_file_limit: u64) -> usize {
    (open_file_limit / 2).clamp(16, 1_000_000) as usize
}

/// The peer address hyper saw, for handlers that need it.
pub type Peer = ConnectInfo<SocketAddr>;
