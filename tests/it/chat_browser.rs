//! The chat page in headless Chromium: configure two agents, ask, watch the timeline fill in
//! and the answer render as sanitized Markdown; then persistence, import, a lost connection
//! with retry, and the phone layout.
//!
//! Needs `chromium` and `chromedriver`; fails with instructions when they are missing unless
//! `MOA_SKIP_BROWSER=1`. With `MOA_UPDATE_SCREENSHOT=1` it refreshes docs/screenshots/chat-*.png.

use crate::common;

use std::time::Duration;

use common::browser::{Browser, Cut};
use common::fake_llm::{FakeLlm, Recorded};
use common::moa::spawn_with_fake;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// The main model answers in Markdown with some HTML that must not become markup.
fn reply(r: &Recorded) -> String {
    if r.system.starts_with("You are a helpful assistant") {
        "## In short\n\nThe agents agree: a **mixture of agents** answers *better* than one model.\n\n\
         - each layer reads the answers of the layer before\n- the main model writes the final answer\n\n\
         ```rust\nfn main() { println!(\"layers\"); }\n```\n\n\
         Raw HTML stays text: <img src=x onerror=\"window.__xss = 1\"> <script>window.__xss = 2</script>"
            .into()
    } else {
        format!(
            "Answer {} from {}: several models answer the question in layers, and each layer builds on the answers \
             of the one before.",
            r.seq, r.model
        )
    }
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.execute(script, vec![]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_two_agents_ask_and_see_both_panels_and_the_answer() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let fake = FakeLlm::start_with(Duration::from_millis(300), Box::new(reply)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    browser.goto(&app.url("/chat")).await;

    // Two agents: the default one renamed, and a second on another model.
    browser.wait_until("the default agent", WAIT, async || browser.try_find("#agents li").await).await;
    browser.click("#add-agent").await;
    assert_eq!(browser.find_all("#agents li").await.len(), 2);
    browser.fill("#agents li:nth-child(1) [name=name]", "researcher").await;
    browser.fill("#agents li:nth-child(2) [name=name]", "critic").await;
    browser.click(r#"#agents li:nth-child(2) [name=model] option[value*='"fast-b"']"#).await;
    browser.fill("[name=cycles]", "2").await;

    // A main prompt without {helper_response}: the server's check says so and Ask waits.
    browser.fill("[name=system_prompt]", "You are a helpful assistant. No placeholder.").await;
    browser.fill("#question", "What is a mixture of agents?").await;
    browser.wait_for_text("#config-check", "must contain {helper_response}", WAIT).await;
    assert_eq!(js(&browser, "return document.querySelector('#ask-button').disabled").await, true);
    assert!(browser.try_find(".turn").await.is_none());
    assert!(fake.requests().is_empty());
    browser.fill("[name=system_prompt]", "You are a helpful assistant. Build on: {helper_response}").await;
    // The estimate (the server's) replaces the problem, and Ask is back.
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    browser
        .wait_until("Ask enabled", WAIT, async || {
            (js(&browser, "return document.querySelector('#ask-button').disabled").await == false).then_some(())
        })
        .await;

    browser.click("#ask-button").await;
    // Each agent's output shows as soon as it finishes, while the answer is still to come.
    browser
        .wait_until("a finished agent", WAIT, async || browser.try_find(".agent-run[data-state=done] .out").await)
        .await;
    let answer_state = js(&browser, "return document.querySelector('.turn .answer .badge').dataset.state").await;
    assert_ne!(answer_state, "done", "agents show before the answer is complete");
    let status = browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    assert!(status.contains("5 calls"), "{status}");
    browser
        .wait_until("the Ask button back", WAIT, async || {
            (js(&browser, "return document.querySelector('#stop').offsetParent === null").await == true).then_some(())
        })
        .await;

    let panels = browser.find_all(".turn .agent-run").await;
    assert_eq!(panels.len(), 4, "two agents in each of two layers");
    for (i, panel) in panels.iter().enumerate() {
        let text = browser.element_text(panel).await;
        let name = if i % 2 == 0 { "researcher" } else { "critic" };
        assert!(text.contains(name) && text.contains("DONE") && text.contains("Answer "), "panel {i}: {text}");
    }
    let models: Vec<String> = fake.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(models.iter().filter(|m| *m == "fast-b").count(), 2, "the critic's model reached the server");

    // The answer is Markdown, and the model's HTML stayed text.
    let answer = js(
        &browser,
        "const a = document.querySelector('.turn .answer .markdown');
         return {strong: a.querySelector('strong')?.textContent, em: a.querySelector('em')?.textContent,
                 heading: a.querySelector('h4')?.textContent, items: a.querySelectorAll('li').length,
                 code: a.querySelector('pre code')?.textContent, img: a.querySelectorAll('img, script').length,
                 xss: window.__xss ?? null, text: a.textContent};",
    )
    .await;
    assert_eq!(answer["strong"], "mixture of agents", "{answer}");
    assert_eq!(answer["em"], "better");
    assert_eq!(answer["heading"], "In short");
    assert_eq!(answer["items"], 2);
    assert!(answer["code"].as_str().unwrap().contains("fn main()"));
    assert_eq!(answer["img"], 0, "no element from model output");
    assert_eq!(answer["xss"], Value::Null);
    assert!(answer["text"].as_str().unwrap().contains(r#"<img src=x onerror="window.__xss = 1"> <script>"#));

    browser.screenshots("chat", ".turn", app.dir.path()).await;

    // The configuration survives a reload.
    browser.goto(&app.url("/chat")).await;
    browser.wait_until("the saved agents", WAIT, async || browser.try_find("#agents li:nth-child(2)").await).await;
    let names = js(&browser, "return [...document.querySelectorAll('#agents [name=name]')].map(i => i.value)").await;
    assert_eq!(names, json!(["researcher", "critic"]));

    // Import reads the workshop export format.
    let export = json!({"ai_configuration": {
        "main_model": "fast-c", "main_temperature": 0.1, "cycles": 1,
        "system_prompt": "Combine: {helper_response}",
        "layer_agents": [
            {"name": "bug_hunter", "model": "fast-a", "temperature": 0.0, "prompt": "Bugs. {helper_response}", "max_tokens": 512},
            {"name": "speed", "model": "fast-b", "temperature": 0.3, "prompt": "Speed. {helper_response}", "max_tokens": 256},
            {"name": "style", "model": "fast-c", "temperature": 0.5, "prompt": "Style. {helper_response}", "max_tokens": 128}]},
        "exported_at": "2025-06-03 14:00:00", "version": "2.0"});
    let file = app.dir.path().join("config.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let input = browser.find("#import").await;
    browser.send_keys_to(&input, file.to_str().unwrap()).await;
    browser.wait_until("the imported agents", WAIT, async || browser.try_find("#agents li:nth-child(3)").await).await;
    let imported = js(
        &browser,
        "return {names: [...document.querySelectorAll('#agents [name=name]')].map(i => i.value),
                 main: JSON.parse(document.querySelector('[name=main_model]').value)[1],
                 cycles: document.querySelector('[name=cycles]').value}",
    )
    .await;
    assert_eq!(imported, json!({"names": ["bug_hunter", "speed", "style"], "main": "fast-c", "cycles": "1"}));

    // A connection that breaks mid-run says so and offers a retry, which then completes.
    browser.cut_next_run_stream(Cut::Error).await;
    browser.fill("#question", "And again?").await;
    browser.click("#ask-button").await;
    browser.wait_for_text(".turn .run-status", "Connection lost", WAIT).await;
    browser.click(".turn .run-status button").await;
    browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    assert_eq!(browser.find_all(".turn").await.len(), 1, "the retry takes the lost turn's place");

    // On a phone the configuration folds away above the conversation, and nothing overflows.
    browser.set_window_size(390, 844).await;
    browser.goto(&app.url("/chat")).await;
    browser.wait_until("the page script", WAIT, async || browser.try_find("#agents li").await).await;
    let layout = js(
        &browser,
        "const config = document.querySelector('#config-panel'), talk = document.querySelector('.conversation');
         return {open: config.open, above: config.getBoundingClientRect().bottom <= talk.getBoundingClientRect().top,
                 overflow: document.documentElement.scrollWidth > window.innerWidth};",
    )
    .await;
    let wide = js(&browser, common::browser::WIDER_THAN_VIEWPORT).await;
    assert_eq!(layout, json!({"open": false, "above": true, "overflow": false}), "too wide: {wide}");
    browser.quit().await;
}
