//! What another site's page, a guesser and a reverse proxy can and cannot do: cross-site
//! changes are refused, pages cannot be framed and carry a CSP, organizer pages are not
//! cached, cookies are Secure over https, and organizer sign-in slows guessers down.

use crate::common;

use moa_workshop::app::{App, Startup};
use moa_workshop::config::Secret;
use reqwest::redirect::Policy;

const TOKEN: &str = "organizer-token-0123456789";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

async fn organizer_app(configure: impl FnOnce(&mut moa_workshop::config::Settings)) -> common::TestApp {
    common::spawn_app(|s| {
        s.organizer_token = Some(Secret::new(TOKEN));
        configure(s);
    })
    .await
}

async fn sign_in(app: &common::TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().post(app.url("/organizer/login")).form(&[("token", TOKEN)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn session(login: &reqwest::Response) -> String {
    login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
}

async fn freeze(app: &common::TestApp, cookie: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().post(app.url("/organizer/freeze")).header("cookie", cookie).form(&[("frozen", "1")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn another_sites_page_cannot_change_anything() {
    let app = organizer_app(|_| {}).await;
    let cookie = session(&sign_in(&app, &[]).await);
    let evil = [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")];
    let refused = freeze(&app, &cookie, &evil).await;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("another site"), "{body}");
    // Another port of the same host is "same-site", not same-origin.
    let other_port = format!("http://127.0.0.1:{}", app.addr.port() + 1);
    assert_eq!(freeze(&app, &cookie, &[("origin", &other_port), ("sec-fetch-site", "same-site")]).await.status(), 403);
    assert_eq!(freeze(&app, &cookie, &[("origin", &other_port)]).await.status(), 403, "Origin alone");
    assert_eq!(freeze(&app, &cookie, &[("origin", "null")]).await.status(), 403);
    assert!(moa_workshop::store::event::frozen_at(&app.state.pool).await.unwrap().is_none(), "nothing changed");
    // The API refuses too, before anything is spent.
    let moa = client()
        .post(app.url("/api/moa"))
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moa.status(), 403);

    // Its own pages, scripts without either header, and a proxy in front all still work.
    let own = format!("http://{}", app.addr);
    assert_eq!(freeze(&app, &cookie, &[("origin", &own), ("sec-fetch-site", "same-origin")]).await.status(), 303);
    assert_eq!(freeze(&app, &cookie, &[("origin", &own)]).await.status(), 303);
    assert_eq!(freeze(&app, &cookie, &[]).await.status(), 303);
    let proxied = [("host", "moa.example.org"), ("origin", "https://moa.example.org")];
    assert_eq!(freeze(&app, &cookie, &proxied).await.status(), 303);
}

#[tokio::test]
async fn the_public_url_counts_as_this_servers_origin() {
    let app = organizer_app(|s| s.public_url = Some("https://moa.example.org".into())).await;
    let cookie = session(&sign_in(&app, &[]).await);
    assert_eq!(freeze(&app, &cookie, &[("origin", "https://moa.example.org")]).await.status(), 303);
    assert_eq!(freeze(&app, &cookie, &[("origin", "https://evil.example.org")]).await.status(), 403);
}

#[tokio::test]
async fn pages_cannot_be_framed_and_run_only_their_own_scripts() {
    let app = organizer_app(|_| {}).await;
    for path in ["/", "/chat", "/challenge", "/leaderboard", "/organizer"] {
        let response = client().get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>") && !html.contains(" onclick="), "{path} has an inline script");
    }
    let cookie = session(&sign_in(&app, &[]).await);
    for path in ["/organizer", "/organizer/leaderboard.csv"] {
        let response = client().get(app.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test]
async fn cookies_are_secure_over_https_only() {
    let forwarded = [("x-forwarded-proto", "https")];
    // Plain http, and a forged header from a client that is not a trusted proxy.
    let app = organizer_app(|_| {}).await;
    for headers in [&[][..], &forwarded[..]] {
        let cookie = sign_in(&app, headers).await.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && !cookie.contains("Secure"), "{cookie}");
    }
    let behind_proxy =
        organizer_app(|s| s.trusted_proxies = vec![moa_workshop::config::IpRange::parse("127.0.0.1").unwrap()]).await;
    let cookie = sign_in(&behind_proxy, &forwarded).await.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let public = organizer_app(|s| s.public_url = Some("https://moa.example.org".into())).await;
    let cookie = sign_in(&public, &[]).await.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The participant's token cookie goes through the same decision, and stays SameSite=Lax.
    let claim = |app: &common::TestApp, name: &str, headers: &[(&str, &str)]| {
        let mut request = client().post(app.url("/api/participants")).json(&serde_json::json!({ "name": name }));
        for (header, value) in headers {
            request = request.header(*header, *value);
        }
        request.send()
    };
    let plain = claim(&app, "Ada", &forwarded).await.unwrap();
    let cookie = plain.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("moa_participant=") && !cookie.contains("Secure"), "{cookie}");
    for (app, headers) in [(&behind_proxy, &forwarded[..]), (&public, &[][..])] {
        let secure = claim(app, "Grace", headers).await.unwrap();
        let cookie = secure.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.contains("SameSite=Lax") && cookie.contains("; Secure"), "{cookie}");
    }
}

async fn guess(app: &common::TestApp, token: &str, client_ip: Option<&str>) -> reqwest::Response {
    let mut request = client().post(app.url("/organizer/login")).form(&[("token", token)]);
    if let Some(ip) = client_ip {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn guessing_the_organizer_token_is_throttled_per_client_and_overall() {
    let proxy = vec![moa_workshop::config::IpRange::parse("127.0.0.1").unwrap()];
    let app = organizer_app(|s| s.trusted_proxies = proxy).await;
    for _ in 0..5 {
        assert_eq!(guess(&app, "wrong-guess-000000", Some("203.0.113.7")).await.status(), 401);
    }
    let locked = guess(&app, TOKEN, Some("203.0.113.7")).await;
    assert_eq!(locked.status(), 429, "even the right token waits once locked");
    let wait: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert!(locked.text().await.unwrap().contains("Too many wrong organizer tokens"));
    // Bearer guesses by the same client are locked out too.
    let bearer = client()
        .get(app.url("/organizer/leaderboard.csv"))
        .header("x-forwarded-for", "203.0.113.7")
        .bearer_auth("wrong-guess-000000")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 429);
    // Someone else may still sign in ...
    assert_eq!(guess(&app, TOKEN, Some("198.51.100.1")).await.status(), 303);
    // ... until guesses from many addresses add up.
    for i in 0..30 {
        guess(&app, "wrong-guess-000000", Some(&format!("198.51.100.{}", 10 + i))).await;
    }
    assert_eq!(guess(&app, TOKEN, Some("198.51.100.250")).await.status(), 429);
}

#[tokio::test]
async fn a_short_organizer_token_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&dir);
    settings.organizer_token = Some(Secret::new("ab"));
    let problem = App::build(Startup { settings, launcher: common::launcher() }).await.err().expect("refused");
    assert!(problem.contains("ORGANIZER_TOKEN is too short") && problem.contains("openssl rand -hex 16"), "{problem}");
}
