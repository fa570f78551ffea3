//! Several providers against two (or three) fake OpenAI-compatible servers: each agent reaches
//! its own provider with that provider's key; an attendee's own key replaces the event's key
//! for their run only and is never stored or logged; own keys can be required; a rejected own
//! key is reported on the agents that used it; model discovery and its fallback; configurations
//! without providers import, and exports name them without any key.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{Ev, KEY, last, named, read_events, spawn_with_fake};
use moa_workshop::config::{ModelSpec, ProviderSettings, Secret, Settings};
use serde_json::{Value, json};

/// The local provider's server key.
const LOCAL_KEY: &str = "sk-local-server-key-42";
/// An attendee's own key for the default provider.
const OWN_KEY: &str = "sk-own-attendee-key-0123456789";

fn add_provider(settings: &mut Settings, name: &str, fake: &FakeLlm, key: Option<&str>, models: &[(&str, u32)]) {
    settings.extra_providers.push(ProviderSettings {
        name: name.into(),
        base_url: fake.base_url.clone(),
        api_key: key.map(Secret::new),
        key_variable: format!("MOA_PROVIDER_{}_API_KEY", name.to_uppercase()),
        models: models
            .iter()
            .map(|(name, context_tokens)| ModelSpec { name: name.to_string(), context_tokens: *context_tokens })
            .collect(),
        discover: false,
    });
}

/// A configuration in the workshop format where the main model and each agent may name a
/// provider (`None` leaves the field out, as the workshop's own exports do).
fn mixed(main: (Option<&str>, &str), cycles: u32, agents: &[(&str, Option<&str>, &str)]) -> Value {
    let layer_agents: Vec<Value> = agents
        .iter()
        .map(|(name, provider, model)| {
            let mut agent = json!({"name": name, "model": model, "temperature": 0.2, "max_tokens": 256,
                                   "prompt": format!("You are agent {name}. Earlier answers: {{helper_response}}")});
            if let Some(provider) = provider {
                agent["provider"] = json!(provider);
            }
            agent
        })
        .collect();
    let mut inner = json!({"main_model": main.1, "main_temperature": 0.5, "cycles": cycles,
        "system_prompt": "You are the main model. Synthesized answers: {helper_response}", "layer_agents": layer_agents});
    if let Some(provider) = main.0 {
        inner["main_provider"] = json!(provider);
    }
    json!({"ai_configuration": inner, "exported_at": "2025-06-03 14:00:00", "version": "2.0"})
}

/// Posts `body`; as the participant its `participant` field names, if any.
async fn post(app: &TestApp, path: &str, body: Value, own_key: Option<&str>) -> reqwest::Response {
    let mut request = match body["participant"].as_str() {
        Some(name) => app.post_as(&reqwest::Client::new(), name, path).await,
        None => reqwest::Client::new().post(app.url(path)),
    }
    .json(&body);
    if let Some(key) = own_key {
        request = request.header("x-llm-api-key", key);
    }
    request.send().await.unwrap()
}

