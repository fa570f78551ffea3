//! `POST /api/moa` against the real OpenAI-compatible client and a fake LLM server.

use crate::common;

use std::time::{Duration, Instant};

use common::fake_llm::{COMPLETION_TOKENS, FakeLlm, PROMPT_TOKENS, Recorded};
use common::moa::{KEY, answer, config, last, named, post_moa, read_events, run, spawn_with_fake};
use serde_json::{Value, json};

const THREE: &[(&str, &str)] = &[("alpha", "fast-a"), ("beta", "fast-b"), ("gamma", "fast-c")];

fn text(ev: &common::moa::Ev) -> &str {
    ev.data["text"].as_str().unwrap()
}

fn request_with_reply<'a>(requests: &'a [Recorded], reply: &str) -> &'a Recorded {
    requests.iter().find(|r| r.reply == reply).unwrap_or_else(|| panic!("no request answered {reply:?}"))
}

#[tokio::test]
async fn a_three_by_three_run_takes_about_four_latencies_not_ten() {
    let latency = Duration::from_millis(300);
    let fake = FakeLlm::start(latency).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "What is a mixture of agents?", &config("fast-a", 3, THREE)).await;
    let done = last(&events);
    assert_eq!(done.name, "done", "{events:#?}");
    // Critical path: three layers plus the main model = 4 latencies; one after another would be 10.
    assert!(done.at >= latency * 4, "{:?} is faster than the fake allows", done.at);
    assert!(done.at < latency * 6, "a 3×3 run took {:?}; the agents of a layer must run concurrently", done.at);
    // The agents of each layer reached the fake together.
    let requests = fake.requests();
    assert_eq!(requests.len(), 10);
    for layer in requests[..9].chunks(3) {
        let spread = layer.iter().map(|r| r.at).max().unwrap() - layer.iter().map(|r| r.at).min().unwrap();
        assert!(spread < latency / 2, "a layer's requests were {spread:?} apart");
    }
    assert_eq!(done.data["calls"], 10);
    assert_eq!(done.data["prompt_tokens"], 10 * PROMPT_TOKENS);
    assert_eq!(done.data["completion_tokens"], 10 * COMPLETION_TOKENS);
    assert_eq!(done.data["failed_agents"], 0);
    let ms = done.data["ms"].as_u64().unwrap();
    assert!((1200..1800).contains(&ms), "done.ms = {ms}");
}

#[tokio::test]
async fn each_layer_reads_all_answers_of_the_layer_before_and_the_main_model_the_last() {
    let fake = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let question = "Why is the sky blue?";
    let events = run(&app, question, &config("fast-a", 3, THREE)).await;
    assert_eq!(last(&events).name, "done", "{events:#?}");
    let requests = fake.requests();
    let layer_texts = |layer: u64| -> Vec<String> {
        named(&events, "agent").iter().filter(|e| e.data["layer"] == layer).map(|e| text(e).to_string()).collect()
    };
    for layer in 1..=3 {
        assert_eq!(layer_texts(layer).len(), 3);
    }
    for first in layer_texts(1) {
        let request = request_with_reply(&requests, &first);
        assert!(request.system.ends_with("Earlier answers: "), "layer 1 builds on nothing: {:?}", request.system);
    }
    for layer in 2..=3 {
        for own in layer_texts(layer) {
            let request = request_with_reply(&requests, &own);
            for before in layer_texts(layer - 1) {
                assert!(request.system.contains(&before), "layer {layer} did not see {before:?}: {}", request.system);
            }
            if layer == 3 {
                assert!(layer_texts(1).iter().all(|t| !request.system.contains(t.as_str())));
            }
        }
    }
    let main = request_with_reply(&requests, &answer(&events));
    assert_eq!(main.model, "fast-a");
    assert!(main.system.starts_with("You are the main model. Synthesized answers: "));
    for last_layer in layer_texts(3) {
        assert!(main.system.contains(&last_layer), "the main model did not see {last_layer:?}");
    }
    assert!(layer_texts(2).iter().all(|t| !main.system.contains(t.as_str())));
    // Every call: the question as the user message, the key as a bearer token, a stream with usage.
    for request in &requests {
        assert_eq!(request.user, question);
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
        assert!(request.stream && request.include_usage);
    }
    assert!(requests.iter().filter(|r| r.seq != main.seq).all(|r| r.temperature == 0.2 && r.max_tokens == 256));
    assert_eq!(main.temperature, 0.5);
    assert!(main.max_tokens >= 512);
}

