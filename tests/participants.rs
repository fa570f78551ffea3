//! Who a participant is: a claimed name proven by a secret token (issue 13). Nobody can act
//! for someone else by writing their public name; lookalike names are one name; a device
//! change needs no organizer; the organizer can release a name; old databases keep working.

mod common;

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, spawn_with_fake};
use moa_workshop::config::Secret;
use moa_workshop::store::participants;
use serde_json::{Value, json};
use std::time::Duration;

async fn count(app: &TestApp, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        .get("n")
}

async fn claim(app: &TestApp, name: &str) -> reqwest::Response {
    reqwest::Client::new().post(app.url("/api/participants")).json(&json!({ "name": name })).send().await.unwrap()
}

async fn error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

fn setup() -> Value {
    config("big-main", 1, &[("a", "fast-a")])
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(app.url("/api/me")).header("x-participant-token", token).send().await.unwrap()
}

#[tokio::test]
async fn a_claim_returns_a_secret_token_in_an_http_only_cookie_and_stores_only_its_hash() {
    common::logs::capture();
    let app = common::spawn_app(|_| {}).await;
    let response = claim(&app, "Ada").await;
    assert_eq!(response.status(), 201);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["participant"], "Ada");
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 32, "{token}");
    assert!(cookie.starts_with(&format!("moa_participant={token};")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // The database holds no copy of the token.
    let bytes = std::fs::read(app.database_path()).unwrap();
    let wal = std::fs::read(app.database_path().with_extension("db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    assert!(!bytes.windows(needle.len()).chain(wal.windows(needle.len())).any(|w| w == needle));

    // The token works as a header and as the cookie.
    let mine: Value = me(&app, &token).await.json().await.unwrap();
    assert_eq!(mine, json!({"participant": "Ada", "submissions": 0, "best_score": null}));
    let by_cookie = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", format!("moa_participant={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.json::<Value>().await.unwrap()["participant"], "Ada");
    // Claiming one's own name again changes nothing.
    let again = reqwest::Client::new()
        .post(app.url("/api/participants"))
        .header("x-participant-token", &token)
        .json(&json!({"name": "ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["token"], token.as_str());
    assert_eq!(count(&app, "participants").await, 1);
    // Nothing logged the token (headers and cookies are marked sensitive).
    let logs = common::logs::text();
    assert!(logs.contains("/api/me"), "requests are logged");
    assert!(!logs.contains(&token), "a participant token reached the log");
}

#[tokio::test]
async fn nobody_can_act_for_someone_by_writing_their_name() {
    let llm = FakeLlm::start(Duration::from_millis(5)).await;
    let app = spawn_with_fake(&llm, |s| s.generate_per_minute = 6).await;
    let ada = app.token("Ada").await;
    let client = reqwest::Client::new();

    // Without a token, six generations "as ada" are refused: they cannot use up Ada's limit.
    for _ in 0..6 {
        let response = client
            .post(app.url("/api/generate"))
            .json(&json!({"participant": "ada", "config": setup()}))
            .send()
            .await
            .unwrap();
        let (status, sentence) = error(response).await;
        assert_eq!(status, 401);
        assert!(sentence.contains("claim a display name"), "{sentence}");
    }
    let unknown = client
        .post(app.url("/api/generate"))
        .header("x-participant-token", "f".repeat(64))
        .json(&json!({"config": setup()}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(unknown).await, (401, participants_unknown()));
    assert!(llm.requests().is_empty(), "no model was called");
    let response = app.post_json_as("Ada", "/api/generate", &json!({"config": setup()})).await;
    assert_eq!(response.status(), 200, "Ada still has her generations");

    // Signed in as Grace, naming Ada is a 403; a submission "as ADA" never lands in Ada's history.
    let (status, sentence) =
        error(app.post_json_as("Grace", "/api/generate", &json!({"participant": "Ada", "config": setup()})).await)
            .await;
    assert_eq!(status, 403);
    assert!(sentence.contains("cannot act for \"Ada\""), "{sentence}");
    let submit = client.post(app.url("/api/submissions")).json(&json!({"participant": "ADA", "generation_id": "x"}));
    assert_eq!(submit.send().await.unwrap().status(), 401);
    assert_eq!(me(&app, &ada).await.json::<Value>().await.unwrap()["submissions"], 0);

    // 500 requests "as Grace Hopper" without a claim create nobody: the real Grace Hopper can claim.
    let before = count(&app, "participants").await;
    for _ in 0..500 {
        let body = json!({"participant": "Grace Hopper", "config": setup()});
        client.post(app.url("/api/generate")).json(&body).send().await.unwrap();
    }
    assert_eq!(count(&app, "participants").await, before, "only a claim creates a participant");
    assert_eq!(claim(&app, "Grace Hopper").await.status(), 201);
}

fn participants_unknown() -> String {
    "This participant token is not known here: the organizer may have released the name or reset the event. \
     Claim your name again, or sign in with a code from your other device."
        .into()
}

#[tokio::test]
async fn lookalike_names_are_one_name_and_invisible_characters_are_refused() {
    let app = common::spawn_app(|_| {}).await;
    assert_eq!(claim(&app, "Ada").await.status(), 201);
    assert_eq!(claim(&app, "Zo\u{00EB}").await.status(), 201);
    for lookalike in ["\u{FF21}da", "\u{0410}da", "ADA", " ada ", "Zoe\u{0308}", "ZOË"] {
        let (status, sentence) = error(claim(&app, lookalike).await).await;
        assert_eq!(status, 409, "{lookalike:?}");
        assert!(sentence.contains("is taken"), "{sentence}");
    }
    for invisible in ["A\u{200D}da", "Ada\u{200B}", "\u{202E}adA", "\u{3164}", "Ada\u{3164}", "Ad\u{2066}a"] {
        let (status, sentence) = error(claim(&app, invisible).await).await;
        assert_eq!(status, 400, "{invisible:?}");
        assert!(sentence.contains("invisible"), "{sentence}");
    }
    let (status, sentence) = error(claim(&app, "   ").await).await;
    assert_eq!((status, sentence.contains("display name")), (400, true));
    assert_eq!(count(&app, "participants").await, 2);
    // Names in other scripts, with emoji, are fine.
    assert_eq!(claim(&app, "李小龍 🚀").await.status(), 201);
}

#[tokio::test]
async fn the_challenge_page_name_form_claims_by_the_same_path() {
    let app = common::spawn_app(|_| {}).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let taken = app.token("Ada").await;
    assert!(!taken.is_empty());
    let response = client.post(app.url("/challenge/name")).form(&[("name", "\u{0410}da")]).send().await.unwrap();
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("is taken"));
    let response = client.post(app.url("/challenge/name")).form(&[("name", "Grace")]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = client.get(app.url("/challenge")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"You take part as <strong id="my-name">Grace</strong>"#));
    assert!(!page.contains(cookie.trim_start_matches("moa_participant=")), "the token is never on a page");
}

#[tokio::test]
async fn a_one_time_code_signs_in_another_device_once() {
    common::logs::capture();
    let app = common::spawn_app(|_| {}).await;
    let laptop = app.token("Ada").await;
    let code = reqwest::Client::new()
        .post(app.url("/api/me/sign-in-code"))
        .header("x-participant-token", &laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(code.status(), 200);
    let code: Value = code.json().await.unwrap();
    assert_eq!(code["expires_in_s"], 600);
    let code = code["code"].as_str().unwrap().to_string();
    let redeem = |code: String| {
        let app = app.url("/api/sign-in");
        async move { reqwest::Client::new().post(app).json(&json!({ "code": code })).send().await.unwrap() }
    };
    let phone = redeem(code.to_lowercase()).await;
    assert_eq!(phone.status(), 200);
    let phone: Value = phone.json().await.unwrap();
    assert_eq!(phone["participant"], "Ada");
    let phone = phone["token"].as_str().unwrap().to_string();
    assert_ne!(phone, laptop);
    for token in [&laptop, &phone] {
        assert_eq!(me(&app, token).await.json::<Value>().await.unwrap()["participant"], "Ada", "both devices");
    }
    let (status, sentence) = error(redeem(code).await).await;
    assert_eq!(status, 400, "a code works once");
    assert!(sentence.contains("already used or expired"), "{sentence}");

    // An expired code does nothing.
    let ada = participants::find_by_name(&app.state.pool, "Ada").await.unwrap().unwrap();
    let stale = participants::new_sign_in_code(&app.state.pool, &ada.id, Duration::ZERO).await.unwrap();
    assert_eq!(redeem(stale).await.status(), 400);

    // The page shows the code to its owner only, and takes one on the other device.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client
        .post(app.url("/challenge/sign-in-code"))
        .header("cookie", format!("moa_participant={laptop}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let start = html.find("id=\"sign-in-code\">").unwrap() + "id=\"sign-in-code\">".len();
    let shown = html[start..].split('<').next().unwrap().to_string();
    let signed_in = client.post(app.url("/challenge/sign-in")).form(&[("code", shown.as_str())]).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert!(signed_in.headers()["set-cookie"].to_str().unwrap().starts_with("moa_participant="));
    let logs = common::logs::text();
    for secret in [&laptop, &phone, &shown] {
        assert!(!logs.contains(secret.as_str()), "a token or code reached the log");
    }
}

#[tokio::test]
async fn the_organizer_releases_a_name_and_the_next_claim_takes_it_over() {
    let app = common::spawn_app(|s| s.organizer_token = Some(Secret::new("organizer-token-1"))).await;
    let old = app.token("Ada").await;
    let ada = participants::find_by_name(&app.state.pool, "Ada").await.unwrap().unwrap();
    assert_eq!(claim(&app, "Ada").await.status(), 409);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client
        .get(app.url(&format!("/organizer/participants/{}", ada.id)))
        .bearer_auth("organizer-token-1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/organizer/participants/{}/release", ada.id)), "a release button");
    let path = format!("/organizer/participants/{}/release", ada.id);
    assert_eq!(client.post(app.url(&path)).send().await.unwrap().status(), 401, "organizer only");
    let released = client.post(app.url(&path)).bearer_auth("organizer-token-1").send().await.unwrap();
    assert_eq!(released.status(), 303);
    assert_eq!(me(&app, &old).await.status(), 401, "the old devices are signed out");
    let taken_over = claim(&app, "ada").await;
    assert_eq!(taken_over.status(), 201);
    let token = taken_over.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    assert_eq!(me(&app, &token).await.json::<Value>().await.unwrap()["participant"], "Ada");
    assert_eq!(participants::by_token(&app.state.pool, &token).await.unwrap().unwrap().id, ada.id, "same row");
    assert_eq!(claim(&app, "Ada").await.status(), 409, "taken again");
}

#[tokio::test]
async fn participants_of_an_older_database_keep_working() {
    let app = common::spawn_app(|_| {}).await;
    // As the previous version stored them: a lower-cased key, the id in the browser's cookie.
    let id = "0123456789abcdef0123456789abcdef";
    sqlx::query("INSERT INTO participants (id, name, name_key, hidden, created_at) VALUES ($1, 'Ada', 'ada', 0, 1)")
        .bind(id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let app = app.restart(|_| {}).await;
    assert_eq!(claim(&app, "\u{FF21}DA").await.status(), 409, "the old name key was upgraded");
    let client = reqwest::Client::new();
    let first = client.get(app.url("/challenge")).header("cookie", format!("moa_participant={id}")).send().await;
    let first = first.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(first.text().await.unwrap().contains(r#"You take part as <strong id="my-name">Ada</strong>"#));
    let token = cookie.trim_start_matches("moa_participant=").split(';').next().unwrap().to_string();
    assert_ne!(token, id);
    assert_eq!(me(&app, &token).await.json::<Value>().await.unwrap()["participant"], "Ada");
    // The old id bought one token; it is no credential from then on.
    let again = client.get(app.url("/challenge")).header("cookie", format!("moa_participant={id}")).send().await;
    let again = again.unwrap();
    assert!(again.headers().get("set-cookie").is_none());
    assert!(!again.text().await.unwrap().contains("You take part as"));
}

#[tokio::test]
async fn claims_are_rate_limited_per_address() {
    let app = common::spawn_app(|s| s.fair_use.claims_per_ip_per_minute = 3).await;
    for n in 0..3 {
        assert_eq!(claim(&app, &format!("Name {n}")).await.status(), 201);
    }
    let refused = claim(&app, "Name 3").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(error(refused).await.1.contains("Too many names were claimed"));
    assert_eq!(count(&app, "participants").await, 3);
}