async fn ask(app: &TestApp, config: &Value, own_key: Option<&str>) -> Vec<Ev> {
    let since = Instant::now();
    read_events(post(app, "/api/moa", json!({"question": "Which key?", "config": config}), own_key).await, since).await
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

fn bearer(key: &str) -> Option<String> {
    Some(format!("Bearer {key}"))
}

/// The database file and its WAL/shared-memory companions, as bytes.
fn database_bytes(db: &Path) -> Vec<u8> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::read(format!("{}{suffix}", db.display())).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn each_agent_reaches_its_own_provider_with_that_providers_key() {
    let default = FakeLlm::start(Duration::from_millis(20)).await;
    let local = FakeLlm::start(Duration::from_millis(20)).await;
    let keyless = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&default, |s| {
        add_provider(s, "local", &local, Some(LOCAL_KEY), &[("fast-b", 8192), ("fast-a", 8192)]);
        add_provider(s, "ollama", &keyless, None, &[("fast-c", 8192)]);
    })
    .await;
    let config = mixed(
        (Some("local"), "fast-b"),
        2,
        &[("hosted", None, "fast-a"), ("near", Some("local"), "fast-a"), ("laptop", Some("ollama"), "fast-c")],
    );
    let events = ask(&app, &config, None).await;
    assert_eq!(last(&events).name, "done", "{events:?}");

    // The default provider got only the agent without a provider, with the event's key.
    let hosted = default.requests();
    assert_eq!(hosted.len(), 2, "one call per layer");
    assert!(hosted.iter().all(|r| r.system.starts_with("You are agent hosted") && r.authorization == bearer(KEY)));
    // The local one got its agent and the main model, with its own key; the same model name
    // on two providers stays apart.
    let near = local.requests();
    assert_eq!(near.len(), 3);
    assert!(near.iter().all(|r| r.authorization == bearer(LOCAL_KEY)), "{near:?}");
    assert_eq!(near.iter().filter(|r| r.system.starts_with("You are the main model")).count(), 1);
    assert_eq!(near.iter().filter(|r| r.system.starts_with("You are agent near")).count(), 2);
    // A provider without a key gets no Authorization header at all.
    let laptop = keyless.requests();
    assert_eq!(laptop.len(), 2);
    assert!(laptop.iter().all(|r| r.authorization.is_none() && r.model == "fast-c"));

    // Events say where each agent ran.
    let agents: Vec<(String, String)> = named(&events, "agent")
        .iter()
        .map(|e| (e.data["agent"].as_str().unwrap().into(), e.data["provider"].as_str().unwrap().into()))
        .collect();
    for (agent, provider) in [("hosted", "default"), ("near", "local"), ("laptop", "ollama")] {
        assert_eq!(agents.iter().filter(|(a, p)| a == agent && p == provider).count(), 2, "{agents:?}");
    }
    // Models are checked against their own provider.
    let wrong = mixed((None, "fast-a"), 1, &[("x", Some("ollama"), "fast-a")]);
    let (status, error) =
        error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": wrong}), None).await).await;
    assert_eq!(status, 400);
    assert!(error.contains(r#"uses the model "fast-a", which the provider "ollama" does not offer"#), "{error}");
    let unknown = mixed((Some("groq"), "fast-a"), 1, &[("x", None, "fast-a")]);
    let (status, error) =
        error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": unknown}), None).await).await;
    assert_eq!(status, 400);
    assert!(error.contains(r#"the provider "groq", which this server does not have"#), "{error}");
    assert_eq!(default.requests().len() + local.requests().len() + keyless.requests().len(), 7, "no call for those");
}

#[tokio::test]
async fn an_own_key_is_used_for_that_run_only_and_is_never_stored_or_logged() {
    common::logs::capture();
    let default = FakeLlm::start(Duration::from_millis(20)).await;
    let local = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&default, |s| {
        add_provider(s, "local", &local, Some(LOCAL_KEY), &[("fast-b", 8192)]);
    })
    .await;
    let config = mixed((None, "fast-a"), 1, &[("hosted", None, "fast-a"), ("near", Some("local"), "fast-b")]);
    let body = json!({"participant": "Key Owner", "config": config, "prompt": "Write add(a, b)."});
    let since = Instant::now();
    let events = read_events(post(&app, "/api/generate", body.clone(), Some(OWN_KEY)).await, since).await;
    assert_eq!(last(&events).name, "done", "{events:?}");

    // The attendee's key went to the default provider instead of the event's key, and only there.
    let hosted = default.requests();
    assert_eq!(hosted.len(), 2, "the agent and the main model");
    assert!(hosted.iter().all(|r| r.authorization == bearer(OWN_KEY)), "{hosted:?}");
    assert!(local.requests().iter().all(|r| r.authorization == bearer(LOCAL_KEY)));
    // The next run without it is back on the event's key: nothing was kept.
    let events = read_events(post(&app, "/api/generate", body, None).await, Instant::now()).await;
    assert_eq!(last(&events).name, "done");
    assert_eq!(default.requests()[2..].iter().filter(|r| r.authorization == bearer(KEY)).count(), 2);

    // Not in the database (the file and its WAL), not in the events, not in the logs.
    let stored = database_bytes(&app.database_path());
    assert!(contains(&stored, "Key Owner") && contains(&stored, "Write add(a, b)."), "the runs were stored");
    for secret in [OWN_KEY, KEY, LOCAL_KEY] {
        assert!(!contains(&stored, secret), "a key reached the database");
    }
    assert!(events.iter().all(|e| !e.data.to_string().contains(OWN_KEY)));
    let page = reqwest::get(app.url("/challenge")).await.unwrap().text().await.unwrap();
    assert!(!page.contains(OWN_KEY) && !page.contains(LOCAL_KEY) && !page.contains(KEY));
    // An unusable key is refused without being repeated.
    let bad = "sk-has a space";
    let (status, error) =
        error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": config}), Some(bad)).await).await;
    assert_eq!(status, 400);
    assert!(error.contains("Paste it again") && !error.contains(bad), "{error}");
    app.stop().await;
    let logs = common::logs::text();
    assert!(logs.contains("moa run finished") && logs.contains("/api/generate"), "the logs were captured");
    assert!(!logs.contains(OWN_KEY), "the attendee's key reached the logs");
    assert!(!logs.contains(LOCAL_KEY) && !logs.contains(KEY), "a server key reached the logs");
}

#[tokio::test]
async fn when_own_keys_are_required_runs_without_one_are_refused_and_the_pages_say_so() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&default, |s| {
        s.require_user_key = true;
        add_provider(s, "local", &local, None, &[("fast-b", 8192)]);
    })
    .await;
    let hosted = mixed((None, "fast-a"), 1, &[("hosted", None, "fast-a")]);
    let (status, error) =
        error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": hosted}), None).await).await;
    assert_eq!(status, 401);
    assert!(error.contains("asks everyone to use their own API key"), "{error}");
    let challenge = json!({"participant": "Ada", "config": hosted});
    assert_eq!(post(&app, "/api/generate", challenge, None).await.status(), 401);
    assert!(default.requests().is_empty(), "the event's key was not used");

    let events = ask(&app, &hosted, Some(OWN_KEY)).await;
    assert_eq!(last(&events).name, "done");
    assert!(default.requests().iter().all(|r| r.authorization == bearer(OWN_KEY)));
    // A run on the local provider only needs no key of the attendee's.
    let local_only = mixed((Some("local"), "fast-b"), 1, &[("near", Some("local"), "fast-b")]);
    assert_eq!(last(&ask(&app, &local_only, None).await).name, "done");
    assert_eq!(local.requests().len(), 2);

    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(page.contains("This event asks everyone to use their own API key"), "{page}");
    assert!(page.contains("No key: set one (this event asks everyone to use their own)."));
    assert!(page.contains(r#"id="ask-button" disabled"#));
    assert!(!page.contains(KEY), "the event's key never reaches a page");
    let home = reqwest::get(app.url("/")).await.unwrap().text().await.unwrap();
    assert!(home.contains("Bring your own API key"));
}

#[tokio::test]
async fn a_rejected_own_key_is_reported_on_the_agents_that_used_it() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    default.reject_key(OWN_KEY);
    let app =
        spawn_with_fake(&default, |s| add_provider(s, "local", &local, Some(LOCAL_KEY), &[("fast-b", 8192)])).await;
    let config = mixed((Some("local"), "fast-b"), 1, &[("hosted", None, "fast-a"), ("near", Some("local"), "fast-b")]);
    let events = ask(&app, &config, Some(OWN_KEY)).await;
    assert_eq!(last(&events).name, "done", "the other agent and the main model carried on: {events:?}");
    let agents = named(&events, "agent");
    let error = |name: &str| agents.iter().find(|e| e.data["agent"] == name).unwrap().data["error"].clone();
    assert_eq!(
        error("hosted"),
        "your own API key was rejected (HTTP 401); check the key you pasted on this page",
        "a sentence naming whose key"
    );
    assert_eq!(error("near"), Value::Null);
    assert_eq!(last(&events).data["failed_agents"], 1);
    // On the main model the run fails with the same sentence.
    let main_hosted = mixed((None, "fast-a"), 1, &[("near", Some("local"), "fast-b")]);
    let failed = ask(&app, &main_hosted, Some(OWN_KEY)).await;
    let message = last(&failed).data["message"].as_str().unwrap().to_string();
    assert_eq!(last(&failed).name, "error");
    assert!(message.contains("The main model (fast-a) failed: your own API key was rejected (HTTP 401)"), "{message}");
    assert!(!message.contains(OWN_KEY));
    // The event's key on the same provider is still fine, and a rejected server key names its variable.
    assert_eq!(last(&ask(&app, &main_hosted, None).await).name, "done");
    local.reject_key(LOCAL_KEY);
    let events = ask(&app, &config, None).await;
    let near = named(&events, "agent").into_iter().find(|e| e.data["agent"] == "near").unwrap().data["error"].clone();
    assert_eq!(near, "the API key was rejected (HTTP 401); check MOA_PROVIDER_LOCAL_API_KEY");
}

#[tokio::test]
async fn discovered_models_are_offered_and_the_configured_list_is_the_fallback() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    local.serve_models(&[("found-big", Some(65_536)), ("fast-b", None), ("found-plain", None)]);
    let app = spawn_with_fake(&default, |s| {
        s.llm_discover_models = true; // but the default fake has no /models: its list stays
        add_provider(s, "local", &local, Some(LOCAL_KEY), &[("fast-b", 16_384), ("configured-only", 8192)]);
        s.extra_providers[0].discover = true;
    })
    .await;
    app.state.catalog.refresh().await;
    let listed: Value = reqwest::get(app.url("/api/providers")).await.unwrap().json().await.unwrap();
    let providers = listed["providers"].as_array().unwrap();
    assert_eq!(providers[0]["name"], "default");
    assert_eq!(providers[0]["discovered"], false, "404 from /models: the configured list");
    assert_eq!(providers[0]["models"].as_array().unwrap().len(), common::moa::test_models().len());
    assert_eq!(providers[1]["discovered"], true);
    assert_eq!(
        providers[1]["models"],
        json!([{"name": "fast-b", "context_tokens": 16384}, {"name": "found-big", "context_tokens": 65536},
               {"name": "found-plain", "context_tokens": 8192}]),
        "the configured context first, then the provider's, then 8,192"
    );
    assert_eq!((providers[0]["server_key"].clone(), listed["require_user_key"].clone()), (json!(true), json!(false)));
    assert!(!listed.to_string().contains(KEY) && !listed.to_string().contains(LOCAL_KEY));
    // Discovery asked with each provider's own key.
    assert!(local.models_requests().iter().all(|a| *a == bearer(LOCAL_KEY)) && !local.models_requests().is_empty());
    assert!(default.models_requests().iter().all(|a| *a == bearer(KEY)) && !default.models_requests().is_empty());

    // What was discovered can be used; what the provider no longer lists cannot.
    let found = mixed((Some("local"), "found-big"), 1, &[("near", Some("local"), "found-plain")]);
    assert_eq!(last(&ask(&app, &found, None).await).name, "done");
    assert!(local.requests().iter().any(|r| r.model == "found-big"));
    let gone = mixed((Some("local"), "configured-only"), 1, &[("near", Some("local"), "fast-b")]);
    let (status, error) = error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": gone}), None).await).await;
    assert_eq!(status, 400);
    assert!(error.contains("does not offer") && error.contains("found-big"), "{error}");
    // The pages list what was discovered.
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(page.contains("found-big"));

    // A provider that stops answering keeps its last list rather than flickering back.
    local.stop_serving_models();
    app.state.catalog.refresh().await;
    let listed: Value = reqwest::get(app.url("/api/providers")).await.unwrap().json().await.unwrap();
    assert_eq!(listed["providers"][1]["models"][1]["name"], "found-big");
}

#[tokio::test]
async fn a_provider_that_never_lists_its_models_slows_no_page() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    local.hang_models();
    let app = spawn_with_fake(&default, |s| {
        add_provider(s, "local", &local, None, &[("fast-b", 8192)]);
        s.extra_providers[0].discover = true;
    })
    .await;
    // Discovery started with the server and hangs; pages answer from the configured list.
    let started = Instant::now();
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500), "the page waited for discovery");
    assert!(page.contains("fast-b"));
    let asked = Instant::now();
    while local.models_requests().is_empty() {
        assert!(asked.elapsed() < Duration::from_secs(5), "discovery was started with the server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Asking again gives up after the discovery timeout and keeps the configured list.
    let started = Instant::now();
    app.state.catalog.refresh().await;
    assert!(started.elapsed() < moa_workshop::llm::catalog::DISCOVERY_TIMEOUT + Duration::from_secs(2));
    let listed: Value = reqwest::get(app.url("/api/providers")).await.unwrap().json().await.unwrap();
    assert_eq!(listed["providers"][1]["discovered"], false);
    assert_eq!(listed["providers"][1]["models"], json!([{"name": "fast-b", "context_tokens": 8192}]));
}

#[tokio::test]
async fn workshop_configs_import_without_providers_and_export_with_names_but_no_key() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&default, |s| {
        s.llm_provider_name = "cerebras".into();
        s.organizer_token = Some(Secret::new("organizer-token-1"));
        add_provider(s, "local", &local, Some(LOCAL_KEY), &[("fast-b", 8192)]);
    })
    .await;
    // The workshop's own format: no provider anywhere.
    let workshop = common::moa::config("fast-a", 1, &[("helper", "fast-a")]);
    let body = json!({"participant": "Grace", "config": workshop});
    let events = read_events(post(&app, "/api/generate", body, Some(OWN_KEY)).await, Instant::now()).await;
    let generation = last(&events).data["generation_id"].as_str().expect("a generation").to_string();
    assert_eq!(default.requests().len(), 2, "a missing provider means the default one");
    let export: Value = reqwest::Client::new()
        .get(app.url(&format!("/organizer/generations/{generation}/config.json")))
        .bearer_auth("organizer-token-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inner = &export["ai_configuration"];
    assert_eq!(inner["main_provider"], "cerebras");
    assert_eq!(inner["layer_agents"][0]["provider"], "cerebras");
    for secret in [OWN_KEY, KEY, LOCAL_KEY] {
        assert!(!export.to_string().contains(secret));
    }
    // The export imports again, here and (as "default") on a server that names its provider otherwise.
    assert_eq!(last(&ask(&app, &export, None).await).name, "done");
    let mut portable = export.clone();
    portable["ai_configuration"]["main_provider"] = json!("default");
    assert_eq!(last(&ask(&app, &portable, None).await).name, "done");
}

