//! What a browser on bad Wi-Fi downloads: every page's first load stays small, comes from this
//! server only, and its static files are cached for good under a content-hashed URL.

use crate::common;

use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};

/// Each page with the status its first load gets (the organizer's is its sign-in form), and
/// whether it streams a live board (the only pages that need htmx).
const PAGES: &[(&str, u16, bool)] = &[
    ("/", 200, false),
    ("/chat", 200, false),
    ("/challenge", 200, false),
    ("/leaderboard", 200, true),
    ("/leaderboard?view=projector", 200, true),
    ("/organizer", 401, false),
];

/// What a first load may cost on bad Wi-Fi: compressed bytes and requests, the page included.
const MAX_BYTES: usize = 50 * 1024;
const MAX_REQUESTS: usize = 6;

/// The `/static/…` URLs a page references in `src` or `href` attributes.
fn static_urls(page: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let start = at + attribute.len();
            let end = start + page[start..].find('"').expect("attribute is closed");
            let url = &page[start..end];
            assert!(!url.starts_with("http") && !url.starts_with("//"), "the page references another site: {url}");
            if url.starts_with("/static/") {
                urls.push(url.to_string());
            }
        }
    }
    urls
}

#[tokio::test]
async fn every_first_load_is_under_50_kb_and_6_requests_with_nothing_from_other_sites() {
    let app =
        common::spawn_app(|s| s.organizer_token = Some(moa_workshop::config::Secret::new("tok-0123456789abcdef")))
            .await;
    let client = reqwest::Client::builder().gzip(false).build().unwrap();
    for &(page_path, status, live) in PAGES {
        let response = client.get(app.url(page_path)).header(ACCEPT_ENCODING, "gzip").send().await.unwrap();
        assert_eq!(response.status(), status, "{page_path}");
        let mut total = response.bytes().await.unwrap().len();
        let page = reqwest::get(app.url(page_path)).await.unwrap().text().await.unwrap();
        let urls = static_urls(&page);
        let htmx = urls.iter().any(|u| u.starts_with("/static/htmx.min.js?v="));
        assert_eq!(htmx, live, "{page_path}: htmx only where a live board streams");
        let requests = 1 + urls.len();
        for url in urls {
            let response = client.get(app.url(&url)).header(ACCEPT_ENCODING, "gzip").send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{url}");
            assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable", "{url}");
            total += response.bytes().await.unwrap().len();
        }
        println!("{page_path}: {total} bytes compressed in {requests} requests");
        assert!(total <= MAX_BYTES, "the first load of {page_path} is {total} bytes compressed");
        assert!(requests <= MAX_REQUESTS, "the first load of {page_path} takes {requests} requests");
    }
}

#[tokio::test]
async fn a_static_file_without_its_version_revalidates_and_an_unchanged_one_costs_no_body() {
    let app = common::spawn_app(|_| {}).await;
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    let versioned = static_urls(&page).into_iter().find(|u| u.starts_with("/static/chat.js?v=")).unwrap();
    let client = reqwest::Client::new();

    let plain = client.get(app.url("/static/chat.js")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-type"], "text/javascript");
    assert_eq!(plain.headers()[CACHE_CONTROL], "no-cache", "an unversioned URL may not be kept stale");
    let etag = plain.headers()[ETAG].to_str().unwrap().to_string();
    assert!(versioned.ends_with(etag.trim_start_matches("W/").trim_matches('"')), "{versioned} vs {etag}");

    let stale = client.get(app.url("/static/chat.js?v=0000")).send().await.unwrap();
    assert_eq!(stale.headers()[CACHE_CONTROL], "no-cache", "an old version's URL gets today's file, revalidated");

    let again = client.get(app.url("/static/chat.js")).header(IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = client.get(app.url("/static/chat.js")).header(IF_NONE_MATCH, "W/\"feed\"").send().await.unwrap();
    assert_eq!(other.status(), 200, "a different ETag gets the file");
}

/// The pages' own scripts stay small: the server renders, they only do what a browser must.
const MAX_SCRIPT_LINES: usize = 300;

#[test]
fn the_pages_own_javascript_stays_under_300_lines() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".js") && !name.starts_with("htmx") {
            let lines = std::fs::read_to_string(entry.path()).unwrap().lines().count();
            println!("static/{name}: {lines} lines");
            total += lines;
        }
    }
    assert!(total < MAX_SCRIPT_LINES, "the pages' scripts have {total} lines");
}
