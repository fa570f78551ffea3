use crate::common;

#[tokio::test]
async fn healthz_is_ok_once_database_and_grader_are_ready() {
    let app = common::spawn_app(|_| {}).await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], true);
    assert_eq!(body["grader"]["ready"], true, "{body}");
    assert!(app.database_path().exists(), "the SQLite file is created");
}

#[tokio::test]
async fn healthz_reports_a_missing_python_with_503() {
    let app = common::spawn_app(|s| s.python = "/nonexistent/python3".into()).await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["grader"]["problem"].as_str().unwrap().contains("/nonexistent/python3"));
    // The home page still works and says why grading is off.
    let page = reqwest::get(app.url("/")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Grading is unavailable"), "{page}");
    assert!(page.contains("No API key is set"));
}
