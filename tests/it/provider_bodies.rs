//! The real provider client against a provider that misbehaves at the HTTP level: huge error
//! bodies, huge plain answers and model lists, keys echoed in every spelling, and a server
//! that never accepts the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use moa_workshop::config::Secret;
use moa_workshop::llm::{ChatProvider, ChatRequest, ClientLimits, Endpoint, LlmError, Message, OpenAiProvider};

const KEY: &str = "sk-live-0123456789abcdefghijklmnopqrstuvwxyz";
const HUGE: usize = 64 * 1024 * 1024;

/// A body of `total` bytes in 64 KiB chunks, counting what was actually handed to the socket.
fn huge_body(sent: Arc<AtomicUsize>, content_type: &'static str, status: StatusCode) -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures_util::stream::iter(0..HUGE / chunk.len()).map(move |_| {
        sent.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok::<_, std::convert::Infallible>(chunk.clone())
    });
    (status, [(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response()
}

use futures_util::StreamExt;

async fn provider(sent: Arc<AtomicUsize>) -> String {
    let (a, b, c) = (sent.clone(), sent.clone(), sent);
    let app = Router::new()
        .route(
            "/error/chat/completions",
            post(move || async move { huge_body(a, "text/plain", StatusCode::BAD_REQUEST) }),
        )
        .route("/plain/chat/completions", post(move || async move { huge_body(b, "application/json", StatusCode::OK) }))
        .route("/plain/models", get(move || async move { huge_body(c, "application/json", StatusCode::OK) }))
        .route(
            "/echo/chat/completions",
            post(|| async {
                // The key upper-cased, percent-encoded, then as is across the 300-character clip.
                let upper = KEY.to_ascii_uppercase();
                let encoded = KEY.replace('-', "%2D");
                let prefix = format!("{upper} | {encoded} | ");
                let message = format!("{prefix}{} {KEY} tail", "x".repeat(290 - prefix.len() - 1));
                (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": {"message": message}})))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn client(connect: Duration) -> OpenAiProvider {
    OpenAiProvider::new(ClientLimits { connect, request: Duration::from_secs(60) }).unwrap()
}

fn endpoint(base_url: String) -> Endpoint {
    Endpoint { base_url, api_key: Secret::new(KEY) }
}

fn request() -> ChatRequest {
    ChatRequest { model: "m".into(), messages: vec![Message::user("hi")], temperature: 0.0, max_tokens: 16 }
}

async fn chat(provider: &OpenAiProvider, endpoint: &Endpoint) -> Result<String, LlmError> {
    provider.chat(endpoint, &request(), &mut |_| {}).await.map(|c| c.text)
}

#[tokio::test]
async fn huge_bodies_are_never_read_whole() {
    let sent = Arc::new(AtomicUsize::new(0));
    let base = provider(sent.clone()).await;
    let llm = client(Duration::from_secs(5));

    let error = chat(&llm, &endpoint(format!("{base}/error"))).await.unwrap_err();
    assert!(error.to_string().starts_with("the provider refused the request (HTTP 400)"), "{error}");
    let plain = chat(&llm, &endpoint(format!("{base}/plain"))).await.unwrap_err();
    assert!(plain.to_string().contains("longer than 8 MB"), "{plain}");
    let models = llm.list_models(&endpoint(format!("{base}/plain"))).await.unwrap_err();
    assert!(models.to_string().contains("longer than 8 MB"), "{models}");
    // Three bodies of 64 MB each were offered; reading stopped at the caps (socket buffers
    // account for some more).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = sent.load(Ordering::SeqCst);
    assert!(read < 3 * 8 * 1024 * 1024 + 16 * 1024 * 1024, "{} MB were sent and read", read >> 20);
}

#[tokio::test]
async fn an_echoed_key_is_blanked_in_every_spelling_before_clipping() {
    let base = provider(Arc::default()).await;
    let error = chat(&client(Duration::from_secs(5)), &endpoint(format!("{base}/echo"))).await.unwrap_err();
    let text = error.to_string();
    assert!(text.matches("[redacted").count() == 3, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(!lower.contains("sk-live-01") && !lower.contains("sk%2dlive"), "the key leaked: {text}");
}

#[tokio::test]
async fn a_provider_that_never_accepts_is_reported_as_such_promptly() {
    // A listener whose backlog is full: the kernel stops answering new connection attempts.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..8 {
        let attempt = tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await;
        match attempt {
            Ok(Ok(stream)) => filling.push(stream),
            _ => break,
        }
    }
    let started = Instant::now();
    let error = chat(&client(Duration::from_secs(1)), &endpoint(format!("http://{addr}/v1"))).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(
        error.to_string(),
        format!("could not connect to {addr}: it did not accept the connection within 1 s"),
        "{error:?}"
    );
    drop(listener);
}