#[tokio::test]
async fn events_arrive_in_order_and_nothing_follows_done() {
    let fake = FakeLlm::start(Duration::from_millis(40)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "Order?", &config("fast-a", 3, THREE)).await;
    let position = |pred: &dyn Fn(&common::moa::Ev) -> bool| events.iter().position(pred);
    for layer in 1..=3u64 {
        let agents: Vec<usize> =
            (0..events.len()).filter(|&i| events[i].name == "agent" && events[i].data["layer"] == layer).collect();
        assert_eq!(agents.len(), 3);
        if layer > 1 {
            let previous_last = (0..events.len())
                .filter(|&i| events[i].name == "agent" && events[i].data["layer"] == layer - 1)
                .max()
                .unwrap();
            let first_delta =
                position(&|e| e.name == "agent_delta" && e.data["layer"] == layer).expect("agents stream their text");
            assert!(previous_last < first_delta, "layer {layer} started before layer {} finished", layer - 1);
        }
        // Each agent's deltas come before its result and add up to it.
        for &i in &agents {
            let result = &events[i];
            let deltas: String = events[..i]
                .iter()
                .filter(|e| {
                    e.name == "agent_delta" && e.data["layer"] == layer && e.data["index"] == result.data["index"]
                })
                .map(text)
                .collect();
            assert_eq!(deltas, text(result));
            assert!(result.data["error"].is_null());
            assert!(result.data["ms"].as_u64().unwrap() >= 40);
            assert_eq!(result.data["prompt_tokens"], PROMPT_TOKENS);
            assert!(["alpha", "beta", "gamma"].contains(&result.data["agent"].as_str().unwrap()));
            assert!(result.data["model"].as_str().unwrap().starts_with("fast-"));
        }
    }
    let last_agent = events.iter().rposition(|e| e.name.starts_with("agent")).unwrap();
    let first_answer = position(&|e| e.name == "answer_delta").unwrap();
    assert!(last_agent < first_answer);
    assert_eq!(named(&events, "done").len(), 1);
    assert_eq!(last(&events).name, "done");
    assert!(answer(&events).starts_with("reply 10 from fast-a"));
}

#[tokio::test]
async fn failing_agents_are_reported_with_sentences_and_the_run_goes_on() {
    let fake = FakeLlm::start(Duration::from_millis(30)).await;
    let app = spawn_with_fake(&fake, |s| s.llm_retry_window = Duration::ZERO).await;
    let agents = [
        ("good", "fast-a"),
        ("unauthorized", "fail-401"),
        ("refused", "fail-400"),
        ("limited", "fail-429"),
        ("broken", "fail-500"),
        ("garbled", "malformed"),
        ("cut", "truncated"),
        ("plain", "plain"),
    ];
    let events = run(&app, "Go", &config("fast-a", 1, &agents)).await;
    assert_eq!(last(&events).name, "done", "{events:#?}");
    let error_of = |name: &str| -> Option<String> {
        let event = named(&events, "agent").into_iter().find(|e| e.data["agent"] == name).unwrap();
        event.data["error"].as_str().map(str::to_string)
    };
    assert_eq!(error_of("good"), None);
    assert_eq!(error_of("plain"), None, "a non-streaming answer is accepted");
    assert_eq!(error_of("unauthorized").unwrap(), "the API key was rejected (HTTP 401); check LLM_API_KEY");
    assert_eq!(
        error_of("refused").unwrap(),
        "the provider refused the request (HTTP 400): Please reduce the length of the messages or completion."
    );
    assert!(error_of("limited").unwrap().starts_with("rate limited by the provider (HTTP 429)"));
    assert!(error_of("broken").unwrap().starts_with("the provider failed (HTTP 500)"));
    assert!(error_of("garbled").unwrap().contains("malformed"));
    assert!(error_of("cut").unwrap().contains("ended before the answer was complete"));
    let done = last(&events);
    assert_eq!(done.data["failed_agents"], 6);
    assert_eq!(done.data["calls"], 9, "no retries without a retry window");
    // The main model got the two good answers and none of the failures.
    let requests = fake.requests();
    let main = requests.iter().max_by_key(|r| r.seq).unwrap();
    let good: Vec<&str> = named(&events, "agent").into_iter().filter(|e| e.data["error"].is_null()).map(text).collect();
    assert_eq!(good.len(), 2);
    assert!(good.iter().all(|t| main.system.contains(t)));
    assert!(main.system.contains("\n\n1. ") && main.system.contains("\n\n2. ") && !main.system.contains("\n\n3. "));
}

