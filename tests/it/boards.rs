//! The boards and the organizer's pages as a browser and a script meet them over HTTP: ties
//! ranked as ties everywhere, errors as pages for browsers and JSON for scripts, the
//! participant page's breakdown, and the page for an unknown address.

use crate::common;

use common::TestApp;
use common::scores;
use moa_workshop::config::Secret;
use serde_json::{Value, json};

const TOKEN: &str = "boards-organizer-0123456789";
/// What Chromium sends when it opens a page or posts a form.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
const ASCENDING: &str = include_str!("../fixtures/grader-examples/04_ascending_sort.py");

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn organizer_app() -> TestApp {
    common::spawn_app(|s| s.organizer_token = Some(Secret::new(TOKEN))).await
}

/// Signs in as a browser does; the session cookie.
async fn sign_in(app: &TestApp) -> String {
    let login = client().post(app.url("/organizer/login")).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(login.status(), 303);
    login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
}

async fn text(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map_or("", |v| v.to_str().unwrap()).to_string();
    (status, content_type, response.text().await.unwrap())
}

/// `<span class="tied">` marks of a page.
fn tie_marks(html: &str) -> usize {
    html.matches("<span class=\"tied\">tied</span>").count()
}

#[tokio::test]
async fn equal_scores_share_a_rank_on_every_board_the_api_and_the_csv() {
    let app = organizer_app().await;
    scores::seed(&app, &[("Ada", 120), ("Grace", 120), ("Linus", 98), ("Mary", 50), ("Alan", 50)]).await;

    let board: Vec<Value> = reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap();
    let ranks: Vec<(u64, bool)> =
        board.iter().map(|r| (r["rank"].as_u64().unwrap(), r["tied"].as_bool().unwrap())).collect();
    assert_eq!(ranks, [(1, true), (1, true), (3, false), (4, true), (4, true)], "{board:?}");

    for path in ["/leaderboard", "/leaderboard?view=projector"] {
        let html = reqwest::get(app.url(path)).await.unwrap().text().await.unwrap();
        assert_eq!(tie_marks(&html), 4, "{path}: {html}");
        assert!(
            html.contains(">=1</span>") && html.contains(">=4</span>") && html.contains("<td class=\"rank\">3</td>")
        );
    }
    let cookie = sign_in(&app).await;
    let dashboard = client().get(app.url("/organizer")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(tie_marks(&dashboard.text().await.unwrap()), 4, "the organizer's board");

    let csv = client().get(app.url("/organizer/leaderboard.csv")).bearer_auth(TOKEN).send().await.unwrap();
    let csv = csv.text().await.unwrap();
    let rows: Vec<(&str, &str, &str)> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0], fields[1], fields[fields.len() - 1])
        })
        .collect();
    assert!(csv.starts_with("rank,participant,best_score,submissions,best_at,config_summary,hidden,tied\r\n"));
    assert_eq!(rows.len(), 5, "{csv}");
    assert_eq!(rows[..3], [("1", "Ada", "true"), ("1", "Grace", "true"), ("3", "Linus", "false")], "{csv}");
    assert_eq!((rows[3].0, rows[3].2, rows[4].0, rows[4].2), ("4", "true", "4", "true"), "{csv}");
}

#[tokio::test]
async fn organizer_errors_are_pages_for_browsers_and_json_for_scripts() {
    let app = organizer_app().await;
    scores::seed(&app, &[("Ada", 120)]).await;

    // A CSV link opened while signed out: a page that says so and links to the sign-in.
    let page = client().get(app.url("/organizer/leaderboard.csv")).header("accept", BROWSER_ACCEPT).send().await;
    let (status, content_type, html) = text(page.unwrap()).await;
    assert_eq!(status, 401);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("<a href=\"/organizer\">Sign in on the organizer page</a>"), "{html}");
    assert!(html.contains("organizer token") && !html.contains("{\"error\""), "{html}");
    // A script asking the same gets the JSON sentence.
    let (status, content_type, body) =
        text(client().get(app.url("/organizer/leaderboard.csv")).send().await.unwrap()).await;
    assert_eq!((status, content_type.as_str()), (401, "application/json"));
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(), "{body}");

    // The reset form with a word that is not RESET: a page saying what to type, a link back.
    let cookie = sign_in(&app).await;
    let reset = |word: &'static str, accept: Option<&'static str>| {
        let mut request =
            client().post(app.url("/organizer/reset")).header("cookie", &cookie).form(&[("confirm", word)]);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let (status, content_type, html) = text(reset("yes", Some(BROWSER_ACCEPT)).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("type the word RESET") && html.contains("Nothing was deleted"), "{html}");
    assert!(html.contains("<a href=\"/organizer\">Back to the organizer page</a>"), "{html}");
    assert_eq!(reqwest::get(app.url("/api/leaderboard")).await.unwrap().json::<Vec<Value>>().await.unwrap().len(), 1);
    let (status, content_type, _) = text(reset("yes", None).await.unwrap()).await;
    assert_eq!((status, content_type.as_str()), (400, "application/json"));

    // "reset" in lower case is as clear an intent as "RESET".
    let done = reset(" reset ", Some(BROWSER_ACCEPT)).await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/organizer?done=reset");
    assert!(reqwest::get(app.url("/api/leaderboard")).await.unwrap().json::<Vec<Value>>().await.unwrap().is_empty());
}

