//! Errors as a person in a browser should see them. Every [`AppError`] answers JSON
//! (`{"error": sentence}`, what API clients and the pages' scripts read); this middleware is
//! the one place that decides when that answer becomes an HTML page instead: when the request
//! prefers `text/html` (a page opened or a form posted by the browser itself) and is not for
//! `/api/`. The page has the site's layout, the same sentence and status, and a link onward.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, ErrorSentence};
use crate::web::pages::NAV;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    heading: &'static str,
    message: String,
    link_href: &'static str,
    link_text: &'static str,
}

/// The fallback route: no page here (JSON for `/api/` and scripts, a page for browsers).
pub async fn not_found() -> AppError {
    AppError::NotFound("There is no page here.".into())
}

/// Whether the answer to this request should be a page: not an API path, and the browser
/// ranks `text/html` at least as high as JSON (`*/*` alone, as scripts send, is not enough).
pub fn wants_html(headers: &HeaderMap, path: &str) -> bool {
    if path == "/api" || path.starts_with("/api/") {
        return false;
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let quality = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                media
                    .eq_ignore_ascii_case(wanted)
                    .then(|| parts.find_map(|p| p.trim().strip_prefix("q=")?.trim().parse::<f32>().ok()).unwrap_or(1.0))
            })
            .fold(0.0_f32, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json")
}

/// Middleware: an error answer to a browser's page or form request becomes an HTML page.
pub async fn for_browsers(request: Request, next: Next) -> Response {
    let html = wants_html(request.headers(), request.uri().path());
    let organizer = request.uri().path().starts_with("/organizer");
    let response = next.run(request).await;
    let Some(ErrorSentence(message)) = response.extensions().get::<ErrorSentence>().cloned() else {
        return response;
    };
    if !html {
        return response;
    }
    let status = response.status();
    let (link_href, link_text) = match (organizer, status) {
        (true, StatusCode::UNAUTHORIZED) => ("/organizer", "Sign in on the organizer page"),
        (true, _) => ("/organizer", "Back to the organizer page"),
        (false, _) => ("/", "Go to the home page"),
    };
    let page = ErrorPage { nav: NAV, current: "", heading: heading(status), message, link_href, link_text };
    let Ok(body) = page.render() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body)).into_response()
}

fn heading(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "That did not work",
        StatusCode::UNAUTHORIZED => "Please sign in first",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Nothing here",
        StatusCode::CONFLICT => "Already taken",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests at once",
        StatusCode::SERVICE_UNAVAILABLE => "Not available right now",
        _ => "Something went wrong",
    }
}

#[cfg(test)]
mod tests {
    use super::wants_html;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn browsers_get_pages_and_scripts_and_the_api_get_json() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(wants_html(&accept(browser), "/organizer/reset"));
        assert!(wants_html(&accept(browser), "/no/such/page"));
        assert!(!wants_html(&accept(browser), "/api/leaderboard"));
        assert!(!wants_html(&accept("*/*"), "/organizer/leaderboard.csv"));
        assert!(!wants_html(&HeaderMap::new(), "/organizer/leaderboard.csv"));
        assert!(!wants_html(&accept("application/json, text/html;q=0.5"), "/chat"));
        assert!(!wants_html(&accept("text/html;q=0"), "/chat"));
    }
}
