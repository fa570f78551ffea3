//! The same store and app on a real PostgreSQL server, and several app instances sharing one
//! database as they would behind a load balancer: scores, organizer sessions, the freeze,
//! hidden names and live pushes must agree on every instance.
//!
//! `scripts/test` starts a throwaway PostgreSQL cluster and sets `MOA_TEST_POSTGRES_URL`
//! (e.g. `postgres://postgres@localhost/postgres?host=/tmp/dir`); each test creates its own
//! database there. Without the variable the PostgreSQL tests print a loud notice and skip;
//! the multi-instance tests also run on a shared SQLite file, which needs nothing.

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, named, read_events, use_fake};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use moa_workshop::config::{Secret, Settings};
use moa_workshop::store::{self, generations, participants, sessions};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const ASCENDING: &str = include_str!("../fixtures/grader-examples/04_ascending_sort.py");
const TOKEN: &str = "organizer-token-for-tests";

/// Where the apps of one test keep their data: a SQLite file, or a fresh PostgreSQL database.
struct Database {
    url: String,
    /// (server URL, database name) to drop the database afterwards.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("shared.db").display());
        Database { url, postgres: None, _dir: Some(dir) }
    }

    /// A new, empty database on the test server; `None` (after a notice nobody can miss,
    /// written past the test harness's capture) when there is no server.
    async fn postgres(test: &str) -> Option<Database> {
        let Ok(server) = std::env::var("MOA_TEST_POSTGRES_URL") else {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test}: MOA_TEST_POSTGRES_URL is not set, so nothing was checked on PostgreSQL.\n\
                 !!! scripts/test starts a throwaway PostgreSQL server and sets it.\n"
            );
            return None;
        };
        let name = format!("moa_test_{}", &store::new_id()[..16]);
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("the test PostgreSQL server answers");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        Some(Database { url: with_database(&server, &name), postgres: Some((server, name)), _dir: None })
    }

    /// Drops a PostgreSQL test database (the apps using it must be stopped).
    async fn remove(self) {
        if let Some((server, name)) = &self.postgres {
            let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, None), |(main, query)| (main, Some(query)));
    let authority = main.find("://").map_or(0, |i| i + 3);
    let end = main[authority..].find('/').map_or(main.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &main[..end]);
    if let Some(query) = query {
        out = format!("{out}?{query}");
    }
    out
}

/// The main model answers with the ascending-sort version when asked for "variant B", with
/// the full-marks one otherwise.
async fn fake_llm() -> FakeLlm {
    FakeLlm::start_with(
        Duration::from_millis(10),
        Box::new(|r| {
            if !r.system.starts_with("You are the main model") {
                return format!("note {} from {}", r.seq, r.model);
            }
            let code = if r.user.contains("variant B") { ASCENDING } else { FULL_MARKS };
            format!("Here it is:\n\n```python\n{code}```\n")
        }),
    )
    .await
}

