//! Who is a client, as the HTTP layer tells: a claimed participant (their token), else an
//! anonymous browser (the `moa_browser` cookie the chat page hands out), else the network
//! address. What a client may spend is [`crate::live::fair_use`]'s.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::live::fair_use::Client;
use crate::store::participants::Participant;
use crate::web::pages::cookie;

/// The anonymous browser's id cookie: random, only a key for fair-use counts (no identity).
pub const BROWSER_COOKIE: &str = "moa_browser";
/// The caller's network address, as `web::https::proxy_headers` determined it (a trusted
/// proxy's `X-Forwarded-For`, else the connection's peer; "unknown" without either, which
/// then counts every caller as one address).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = crate::web::https::client_ip(&parts.headers).map(|ip| ip.to_string());
        Ok(ClientIp(ip.unwrap_or_else(|| "unknown".into())))
    }
}

/// The client a request from `participant` (if claimed) with these `headers` counts against.
pub fn client(participant: Option<&Participant>, headers: &HeaderMap, ip: &ClientIp) -> Client {
    let key = match (participant, cookie(headers, BROWSER_COOKIE).filter(|id| browser_id_shape(id))) {
        (Some(p), _) => format!("participant:{}", p.id),
        (None, Some(browser)) => format!("browser:{browser}"),
        // Distinct from the address's own count, which every client from it shares.
        (None, None) => format!("cookieless:{}", ip.0),
    };
    Client::new(key, &ip.0)
}

pub fn browser_id_shape(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
