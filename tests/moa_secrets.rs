//! The API key reaches the provider and nothing else: not the logs (every level, every
//! crate), not the pages, not the event stream.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_llm::FakeLlm;
use common::moa::{KEY, config, run, spawn_with_fake};

/// Everything logged, at every level, from every crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_reaches_logs_pages_or_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let fake = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "Secret?", &config("fast-a", 2, &[("good", "fast-a"), ("rejected", "fail-401")])).await;
    assert_eq!(events.last().unwrap().name, "done");
    let failed = run(&app, "Secret?", &config("fast-a", 1, &[("rejected", "fail-401")])).await;
    assert_eq!(failed.last().unwrap().name, "error");
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    app.stop().await;

    // It did reach the provider.
    assert!(fake.requests().iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("moa run finished") && logs.contains("agent failed"), "the logs were captured");
    assert!(logs.contains("the API key was rejected"), "failures are logged as sentences");
    assert!(!logs.contains(KEY), "the key leaked into the logs");
    assert!(!page.contains(KEY), "the key leaked into the page");
    for event in events.iter().chain(&failed) {
        assert!(!event.data.to_string().contains(KEY), "the key leaked into an event: {event:?}");
    }
}
