//! The API key reaches the provider and nothing else: not the logs (every level, every
//! crate), not the pages, not the event stream.

mod common;

use std::time::Duration;

use common::fake_llm::FakeLlm;
use common::moa::{KEY, config, run, spawn_with_fake};

#[tokio::test]
async fn the_key_never_reaches_logs_pages_or_events() {
    common::logs::capture();

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
    let logs = common::logs::text();
    assert!(logs.contains("moa run finished") && logs.contains("agent failed"), "the logs were captured");
    assert!(logs.contains("the API key was rejected"), "failures are logged as sentences");
    assert!(!logs.contains(KEY), "the key leaked into the logs");
    assert!(!page.contains(KEY), "the key leaked into the page");
    for event in events.iter().chain(&failed) {
        assert!(!event.data.to_string().contains(KEY), "the key leaked into an event: {event:?}");
    }
}
