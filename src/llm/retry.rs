//! Retries with exponential backoff, for rate limits and server errors only, and only while a
//! deadline allows: a workshop room hitting one key at once gets 429s that pass in seconds,
//! but a run must not hang on a provider that is down.

use std::time::Duration;

use tokio::time::Instant;

use super::{ChatProvider, ChatRequest, Completion, DeltaSink, Endpoint, LlmError};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// No retry starts (or sleeps) past this instant; `None` turns retries off.
    pub deadline: Option<Instant>,
    /// The first pause; each further pause doubles it (with jitter).
    pub first_delay: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Retries within `window` from now; a zero window means no retries.
    pub fn within(window: Duration) -> RetryPolicy {
        RetryPolicy {
            deadline: (!window.is_zero()).then(|| Instant::now() + window),
            first_delay: Duration::from_millis(500),
            max_attempts: 4,
        }
    }

    pub fn none() -> RetryPolicy {
        RetryPolicy { deadline: None, first_delay: Duration::ZERO, max_attempts: 1 }
    }

    /// The pause before attempt `attempt + 1`, or `None` when the deadline does not allow it.
    fn pause(&self, attempt: u32, error: &LlmError) -> Option<Duration> {
        let deadline = self.deadline?;
        if attempt >= self.max_attempts {
            return None;
        }
        let backoff = self.first_delay.saturating_mul(1 << (attempt - 1).min(8));
        // Jitter spreads a room's worth of retries so they do not all land at once.
        let jittered = backoff.mul_f64(0.75 + rand::random::<f64>() * 0.5);
        let pause = match error {
            LlmError::RateLimited { retry_after: Some(asked) } => jittered.max(*asked),
            _ => jittered,
        };
        (Instant::now() + pause < deadline).then_some(pause)
    }
}

/// Calls `provider`, retrying retryable failures as `policy` allows. Returns the result and how
/// many requests were sent. A failure after text was already streamed is never retried, so
/// listeners never see an answer twice.
pub async fn chat_with_retry(
    provider: &dyn ChatProvider,
    endpoint: &Endpoint,
    request: &ChatRequest,
    on_delta: DeltaSink<'_>,
    policy: RetryPolicy,
) -> (Result<Completion, LlmError>, u32) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut streamed = false;
        let result = {
            let mut forward = |piece: &str| {
                streamed = true;
                on_delta(piece);
            };
            provider.chat(endpoint, request, &mut forward).await
        };
        let error = match result {
            Ok(completion) => return (Ok(completion), attempt),
            Err(error) => error,
        };
        let pause = if error.is_retryable() && !streamed { policy.pause(attempt, &error) } else { None };
        match pause {
            Some(pause) => {
                tracing::info!(model = %request.model, attempt, %error, "retrying in {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
            }
            None => return (Err(error), attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_retries_without_a_deadline_or_past_the_attempt_limit() {
        let error = LlmError::Server { status: 503, message: String::new() };
        assert_eq!(RetryPolicy::none().pause(1, &error), None);
        assert_eq!(RetryPolicy::within(Duration::ZERO).pause(1, &error), None);
        let policy = RetryPolicy::within(Duration::from_secs(60));
        assert!(policy.pause(1, &error).is_some());
        assert_eq!(policy.pause(4, &error), None);
    }

    #[test]
    fn retry_after_is_honoured_only_within_the_deadline() {
        let policy = RetryPolicy::within(Duration::from_secs(10));
        let soon = LlmError::RateLimited { retry_after: Some(Duration::from_secs(3)) };
        assert!(policy.pause(1, &soon).unwrap() >= Duration::from_secs(3));
        let late = LlmError::RateLimited { retry_after: Some(Duration::from_secs(30)) };
        assert_eq!(policy.pause(1, &late), None);
    }
}
