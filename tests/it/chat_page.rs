//! The chat page as served: what it says without a key and what it embeds (its weight: tests/it/page_weight.rs).

use crate::common;

use std::time::Duration;

use common::fake_llm::FakeLlm;
use common::moa::{KEY, spawn_with_fake};

#[tokio::test]
async fn without_a_key_the_page_says_what_to_set() {
    let app = common::spawn_app(|_| {}).await;
    let response = reqwest::get(app.url("/chat")).await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("No API key is set"), "{page}");
    assert!(page.contains("LLM_API_KEY") && page.contains("CEREBRAS_API_KEY") && page.contains(".env"));
    assert!(page.contains("https://api.cerebras.ai/v1"));
    assert!(page.contains(r#"id="ask-button" disabled"#), "asking is off until a key is set");
    // Every page links to the chat.
    let home = reqwest::get(app.url("/")).await.unwrap().text().await.unwrap();
    assert!(home.contains(r#"href="/chat""#));
}

#[tokio::test]
async fn with_a_key_the_page_offers_the_models_and_defaults_but_never_the_key() {
    let fake = FakeLlm::start(Duration::ZERO).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(!page.contains("No API key is set"));
    assert!(!page.contains(KEY), "the key must never reach a page");
    // Each option names its provider and model, as JSON the page script reads back.
    assert!(
        page.contains(r#"<option value="[&#34;default&#34;,&#34;big-main&#34;]">big-main (32768 tokens)</option>"#),
        "{page}"
    );
    // The defaults travel as HTML-escaped JSON in an attribute, and read back as the workshop format.
    let start = page.find(r#"data-defaults=""#).unwrap() + r#"data-defaults=""#.len();
    let end = start + page[start..].find('"').unwrap();
    let json = unescape(&page[start..end]);
    let defaults: moa_workshop::moa::Config = serde_json::from_str(&json).expect("defaults are a config");
    assert_eq!(defaults.main_model, "fast-a", "a server without the default model starts from its first one");
    assert_eq!(defaults.cycles, 1);
    assert_eq!(defaults.layer_agents.len(), 1);
}

/// Undoes HTML escaping of an attribute value (named or numeric entities).
fn unescape(text: &str) -> String {
    let entities = [
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
    ];
    let text = entities.iter().fold(text.to_string(), |text, (entity, plain)| text.replace(entity, plain));
    text.replace("&#38;", "&").replace("&amp;", "&")
}
