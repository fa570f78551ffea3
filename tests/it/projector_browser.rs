//! The projector board in headless Chromium at 1280×720 with a roomful of participants: at
//! least 20 legible rows on one screen, no site navigation, no cell broken over two lines,
//! the rest shown page by page, ties marked as ties, and still live.

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::scores;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// The board turns a page every 10 s.
const NEXT_PAGE: Duration = Duration::from_secs(16);

/// 31 participants: three tied at full marks (one with a name far too long for its column),
/// then 27 different scores, the last of them tied with Linus.
fn room() -> Vec<(String, u32)> {
    let mut scores: Vec<(String, u32)> = vec![
        ("Ada Lovelace".into(), 120),
        ("Grace Hopper".into(), 120),
        ("Maximilian Featherstonehaugh-Worthington".into(), 120),
    ];
    scores.extend((0..27).map(|i| (format!("Attendee {:02}", i + 1), 110 - i)));
    scores.push(("Linus Torvalds".into(), 84));
    scores
}

/// Resizes the window so that the page itself (the viewport) is `width`×`height`.
async fn set_viewport(browser: &Browser, width: i64, height: i64) {
    browser.set_window_size(width as u32, height as u32).await;
    let inner = browser.execute("return [window.innerWidth, window.innerHeight]", vec![]).await;
    let (w, h) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
    if (w, h) != (width, height) {
        browser.set_window_size((2 * width - w) as u32, (2 * height - h) as u32).await;
    }
    let inner = browser.execute("return [window.innerWidth, window.innerHeight]", vec![]).await;
    assert_eq!((inner[0].as_i64(), inner[1].as_i64()), (Some(width), Some(height)), "the viewport");
}

/// What the board shows now: every row's name, the shown rows' names, ranks and how many of
/// them lie inside the viewport, the cells whose text takes more than one line, the cells
/// other than names and configurations cut short, the page status, and the rows' font size.
const LOOK: &str = r#"
const rows = [...document.querySelectorAll('#leaderboard tbody tr')];
const shown = rows.filter(r => r.offsetParent !== null);
const height = window.innerHeight;
const lines = td => {
  const style = getComputedStyle(td);
  const content = td.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  return content / parseFloat(style.lineHeight);
};
return {
  all: rows.map(r => r.cells[1].textContent.trim()),
  shown: shown.map(r => r.cells[1].textContent.trim()),
  ranks: shown.map(r => r.cells[0].textContent.trim().replace(/\s+/g, ' ')),
  inside: shown.filter(r => { const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= height + 0.5; }).length,
  wrapped: shown.flatMap(r => [...r.cells]).filter(td => !(lines(td) < 1.5)).map(td => td.textContent.trim()),
  cut: [...document.querySelectorAll('#leaderboard th'), ...shown.flatMap(r => [...r.cells])]
    .filter(cell => !cell.matches('.name, .config') && cell.scrollWidth > cell.clientWidth)
    .map(cell => cell.textContent.trim()),
  status: [...document.querySelectorAll('[data-page-status]')].map(e => e.textContent.trim()).join(''),
  font: shown.length ? parseFloat(getComputedStyle(shown[0].cells[1]).fontSize) : 0,
  scrolls: document.scrollingElement.scrollHeight > height + 1,
};
"#;

fn names(look: &Value, key: &str) -> Vec<String> {
    look[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// Checks one page of the board and returns the names it shows.
fn check_page(look: &Value, at_least: usize) -> Vec<String> {
    let shown = names(look, "shown");
    assert!(shown.len() >= at_least, "{} rows shown, wanted at least {at_least}: {look}", shown.len());
    assert_eq!(look["inside"].as_u64(), Some(shown.len() as u64), "every shown row is on the screen: {look}");
    assert_eq!(look["wrapped"], Value::Array(Vec::new()), "cells broken over two lines: {look}");
    assert_eq!(look["cut"], Value::Array(Vec::new()), "ranks, scores, counts and times cut short: {look}");
    assert!(look["font"].as_f64().unwrap() >= 16.0, "rows readable from the back of the room: {look}");
    assert_eq!(look["scrolls"], false, "nothing below the screen: {look}");
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_shows_twenty_rows_at_720p_pages_through_the_rest_and_marks_ties() {
    let Some(browser) = Browser::start_or_skip().await else { return };
    let app = common::spawn_app(|_| {}).await;
    let room = room();
    let seeded: Vec<(&str, u32)> = room.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    scores::seed(&app, &seeded).await;

    set_viewport(&browser, 1280, 720).await;
    browser.goto(&app.url("/leaderboard?view=projector")).await;
    browser.wait_for_text("[data-live-status]", "live", WAIT).await;
    browser.execute("window.__sameDocument = true", vec![]).await;
    assert!(browser.try_find("header.top nav").await.is_none(), "the projector has no site navigation");
    assert!(browser.find_all("nav").await.is_empty(), "no navigation of any kind");

    let look = browser.execute(LOOK, vec![]).await;
    assert_eq!(look["all"].as_array().unwrap().len(), room.len(), "{look}");
    let first = check_page(&look, 20);
    assert_eq!(look["status"], "page 1 of 2", "{look}");
    // The three at full marks share rank 1 and say so; the next one is fourth, alone.
    let ranks = names(&look, "ranks");
    assert_eq!(ranks[..4], ["=1 tied", "=1 tied", "=1 tied", "4"], "{look}");

    // The board turns to the rest by itself, then back to the start.
    let look = browser
        .wait_until("the second page", NEXT_PAGE, async || {
            let look = browser.execute(LOOK, vec![]).await;
            (look["status"] == "page 2 of 2").then_some(look)
        })
        .await;
    let second = check_page(&look, 1);
    let mut all: Vec<String> = first.iter().chain(&second).cloned().collect();
    all.sort();
    let mut expected: Vec<String> = room.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(all, expected, "the two pages show everyone once");
    // The last two are tied at 84: both "=30 tied".
    let ranks = names(&look, "ranks");
    assert_eq!(ranks[ranks.len() - 2..], ["=30 tied", "=30 tied"], "{look}");

    // A new score arrives live: the table is swapped in place and still paged to fit.
    scores::seed(&app, &[("Katherine Johnson", 119)]).await;
    let look = browser
        .wait_until("the new row", WAIT, async || {
            let look = browser.execute(LOOK, vec![]).await;
            names(&look, "all").contains(&"Katherine Johnson".to_string()).then_some(look)
        })
        .await;
    assert_eq!(look["all"].as_array().unwrap().len(), room.len() + 1);
    check_page(&look, 1);
    assert!(look["status"].as_str().unwrap().ends_with("of 2"), "{look}");
    assert_eq!(browser.execute("return window.__sameDocument === true", vec![]).await, true, "no reload");

    // A full-HD projector: the same, scaled to its height.
    set_viewport(&browser, 1920, 1080).await;
    let look = browser
        .wait_until("the first page at 1080p", 2 * NEXT_PAGE, async || {
            let look = browser.execute(LOOK, vec![]).await;
            (look["status"] == "page 1 of 2").then_some(look)
        })
        .await;
    check_page(&look, 20);
    assert!(look["font"].as_f64().unwrap() >= 24.0, "{look}");
    browser.quit().await;
}
