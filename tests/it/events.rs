//! Events: the organizer opens one or more challenges, attendees generate for an open one,
//! every generation and submission records the challenge and its version, and each
//! challenge has its own leaderboard.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::live;
use common::moa::{config, read_events, spawn_with_fake};
use moa_workshop::config::Secret;
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const VOWELS: &str = "def count_vowels(text):\n    if not isinstance(text, str):\n        return 0\n    \
                      return sum(1 for c in text.lower() if c in 'aeiou')\n";
const DEFAULT: &str = "calculate_user_metrics";
const TOKEN: &str = "org-secret-42-0123456789";

/// The main model answers the vowels prompt with a correct count_vowels, anything else with
/// the full-marks calculate_user_metrics.
async fn fake() -> FakeLlm {
    FakeLlm::start_with(
        Duration::from_millis(10),
        Box::new(|r| {
            if !r.system.starts_with("You are the main model") {
                return format!("note {}", r.seq);
            }
            let code = if r.user.contains("count_vowels") { VOWELS } else { FULL_MARKS };
            format!("```python\n{code}```")
        }),
    )
    .await
}

/// An app with a second challenge, `vowels` (the scaffold, out of 100), in its own folder.
async fn spawn(llm: &FakeLlm, active: &[&str]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    moa_workshop::grader::challenge::scaffold(dir.path(), "vowels").unwrap();
    let path = dir.path().to_path_buf();
    let active: Vec<String> = active.iter().map(|s| s.to_string()).collect();
    let app = spawn_with_fake(llm, move |s| {
        s.challenges_dir = Some(path);
        s.active_challenges = active;
        s.organizer_token = Some(Secret::new(TOKEN));
    })
    .await;
    (app, dir)
}

async fn generate(app: &TestApp, name: &str, challenge: Option<&str>) -> reqwest::Response {
    let setup = config("big-main", 1, &[("bug_hunter", "fast-a")]);
    app.post_json_as(name, "/api/generate", &json!({"config": setup, "challenge": challenge})).await
}

async fn generation_id(app: &TestApp, name: &str, challenge: Option<&str>) -> String {
    let events = read_events(generate(app, name, challenge).await, Instant::now()).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "done", "{events:?}");
    done.data["generation_id"].as_str().unwrap().to_string()
}

async fn submit(app: &TestApp, name: &str, generation_id: &str) -> Value {
    let response = app.post_json_as(name, "/api/submissions", &json!({"generation_id": generation_id})).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    reqwest::get(app.url(path)).await.unwrap().json().await.unwrap()
}

async fn choose(app: &TestApp, ids: &[&str]) -> reqwest::Response {
    let form: Vec<(&str, &str)> = ids.iter().map(|id| ("challenge", *id)).collect();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/organizer/challenges"))
        .bearer_auth(TOKEN)
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn organizer_page(app: &TestApp, path: &str) -> String {
    reqwest::Client::new().get(app.url(path)).bearer_auth(TOKEN).send().await.unwrap().text().await.unwrap()
}

/// Whether the default and the test's own challenge are open (the other built-in ones stay
/// closed throughout and are left out).
fn actives(list: &Value) -> Vec<(String, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == DEFAULT || c["id"] == "vowels")
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["active"] == true))
        .collect()
}