#[tokio::test]
async fn a_slow_agent_times_out_without_holding_up_the_run() {
    let fake = FakeLlm::start(Duration::from_millis(30)).await;
    let app = spawn_with_fake(&fake, |s| s.llm_timeout = Duration::from_millis(800)).await;
    let started = Instant::now();
    let events = run(&app, "Hurry", &config("fast-a", 1, &[("quick", "fast-a"), ("sleepy", "slow")])).await;
    assert_eq!(last(&events).name, "done", "{events:#?}");
    let sleepy = named(&events, "agent").into_iter().find(|e| e.data["agent"] == "sleepy").unwrap();
    assert_eq!(sleepy.data["error"], "no complete answer within 1 s (timed out)");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_but_only_within_the_deadline() {
    let fake = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&fake, |s| s.llm_retry_window = Duration::from_secs(20)).await;
    let events = run(&app, "Again", &config("fast-a", 1, &[("flaky", "flaky"), ("locked", "fail-401")])).await;
    assert_eq!(last(&events).name, "done", "{events:#?}");
    let flaky = named(&events, "agent").into_iter().find(|e| e.data["agent"] == "flaky").unwrap();
    assert!(flaky.data["error"].is_null(), "a 503 is retried: {flaky:?}");
    let count = |model: &str| fake.requests().iter().filter(|r| r.model == model).count();
    assert_eq!(count("flaky"), 2);
    assert_eq!(count("fail-401"), 1, "a rejected key is not retried");
    assert_eq!(last(&events).data["calls"], 4);

    // A rate limit that never lifts is retried until the window closes, then reported.
    let app = spawn_with_fake(&fake, |s| s.llm_retry_window = Duration::from_secs(2)).await;
    let started = Instant::now();
    let events = run(&app, "Again", &config("fast-a", 1, &[("ok", "fast-b"), ("limited", "fail-429")])).await;
    assert_eq!(last(&events).name, "done", "{events:#?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let attempts = count("fail-429");
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_layer_in_which_every_agent_fails_ends_the_run_with_an_error() {
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "Hello", &config("fast-a", 2, &[("one", "fail-401"), ("two", "fail-401")])).await;
    assert_eq!(named(&events, "agent").len(), 2);
    let error = last(&events);
    assert_eq!(error.name, "error");
    assert_eq!(
        error.data["message"],
        "Every agent of layer 1 failed, so the run stopped. one: the API key was rejected (HTTP 401); check \
         LLM_API_KEY. two: the API key was rejected (HTTP 401); check LLM_API_KEY."
    );
    assert!(named(&events, "answer_delta").is_empty());
    assert_eq!(fake.requests().len(), 2, "neither layer 2 nor the main model is called");
}

#[tokio::test]
async fn a_failing_main_model_ends_the_run_with_an_error() {
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&fake, |s| s.llm_retry_window = Duration::ZERO).await;
    let events = run(&app, "Hello", &config("fail-500", 1, &[("one", "fast-a")])).await;
    assert_eq!(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().last(), Some(&"error"));
    assert_eq!(
        last(&events).data["message"],
        "The main model (fail-500) failed: the provider failed (HTTP 500): The server had an error while \
         processing your request."
    );
}

#[tokio::test]
async fn a_refused_connection_is_explained() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let fake = FakeLlm::start(Duration::ZERO).await;
    let app = spawn_with_fake(&fake, |s| s.llm_base_url = format!("http://127.0.0.1:{port}/v1")).await;
    let events = run(&app, "Anyone?", &config("fast-a", 1, &[("one", "fast-a")])).await;
    let agent = named(&events, "agent")[0];
    assert_eq!(agent.data["error"], format!("could not connect to 127.0.0.1:{port}: connection refused"));
    assert_eq!(last(&events).name, "error");
}

#[tokio::test]
async fn usage_is_estimated_when_the_provider_reports_none() {
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "Count", &config("fast-a", 1, &[("quiet", "nousage")])).await;
    let agent = named(&events, "agent")[0];
    let (prompt, completion) =
        (agent.data["prompt_tokens"].as_u64().unwrap(), agent.data["completion_tokens"].as_u64().unwrap());
    assert!(prompt > 0 && prompt != PROMPT_TOKENS, "{prompt}");
    assert_eq!(completion, (text(agent).chars().count() as u64).div_ceil(4));
}

#[tokio::test]
async fn the_run_stops_when_the_client_disconnects() {
    let fake = FakeLlm::start(Duration::from_millis(600)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let response = post_moa(&app, "Never mind", &config("fast-a", 3, THREE)).await;
    assert_eq!(response.status(), 200);
    // Wait until layer 1 is under way (its first streamed text), then hang up.
    let mut body = response.bytes_stream();
    use futures_util::StreamExt;
    let first =
        tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("a first event").unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("agent_delta"), "{first:?}");
    drop(body);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.requests().len(), 3, "no call after the client left");
    assert_eq!(fake.abandoned(), 3, "the calls in flight were dropped");
    assert_eq!(fake.completed(), 0);
}

