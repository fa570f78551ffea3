//! What attendees met in a real room, tried again in headless Chromium (issue 15): the
//! challenge page keeps one current result that survives a reload, names history rows and links
//! them to their code and reasons; a rejected grade shows no rank of its own and ties say so; a
//! taken name is refused where the eye is and a name can change; nothing is wider than a phone;
//! a refused run draws no agents and says why at once; the keyboard reaches the question, Ctrl+Enter
//! asks and focus follows the run; a stalled stream says so within seconds and stops its clocks.
//!
//! Needs `chromium` and `chromedriver`; `MOA_SKIP_BROWSER=1` skips it.

use crate::common;

use std::time::{Duration, Instant};

use common::browser::{Browser, Cut, WIDER_THAN_VIEWPORT};
use common::fake_llm::{FakeLlm, Recorded};
use common::moa::{read_events, spawn_with_fake};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const DIVISION_FIX: &str = include_str!("../fixtures/grader-examples/03_division_fix_only.py");

/// The "Comprehensive" preset writes full marks; "Bug-focused" an import the grader refuses.
fn reply(r: &Recorded) -> String {
    if r.system.starts_with("You are the lead engineer") {
        format!("```python\n{FULL_MARKS}```")
    } else if r.system.starts_with("You are a senior Python engineer") {
        format!("```python\nimport os\n{FULL_MARKS}```")
    } else {
        format!("Review {}: guard the division.", r.seq)
    }
}

/// For measuring: the lead engineer writes full marks only after reading the reviewers; alone
/// (nothing in `{helper_response}`), the division fix only.
fn measured_reply(r: &Recorded) -> String {
    if !r.system.starts_with("You are the lead engineer") {
        format!("Review {}: guard the division.", r.seq)
    } else if r.system.contains("Review ") {
        format!("```python\n{FULL_MARKS}```")
    } else {
        format!("```python\n{DIVISION_FIX}```")
    }
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.execute(script, vec![]).await
}

/// Whether the element `css` lies inside the viewport.
async fn in_view(browser: &Browser, css: &str) -> bool {
    let script = format!(
        "const r = document.querySelector({css:?}).getBoundingClientRect();
         return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;"
    );
    js(browser, &script).await == true
}