#[tokio::test]
async fn the_organizer_opens_challenges_and_generate_refuses_closed_ones() {
    let llm = fake().await;
    let (app, _dir) = spawn(&llm, &[]).await;
    // Without MOA_CHALLENGES the default challenge alone is open.
    let list = get_json(&app, "/api/challenges").await;
    assert_eq!(actives(&list), [(DEFAULT.to_string(), true), ("vowels".to_string(), false)]);
    assert_eq!(list[0]["max"], 120);
    let vowels = list.as_array().unwrap().iter().find(|c| c["id"] == "vowels").unwrap();
    assert_eq!((vowels["title"].as_str(), vowels["max"].as_u64()), (Some("Count the vowels"), Some(100)));

    for (challenge, sentence) in [("vowels", "not open in this event"), ("nope", "no challenge named \"nope\"")] {
        let response = generate(&app, "Ada", Some(challenge)).await;
        assert_eq!(response.status(), 400, "{challenge}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(sentence), "{error}");
    }
    assert!(llm.requests().is_empty(), "no model was called");

    // Only the organizer may choose, at least one must stay open, and only known ones.
    let anonymous = reqwest::Client::new().post(app.url("/organizer/challenges")).form(&[("challenge", "vowels")]);
    assert_eq!(anonymous.send().await.unwrap().status(), 401);
    let none = choose(&app, &[]).await;
    assert_eq!(none.status(), 400);
    assert!(none.text().await.unwrap().contains("Tick at least one challenge"));
    assert_eq!(choose(&app, &["vowels", "nope"]).await.status(), 400);
    assert!(!actives(&get_json(&app, "/api/challenges").await)[1].1, "nothing changed");

    assert_eq!(choose(&app, &["vowels", DEFAULT]).await.status(), 303);
    let list = get_json(&app, "/api/challenges").await;
    assert_eq!(actives(&list), [(DEFAULT.to_string(), true), ("vowels".to_string(), true)]);
    let page = organizer_page(&app, "/organizer").await;
    assert!(page.contains(r#"name="challenge" value="vowels" checked"#), "{page}");
    generation_id(&app, "Ada", Some("vowels")).await;

    // The vowels challenge alone: it becomes the event's default, and survives a reset.
    assert_eq!(choose(&app, &["vowels"]).await.status(), 303);
    let response = generate(&app, "Ada", Some(DEFAULT)).await;
    assert_eq!(response.status(), 400);
    let id = generation_id(&app, "Ada", None).await;
    let stored = moa_workshop::store::generations::find(&app.state.pool, &id).await.unwrap().unwrap();
    assert_eq!(stored.challenge, "vowels");
    moa_workshop::store::event::reset(&app.state.pool).await.unwrap();
    assert_eq!(
        actives(&get_json(&app, "/api/challenges").await),
        [(DEFAULT.to_string(), false), ("vowels".to_string(), true)]
    );
}

#[tokio::test]
async fn scores_record_their_challenge_version_and_each_challenge_has_its_board() {
    let llm = fake().await;
    let (app, _dir) = spawn(&llm, &[DEFAULT, "vowels"]).await;
    let hash = |id: &str| app.state.challenges.find(Some(id)).unwrap().hash.clone();

    let ada = generation_id(&app, "Ada", None).await;
    let stored = moa_workshop::store::generations::find(&app.state.pool, &ada).await.unwrap().unwrap();
    assert_eq!((stored.challenge.as_str(), stored.challenge_hash.as_str()), (DEFAULT, hash(DEFAULT).as_str()));
    assert_eq!(submit(&app, "Ada", &ada).await["total"], 120);

    // Each open challenge's board is live: the vowels stream is empty, then shows Bob alone.
    let mut vowels_live = live::open(&app, "/leaderboard/stream?challenge=vowels").await;
    let first = live::next(&mut vowels_live).await;
    assert!(first.contains("No submissions yet"), "{first}");
    let mut default_live = live::open(&app, "/leaderboard/stream").await;
    live::next_containing(&mut default_live, "Ada").await;
    let bob = generation_id(&app, "Bob", Some("vowels")).await;
    // The challenge was edited after Bob generated: his code is graded by today's version,
    // and the organizer sees both.
    sqlx::query("UPDATE generations SET challenge_hash = 'feedc0de0000' WHERE id = $1")
        .bind(&bob)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let graded = submit(&app, "Bob", &bob).await;
    assert_eq!((graded["total"].as_u64(), graded["rank"].as_u64()), (Some(100), Some(1)));
    let pushed = live::next_containing(&mut vowels_live, "Bob").await;
    assert!(pushed.contains("<strong>100</strong> / 100") && !pushed.contains("Ada"), "{pushed}");
    let unknown = reqwest::get(app.url("/leaderboard/stream?challenge=nope")).await.unwrap();
    assert_eq!(unknown.status(), 400);
    let stored = moa_workshop::store::submissions::for_generation(&app.state.pool, &bob).await.unwrap().unwrap();
    assert_eq!((stored.challenge.as_str(), stored.challenge_hash.as_str()), ("vowels", hash("vowels").as_str()));

    let names = |board: &Value| -> Vec<(String, u64)> {
        board
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["participant"].as_str().unwrap().to_string(), r["best_score"].as_u64().unwrap()))
            .collect()
    };
    let default_board = get_json(&app, "/api/leaderboard").await;
    assert_eq!(names(&default_board), [("Ada".to_string(), 120)]);
    assert_eq!(default_board, get_json(&app, &format!("/api/leaderboard?challenge={DEFAULT}")).await);
    assert_eq!(names(&get_json(&app, "/api/leaderboard?challenge=vowels").await), [("Bob".to_string(), 100)]);
    let unknown = reqwest::get(app.url("/api/leaderboard?challenge=nope")).await.unwrap();
    assert_eq!(unknown.status(), 400);

    let page = reqwest::get(app.url("/leaderboard?challenge=vowels")).await.unwrap().text().await.unwrap();
    assert!(page.contains("<strong>100</strong> / 100") && !page.contains("Ada"), "{page}");
    assert!(page.contains(&format!(r#"href="/leaderboard?challenge={DEFAULT}""#)), "links to the other board");
    let page = reqwest::get(app.url("/leaderboard")).await.unwrap().text().await.unwrap();
    assert!(page.contains("<strong>120</strong> / 120") && page.contains("sse-connect"), "{page}");

    let dashboard = organizer_page(&app, "/organizer").await;
    assert!(dashboard.contains(&hash(DEFAULT)[..8]) && dashboard.contains(&hash("vowels")[..8]), "{dashboard}");
    // Best scores are per challenge: Bob's 100 is the vowels', not compared with Ada's 120.
    assert!(dashboard.contains(r#"<td>100 <small class="muted">vowels</small></td>"#), "{dashboard}");
    assert!(dashboard.contains("<td>120</td>"), "the default challenge's score unlabelled");
    let csv = organizer_page(&app, "/organizer/submissions.csv").await;
    let bob_row = csv.lines().find(|l| l.contains(&bob)).unwrap();
    assert!(bob_row.contains(&format!("vowels,{}", hash("vowels"))), "{csv}");
    assert!(csv.lines().next().unwrap().contains("counts_vowels"), "the vowels checks have columns too");
    let bob_id = app.participant("Bob").await.id;
    let page = organizer_page(&app, &format!("/organizer/participants/{bob_id}")).await;
    assert!(page.contains(&hash("vowels")[..8]) && page.contains("generated for version feedc0de"), "{page}");
}

#[tokio::test]
async fn the_challenge_page_offers_the_open_challenges() {
    let llm = fake().await;
    let (app, _dir) = spawn(&llm, &[]).await;
    let page = reqwest::get(app.url("/challenge")).await.unwrap().text().await.unwrap();
    assert!(!page.contains("challenge-select"), "one challenge: no choice");
    assert_eq!(choose(&app, &[DEFAULT, "vowels"]).await.status(), 303);
    let page = reqwest::get(app.url("/challenge?challenge=vowels")).await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<option value="vowels" selected>"#), "{page}");
    assert!(page.contains("count_vowels(text)") && page.contains("out of 100"), "the vowels brief");
    assert!(page.contains(r#"data-challenge-id="vowels""#), "the script sends it");
    assert!(page.contains("Careful"), "its presets");
    let page = reqwest::get(app.url("/challenge?challenge=nope")).await.unwrap();
    assert_eq!(page.status(), 400);

    // Taking part from the vowels page comes back to it; a forged field falls back to the default.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = |name: &str, challenge: &str| {
        browser.post(app.url("/challenge/name")).form(&[("name", name), ("challenge", challenge)]).send()
    };
    let response = form("Grace", "vowels").await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/challenge?challenge=vowels#configure");
    let response = form("Linus", "x\r\nSet-Cookie: a=b").await.unwrap();
    assert_eq!(response.headers()["location"], "/challenge#configure", "not an id: dropped");
    let taken = form("Grace", "nope").await.unwrap();
    assert_eq!(taken.status(), 409);
    let page = taken.text().await.unwrap();
    assert!(
        page.contains("calculate_user_metrics") && page.contains("role=\"alert\""),
        "the default page, with the error"
    );
}

#[tokio::test]
async fn the_prompt_inspector_answers_for_open_challenges_only() {
    let llm = fake().await;
    let (app, _dir) = spawn(&llm, &[]).await;
    let setup = config("big-main", 1, &[("bug_hunter", "fast-a")]);
    let client = reqwest::Client::new();
    let inspect = |challenge: &'static str| {
        client.post(app.url("/api/inspect")).json(&json!({"config": setup, "challenge": challenge})).send()
    };
    let closed = inspect("vowels").await.unwrap();
    assert_eq!(closed.status(), 400);
    let error: Value = closed.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("not open in this event"), "{error}");
    assert_eq!(inspect(DEFAULT).await.unwrap().status(), 200);
    assert_eq!(choose(&app, &["vowels"]).await.status(), 303);
    let open = inspect("vowels").await.unwrap();
    assert_eq!(open.status(), 200);
    assert!(open.text().await.unwrap().contains("count_vowels"), "the vowels brief is what the models get");
}