#[tokio::test]
async fn shutting_down_ends_open_streams_with_an_error() {
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let since = Instant::now();
    let response = post_moa(&app, "Wait", &config("fast-a", 1, &[("sleepy", "slow")])).await;
    let reader = tokio::spawn(read_events(response, since));
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), app.stop()).await.expect("the server stops promptly");
    let events = reader.await.unwrap();
    assert_eq!(last(&events).name, "error");
    assert!(last(&events).data["message"].as_str().unwrap().contains("shutting down"));
}

#[tokio::test]
async fn qwen_as_main_model_is_told_not_to_think_and_its_think_block_is_dropped() {
    let reply = Box::new(|r: &Recorded| {
        if r.model.contains("qwen") {
            "<think>\n\n</think>\n\nBlue, because of Rayleigh scattering.".to_string()
        } else {
            format!("reply {}", r.seq)
        }
    });
    let fake = FakeLlm::start_with(Duration::from_millis(10), reply).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let events = run(&app, "Why blue?", &config("qwen-fake", 1, &[("one", "fast-a")])).await;
    assert_eq!(answer(&events), "Blue, because of Rayleigh scattering.");
    let requests = fake.requests();
    assert_eq!(requests.iter().find(|r| r.model == "qwen-fake").unwrap().user, "Why blue?\n/no_think");
    assert_eq!(requests.iter().find(|r| r.model == "fast-a").unwrap().user, "Why blue?");
}

#[tokio::test]
async fn bad_requests_get_a_sentence_before_any_call() {
    let fake = FakeLlm::start(Duration::ZERO).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let client = reqwest::Client::new();
    let post = |body: Value| {
        let request = client.post(app.url("/api/moa")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let json: Value = response.json().await.unwrap();
            (status, json["error"].as_str().unwrap_or_default().to_string())
        }
    };
    let valid = config("fast-a", 1, &[("one", "fast-a")]);
    let with = |path: &str, value: Value| {
        let mut config = valid.clone();
        *config.pointer_mut(path).unwrap() = value;
        json!({"question": "Hi", "config": config})
    };
    let cases = [
        (with("/ai_configuration/system_prompt", json!("no placeholder")), "must contain {helper_response}"),
        (with("/ai_configuration/layer_agents/0/prompt", json!("none")), "must contain {helper_response}"),
        (with("/ai_configuration/cycles", json!(11)), "between 1 and 10"),
        (with("/ai_configuration/main_temperature", json!(1.2)), "between 0.0 and 1.0"),
        (with("/ai_configuration/layer_agents/0/max_tokens", json!(9000)), "between 1 and 4096"),
        (with("/ai_configuration/main_model", json!("gpt-9")), "does not offer"),
        (with("/ai_configuration/layer_agents", json!([])), "at least one"),
        (json!({"question": "  ", "config": valid}), "type a question"),
        (json!({"question": "Hi", "config": {"main_model": "fast-a"}}), "missing field"),
        (json!({"config": valid}), "question"),
    ];
    for (body, expected) in cases {
        let (status, error) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(error.contains(expected), "{error:?} should contain {expected:?}");
    }
    // The context guard: eight agents writing 3,000 tokens each cannot fit an 8,192-token main model.
    let mut huge = config("fast-a", 1, &[("a", "fast-a"); 8]);
    for agent in huge["ai_configuration"]["layer_agents"].as_array_mut().unwrap() {
        agent["max_tokens"] = json!(3000);
    }
    let (status, error) = post(json!({"question": "Hi", "config": huge})).await;
    assert_eq!(status, 400);
    assert!(error.contains("would overflow the main model: fast-a reads at most 8,192 tokens"), "{error}");
    assert!(error.contains("fewer agents") && error.contains("big-main (32,768 tokens)"), "{error}");
    assert!(fake.requests().is_empty(), "nothing was sent to the provider");
    // The inner object is accepted as well as the export wrapper.
    let inner = valid["ai_configuration"].clone();
    let events = run(&app, "Hi", &inner).await;
    assert_eq!(last(&events).name, "done");
}

#[tokio::test]
async fn without_a_key_the_api_explains_what_to_set_and_calls_nobody() {
    let fake = FakeLlm::start(Duration::ZERO).await;
    let app = spawn_with_fake(&fake, |s| s.llm_api_key = None).await;
    let response = post_moa(&app, "Hi", &config("fast-a", 1, &[("one", "fast-a")])).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("LLM_API_KEY") && error.contains("CEREBRAS_API_KEY") && error.contains(".env"), "{error}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_run_stops_when_the_client_disconnects_even_while_nothing_streams() {
    let fake = FakeLlm::start(Duration::from_millis(1500)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let plain = [("a", "plain"), ("b", "plain")];
    let response = post_moa(&app, "Never mind", &config("fast-a", 3, &plain)).await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(response);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.requests().len(), 2, "no call after the client left");
    assert_eq!(fake.abandoned(), 2, "the calls in flight were dropped");
}