#[tokio::test]
async fn the_context_guard_uses_each_providers_context_sizes() {
    let default = FakeLlm::start(Duration::from_millis(10)).await;
    let local = FakeLlm::start(Duration::from_millis(10)).await;
    // The same model name, 8,192 tokens on the default provider and 28,672 on the local one.
    let app = spawn_with_fake(&default, |s| add_provider(s, "local", &local, None, &[("fast-a", 28_672)])).await;
    let crowd = |main: Option<&str>| {
        let mut config = mixed((main, "fast-a"), 1, &[("a", None, "fast-a"); 8]);
        for agent in config["ai_configuration"]["layer_agents"].as_array_mut().unwrap() {
            agent["max_tokens"] = json!(3000);
        }
        config
    };
    let inspect = |config: Value| {
        let app = &app;
        async move {
            let response = post(app, "/api/inspect", json!({"config": config, "prompt": "Hi"}), None).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let on_default = inspect(crowd(None)).await;
    assert_eq!(on_default["budget"]["main_context"], 8192);
    let problem = on_default["budget"]["problem"].as_str().unwrap();
    assert!(problem.contains("such as fast-a on local (28,672 tokens)"), "{problem}");
    let on_local = inspect(crowd(Some("local"))).await;
    assert_eq!(
        (on_local["budget"]["main_context"].clone(), on_local["budget"]["problem"].clone()),
        (json!(28672), Value::Null)
    );
    assert_eq!(on_local["messages"].as_array().unwrap().last().unwrap()["provider"], "local");
    // The run itself is refused or allowed the same way.
    let (status, _) =
        error_of(post(&app, "/api/moa", json!({"question": "Hi", "config": crowd(None)}), None).await).await;
    assert_eq!(status, 400);
    assert_eq!(last(&ask(&app, &crowd(Some("local")), None).await).name, "done");
}

#[tokio::test]
async fn pages_offer_a_provider_choice_only_when_there_are_several() {
    let default = FakeLlm::start(Duration::ZERO).await;
    let single = spawn_with_fake(&default, |_| {}).await;
    let page = reqwest::get(single.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(!page.contains("<optgroup"), "one provider: the models are not grouped");
    assert!(page.contains(r#"id="user-key""#) && page.contains("Key in use: the event's key."), "{page}");

    let local = FakeLlm::start(Duration::ZERO).await;
    let several = spawn_with_fake(&default, |s| add_provider(s, "local", &local, None, &[("fast-b", 8192)])).await;
    for path in ["/chat", "/challenge"] {
        let page = reqwest::get(several.url(path)).await.unwrap().text().await.unwrap();
        // Each model list groups the models by provider; an option names both.
        assert!(page.contains(r#"<optgroup label="local">"#), "{path}");
        assert!(page.contains(r#"<option value="[&#34;local&#34;,&#34;fast-b&#34;]">fast-b</option>"#), "{path}");
        assert!(page.contains(r#"id="key-box""#), "{path}");
    }
    let without_key = spawn_with_fake(&default, |s| s.llm_api_key = None).await;
    let page = reqwest::get(without_key.url("/challenge")).await.unwrap().text().await.unwrap();
    assert!(page.contains("No key: set one.") && page.contains("No API key is set on this server"));
}
