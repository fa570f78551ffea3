//! What the server counts for operators, served at `/metrics` (see `web::metrics`).
//!
//! Counters and histograms belong to the process: the code that records them (the LLM
//! client, the grader, fair use) runs far from any request state, and one server is one
//! process. Values that are already kept elsewhere (runs in flight, the grading queue, live
//! viewers) are read at scrape time instead of being counted twice.
//!
//! Every label value comes from a closed set (provider names from the settings, outcomes and
//! limits from the enums here) or is capped: at most [`MAX_MODEL_LABELS`] model names, then
//! `other`, so a provider that lists thousands of models cannot blow up the series count.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::ProviderSettings;
use crate::llm::{ChatProvider, ChatRequest, Completion, DeltaSink, Endpoint, ListedModel, LlmError};

/// Distinct model names that get their own label value; later ones are counted as `other`.
pub const MAX_MODEL_LABELS: usize = 64;
/// Longer label values are cut (a model name is short; anything longer is not one).
const MAX_LABEL_CHARS: usize = 100;

/// Seconds: LLM calls take from a fraction of a second to minutes (streamed answers).
const LLM_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
/// Seconds: a grading is a sandboxed Python run of a few hundred milliseconds, capped by
/// `MOA_GRADE_TIMEOUT_SECS` (at most 600).
const GRADING_BUCKETS: [f64; 12] = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0, 600.0];

/// Declares `Limit` with its label values, and `Limit::ALL`, from one list.
macro_rules! limits {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)*) => {
        /// Which bound refused a request (the `limit` label of `moa_refusals_total`); each is
        /// named after the setting that sets it, where there is one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Limit {
            $($(#[$doc])* $variant,)*
        }

        impl Limit {
            pub const ALL: &[Limit] = &[$(Limit::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Limit::$variant => $label,)*
                }
            }
        }
    };
}

limits! {
    MaxRuns => "max_runs",
    RunsPerClient => "runs_per_client",
    RunsPerIp => "runs_per_ip",
    CallsPerMinute => "calls_per_minute",
    CallsPerIpPerMinute => "calls_per_ip_per_minute",
    EventTokensPerMinute => "event_tokens_per_minute",
    GeneratePerMinute => "generate_per_minute",
    SubmitPerMinute => "submit_per_minute",
    /// One submission being graded per participant.
    GradingPerParticipant => "grading_per_participant",
    /// The grader's queue (`MOA_GRADE_QUEUE`) is full.
    GradeQueue => "grade_queue",
    ClaimsPerIpPerMinute => "claims_per_ip_per_minute",
    SignInCodesPerIp => "sign_in_codes_per_ip",
    /// Too many wrong organizer (or metrics) tokens.
    OrganizerSignIn => "organizer_sign_in",
    MaxLiveViewers => "max_live_viewers",
    MaxConnections => "max_connections",
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    model: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    provider_calls: Family<CallLabels, Counter>,
    llm_seconds: HistogramFamily<ProviderLabel>,
    grading_seconds: HistogramFamily<StatusLabel>,
    refusals: Family<LimitLabel, Counter>,
    sse_streams: Family<StreamLabel, Gauge>,
    /// Set from the scraping server's state just before encoding.
    runs_in_flight: Gauge,
    grading_queued: Gauge,
    grading_running: Gauge,
    models_seen: Mutex<HashSet<String>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Counts one request refused by `limit`.
pub fn refused(limit: Limit) {
    metrics().refusals.get_or_create(&LimitLabel { limit: limit.as_str().into() }).inc();
}

/// What the scraping server reports at this instant.
pub struct Snapshot {
    pub runs_in_flight: usize,
    pub grading_queued: usize,
    pub grading_running: usize,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("moa");
        let provider_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "provider_calls",
            "Requests sent to LLM providers (each retry counts), by provider, model and outcome",
            provider_calls.clone(),
        );
        let llm_seconds: HistogramFamily<ProviderLabel> =
            Family::new_with_constructor(|| Histogram::new(LLM_BUCKETS.iter().copied()));
        registry.register(
            "llm_call_duration_seconds",
            "Duration of one LLM request, streaming included, by provider",
            llm_seconds.clone(),
        );
        let grading_seconds: HistogramFamily<StatusLabel> =
            Family::new_with_constructor(|| Histogram::new(GRADING_BUCKETS.iter().copied()));
        registry.register(
            "grading_duration_seconds",
            "Duration of one sandboxed grading run (waiting for a turn excluded), by verdict status",
            grading_seconds.clone(),
        );
        let refusals = Family::<LimitLabel, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused by a fair-use or capacity bound (429 or 503), by which limit",
            refusals.clone(),
        );
        let sse_streams = Family::<StreamLabel, Gauge>::default();
        registry.register("sse_streams_open", "Server-sent event streams open now, by route", sse_streams.clone());
        let runs_in_flight = Gauge::default();
        registry.register(
            "runs_in_flight",
            "MoA runs (chat and generate) whose engine is running",
            runs_in_flight.clone(),
        );
        let grading_queued = Gauge::default();
        registry.register("grading_queue_depth", "Submissions waiting for a grading turn", grading_queued.clone());
        let grading_running = Gauge::default();
        registry.register("gradings_running", "Gradings running now", grading_running.clone());
        Metrics {
            registry,
            provider_calls,
            llm_seconds,
            grading_seconds,
            refusals,
            sse_streams,
            runs_in_flight,
            grading_queued,
            grading_running,
            models_seen: Mutex::default(),
        }
    }

    /// The metrics in the OpenMetrics text format, the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        self.runs_in_flight.set(now.runs_in_flight as i64);
        self.grading_queued.set(now.grading_queued as i64);
        self.grading_running.set(now.grading_running as i64);
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Records one grading run that took `elapsed` and ended with `status`.
    pub fn graded(&self, status: &str, elapsed: Duration) {
        self.grading_seconds.get_or_create(&StatusLabel { status: status.into() }).observe(elapsed.as_secs_f64());
    }

    fn call(&self, provider: &str, model: &str, outcome: &str, elapsed: Duration) {
        let labels = CallLabels { provider: provider.into(), model: self.model_label(model), outcome: outcome.into() };
        self.provider_calls.get_or_create(&labels).inc();
        self.llm_seconds.get_or_create(&ProviderLabel { provider: provider.into() }).observe(elapsed.as_secs_f64());
    }

    /// `model` if it is one of the first [`MAX_MODEL_LABELS`] seen, else `other`.
    fn model_label(&self, model: &str) -> String {
        let model: String = model.chars().take(MAX_LABEL_CHARS).collect();
        let mut seen = self.models_seen.lock().expect("not poisoned");
        if seen.contains(&model) {
            return model;
        }
        if seen.len() >= MAX_MODEL_LABELS {
            return "other".into();
        }
        seen.insert(model.clone());
        model
    }

    /// Counts an open event stream on `route` until the guard is dropped.
    pub fn stream_opened(&'static self, route: &str) -> StreamGuard {
        let gauge = self.sse_streams.get_or_create_owned(&StreamLabel { route: route.into() });
        gauge.inc();
        StreamGuard(gauge)
    }
}

