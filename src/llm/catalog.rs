//! The providers a server is configured with and the models each offers: the configured list,
//! or what the provider lists at `GET /models` when discovery is on.
//!
//! Pages never wait for a provider: [`Catalog::offer`] answers from what is known and, when a
//! list is due, asks again in the background. A discovery that fails or takes longer than
//! [`DISCOVERY_TIMEOUT`] leaves the last good list (at first, the configured one) in place.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::offer::{Offer, ProviderModels};
use super::{ChatProvider, Endpoint, ListedModel};
use crate::config::{CONTEXT_TOKENS, ModelSpec, ProviderSettings, Secret};

/// One `GET /models` may take this long; then the configured list stands.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// A discovered list is asked for again after this long…
const FRESH_FOR: Duration = Duration::from_secs(600);
/// …and a failed discovery sooner, so a local server started late shows up.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);
/// The context of a discovered model that neither the configuration nor the provider sizes.
pub const UNKNOWN_CONTEXT: u32 = 8192;

pub struct Catalog {
    providers: Vec<ProviderSettings>,
    llm: Arc<dyn ChatProvider>,
    /// Per provider, in the same order.
    discovery: Mutex<Vec<Discovery>>,
}

#[derive(Default, Clone)]
struct Discovery {
    /// The last list the provider gave.
    models: Option<Vec<ModelSpec>>,
    /// When it was last asked, and whether that worked.
    asked: Option<(Instant, bool)>,
    in_flight: bool,
}

impl Catalog {
    /// `providers` (the default one first, as [`crate::config::Settings::providers`] gives them).
    pub fn new(providers: Vec<ProviderSettings>, llm: Arc<dyn ChatProvider>) -> Arc<Catalog> {
        assert!(!providers.is_empty(), "there is always a default provider");
        let discovery = Mutex::new(vec![Discovery::default(); providers.len()]);
        Arc::new(Catalog { providers, llm, discovery })
    }

    /// The configured providers, the default one first.
    pub fn providers(&self) -> &[ProviderSettings] {
        &self.providers
    }

    pub fn default_provider(&self) -> &ProviderSettings {
        &self.providers[0]
    }

    /// What is offered right now. Never waits: lists that are due are refreshed in the background.
    pub fn offer(self: &Arc<Self>) -> Offer {
        let mut due = Vec::new();
        let offered = {
            let mut discovery = self.discovery.lock().expect("not poisoned");
            self.providers
                .iter()
                .zip(discovery.iter_mut())
                .enumerate()
                .map(|(i, (provider, found))| {
                    if provider.discover && !found.in_flight && is_due(found.asked) {
                        found.in_flight = true;
                        due.push(i);
                    }
                    ProviderModels {
                        name: provider.name.clone(),
                        discovered: found.models.is_some(),
                        models: found.models.clone().unwrap_or_else(|| provider.models.clone()),
                    }
                })
                .collect()
        };
        if let (false, Ok(runtime)) = (due.is_empty(), tokio::runtime::Handle::try_current()) {
            let catalog = self.clone();
            runtime.spawn(async move {
                futures_util::future::join_all(due.into_iter().map(|i| catalog.discover(i))).await;
            });
        }
        Offer::new(offered)
    }

    /// Asks every provider with discovery on for its models now, at once; each answer (or
    /// [`DISCOVERY_TIMEOUT`]) takes effect as it comes.
    pub async fn refresh(&self) {
        let discovering = (0..self.providers.len()).filter(|&i| self.providers[i].discover);
        futures_util::future::join_all(discovering.map(|i| self.discover(i))).await;
    }

    async fn discover(&self, index: usize) {
        let provider = &self.providers[index];
        // Discovery uses the server's key only: a participant's key serves their own run and no more.
        let endpoint = Endpoint {
            base_url: provider.base_url.clone(),
            api_key: provider.api_key.clone().unwrap_or_else(|| Secret::new("")),
        };
        let outcome = match tokio::time::timeout(DISCOVERY_TIMEOUT, self.llm.list_models(&endpoint)).await {
            Ok(Ok(listed)) if !listed.is_empty() => Ok(sized(listed, &provider.models)),
            Ok(Ok(_)) => Err("the provider listed no models".to_string()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {} s", DISCOVERY_TIMEOUT.as_secs())),
        };
        match &outcome {
            Ok(models) => tracing::info!(provider = %provider.name, models = models.len(), "models discovered"),
            Err(reason) => {
                tracing::warn!(provider = %provider.name, %reason, "model discovery failed; the known list stays")
            }
        }
        let mut discovery = self.discovery.lock().expect("not poisoned");
        let found = &mut discovery[index];
        found.in_flight = false;
        found.asked = Some((Instant::now(), outcome.is_ok()));
        if let Ok(models) = outcome {
            found.models = Some(models);
        }
    }
}

fn is_due(asked: Option<(Instant, bool)>) -> bool {
    match asked {
        None => true,
        Some((at, worked)) => at.elapsed() >= if worked { FRESH_FOR } else { RETRY_AFTER_FAILURE },
    }
}

/// Gives each listed model a context size: the configured one (the organizer knows best), else
/// the provider's, else [`UNKNOWN_CONTEXT`]. Sorted by name so pages list them the same way.
fn sized(listed: Vec<ListedModel>, configured: &[ModelSpec]) -> Vec<ModelSpec> {
    let mut models: Vec<ModelSpec> = Vec::with_capacity(listed.len());
    for model in listed {
        if models.iter().any(|m| m.name == model.id) {
            continue;
        }
        let context_tokens = configured
            .iter()
            .find(|m| m.name == model.id)
            .map(|m| m.context_tokens)
            .or(model.context_tokens.map(|n| n.clamp(*CONTEXT_TOKENS.start(), *CONTEXT_TOKENS.end())))
            .unwrap_or(UNKNOWN_CONTEXT);
        models.push(ModelSpec { name: model.id, context_tokens });
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_models_take_the_configured_context_first() {
        let listed = vec![
            ListedModel { id: "b".into(), context_tokens: Some(131_072) },
            ListedModel { id: "a".into(), context_tokens: Some(32_768) },
            ListedModel { id: "c".into(), context_tokens: None },
            ListedModel { id: "a".into(), context_tokens: None },
            ListedModel { id: "tiny".into(), context_tokens: Some(10) },
        ];
        let configured = vec![ModelSpec { name: "a".into(), context_tokens: 16_384 }];
        let sized: Vec<(String, u32)> =
            sized(listed, &configured).into_iter().map(|m| (m.name, m.context_tokens)).collect();
        let expected = [("a", 16_384), ("b", 131_072), ("c", UNKNOWN_CONTEXT), ("tiny", 1024)];
        assert_eq!(sized, expected.map(|(n, c)| (n.to_string(), c)));
    }

    #[test]
    fn failures_are_retried_sooner_than_successes() {
        let now = Instant::now();
        assert!(is_due(None));
        assert!(!is_due(Some((now, true))) && !is_due(Some((now, false))));
        let minutes_ago = |m: u64| now.checked_sub(Duration::from_secs(60 * m)).unwrap();
        assert!(is_due(Some((minutes_ago(2), false))) && !is_due(Some((minutes_ago(2), true))));
        assert!(is_due(Some((minutes_ago(11), true))));
    }
}