/// `text` as askama writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

#[tokio::test]
async fn the_participant_page_breaks_down_each_submission_with_readable_times_and_ids() {
    let app = organizer_app().await;
    let linus = app.participant("Linus").await;
    let generation = scores::generation(&app, &linus.id, ASCENDING).await;
    let graded: Value = app
        .post_json_as("Linus", "/api/submissions", &json!({"generation_id": generation}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(graded["total"], 98, "{graded}");
    let cookie = sign_in(&app).await;
    let page = client().get(app.url(&format!("/organizer/participants/{}", linus.id))).header("cookie", &cookie).send();
    let html = page.await.unwrap().text().await.unwrap();

    // Every check with its points and why.
    let checks = graded["checks"].as_array().unwrap();
    let passed = checks.iter().filter(|c| c["passed"] == true).count();
    assert!(passed < checks.len(), "the fixture fails a check");
    assert!(html.contains(&format!("Checks: {passed} of {} passed", checks.len())), "{html}");
    for check in checks {
        let row = format!(
            "<code>{}</code></small></td><td class=\"score\">{} / {}</td><td>{}</td>",
            check["id"].as_str().unwrap(),
            check["points"],
            check["max"],
            escaped(check["reason"].as_str().unwrap())
        );
        assert!(html.contains(&row), "no row {row}\n{html}");
    }

    // Times for people, with the exact one in the markup.
    let time = html.split("<time datetime=\"").nth(1).expect("a <time>");
    let (iso, rest) = time.split_once('"').unwrap();
    assert!(iso.len() == 20 && iso.ends_with('Z'), "{iso}");
    let shown = rest.split_once('>').unwrap().1.split_once("</time>").unwrap().0;
    let words: Vec<&str> = shown.split(' ').collect();
    assert_eq!(words.len(), 4, "{shown}");
    assert_eq!((words[2].len(), words[3]), (5, "UTC"), "{shown}");
    assert!(words[0].parse::<u32>().is_ok() && iso[11..16] == *words[2], "{shown} for {iso}");
    assert!(!html.contains(&format!(">{iso}<")), "no raw ISO time as text");

    // The generation's id in eight characters, the whole of it only in attributes.
    assert!(html.contains(&format!("title=\"{generation}\"")));
    assert!(html.contains(&format!("<code>{}</code>", &generation[..8])), "{html}");
    assert!(!html.contains(&format!(">{generation}<")), "no 32-hex id as text");
}

#[tokio::test]
async fn an_unknown_address_is_a_page_with_a_way_home_and_json_under_api() {
    let app = common::spawn_app(|_| {}).await;
    let page = client().get(app.url("/no/such/page")).header("accept", BROWSER_ACCEPT).send().await.unwrap();
    let (status, content_type, html) = text(page).await;
    assert_eq!(status, 404);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        html.contains("There is no page here.") && html.contains("<a href=\"/\">Go to the home page</a>"),
        "{html}"
    );
    assert!(html.contains("<header class=\"top\">"), "the site's layout: {html}");

    for (path, accept) in [("/api/no-such-thing", BROWSER_ACCEPT), ("/no/such/page", "*/*")] {
        let (status, content_type, body) =
            text(client().get(app.url(path)).header("accept", accept).send().await.unwrap()).await;
        assert_eq!((status, content_type.as_str()), (404, "application/json"), "{path}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "There is no page here.", "{path}");
    }
}
