//! The key box and the provider choice in headless Chromium: an attendee's own key stays in the
//! browser (localStorage, no cookie), goes with their runs, and the status line says whose key
//! is in use; agents and the main model can move to another provider, which then needs no key.
//!
//! Needs `chromium` and `chromedriver`; `MOA_SKIP_BROWSER=1` skips it.

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::fake_llm::FakeLlm;
use common::moa::spawn_with_fake;
use moa_workshop::config::{ModelSpec, ProviderSettings};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const OWN_KEY: &str = "sk-own-browser-key-0123456789";

async fn js(browser: &Browser, script: &str) -> Value {
    browser.execute(script, vec![]).await
}

async fn ask_enabled(browser: &Browser) -> bool {
    js(browser, "return !document.querySelector('#ask-button').disabled").await == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_key_stays_in_the_browser_and_the_status_line_follows_it() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let hosted = FakeLlm::start(Duration::from_millis(50)).await;
    let local = FakeLlm::start(Duration::from_millis(50)).await;
    let app = spawn_with_fake(&hosted, |s| {
        s.llm_api_key = None;
        s.extra_providers.push(ProviderSettings {
            name: "local".into(),
            base_url: local.base_url.clone(),
            api_key: None,
            key_variable: "MOA_PROVIDER_LOCAL_API_KEY".into(),
            models: vec![
                ModelSpec { name: "local-small".into(), context_tokens: 8192 },
                ModelSpec { name: "local-big".into(), context_tokens: 32_768 },
            ],
            discover: false,
        });
    })
    .await;
    browser.goto(&app.url("/chat")).await;
    browser.wait_until("the page script", WAIT, async || browser.try_find("#agents li").await).await;

    // No key anywhere yet: the page says so and asking is off.
    browser.wait_for_text("#key-status", "No key: set one", WAIT).await;
    assert!(!ask_enabled(&browser).await);

    // Pasting a key: kept in localStorage, never in a cookie; the status line and button follow.
    browser.fill("#user-key", OWN_KEY).await;
    browser.wait_for_text("#key-status", "Key in use: your key", WAIT).await;
    let stored = js(
        &browser,
        "return {local: localStorage.getItem('moa-api-key'), cookie: document.cookie,
                 notice: document.querySelector('#no-key').hidden}",
    )
    .await;
    assert_eq!(stored["local"], OWN_KEY);
    assert!(!stored["cookie"].as_str().unwrap().contains(OWN_KEY), "{stored}");
    assert_eq!(stored["notice"], true, "the no-key notice gives way to the status line");
    assert!(ask_enabled(&browser).await);

    // A run goes to the default provider with the attendee's key.
    browser.fill("#question", "Whose key is this?").await;
    browser.click("#ask-button").await;
    browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    let requests = hosted.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {OWN_KEY}")[..])));

    // The key survives a reload, in this browser.
    browser.goto(&app.url("/chat")).await;
    browser.wait_for_text("#key-status", "Key in use: your key", WAIT).await;
    assert_eq!(js(&browser, "return document.querySelector('#user-key').value").await, OWN_KEY);

    // Each model list groups the models by provider; the agent and the main model move to local.
    let offered = js(
        &browser,
        "const groups = (s) => [...document.querySelectorAll(s + ' optgroup')].map((g) =>
             [g.label, [...g.children].map((o) => o.textContent)]);
         return {agent: groups('#agents li:nth-child(1) [name=model]'), main: groups('[name=main_model]')}",
    )
    .await;
    assert_eq!(offered["agent"][1], json!(["local", ["local-small", "local-big"]]), "{offered}");
    assert_eq!(offered["main"][1], json!(["local", ["local-small (8192 tokens)", "local-big (32768 tokens)"]]));
    browser.click(r#"#agents li:nth-child(1) [name=model] option[value='["local","local-big"]']"#).await;
    browser.click(r#"[name=main_model] option[value='["local","local-small"]']"#).await;

    // Forgetting the key: gone from the browser; a run on the local provider needs none.
    browser.click("#forget-key").await;
    browser.wait_for_text("#key-status", "No key: set one", WAIT).await;
    assert_eq!(js(&browser, "return localStorage.getItem('moa-api-key')").await, Value::Null);
    browser
        .wait_until("Ask enabled: nothing of this run goes to the provider that needs a key", WAIT, async || {
            ask_enabled(&browser).await.then_some(())
        })
        .await;
    browser.fill("#question", "And locally?").await;
    browser.click("#ask-button").await;
    browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    assert_eq!(hosted.requests().len(), 2, "the default provider was not called again");
    let models: Vec<String> = local.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(models, ["local-big", "local-small"], "the agent's choice, then the main model");
    assert!(local.requests().iter().all(|r| r.authorization.is_none()));
    let panel = browser.text(".turn .agent-run").await;
    assert!(panel.contains("local-big · local"), "the timeline names the provider: {panel}");

    // The choice is kept with the configuration; an agent back on the default provider needs a key again.
    browser.goto(&app.url("/chat")).await;
    browser.wait_until("the page script", WAIT, async || browser.try_find("#agents li").await).await;
    let kept = js(
        &browser,
        "return [JSON.parse(document.querySelector('[name=main_model]').value),
                 JSON.parse(document.querySelector('#agents [name=model]').value)]",
    )
    .await;
    assert_eq!(kept, json!([["local", "local-small"], ["local", "local-big"]]));
    browser.click(r#"#agents li:nth-child(1) [name=model] option[value*='"default"']"#).await;
    browser
        .wait_until("Ask disabled: the agent needs the default provider's key", WAIT, async || {
            (!ask_enabled(&browser).await).then_some(())
        })
        .await;

    // The challenge page shares the box and sends the key with a generation.
    browser.goto(&app.url("/challenge")).await;
    browser.fill("#name", "Ada").await;
    browser.click("#name-form button[type=submit]").await;
    browser.wait_for_text("#configure", "You take part as Ada", WAIT).await;
    browser.wait_for_text("#key-status", "No key: set one", WAIT).await;
    browser.wait_for_text("#config-check", "would read about", WAIT).await;
    assert!(!ask_enabled(&browser).await, "no key for the default provider yet");
    browser.fill("#user-key", OWN_KEY).await;
    browser.wait_for_text("#key-status", "Key in use: your key", WAIT).await;
    browser.wait_until("Generate enabled", WAIT, async || ask_enabled(&browser).await.then_some(())).await;
    browser.click("#ask-button").await;
    browser.wait_for_text(".turn .run-status", "Done in", WAIT).await;
    let requests = hosted.requests();
    assert_eq!(requests.len(), 4, "a generation: one agent and the main model");
    assert!(requests[2..].iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {OWN_KEY}")[..])));

    // A server with its own key: the status line says the event's key is in use.
    let with_key = spawn_with_fake(&hosted, |_| {}).await;
    browser.goto(&with_key.url("/chat")).await;
    browser.wait_for_text("#key-status", "Key in use: the event's key", WAIT).await;
    assert!(ask_enabled(&browser).await);
    browser.quit().await;
}
