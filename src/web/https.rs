//! Where a request really comes from, and what a browser may do with our answers:
//!
//! - `X-Forwarded-*` headers are believed only from `MOA_TRUSTED_PROXIES`; from anyone else
//!   they are removed before any handler sees them. The client's address is then put in
//!   [`CLIENT_IP`] (read it with [`client_ip`]).
//! - Cookies get `Secure` when the browser talks https ([`is_https`], used by `pages::set_cookie`).
//! - A state-changing request (anything but GET/HEAD/OPTIONS) made by a browser on behalf of
//!   another site is refused. Browsers say where a request comes from (`Sec-Fetch-Site`, or
//!   `Origin`); requests with neither (curl, scripts, tests) are not from a browser page and
//!   stay allowed.
//! - Every answer carries a CSP (`script-src 'self'`, no framing), `nosniff` and a referrer
//!   policy; organizer answers are never cached.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;
use crate::web::server::Peer;

/// Set by [`proxy_headers`] on every request (any value a client sent is replaced).
pub const CLIENT_IP: HeaderName = HeaderName::from_static("x-moa-client-ip");

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Scripts only from this server (htmx and our files; the templates have no inline script or
/// handler). Styles may be inline: htmx adds its indicator style, pages use a few attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// The client's address, as [`proxy_headers`] determined it.
pub fn client_ip(headers: &HeaderMap) -> Option<IpAddr> {
    headers.get(CLIENT_IP)?.to_str().ok()?.parse().ok()
}

/// True when the browser reached us over https: `MOA_PUBLIC_URL` says so, or a trusted proxy
/// did (`X-Forwarded-Proto: https`; from anyone else the header was removed).
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.public_url.as_deref().is_some_and(|url| url.starts_with("https://"))
        || headers
            .get(FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn trusted(state: &AppState, ip: IpAddr) -> bool {
    state.settings.trusted_proxies.iter().any(|range| range.contains(ip))
}

/// Middleware: forwarded headers only from trusted proxies; the client address in [`CLIENT_IP`].
pub async fn proxy_headers(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<Peer>().map(|ConnectInfo(addr)| addr.ip());
    let headers = request.headers_mut();
    let from_proxy = peer.is_some_and(|ip| trusted(&state, ip));
    let mut client = peer;
    if from_proxy {
        // The nearest address that is not one of our proxies is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        if let Some(ip) = forwarded.iter().rev().find(|ip| !trusted(&state, **ip)).or(forwarded.first()) {
            client = Some(*ip);
        }
    } else {
        for name in [FORWARDED_FOR, FORWARDED_PROTO, FORWARDED_HOST, header::FORWARDED] {
            headers.remove(name);
        }
    }
    headers.remove(CLIENT_IP);
    if let Some(value) = client.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
        headers.insert(CLIENT_IP, value);
    }
    next.run(request).await
}

/// Why a state-changing request must be refused as cross-site, if it must.
fn cross_site(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        // Set by the browser itself (pages cannot forge it), and right behind any proxy.
        let site = site.to_str().unwrap_or("?");
        return match site {
            "same-origin" | "none" => None,
            other => Some(format!("the browser says it came from another site (Sec-Fetch-Site: {other})")),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("?");
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let own = |candidate: Option<&str>| {
        candidate.zip(authority).is_some_and(|(own, given)| own.trim().eq_ignore_ascii_case(given))
    };
    let public = state.settings.public_url.as_deref().and_then(|url| url.split_once("://")).map(|(_, rest)| rest);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let forwarded_host = headers.get(FORWARDED_HOST).and_then(|v| v.to_str().ok());
    if own(public) || own(host) || own(forwarded_host) {
        None
    } else {
        Some(format!("it came from the page of another site ({origin})"))
    }
}

/// Middleware: refuses state-changing requests a browser makes for another site.
pub async fn same_origin_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && let Some(why) = cross_site(&state, request.headers()) {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "refused a cross-site request: {why}");
        let sentence =
            format!("This request was refused because {why}; changes are only accepted from this server's own pages.");
        return (StatusCode::FORBIDDEN, Json(json!({ "error": sentence }))).into_response();
    }
    next.run(request).await
}

/// Middleware: browser protections on every answer; nothing from the organizer is cached.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let organizer = request.uri().path().starts_with("/organizer");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if organizer {
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}
