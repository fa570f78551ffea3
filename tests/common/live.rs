//! Reading a live leaderboard stream (`/leaderboard/stream…`) as a browser's EventSource does.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::TestApp;

/// The `data` of each event, in order.
pub type Events = BoxStream<'static, String>;

/// Opens the stream at `path`; it must answer 200 as an event stream.
pub async fn open(app: &TestApp, path: &str) -> Events {
    let response = reqwest::get(app.url(path)).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.bytes_stream().eventsource().map(|e| e.expect("well-formed").data).boxed()
}

/// The next event, within 10 s.
pub async fn next(events: &mut Events) -> String {
    tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event in time").expect("open")
}

/// The first event that contains `needle`: a board rendered for an earlier change may come
/// first.
pub async fn next_containing(events: &mut Events, needle: &str) -> String {
    loop {
        let event = next(events).await;
        if event.contains(needle) {
            return event;
        }
    }
}
