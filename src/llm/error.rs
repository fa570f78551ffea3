//! What can go wrong with one LLM call, phrased so a workshop attendee knows what to do.

use std::time::Duration;

/// Longest provider message we pass on; error bodies can be whole HTML pages.
const MAX_PROVIDER_MESSAGE: usize = 300;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the API key was rejected (HTTP {status}); check LLM_API_KEY")]
    Unauthorized { status: u16 },
    #[error("rate limited by the provider (HTTP 429); wait a moment or use fewer agents")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the provider refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the provider failed (HTTP {status}){}", suffix(message))]
    Server { status: u16, message: String },
    #[error("no complete answer within {} s (timed out)", after.as_secs_f64().ceil())]
    Timeout { after: Duration },
    #[error("could not connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("the connection to the provider broke: {0}")]
    Network(String),
    #[error("the provider sent a malformed answer: {0}")]
    Malformed(String),
    /// The call could not even be made (e.g. an unusable key); our side's problem.
    #[error("{0}")]
    Setup(String),
}

fn suffix(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

impl LlmError {
    /// Only rate limits and server errors may go away by themselves.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LlmError::RateLimited { .. } | LlmError::Server { .. })
    }

    /// The sentence for a person, naming whose key to check when the key was rejected.
    pub fn explain(&self, key: &super::KeySource) -> String {
        use super::KeySource;
        match (self, key) {
            (LlmError::Unauthorized { status }, KeySource::Participant) => {
                format!("your own API key was rejected (HTTP {status}); check the key you pasted on this page")
            }
            (LlmError::Unauthorized { status }, KeySource::Server { variable }) => {
                format!("the API key was rejected (HTTP {status}); check {variable}")
            }
            (LlmError::Unauthorized { status }, KeySource::Missing { variable }) => {
                format!("the provider asks for an API key (HTTP {status}); set {variable}")
            }
            (other, _) => other.to_string(),
        }
    }

    /// The same error with every occurrence of `secret` blanked out, in case a provider echoes
    /// the key it was given. Secrets shorter than 8 characters are left alone: blanking them
    /// would garble sentences, and no real key is that short.
    /// Provider text is blanked with [`blank_secret`] before it is clipped, too (the clip
    /// could otherwise cut an echoed key so that this pass no longer sees it).
    pub fn redacted(self, secret: &str) -> LlmError {
        if secret.chars().count() < MIN_SECRET {
            return self;
        }
        let clean = |text: String| blank_secret(&text, secret);
        match self {
            LlmError::Refused { status, message } => LlmError::Refused { status, message: clean(message) },
            LlmError::Server { status, message } => LlmError::Server { status, message: clean(message) },
            LlmError::Connect { target, reason } => LlmError::Connect { target: clean(target), reason: clean(reason) },
            LlmError::Network(reason) => LlmError::Network(clean(reason)),
            LlmError::Malformed(reason) => LlmError::Malformed(clean(reason)),
            LlmError::Setup(reason) => LlmError::Setup(clean(reason)),
            other @ (LlmError::Unauthorized { .. } | LlmError::RateLimited { .. } | LlmError::Timeout { .. }) => other,
        }
    }

    /// Maps a non-success HTTP answer to an error, keeping the provider's own explanation.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> LlmError {
        let message = provider_message(body);
        match status {
            401 | 403 => LlmError::Unauthorized { status },
            429 => LlmError::RateLimited { retry_after },
            500..=599 => LlmError::Server { status, message },
            _ => LlmError::Refused {
                status,
                message: if message.is_empty() { default_reason(status).to_string() } else { message },
            },
        }
    }

    /// Maps a transport error from reqwest; `target` names the provider host for the sentence.
    /// A connection that was never accepted is a connect failure, not a slow answer.
    pub fn from_reqwest(e: &reqwest::Error, target: &str, limits: super::ClientLimits) -> LlmError {
        let target = target.to_string();
        if e.is_connect() {
            let reason = if e.is_timeout() {
                format!("it did not accept the connection within {} s", limits.connect.as_secs_f64().ceil())
            } else {
                root_cause(e)
            };
            return LlmError::Connect { target, reason };
        }
        if e.is_timeout() {
            return LlmError::Timeout { after: limits.request };
        }
        LlmError::Network(root_cause(e))
    }
}

/// Secrets shorter than this are never blanked: no real key is that short, and blanking a
/// few letters would garble sentences.
const MIN_SECRET: usize = 8;

/// `text` with every occurrence of `secret` replaced by `[redacted]`, also when the provider
/// echoed it in another letter case or percent-encoded (`sk%2Dabc`, wholly or in part).
pub(crate) fn blank_secret(text: &str, secret: &str) -> String {
    if secret.chars().count() < MIN_SECRET {
        return text.to_string();
    }
    let wanted: Vec<u8> = secret.bytes().map(|b| b.to_ascii_lowercase()).collect();
    // The text as (lower-cased decoded byte, start, end) units: `%2D` is one unit, `-`.
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut units: Vec<(u8, usize, usize)> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let encoded = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match encoded {
            Some(byte) => {
                units.push(((byte as u8).to_ascii_lowercase(), i, i + 3));
                i += 3;
            }
            None => {
                units.push((bytes[i].to_ascii_lowercase(), i, i + 1));
                i += 1;
            }
        }
    }
    let (mut out, mut copied, mut u) = (String::with_capacity(text.len()), 0, 0);
    while u + wanted.len() <= units.len() {
        let window = &units[u..u + wanted.len()];
        let (start, end) = (window[0].1, window[wanted.len() - 1].2);
        if window.iter().map(|unit| unit.0).eq(wanted.iter().copied())
            && text.is_char_boundary(start)
            && text.is_char_boundary(end)
        {
            out.push_str(&text[copied..start]);
            out.push_str("[redacted]");
            copied = end;
            u += wanted.len();
        } else {
            u += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn default_reason(status: u16) -> &'static str {
    match status {
        404 => "the model or the API address was not found",
        413 => "the request is too large",
        422 => "the request was not understood",
        _ => "no reason given",
    }
}

/// The innermost error message, which names the actual problem ("Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    let text = current.to_string();
    // io errors read "Connection refused (os error 111)"; the number helps nobody.
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    lowercase_first(&text)
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Finds the human part of an error body: OpenAI-style `{"error": {"message"}}`, a few common
/// variants, or short plain text. HTML pages are not passed on.
pub(crate) fn provider_message(body: &str) -> String {
    let body = body.trim();
    let found = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|json| {
        let candidates = [json.pointer("/error/message"), json.get("message"), json.get("error"), json.get("detail")];
        candidates.into_iter().flatten().find_map(|v| v.as_str().map(str::to_string))
    });
    let text = match found {
        Some(text) => text,
        None if body.starts_with('<') || body.starts_with('{') => String::new(),
        None => body.to_string(),
    };
    clip(&text)
}

