//! The boards and the organizer's pages over HTTP: ties ranked as ties on every board, the
//! API and the CSV.

use crate::common;

use common::TestApp;
use common::scores;
use moa_workshop::config::Secret;
use serde_json::Value;

const TOKEN: &str = "boards-organizer-0123456789";

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