/// Another participant reaches full marks through the API, so the attendee ties.
async fn full_marks_by(app: &common::TestApp, name: &str) {
    let config = json!({"main_model": "fast-a", "main_temperature": 0.1, "cycles": 1,
        "system_prompt": "You are the lead engineer merging: {helper_response}",
        "layer_agents": [{"name": "a", "model": "fast-b", "temperature": 0.0, "prompt": "Review. {helper_response}", "max_tokens": 128}]});
    let response = app.post_json_as(name, "/api/generate", &json!({"config": config, "prompt": null})).await;
    let events = read_events(response, Instant::now()).await;
    let done = events.iter().find(|e| e.name == "done").expect("the generation is done");
    let graded =
        app.post_json_as(name, "/api/submissions", &json!({"generation_id": done.data["generation_id"]})).await;
    assert_eq!(graded.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_page_keeps_one_result_names_its_history_and_ranks_ties_as_ties() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let fake = FakeLlm::start_with(Duration::from_millis(100), Box::new(reply)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    app.token("Grace").await;
    browser.set_window_size(1280, 800).await;

    // A taken name: the reason is in view and the field has the focus, ready for another.
    browser.goto(&app.url("/challenge")).await;
    browser.fill("#name", "grace").await;
    browser.click("#name-form button[type=submit]").await;
    browser.wait_for_text("#name-problem", "is taken", WAIT).await;
    assert!(in_view(&browser, "#name-problem").await, "the refusal is in view");
    assert_eq!(js(&browser, "return document.activeElement.id").await, "name");
    browser.fill("#name", "Ada").await;
    browser.click("#name-form button[type=submit]").await;
    browser.wait_for_text("#configure", "You take part as Ada", WAIT).await;

    // Generation 1 (full marks), submitted.
    browser.wait_until("the default agent", WAIT, async || browser.try_find("#agents li").await).await;
    js(&browser, "document.querySelectorAll('.preset')[2].click()").await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    browser.click("#ask-button").await;
    browser.wait_for_text("#result .generated h3", "Generation #1", WAIT).await;
    browser.click("#result form[action$='/submit'] button").await;
    let report = browser.wait_for_text("#result .report", "120 / 120", WAIT).await;
    assert!(report.contains("ranks 1st of 1"), "{report}");

    // After a reload the code and its score are still there.
    browser.goto(&app.url("/challenge")).await;
    let kept = browser.wait_for_text("#result", "Generation #1", WAIT).await;
    assert!(kept.contains("def calculate_user_metrics") && kept.contains("120 / 120"), "{kept}");

    // Generation 2 replaces the first on top, its progress in view; it says what changed.
    browser.wait_until("the saved agents", WAIT, async || browser.try_find("#agents li").await).await;
    js(&browser, "document.querySelectorAll('.preset')[0].click()").await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    browser.click("#ask-button").await;
    browser.wait_until("the run in #result", WAIT, async || browser.try_find("#result .turn").await).await;
    assert!(browser.try_find("#result .report").await.is_none(), "the old score is gone from the top");
    let top = js(&browser, "return document.querySelector('#result .turn').getBoundingClientRect().top").await;
    assert!(top.as_f64().unwrap() < 800.0, "the run starts in view: {top}");
    browser.wait_for_text("#result .generated h3", "Generation #2", WAIT).await;
    assert_eq!(browser.find_all("#result .generated").await.len(), 1);
    assert!(browser.text("#result .diff summary").await.contains("Changes since generation #1"));

    // Its rejection is no grade and no rank of its own; the best score's standing is labelled.
    browser.click("#result form[action$='/submit'] button").await;
    let report = browser.wait_for_text("#result .report", "rejected", WAIT).await;
    assert!(report.contains("0 / 120") && !report.contains("grade F"), "{report}");
    assert!(report.contains("Your best score, 120 / 120, ranks 1st of 1"), "{report}");

    // History rows: numbered, scored in words, each linked to its code and reasons.
    let history = browser.text("#history").await;
    assert!(history.contains("120 / 120") && history.contains("rejected before running"), "{history}");
    assert_eq!(browser.find_all("#history tbody tr").await.len(), 2);
    browser.click("#history tbody tr:last-child a").await;
    browser.wait_for_text("#result .generated h3", "Generation #1", WAIT).await;
    assert!(browser.text("#result .report").await.contains("120 / 120"));

    // Someone else reaches the same score: a tie, said as one.
    full_marks_by(&app, "Grace").await;
    browser.goto(&app.url("/challenge")).await;
    browser.click("#history tbody tr:last-child a").await;
    let standing = browser.wait_for_text("#result .report .standing", "tied", WAIT).await;
    assert!(standing.contains("ranks 1st of 2 on the leaderboard, tied with 1 other"), "{standing}");

    // A new name keeps the scores.
    js(&browser, "document.querySelector('#rename').open = true").await;
    browser.fill("#new-name", "Ada L.").await;
    browser.click("#rename button[type=submit]").await;
    browser.wait_for_text("#my-name", "Ada L.", WAIT).await;
    let board: Value = reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap();
    assert!(board.to_string().contains("Ada L."), "{board}");

    // A phone: nothing wider than the screen, on each tab, the score table included.
    browser.click("#history tbody tr:last-child a").await;
    browser.wait_for_text("#result .report", "120 / 120", WAIT).await;
    browser.set_window_size(390, 844).await;
    for tab in ["tab-configure", "tab-guide", "tab-brief"] {
        browser.click(&format!("label[for={tab}]")).await;
        let wide = js(&browser, WIDER_THAN_VIEWPORT).await;
        assert_eq!(wide, json!([]), "{tab} on a phone");
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_says_why_a_run_is_refused_follows_the_keyboard_and_notices_a_stall() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let fake = FakeLlm::start(Duration::from_millis(100)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    browser.goto(&app.url("/chat")).await;
    browser.wait_until("the default agent", WAIT, async || browser.try_find("#agents li").await).await;

    // The chat shows the estimate too.
    browser.wait_for_text("#config-check", "would read about", WAIT).await;

    // A file with 30 agents is refused, saying why, and the form keeps what it had.
    let agent =
        json!({"name": "a", "model": "fast-a", "temperature": 0.1, "prompt": "{helper_response}", "max_tokens": 64});
    let file = app.dir.path().join("thirty.json");
    let thirty = json!({"ai_configuration": {"main_model": "fast-a", "main_temperature": 0.1, "cycles": 1,
        "system_prompt": "{helper_response}", "layer_agents": vec![agent; 30]}});
    std::fs::write(&file, thirty.to_string()).unwrap();
    let input = browser.find("#import").await;
    browser.send_keys_to(&input, file.to_str().unwrap()).await;
    browser.wait_for_text("#config-error", "30 layer agents", WAIT).await;
    assert_eq!(browser.find_all("#agents li").await.len(), 1);

    // A run the server refuses (a question of spaces) draws no agents; the reason is at hand.
    browser.fill("#question", "   ").await;
    js(&browser, "document.querySelector('#ask').requestSubmit()").await;
    browser.wait_for_text("#run-error", "Please type a question", WAIT).await;
    assert!(browser.try_find(".agent-run").await.is_none());
    assert_eq!(js(&browser, "return document.activeElement.id").await, "run-error");

    // A context overflow is said before asking, and Ask waits.
    browser.click("#add-agent").await;
    browser.click("#add-agent").await;
    js(
        &browser,
        "document.querySelectorAll('[name=max_tokens]').forEach((i) => { i.value = 4096; });
                  document.querySelector('#config').dispatchEvent(new Event('input', {bubbles: true}))",
    )
    .await;
    browser.wait_for_text("#config-check", "would overflow the main model", WAIT).await;
    assert_eq!(js(&browser, "return document.querySelector('#ask-button').disabled").await, true);
    // At eight agents neither Add nor Duplicate can add another.
    for _ in 0..5 {
        browser.click("#add-agent").await;
    }
    let full = js(
        &browser,
        "return [document.querySelectorAll('#agents li').length, document.querySelector('#add-agent').disabled,
                 [...document.querySelectorAll('[data-action=duplicate]')].every((b) => b.disabled)]",
    )
    .await;
    assert_eq!(full, json!([8, true, true]));
    browser.click("#reset").await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;

    // Keyboard: the first Tab reaches "skip to the question", which lands in it; Ctrl+Enter asks;
    // focus moves to the run; focus rings are plain to see.
    browser.goto(&app.url("/chat")).await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    let body = browser.find("body").await;
    browser.send_keys_to(&body, "\u{e004}").await;
    assert_eq!(js(&browser, "return document.activeElement.className").await, "skip");
    browser.send_keys_to(&browser.find(".skip").await, "\u{e007}").await;
    assert_eq!(js(&browser, "return document.activeElement.id").await, "question");
    let question = browser.find("#question").await;
    browser.send_keys_to(&question, "Why layers?").await;
    browser.send_keys_to(&question, "\u{e009}\u{e007}\u{e000}").await;
    browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    let focused = js(&browser, "return document.activeElement.classList.contains('turn')").await;
    assert_eq!(focused, true, "focus follows the run rather than dropping to the page");
    browser.send_keys_to(&question, "\u{e004}").await;
    let ring = js(
        &browser,
        "const s = getComputedStyle(document.activeElement);
         return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]",
    )
    .await;
    assert_eq!((ring[1].as_str(), ring[2].as_f64().unwrap() >= 3.0), (Some("solid"), true), "{ring}");

    // A stream that goes silent: within seconds the run says so and its clocks stop.
    browser.cut_next_run_stream(Cut::Silence).await;
    browser.fill("#question", "Still there?").await;
    browser.click("#ask-button").await;
    let started = Instant::now();
    browser.wait_for_text(".turn .run-status", "No word from the server", WAIT).await;
    assert!(started.elapsed() < Duration::from_secs(20), "said within seconds: {:?}", started.elapsed());
    assert!(browser.try_find(".turn [data-ticking]").await.is_none(), "no clock keeps ticking");
    assert!(browser.try_find(".turn .run-status button").await.is_some(), "a retry is offered");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_page_measures_compares_and_tunes_a_configuration() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let fake = FakeLlm::start_with(Duration::from_millis(50), Box::new(measured_reply)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    browser.goto(&app.url("/challenge")).await;
    browser.fill("#name", "Ada").await;
    browser.click("#name-form button[type=submit]").await;
    browser.wait_for_text("#configure", "You take part as Ada", WAIT).await;
    browser.wait_until("the default agent", WAIT, async || browser.try_find("#agents li").await).await;
    js(&browser, "document.querySelectorAll('.preset')[2].click()").await;
    browser.fill("#lab-runs", "3").await;

    // Three runs of full marks: the histogram, the statistics, the cost.
    browser.click("[data-lab=evaluate]").await;
    let result = browser.wait_for_text("#lab-result", "Mean", WAIT).await;
    assert!(result.contains("Mean 120") && result.contains("3 runs"), "{result}");
    assert_eq!(browser.find_all("#lab-rows li").await.len(), 3, "a line per graded run");
    assert_eq!(browser.find_all("#lab svg.histogram rect").await.len(), 10);

    // Against the main model alone (which writes a weaker solution here): a real difference.
    browser.click("[data-lab=compare]").await;
    let difference = browser.wait_for_text("#lab-difference", "means differ", WAIT).await;
    assert!(difference.starts_with("A real difference"), "{difference}");

    // Tuning: every trial listed, the best configuration to import, the curve.
    browser.click("[data-lab=tune]").await;
    let tuned = browser.wait_for_text("#lab-result", "Best score", WAIT).await;
    assert!(tuned.contains("120 / 120"), "{tuned}");
    assert!(browser.try_find("#lab svg.curve").await.is_some());
    assert!(browser.text("#lab-best").await.contains("ai_configuration"));

    // Kept for a later visit.
    browser.goto(&app.url("/challenge")).await;
    browser.wait_for_text("#lab", "Your last tuning search", WAIT).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_puts_the_moa_answer_beside_the_main_model_alone() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let fake = FakeLlm::start(Duration::from_millis(100)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    browser.goto(&app.url("/chat")).await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    browser.click("#compare-alone").await;
    browser.fill("#question", "Why layers?").await;
    browser.click("#ask-button").await;
    let alone = browser.wait_for_text(".turn .beside .alone .run-status", "Done in", WAIT).await;
    assert!(alone.contains("1 calls"), "one call, alone: {alone}");
    let moa = browser.wait_for_text(".turn > .run-status", "Done in", WAIT).await;
    assert!(moa.contains("2 calls"), "{moa}");
    let answers = js(
        &browser,
        "return [...document.querySelectorAll('.turn .answers .markdown')].map((m) => m.textContent).join('|')",
    )
    .await;
    assert_eq!(answers.as_str().unwrap().matches("reply ").count(), 2, "both answers: {answers}");
    assert_eq!(fake.requests().len(), 3, "the agent, the main model after it, and the main model alone");
    browser.quit().await;
}