/// One line, printable, at most [`MAX_PROVIDER_MESSAGE`] characters.
pub(crate) fn clip(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_PROVIDER_MESSAGE {
        return one_line;
    }
    let mut clipped: String = one_line.chars().take(MAX_PROVIDER_MESSAGE).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_sentences() {
        assert_eq!(
            LlmError::from_status(401, None, "{}").to_string(),
            "the API key was rejected (HTTP 401); check LLM_API_KEY"
        );
        assert!(LlmError::from_status(429, None, "").to_string().contains("rate limited"));
        let refused =
            LlmError::from_status(400, None, r#"{"error":{"message":"max_tokens is too large","type":"invalid"}}"#);
        assert_eq!(refused.to_string(), "the provider refused the request (HTTP 400): max_tokens is too large");
        assert!(LlmError::from_status(404, None, "<html>nope</html>").to_string().contains("not found"));
        assert_eq!(
            LlmError::from_status(503, None, "overloaded").to_string(),
            "the provider failed (HTTP 503): overloaded"
        );
        assert_eq!(LlmError::from_status(500, None, "").to_string(), "the provider failed (HTTP 500)");
        assert_eq!(
            LlmError::Timeout { after: Duration::from_millis(1500) }.to_string(),
            "no complete answer within 2 s (timed out)"
        );
    }

    #[test]
    fn only_rate_limits_and_server_errors_are_retried() {
        assert!(LlmError::from_status(429, None, "").is_retryable());
        assert!(LlmError::from_status(502, None, "").is_retryable());
        assert!(!LlmError::from_status(400, None, "").is_retryable());
        assert!(!LlmError::from_status(401, None, "").is_retryable());
        assert!(!LlmError::Timeout { after: Duration::from_secs(1) }.is_retryable());
    }

    #[test]
    fn long_messages_are_clipped_to_one_line() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let clipped = clip(&long);
        assert!(clipped.starts_with("line one line two"));
        assert_eq!(clipped.chars().count(), MAX_PROVIDER_MESSAGE + 1);
    }

    #[test]
    fn a_rejected_key_names_whose_key_it_was() {
        use crate::llm::KeySource;
        let rejected = LlmError::from_status(401, None, "");
        let server = KeySource::Server { variable: "MOA_PROVIDER_LOCAL_API_KEY".into() };
        assert_eq!(rejected.explain(&server), "the API key was rejected (HTTP 401); check MOA_PROVIDER_LOCAL_API_KEY");
        assert!(rejected.explain(&KeySource::Participant).starts_with("your own API key was rejected (HTTP 401)"));
        let missing = KeySource::Missing { variable: "MOA_PROVIDER_LOCAL_API_KEY".into() };
        assert!(rejected.explain(&missing).contains("asks for an API key"));
        let other = LlmError::from_status(503, None, "busy");
        assert_eq!(other.explain(&KeySource::Participant), other.to_string());
    }

    #[test]
    fn a_long_echo_is_blanked_before_it_is_clipped() {
        let key = "sk-live-0123456789abcdefghijklmnopqrstuvwxyz";
        // The key starts 10 characters before the clip point: clipping first leaves its start.
        let body = format!("{} {key} tail", "x".repeat(MAX_PROVIDER_MESSAGE - 11));
        let message = LlmError::from_status(400, None, &blank_secret(&body, key)).redacted(key).to_string();
        assert!(!message.contains("sk-live-01"), "{message}");
    }

    #[test]
    fn echoed_keys_are_blanked() {
        let echoed = LlmError::from_status(400, None, r#"{"error":{"message":"bad key sk-user-123456 for model"}}"#);
        assert_eq!(
            echoed.redacted("sk-user-123456").to_string(),
            "the provider refused the request (HTTP 400): bad key [redacted] for model"
        );
        let key = "sk-user-123456";
        assert_eq!(blank_secret("echo SK-USER-123456 end", key), "echo [redacted] end");
        assert_eq!(blank_secret("url?k=sk%2Duser%2D123456&x", key), "url?k=[redacted]&x");
        assert_eq!(blank_secret("%73%6B%2d%55ser-123456", key), "[redacted]");
        assert_eq!(blank_secret("twice sk-user-123456sk-user-123456.", key), "twice [redacted][redacted].");
        assert_eq!(blank_secret("née sk-user-12345 100%", key), "née sk-user-12345 100%");
        let short = LlmError::Network("a b".into());
        assert_eq!(short.clone().redacted("a"), short);
    }
}
