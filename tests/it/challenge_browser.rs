//! The workshop flow in two headless Chromium windows against a fake LLM: an attendee picks a
//! name, generates with their MoA configuration and submits; a second browser watching the
//! leaderboard sees the new row appear without reloading. With `MOA_UPDATE_SCREENSHOT=1` it
//! refreshes docs/screenshots/challenge-*.png and leaderboard-*.png (desktop and phone, light
//! and dark).

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::fake_llm::FakeLlm;
use common::moa::spawn_with_fake;
use moa_workshop::config::Secret;

const WAIT: Duration = Duration::from_secs(30);
const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attendee_generates_and_submits_and_the_leaderboard_updates_live() {
    let Some(attendee) = Browser::start_or_skip().await else { return };
    let projector = Browser::start().await.expect("a second browser");
    let fake = FakeLlm::start_with(
        Duration::from_millis(200),
        Box::new(|r| {
            // The main model gets the "Comprehensive" preset chosen below.
            if r.system.starts_with("You are the lead engineer") {
                format!("Here it is:\n\n```python\n{FULL_MARKS}```")
            } else {
                format!("Review {} by {}: guard the division and copy records.", r.seq, r.model)
            }
        }),
    )
    .await;
    let app = spawn_with_fake(&fake, |s| s.organizer_token = Some(Secret::new("org-token-0123456789"))).await;

    // The organizer signs in and watches live scores.
    let organizer = Browser::start().await.expect("an organizer browser");
    organizer.goto(&app.url("/organizer")).await;
    organizer.fill("#token", "org-token-0123456789").await;
    organizer.click("form[action='/organizer/login'] button[type=submit]").await;
    organizer.wait_for_text("body", "Live scores", WAIT).await;
    organizer.wait_for_text("[data-live-status]", "live", WAIT).await;

    // The projector shows the empty board and listens.
    projector.goto(&app.url("/leaderboard?view=projector")).await;
    projector.wait_for_text("#leaderboard", "No submissions yet", WAIT).await;
    projector.wait_for_text("[data-live-status]", "live", WAIT).await;

    // The attendee picks a name; a taken name would be refused.
    attendee.goto(&app.url("/challenge")).await;
    attendee.fill("#name", "Ada Lovelace").await;
    attendee.click("#name-form button[type=submit]").await;
    attendee.wait_for_text("#configure", "You take part as Ada Lovelace", WAIT).await;

    // Main prompt from the comprehensive preset; the estimate and inspector fill in.
    attendee.wait_until("the default agent", WAIT, async || attendee.try_find("#agents li").await).await;
    attendee.execute("document.querySelectorAll('.preset')[2].click()", vec![]).await;
    attendee.fill("#agents li:nth-child(1) [name=prompt]", "Answer as a bug hunter. Notes: {helper_response}").await;
    let estimate = attendee.wait_for_text("#config-check", "tokens", WAIT).await;
    assert!(estimate.contains("would read about"), "{estimate}");
    attendee.execute("document.querySelector('#inspector').open = true", vec![]).await;
    attendee.wait_for_text("#inspector-body", "Main model", WAIT).await;

    attendee.click("#ask-button").await;
    let code = attendee.wait_for_text("#result pre.code", "def calculate_user_metrics", WAIT).await;
    assert!(code.contains("heapq.nlargest"));
    attendee.click("#result form[action$='/submit'] button").await;
    let report = attendee.wait_for_text("#result .report", "120 / 120", WAIT).await;
    assert!(report.contains("grade A") && report.contains("ranks 1st of 1"), "{report}");
    assert!(attendee.text("#result .report table").await.contains("Division by zero"));
    attendee.wait_for_text("#history", "120 / 120", WAIT).await;
    attendee.screenshots("challenge", "#result .generated", app.dir.path()).await;

    // The projector got the row by push, without a reload.
    projector.execute("window.__sameDocument = true", vec![]).await;
    let board = projector.wait_for_text("#leaderboard", "Ada Lovelace", WAIT).await;
    assert!(board.contains("120"), "{board}");
    assert_eq!(projector.execute("return window.__sameDocument === true", vec![]).await, true, "no reload");
    projector.screenshots("leaderboard", "body", app.dir.path()).await;

    // The organizer saw it arrive too, and can export it.
    organizer.wait_for_text("#leaderboard-live", "Ada Lovelace", WAIT).await;
    let export = organizer.find("a[href='/organizer/leaderboard.csv']").await;
    assert!(organizer.element_text(&export).await.contains("leaderboard"));

    // A second attendee cannot take the same name (in any case).
    let other = Browser::start().await.expect("a third browser");
    other.goto(&app.url("/challenge")).await;
    other.fill("#name", "ada lovelace").await;
    other.click("#name-form button[type=submit]").await;
    other.wait_for_text("#name-form", "is taken", WAIT).await;
}
