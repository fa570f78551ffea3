//! The live leaderboard with many viewers: one render per change, the same bytes for every
//! viewer, and a clear 503 past the viewer cap.

use crate::common;

use std::time::Duration;

use common::live::{next, open as open_stream};

async fn open(app: &common::TestApp) -> common::live::Events {
    open_stream(app, "/leaderboard/stream").await
}

#[tokio::test]
async fn one_change_is_rendered_once_for_every_viewer() {
    let app = common::spawn_app(|_| {}).await;
    let mut viewers = Vec::new();
    for _ in 0..25 {
        let mut events = open(&app).await;
        next(&mut events).await;
        viewers.push(events);
    }
    let before = app.state.live.renders();
    moa_workshop::store::event::freeze(&app.state.pool, true).await.unwrap();
    app.state.live.leaderboard_changed();
    let mut seen = Vec::new();
    for events in &mut viewers {
        seen.push(next(events).await);
    }
    assert!(seen[0].contains("frozen") || seen[0].contains("Frozen"), "{}", seen[0]);
    assert!(seen.iter().all(|s| *s == seen[0]), "every viewer gets the same table");
    // Give a stray second render (the bug) time to happen before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.state.live.renders() - before, 1, "one render for 25 viewers");
}

#[tokio::test]
async fn past_the_viewer_cap_a_new_viewer_gets_a_sentence() {
    let app = common::spawn_app(|s| s.max_live_viewers = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open(&app).await);
    }
    let refused = reqwest::get(app.url("/leaderboard/stream")).await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("already has 3 viewers"), "{body}");
    // A viewer who leaves frees its place.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = open(&app).await;
    next(&mut again).await;
}