/// An open event stream, counted until dropped.
pub struct StreamGuard(Gauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `outcome` label of a failed call.
fn outcome(error: &LlmError) -> &'static str {
    match error {
        LlmError::Unauthorized { .. } => "unauthorized",
        LlmError::RateLimited { .. } => "rate_limited",
        LlmError::Refused { .. } => "refused",
        LlmError::Server { .. } => "server_error",
        LlmError::Timeout { .. } => "timeout",
        LlmError::Connect { .. } => "connect_error",
        LlmError::Network(_) => "network_error",
        LlmError::Malformed(_) => "malformed",
        LlmError::Setup(_) => "setup_error",
    }
}

/// A [`ChatProvider`] that counts every call of the one it wraps: by provider (the configured
/// name whose base URL the call goes to), model and outcome, with its duration. A call
/// abandoned before it ended (the listener left) counts as `cancelled`.
pub struct Metered<P> {
    inner: P,
    /// (base URL, provider name), the default provider first.
    providers: Vec<(String, String)>,
}

impl<P: ChatProvider> Metered<P> {
    pub fn new(inner: P, providers: &[ProviderSettings]) -> Metered<P> {
        Metered { inner, providers: providers.iter().map(|p| (p.base_url.clone(), p.name.clone())).collect() }
    }

    fn provider_of(&self, endpoint: &Endpoint) -> &str {
        let base = endpoint.base_url.trim_end_matches('/');
        self.providers.iter().find(|(url, _)| url == base).map_or("unknown", |(_, name)| name.as_str())
    }
}

/// Records a call when dropped: with the outcome if it ended, else as cancelled.
struct CallRecord<'a> {
    provider: &'a str,
    model: &'a str,
    started: Instant,
    outcome: Option<&'static str>,
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or("cancelled");
        metrics().call(self.provider, self.model, outcome, self.started.elapsed());
    }
}

impl<P: ChatProvider> ChatProvider for Metered<P> {
    fn chat<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a ChatRequest,
        on_delta: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(async move {
            let mut record = CallRecord {
                provider: self.provider_of(endpoint),
                model: &request.model,
                started: Instant::now(),
                outcome: None,
            };
            let result = self.inner.chat(endpoint, request, on_delta).await;
            record.outcome = Some(match &result {
                Ok(_) => "ok",
                Err(error) => outcome(error),
            });
            result
        })
    }

    fn list_models<'a>(&'a self, endpoint: &'a Endpoint) -> BoxFuture<'a, Result<Vec<ListedModel>, LlmError>> {
        self.inner.list_models(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels_are_capped() {
        let metrics = Metrics::new();
        for i in 0..MAX_MODEL_LABELS + 10 {
            metrics.call("default", &format!("model-{i}"), "ok", Duration::from_millis(5));
        }
        metrics.call("default", "model-0", "ok", Duration::from_millis(5));
        let text = metrics.render(&Snapshot { runs_in_flight: 0, grading_queued: 0, grading_running: 0 });
        let series: HashSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("moa_provider_calls_total{"))
            .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(series.len(), MAX_MODEL_LABELS + 1, "{series:?}");
        assert!(series.contains("other") && series.contains("model-0"));
        assert!(
            text.contains("moa_provider_calls_total{provider=\"default\",model=\"other\",outcome=\"ok\"} 10"),
            "{text}"
        );
        assert_eq!(metrics.model_label(&"x".repeat(500)), "other", "long names are cut, then capped");
    }

    #[test]
    fn every_limit_has_a_distinct_label() {
        let all = Limit::ALL;
        let labels: HashSet<&str> = all.iter().map(|l| l.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
