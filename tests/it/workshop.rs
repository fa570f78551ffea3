//! Submissions, the leaderboard and the organizer view over HTTP, on a real SQLite file.
//! Generations are stored directly here; `tests/it/challenge.rs` makes them through the MoA run.

use crate::common;

use common::TestApp;
use futures_util::StreamExt;
use moa_workshop::config::Secret;
use moa_workshop::store::participants;
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const ASCENDING: &str = include_str!("../fixtures/grader-examples/04_ascending_sort.py");

/// Stores a generation for `name` (claiming the name first) and returns its id.
async fn generation(app: &TestApp, name: &str, code: &str) -> String {
    let participant = app.participant(name).await;
    common::scores::generation(app, &participant.id, code).await
}

async fn submit(app: &TestApp, name: &str, generation_id: &str) -> reqwest::Response {
    app.post_json_as(name, "/api/submissions", &json!({"generation_id": generation_id})).await
}

/// [`submit`], retrying as told while the participant's previous submission is being graded.
async fn submit_patiently(app: &TestApp, name: &str, generation_id: &str) -> reqwest::Response {
    loop {
        let response = submit(app, name, generation_id).await;
        if response.status() != 429 {
            return response;
        }
        let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200).min(std::time::Duration::from_secs(wait))).await;
    }
}

async fn leaderboard(app: &TestApp) -> Vec<Value> {
    reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        .get("n")
}

#[tokio::test]
async fn submit_grades_the_generation_and_ranks_ties_as_ties_listed_by_who_was_first() {
    let app = common::spawn_app(|_| {}).await;
    let ada = generation(&app, "Ada", FULL_MARKS).await;
    let response = submit(&app, "Ada", &ada).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["total"].as_u64(), body["rank"].as_u64()), (Some(120), Some(1)));
    assert_eq!(body["status"], "graded");
    assert_eq!(body["checks"].as_array().unwrap().len(), 11);
    let first_id = body["submission_id"].as_str().unwrap().to_string();

    // The same generation again (a retried request): same submission, counted once.
    let again: Value = submit(&app, "ada", &ada).await.json().await.unwrap();
    assert_eq!(again["submission_id"], first_id.as_str());
    assert_eq!(count(&app, "submissions").await, 1);

    // Grace ties Ada later, Linus scores less: Ada and Grace share rank 1 (Ada listed first,
    // she was there first), Linus is third.
    let grace = generation(&app, "Grace", FULL_MARKS).await;
    assert_eq!(submit(&app, "Grace", &grace).await.json::<Value>().await.unwrap()["rank"], 1);
    let linus = generation(&app, "Linus", ASCENDING).await;
    let body: Value = submit(&app, "Linus", &linus).await.json().await.unwrap();
    assert_eq!((body["total"].as_u64(), body["rank"].as_u64()), (Some(98), Some(3)));
    let board = leaderboard(&app).await;
    let rows: Vec<(&str, u64, bool)> = board
        .iter()
        .map(|r| (r["participant"].as_str().unwrap(), r["rank"].as_u64().unwrap(), r["tied"].as_bool().unwrap()))
        .collect();
    assert_eq!(rows, [("Ada", 1, true), ("Grace", 1, true), ("Linus", 3, false)]);
    assert_eq!(board[0]["best_score"], 120);
    assert_eq!(board[0]["submissions"], 1);
    assert_eq!(board[0]["config_summary"], "llama-3.3-70b · 2 cycles · 2 agents");
    assert!(board[0]["best_at"].as_str().unwrap().ends_with('Z'));

    // A later, lower score does not lower the best, but counts as a submission.
    let ada_worse = generation(&app, "Ada", ASCENDING).await;
    submit(&app, "Ada", &ada_worse).await;
    let board = leaderboard(&app).await;
    assert_eq!(
        (board[0]["participant"].as_str(), board[0]["best_score"].as_u64(), board[0]["submissions"].as_u64()),
        (Some("Ada"), Some(120), Some(2))
    );
}