/// One app instance on `db`, with the organizer token, no rate limits and the fake LLM.
async fn instance(db: &Database, llm: &FakeLlm) -> TestApp {
    let url = db.url.clone();
    common::spawn_app(|s: &mut Settings| {
        use_fake(s, llm);
        s.database_url = url;
        s.organizer_token = Some(Secret::new(TOKEN));
        s.generate_per_minute = 0;
        s.submit_per_minute = 0;
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Generates through the MoA run (`POST /api/generate`) and returns the generation id.
async fn generate(app: &TestApp, participant: &str, prompt: Option<&str>) -> String {
    let since = Instant::now();
    let body = json!({"participant": participant, "prompt": prompt,
                      "config": config("big-main", 1, &[("bug_hunter", "fast-a"), ("reviewer", "fast-b")])});
    let response = app.post_as(&client(), participant, "/api/generate").await.json(&body).send().await.unwrap();
    let events = read_events(response, since).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "done", "{events:?}");
    assert_eq!(named(&events, "agent").len(), 2);
    done.data["generation_id"].as_str().unwrap().to_string()
}

/// Stores a generation directly (faster than a run) and returns its id.
async fn stored_generation(app: &TestApp, name: &str, code: &str) -> String {
    let participant = app.participant(name).await;
    let config = config("big-main", 2, &[("a", "fast-a")]);
    let new = generations::NewGeneration {
        participant_id: &participant.id,
        challenge: "calculate_user_metrics",
        challenge_hash: "",
        config: &config,
        prompt: "write it",
        answer: code,
        code,
        timings: &json!({"ms": 1}),
        config_hash: "",
    };
    generations::insert(&app.state.pool, new).await.unwrap().id
}

/// Submits as `participant`; while another of their submissions is being graded, retries as told.
async fn submit(app: &TestApp, participant: &str, generation_id: &str) -> Value {
    loop {
        let response = app
            .post_as(&client(), participant, "/api/submissions")
            .await
            .json(&json!({"participant": participant, "generation_id": generation_id}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == 429 && body["error"].as_str().unwrap().contains("still being graded") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        return body;
    }
}

async fn leaderboard(app: &TestApp) -> Vec<Value> {
    reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap()
}

fn names(board: &[Value]) -> Vec<&str> {
    board.iter().map(|r| r["participant"].as_str().unwrap()).collect()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        .get("n")
}

/// Signs in with the token and returns the `name=value` session cookie.
async fn sign_in(app: &TestApp) -> String {
    let login = client().post(app.url("/organizer/login")).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(!cookie.contains(TOKEN));
    cookie
}

async fn organizer_get(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    client().get(app.url(path)).header("cookie", cookie).send().await.unwrap()
}

async fn organizer_post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::StatusCode {
    client().post(app.url(path)).header("cookie", cookie).form(form).send().await.unwrap().status()
}

/// A live leaderboard stream (`text/event-stream` of whole tables).
struct LiveTable {
    events: BoxStream<'static, String>,
}

impl LiveTable {
    async fn open(app: &TestApp, path: &str, cookie: Option<&str>) -> LiveTable {
        let mut request = client().get(app.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = response.bytes_stream().eventsource().map(|e| e.expect("a well-formed stream").data).boxed();
        LiveTable { events }
    }

    /// Reads tables until one contains `needle`; returns how long that took.
    async fn until(&mut self, needle: &str) -> Duration {
        let since = Instant::now();
        let mut last = String::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.events.next()).await {
                Ok(Some(table)) if table.contains(needle) => return since.elapsed(),
                Ok(Some(table)) => last = table,
                Ok(None) => panic!("the stream ended before showing {needle:?}"),
                Err(_) => panic!("no table with {needle:?} within 10 s; the last one was:\n{last}"),
            }
        }
    }
}

const EMPTY: &str = "No submissions yet";
const FROZEN: &str = "is <strong>frozen</strong>";

// ---------------------------------------------------------------------------------------
// The whole workshop on one instance.

/// Names, generation through the MoA run, submission, ranking with ties as ties, and the
/// organizer's freeze, hide, exports and reset, as an attendee and an organizer would.
async fn workshop_flow(db: &Database) {
    let llm = fake_llm().await;
    let app = instance(db, &llm).await;

    let ada_first = generate(&app, "Ada", None).await;
    let bob_first = generate(&app, "Bob", Some("Write calculate_user_metrics, variant B.")).await;
    let ada = submit(&app, "Ada", &ada_first).await;
    assert_eq!(
        (ada["total"].as_u64(), ada["rank"].as_u64(), ada["status"].as_str()),
        (Some(120), Some(1), Some("graded"))
    );
    let bob = submit(&app, "Bob", &bob_first).await;
    assert_eq!((bob["total"].as_u64(), bob["rank"].as_u64()), (Some(98), Some(2)));
    // A retried request returns the stored grade and counts once.
    let again = submit(&app, "Ada", &ada_first).await;
    assert_eq!(again["submission_id"], ada["submission_id"]);
    assert_eq!(count(&app, "submissions").await, 2);

    // Cleo ties Ada later: they share first place, Ada listed first.
    let cleo_first = generate(&app, "Cleo", None).await;
    assert_eq!(submit(&app, "Cleo", &cleo_first).await["rank"], 1);
    // Ada's name under another case, spacing, width or script is hers: nobody else can claim it.
    for lookalike in ["  ADA ", "\u{FF21}da", "\u{0410}da"] {
        let claim =
            client().post(app.url("/api/participants")).json(&json!({ "name": lookalike })).send().await.unwrap();
        assert_eq!(claim.status(), 409, "{lookalike:?}");
    }
    // A lower score counts as a submission without lowering the best.
    let ada_second = generate(&app, "Ada", Some("variant B please")).await;
    submit(&app, "Ada", &ada_second).await;
    assert_eq!(count(&app, "participants").await, 3);
    let board = leaderboard(&app).await;
    assert_eq!(names(&board), ["Ada", "Cleo", "Bob"]);
    let ranks: Vec<(u64, u64, u64)> = board
        .iter()
        .map(|r| (r["rank"].as_u64().unwrap(), r["best_score"].as_u64().unwrap(), r["submissions"].as_u64().unwrap()))
        .collect();
    assert_eq!(ranks, [(1, 120, 2), (1, 120, 1), (3, 98, 1)]);
    assert_eq!(board.iter().map(|r| r["tied"].as_bool().unwrap()).collect::<Vec<_>>(), [true, true, false]);
    assert_eq!(board[0]["config_summary"], "big-main · 1 cycle · 2 agents");
    assert!(board[0]["best_at"].as_str().unwrap().ends_with('Z'));
    let page = reqwest::get(app.url("/leaderboard")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Cleo") && page.contains("<strong>120</strong>"), "{page}");

    // NULLs, counts and flags decode the same on both databases.
    let dan = app.participant("Dan").await;
    let activity = participants::activity(&app.state.pool).await.unwrap();
    let summary: Vec<(&str, i64, i64, Option<i64>, bool)> = activity
        .iter()
        .map(|a| {
            let best = a.best.iter().map(|(_, b)| *b).max();
            assert!(a.best.iter().all(|(c, _)| c == "calculate_user_metrics"), "{a:?}");
            (a.participant.name.as_str(), a.generations, a.submissions, best, a.participant.hidden)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Ada", 2, 2, Some(120), false),
            ("Bob", 1, 1, Some(98), false),
            ("Cleo", 1, 1, Some(120), false),
            ("Dan", 0, 0, None, false)
        ]
    );

    // The organizer: token for scripts, a session cookie for browsers.
    assert_eq!(client().get(app.url("/organizer/leaderboard.csv")).send().await.unwrap().status(), 401);
    let csv = client().get(app.url("/organizer/leaderboard.csv")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("rank,participant,best_score,submissions,best_at,config_summary,hidden,tied\r\n"), "{csv}");
    assert!(csv.contains("\r\n1,Ada,120,2,") && csv.contains("\r\n1,Cleo,120,1,"), "{csv}");
    assert!(csv.contains("\r\n3,Bob,98,1,") && csv.contains(",false,true\r\n"), "{csv}");
    let cookie = sign_in(&app).await;
    let dashboard = organizer_get(&app, &cookie, "/organizer").await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("Live scores") && html.contains("Dan") && !html.contains(TOKEN));
    let submissions_csv = organizer_get(&app, &cookie, "/organizer/submissions.csv").await.text().await.unwrap();
    assert!(submissions_csv.contains("handles_division_by_zero") && submissions_csv.contains(&ada_second));
    assert_eq!(submissions_csv.lines().count(), 5, "a header and four submissions:\n{submissions_csv}");
    let bob_id = participants::find_by_name(&app.state.pool, "bob").await.unwrap().unwrap().id;
    let detail = organizer_get(&app, &cookie, &format!("/organizer/participants/{bob_id}")).await;
    assert!(detail.text().await.unwrap().contains("calculate_user_metrics"));
    let exported: Value = organizer_get(&app, &cookie, &format!("/organizer/generations/{ada_first}/config.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (exported["ai_configuration"]["main_model"].as_str(), exported["version"].as_str()),
        (Some("big-main"), Some("2.0"))
    );

    // Freeze: the public board stops moving, the organizer's does not.
    assert_eq!(organizer_post(&app, &cookie, "/organizer/freeze", &[("frozen", "1")]).await, 303);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let dan_first = generate(&app, "Dan", None).await;
    let graded = submit(&app, "Dan", &dan_first).await;
    assert_eq!((graded["total"].as_u64(), graded["rank"].as_u64()), (Some(120), None));
    assert_eq!(names(&leaderboard(&app).await), ["Ada", "Cleo", "Bob"]);
    assert!(reqwest::get(app.url("/leaderboard")).await.unwrap().text().await.unwrap().contains(FROZEN));
    let live = organizer_get(&app, &cookie, "/organizer/leaderboard.csv").await.text().await.unwrap();
    assert!(live.contains("Dan"), "{live}");
    assert_eq!(organizer_post(&app, &cookie, "/organizer/freeze", &[("frozen", "0")]).await, 303);
    assert_eq!(names(&leaderboard(&app).await), ["Ada", "Cleo", "Dan", "Bob"]);

    // Hide: gone from the public board only.
    let path = format!("/organizer/participants/{bob_id}/hide");
    assert_eq!(organizer_post(&app, &cookie, &path, &[("hidden", "1")]).await, 303);
    assert_eq!(names(&leaderboard(&app).await), ["Ada", "Cleo", "Dan"]);
    let live = organizer_get(&app, &cookie, "/organizer/leaderboard.csv").await.text().await.unwrap();
    assert!(live.contains("\r\n4,Bob,98,1,") && live.trim_end().ends_with(",true,false"), "hidden, not tied: {live}");
    assert!(participants::find(&app.state.pool, &bob_id).await.unwrap().unwrap().hidden);
    assert!(participants::find(&app.state.pool, &dan.id).await.unwrap().is_some());

    // Reset needs the word; afterwards everything is gone but the organizer stays signed in.
    assert_eq!(organizer_post(&app, &cookie, "/organizer/reset", &[("confirm", "yes")]).await, 400);
    assert_eq!(count(&app, "submissions").await, 5);
    assert_eq!(organizer_post(&app, &cookie, "/organizer/reset", &[("confirm", "RESET")]).await, 303);
    for table in ["submissions", "generations", "participants"] {
        assert_eq!(count(&app, table).await, 0, "{table}");
    }
    assert!(leaderboard(&app).await.is_empty());
    assert_eq!(organizer_get(&app, &cookie, "/organizer").await.status(), 200);
    // The event starts again with the same names.
    let ada_again = generate(&app, "Ada", None).await;
    assert_eq!(submit(&app, "Ada", &ada_again).await["rank"], 1);

    // Signing out ends the session.
    assert_eq!(organizer_post(&app, &cookie, "/organizer/logout", &[]).await, 303);
    assert_eq!(organizer_get(&app, &cookie, "/organizer/leaderboard.csv").await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn workshop_flow_on_postgres() {
    let Some(db) = Database::postgres("workshop_flow_on_postgres").await else { return };
    workshop_flow(&db).await;
    db.remove().await;
}

#[tokio::test]
async fn workshop_flow_on_sqlite() {
    workshop_flow(&Database::sqlite()).await;
}

// ---------------------------------------------------------------------------------------
// Two instances on one database, as behind a load balancer.

async fn two_instances_agree(db: &Database) {
    let llm = fake_llm().await;
    let a = instance(db, &llm).await;
    let b = instance(db, &llm).await;
    let mut b_public = LiveTable::open(&b, "/leaderboard/stream", None).await;
    b_public.until(EMPTY).await;

    // A submission on A: B's API and B's live viewers see it.
    let ada = generate(&a, "Ada Lovelace", None).await;
    submit(&a, "Ada Lovelace", &ada).await;
    assert_eq!(names(&leaderboard(&b).await), ["Ada Lovelace"]);
    let took = b_public.until("Ada Lovelace").await;
    println!("a submission on instance A reached a viewer on instance B in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "{took:?}");

    // An organizer session opened on A works on B, and the other way round.
    let cookie = sign_in(&a).await;
    assert_eq!(organizer_get(&b, &cookie, "/organizer").await.status(), 200);
    let mut b_organizer = LiveTable::open(&b, "/organizer/leaderboard/stream", Some(&cookie)).await;
    b_organizer.until("Ada Lovelace").await;

    // Freeze on B: A's public board is frozen too, and B's viewers are told.
    assert_eq!(organizer_post(&b, &cookie, "/organizer/freeze", &[("frozen", "1")]).await, 303);
    b_public.until(FROZEN).await;
    assert!(reqwest::get(a.url("/leaderboard")).await.unwrap().text().await.unwrap().contains(FROZEN));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let grace = generate(&a, "Grace", None).await;
    assert_eq!(submit(&a, "Grace", &grace).await["rank"], Value::Null, "no rank while frozen");
    b_organizer.until("Grace").await;
    assert_eq!(names(&leaderboard(&a).await), ["Ada Lovelace"]);
    assert_eq!(names(&leaderboard(&b).await), ["Ada Lovelace"]);

    // Unfreeze on A: B's public viewers get Grace.
    assert_eq!(organizer_post(&a, &cookie, "/organizer/freeze", &[("frozen", "0")]).await, 303);
    b_public.until("Grace").await;

    // Hide on B: gone from A's public board.
    let grace_id = participants::find_by_name(&a.state.pool, "grace").await.unwrap().unwrap().id;
    let path = format!("/organizer/participants/{grace_id}/hide");
    assert_eq!(organizer_post(&b, &cookie, &path, &[("hidden", "1")]).await, 303);
    assert_eq!(names(&leaderboard(&a).await), ["Ada Lovelace"]);

    // Reset on A: B's viewers see the empty board.
    assert_eq!(organizer_post(&a, &cookie, "/organizer/reset", &[("confirm", "RESET")]).await, 303);
    b_public.until(EMPTY).await;
    assert!(leaderboard(&b).await.is_empty());

    // Signing out on B ends the session on A.
    assert_eq!(organizer_post(&b, &cookie, "/organizer/logout", &[]).await, 303);
    assert_eq!(organizer_get(&a, &cookie, "/organizer/leaderboard.csv").await.status(), 401);
    drop((b_public, b_organizer));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn two_instances_agree_on_postgres() {
    let Some(db) = Database::postgres("two_instances_agree_on_postgres").await else { return };
    two_instances_agree(&db).await;
    db.remove().await;
}

#[tokio::test]
async fn two_instances_agree_on_sqlite() {
    two_instances_agree(&Database::sqlite()).await;
}

/// Every generation submitted twice on each instance at once (a double click plus a retry
/// through the load balancer): each counts once, and every answer names the same submission.
async fn identical_submissions_across_instances_count_once(db: &Database) {
    let llm = fake_llm().await;
    let a = instance(db, &llm).await;
    let b = instance(db, &llm).await;
    let mut work = Vec::new();
    for i in 0..6 {
        let name = format!("P{}", i % 3);
        let code = if i < 3 { FULL_MARKS } else { ASCENDING };
        work.push((name.clone(), stored_generation(&a, &name, code).await));
    }
    let requests =
        work.iter().flat_map(|(name, id)| [&a, &b, &a, &b].map(|app| async move { (id, submit(app, name, id).await) }));
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.len(), 24);
    assert_eq!(count(&a, "submissions").await, 6);
    for (id, answer) in &answers {
        let stored = moa_workshop::store::submissions::for_generation(&b.state.pool, id).await.unwrap().unwrap();
        assert_eq!(answer["submission_id"], stored.id.as_str());
    }
    let board = leaderboard(&b).await;
    assert_eq!(board.len(), 3);
    assert!(board.iter().all(|r| r["submissions"] == 2 && r["best_score"] == 120), "{board:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn identical_submissions_across_instances_count_once_on_postgres() {
    let name = "identical_submissions_across_instances_count_once_on_postgres";
    let Some(db) = Database::postgres(name).await else { return };
    identical_submissions_across_instances_count_once(&db).await;
    db.remove().await;
}

#[tokio::test]
async fn identical_submissions_across_instances_count_once_on_sqlite() {
    identical_submissions_across_instances_count_once(&Database::sqlite()).await;
}

/// The same new name in several spellings, claimed at once through both instances' pools:
/// one participant, created exactly once; every other claim hears it is taken.
async fn names_stay_unique_under_races(db: &Database) {
    let llm = fake_llm().await;
    let a = instance(db, &llm).await;
    let b = instance(db, &llm).await;
    for round in 0..5 {
        let base = format!("Racer {round}");
        let spellings =
            [base.clone(), base.to_lowercase(), format!("  {}  ", base.to_uppercase()), base.replace(' ', "   ")];
        let claims = spellings.iter().enumerate().flat_map(|(i, name)| {
            let pools = [&a.state.pool, &b.state.pool];
            [pools[i % 2], pools[(i + 1) % 2]].map(|pool| participants::claim(pool, name, None))
        });
        let results: Vec<_> =
            futures_util::future::join_all(claims).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        let won: Vec<&participants::Participant> = results
            .iter()
            .filter_map(|c| match c {
                participants::Claim::Claimed { participant, .. } => Some(participant),
                _ => None,
            })
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        assert!(results.iter().all(|c| match c {
            participants::Claim::Taken(name) => *name == won[0].name,
            _ => true,
        }));
    }
    assert_eq!(count(&a, "participants").await, 5);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn names_stay_unique_under_races_on_postgres() {
    let Some(db) = Database::postgres("names_stay_unique_under_races_on_postgres").await else { return };
    names_stay_unique_under_races(&db).await;
    db.remove().await;
}

#[tokio::test]
async fn names_stay_unique_under_races_on_sqlite() {
    names_stay_unique_under_races(&Database::sqlite()).await;
}

// ---------------------------------------------------------------------------------------
// PostgreSQL specifics.

/// Instances started together on an empty database migrate it once (the migrator takes a
/// PostgreSQL advisory lock) and all come up.
#[tokio::test]
async fn instances_starting_together_migrate_once_on_postgres() {
    let Some(db) = Database::postgres("instances_starting_together_migrate_once_on_postgres").await else { return };
    let llm = fake_llm().await;
    let apps = futures_util::future::join_all((0..3).map(|_| instance(&db, &llm))).await;
    let versions: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&apps[0].state.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("version"))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6], "every migration, once");
    for app in apps {
        assert_eq!(reqwest::get(app.url("/api/leaderboard")).await.unwrap().status(), 200);
        app.stop().await;
    }
    // A restart finds everything applied.
    let app = instance(&db, &llm).await;
    app.stop().await;
    db.remove().await;
}

/// Sessions are stored as a hash that expires; the cookie value itself is nowhere in the database.
#[tokio::test]
async fn organizer_sessions_are_stored_hashed_and_expire_on_postgres() {
    let Some(db) = Database::postgres("organizer_sessions_are_stored_hashed_and_expire_on_postgres").await else {
        return;
    };
    let llm = fake_llm().await;
    let app = instance(&db, &llm).await;
    let cookie = sign_in(&app).await;
    let id = cookie.split_once('=').unwrap().1;
    let stored: Vec<String> = sqlx::query("SELECT id_hash FROM organizer_sessions")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("id_hash"))
        .collect();
    assert_eq!(stored, [sessions::hash(id)]);
    assert_ne!(stored[0], id);

    let pool = &app.state.pool;
    let short = sessions::open(pool, Duration::from_millis(50)).await.unwrap();
    assert!(sessions::is_open(pool, &short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(!sessions::is_open(pool, &short).await.unwrap(), "expired");
    assert!(!sessions::is_open(pool, "not-a-session").await.unwrap());
    // The next sign-in forgets expired sessions.
    sessions::open(pool, Duration::from_secs(60)).await.unwrap();
    assert_eq!(count(&app, "organizer_sessions").await, 2);
    app.stop().await;
    db.remove().await;
}

/// Managed databases want TLS: the app connects with `sslmode=verify-full` to a server whose
/// certificate the given CA signed, and refuses one it cannot verify.
#[tokio::test]
async fn the_app_connects_over_verified_tls_on_postgres() {
    let test = "the_app_connects_over_verified_tls_on_postgres";
    let Ok(tls_server) = std::env::var("MOA_TEST_POSTGRES_TLS_URL") else {
        let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED {test}: MOA_TEST_POSTGRES_TLS_URL is not set.\n");
        return;
    };
    let Some(db) = Database::postgres(test).await else { return };
    let name = &db.postgres.as_ref().unwrap().1;
    let url = with_database(&tls_server, name);
    let llm = fake_llm().await;
    let app = common::spawn_app(|s: &mut Settings| {
        use_fake(s, &llm);
        s.database_url = url.clone();
    })
    .await;
    let row = sqlx::query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let (encrypted, version): (bool, String) = (row.get("ssl"), row.get("version"));
    assert!(encrypted, "the connection is not encrypted");
    println!("connected over {version}");
    let ada = stored_generation(&app, "Ada", FULL_MARKS).await;
    assert_eq!(submit(&app, "Ada", &ada).await["rank"], 1);
    app.stop().await;

    // Without the test CA the server's certificate cannot be verified: no connection.
    let unverifiable = url.split("&sslrootcert=").next().unwrap();
    let refused = store::connect(unverifiable).await.unwrap_err();
    assert!(refused.starts_with("cannot open the database"), "{refused}");
    db.remove().await;
}

#[test]
fn test_database_urls_keep_the_socket_folder() {
    assert_eq!(
        with_database("postgres://postgres@localhost/postgres?host=/tmp/pg", "moa_test_1"),
        "postgres://postgres@localhost/moa_test_1?host=/tmp/pg"
    );
    assert_eq!(with_database("postgres://u:p@127.0.0.1:5433", "x"), "postgres://u:p@127.0.0.1:5433/x");
}

/// Participant tokens, one-time sign-in codes, a release and a take-over, and the upgrade of
/// old name keys, through the same SQL on both databases.
async fn participant_tokens_codes_and_release(db: &Database) {
    let llm = fake_llm().await;
    let app = instance(db, &llm).await;
    let pool = &app.state.pool;
    let laptop = app.token("Ada").await;
    let ada = participants::by_token(pool, &laptop).await.unwrap().expect("the token names Ada");
    let code = participants::new_sign_in_code(pool, &ada.id, Duration::from_secs(60)).await.unwrap();
    let (same, phone) = participants::redeem_sign_in_code(pool, &code).await.unwrap().expect("redeemed");
    assert_eq!(same.id, ada.id);
    assert!(participants::redeem_sign_in_code(pool, &code).await.unwrap().is_none(), "once");
    assert!(participants::release(pool, &ada.id).await.unwrap());
    for token in [&laptop, &phone] {
        assert!(participants::by_token(pool, token).await.unwrap().is_none(), "signed out");
    }
    match participants::claim(pool, "ADA", None).await.unwrap().unwrap() {
        participants::Claim::Claimed { participant, created, .. } => {
            assert_eq!((participant.id, created), (ada.id, false))
        }
        other => panic!("{other:?}"),
    }
    // A name stored by the previous version gets the new key at the next start.
    sqlx::query(
        "INSERT INTO participants (id, name, name_key, hidden, created_at) VALUES ('old', 'Grace', 'grace', 0, 1)",
    )
    .execute(pool)
    .await
    .unwrap();
    participants::upgrade_name_keys(pool).await.unwrap();
    assert!(matches!(
        participants::claim(pool, "\u{FF27}race", None).await.unwrap().unwrap(),
        participants::Claim::Taken(name) if name == "Grace"
    ));
    app.stop().await;
}

#[tokio::test]
async fn participant_tokens_codes_and_release_on_postgres() {
    let name = "participant_tokens_codes_and_release_on_postgres";
    let Some(db) = Database::postgres(name).await else { return };
    participant_tokens_codes_and_release(&db).await;
    db.remove().await;
}

#[tokio::test]
async fn participant_tokens_codes_and_release_on_sqlite() {
    participant_tokens_codes_and_release(&Database::sqlite()).await;
}