#[tokio::test]
async fn bad_submissions_get_clear_errors_and_store_nothing() {
    let app = common::spawn_app(|_| {}).await;
    let ada = generation(&app, "Ada", FULL_MARKS).await;
    generation(&app, "Grace", FULL_MARKS).await;
    let cases = [
        (Some("Grace"), json!({"generation_id": ada}), 404, "Grace has no generation"),
        (Some("Grace"), json!({"participant": "Ada", "generation_id": ada}), 403, "cannot act for"),
        (None, json!({"participant": "Ada", "generation_id": ada}), 401, "claim a display name"),
        (Some("Ada"), json!({"generation_id": "nope"}), 404, "no generation"),
        (Some("Ada"), json!({}), 400, "generation_id"),
    ];
    for (who, body, status, text) in cases {
        let response = match who {
            Some(name) => app.post_json_as(name, "/api/submissions", &body).await,
            None => reqwest::Client::new().post(app.url("/api/submissions")).json(&body).send().await.unwrap(),
        };
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(text), "{error}");
    }
    let response = app
        .post_as(&reqwest::Client::new(), "Ada", "/api/submissions")
        .await
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(count(&app, "submissions").await, 0);
}

#[tokio::test]
async fn concurrent_submissions_are_all_counted_once() {
    let app = common::spawn_app(|s| s.submit_per_minute = 0).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push((
            format!("P{}", i % 3),
            generation(&app, &format!("P{}", i % 3), if i % 2 == 0 { FULL_MARKS } else { ASCENDING }).await,
        ));
    }
    // Every generation twice at once: 12 requests, 6 submissions. A participant has one
    // submission graded at a time, so the others are told to retry, and do.
    let requests = ids.iter().chain(ids.iter()).map(|(name, id)| submit_patiently(&app, name, id));
    let responses = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    if statuses.iter().any(|s| *s != 200) {
        for r in responses {
            eprintln!("{} {}", r.status(), r.text().await.unwrap_or_default());
        }
        panic!("not all 200: {statuses:?}");
    }
    assert_eq!(count(&app, "submissions").await, 6);
    let board = leaderboard(&app).await;
    assert_eq!(board.len(), 3);
    assert!(board.iter().all(|r| r["submissions"] == 2 && r["best_score"] == 120), "{board:?}");
}

#[tokio::test]
async fn submitting_too_fast_gets_429_with_retry_after() {
    let app = common::spawn_app(|s| s.submit_per_minute = 1).await;
    let first = generation(&app, "Ada", FULL_MARKS).await;
    let second = generation(&app, "Ada", ASCENDING).await;
    assert_eq!(submit(&app, "Ada", &first).await.status(), 200);
    let response = submit(&app, "Ada", &second).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("too fast"));
    // Another attendee is not affected.
    let grace = generation(&app, "Grace", FULL_MARKS).await;
    assert_eq!(submit(&app, "Grace", &grace).await.status(), 200);
}

#[tokio::test]
async fn scores_survive_a_restart() {
    let app = common::spawn_app(|_| {}).await;
    let ada = generation(&app, "Ada", FULL_MARKS).await;
    submit(&app, "Ada", &ada).await;
    let before = leaderboard(&app).await;
    let app = app.restart(|_| {}).await;
    assert_eq!(leaderboard(&app).await, before);
    assert_eq!(before.len(), 1);
}

#[tokio::test]
async fn the_leaderboard_stream_pushes_new_rows_without_reload() {
    let app = common::spawn_app(|_| {}).await;
    let response = reqwest::get(app.url("/leaderboard/stream")).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        while !seen.contains(needle) {
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(10), body.next()).await.expect("an event in time");
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        }
    };
    read_until("No submissions yet", &mut seen).await;
    let ada = generation(&app, "Ada Lovelace", FULL_MARKS).await;
    submit(&app, "Ada Lovelace", &ada).await;
    read_until("Ada Lovelace", &mut seen).await;
    assert!(seen.contains("event: leaderboard"));
}

#[tokio::test]
async fn the_leaderboard_page_escapes_names_and_has_a_projector_view() {
    let app = common::spawn_app(|_| {}).await;
    let id = generation(&app, "<img src=x onerror=alert(1)>", FULL_MARKS).await;
    submit(&app, "<img src=x onerror=alert(1)>", &id).await;
    let page = reqwest::get(app.url("/leaderboard?view=projector")).await.unwrap().text().await.unwrap();
    assert!(
        page.contains("&#60;img src=x onerror=alert(1)&#62;") || page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(!page.contains("<img src=x"));
    assert!(page.contains("class=\"projector\""));
    assert!(page.contains("sse-connect=\"/leaderboard/stream?challenge=calculate_user_metrics\""), "{page}");
}

#[tokio::test]
async fn organizer_pages_are_off_without_a_token() {
    let app = common::spawn_app(|_| {}).await;
    let page = reqwest::get(app.url("/organizer")).await.unwrap();
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("ORGANIZER_TOKEN"));
    let csv =
        reqwest::Client::new().get(app.url("/organizer/leaderboard.csv")).bearer_auth("anything").send().await.unwrap();
    assert_eq!(csv.status(), 404);
}

#[tokio::test]
async fn organizer_auth_exports_freeze_hide_and_reset() {
    let app = common::spawn_app(|s| s.organizer_token = Some(Secret::new("org-secret-42-0123456789"))).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // Wrong or missing token: 401.
    assert_eq!(client.get(app.url("/organizer/leaderboard.csv")).send().await.unwrap().status(), 401);
    assert_eq!(
        client.get(app.url("/organizer/leaderboard.csv")).bearer_auth("nope").send().await.unwrap().status(),
        401
    );
    let login = client.post(app.url("/organizer/login")).form(&[("token", "nope")]).send().await.unwrap();
    assert_eq!(login.status(), 401);

    let ada = generation(&app, "Ada, \"the first\"", FULL_MARKS).await;
    submit(&app, "Ada, \"the first\"", &ada).await;
    let csv =
        client.get(app.url("/organizer/leaderboard.csv")).bearer_auth("org-secret-42-0123456789").send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("rank,participant,best_score,submissions,best_at,config_summary,hidden,tied\r\n"),
        "{text}"
    );
    assert!(text.contains("1,\"Ada, \"\"the first\"\"\",120,1,"), "{text}");
    let text = client
        .get(app.url("/organizer/submissions.csv"))
        .bearer_auth("org-secret-42-0123456789")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("handles_division_by_zero") && text.contains(&ada), "{text}");

    // A browser signs in and gets a session cookie that is not the token.
    let login =
        client.post(app.url("/organizer/login")).form(&[("token", "org-secret-42-0123456789")]).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(!cookie.contains("org-secret-42-0123456789"));
    let page = client.get(app.url("/organizer")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Live scores") && !html.contains("org-secret-42-0123456789"));
    // The overview counts each participant's generations and submissions, with the best score.
    assert!(html.contains("<td>1</td><td>1</td>\n    <td>120</td>"), "{html}");

    // Freeze: the public board stops changing, the organizer's does not.
    let freeze = client
        .post(app.url("/organizer/freeze"))
        .header("cookie", &cookie)
        .form(&[("frozen", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(freeze.status(), 303);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let grace = generation(&app, "Grace", FULL_MARKS).await;
    let graded: Value = submit(&app, "Grace", &grace).await.json().await.unwrap();
    assert_eq!((graded["total"].as_u64(), graded["rank"].as_u64()), (Some(120), None), "no rank while frozen");
    assert_eq!(leaderboard(&app).await.len(), 1, "frozen");
    assert!(reqwest::get(app.url("/leaderboard")).await.unwrap().text().await.unwrap().contains("frozen"));
    let live = client
        .get(app.url("/organizer/leaderboard.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(live.contains("Grace"));
    client.post(app.url("/organizer/freeze")).header("cookie", &cookie).form(&[("frozen", "0")]).send().await.unwrap();
    assert_eq!(leaderboard(&app).await.len(), 2, "unfrozen");

    // Hide: gone from the public board only.
    let grace_id = participants::find_by_name(&app.state.pool, "Grace").await.unwrap().unwrap().id;
    client
        .post(app.url(&format!("/organizer/participants/{grace_id}/hide")))
        .header("cookie", &cookie)
        .form(&[("hidden", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(leaderboard(&app).await.len(), 1);
    let detail = client
        .get(app.url(&format!("/organizer/participants/{grace_id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(detail.contains("calculate_user_metrics") && detail.contains("(hidden)"));

    // The winner's configuration downloads as importable workshop JSON.
    let config: Value = client
        .get(app.url(&format!("/organizer/generations/{ada}/config.json")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["ai_configuration"]["main_model"], "llama-3.3-70b");
    assert_eq!(config["version"], "2.0");

    // Reset needs the confirmation word.
    let refused = client
        .post(app.url("/organizer/reset"))
        .header("cookie", &cookie)
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(count(&app, "submissions").await, 2);
    let done = client
        .post(app.url("/organizer/reset"))
        .header("cookie", &cookie)
        .form(&[("confirm", "RESET")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(count(&app, "submissions").await, 0);
    assert!(leaderboard(&app).await.is_empty());

    // Signing out ends the session.
    client.post(app.url("/organizer/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(
        client.get(app.url("/organizer/leaderboard.csv")).header("cookie", &cookie).send().await.unwrap().status(),
        401
    );
}
