//! What a server offers right now: its providers (the default one first) and each one's models
//! with their context sizes. Configurations are checked, and budgets computed, against it.

use serde::Serialize;

use crate::config::{DEFAULT_PROVIDER, ModelSpec};

/// One provider's models, configured or discovered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderModels {
    pub name: String,
    pub models: Vec<ModelSpec>,
    /// True when the list came from the provider's `GET /models`, false for the configured one.
    pub discovered: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Never empty; the first is the default provider.
    providers: Vec<ProviderModels>,
}

impl Offer {
    /// `providers` must not be empty; the first is the default one.
    pub fn new(providers: Vec<ProviderModels>) -> Offer {
        assert!(!providers.is_empty(), "a server offers at least its default provider");
        Offer { providers }
    }

    /// One default provider offering `models` (what a server without `MOA_PROVIDERS` has).
    pub fn single(models: Vec<ModelSpec>) -> Offer {
        Offer::new(vec![ProviderModels { name: DEFAULT_PROVIDER.into(), models, discovered: false }])
    }

    pub fn providers(&self) -> &[ProviderModels] {
        &self.providers
    }

    pub fn default_provider(&self) -> &ProviderModels {
        &self.providers[0]
    }

    /// More than one provider: the pages then let each agent pick one.
    pub fn is_multi(&self) -> bool {
        self.providers.len() > 1
    }

    /// The provider a configuration names: none (older exports) and `default` mean the default one.
    pub fn provider(&self, name: Option<&str>) -> Option<&ProviderModels> {
        match name.map(str::trim) {
            None | Some("") | Some(DEFAULT_PROVIDER) => Some(self.default_provider()),
            Some(name) => self.providers.iter().find(|p| p.name == name),
        }
    }

    /// The context size of `model` on that provider; 0 when it is not offered there.
    pub fn context(&self, provider: Option<&str>, model: &str) -> u32 {
        self.provider(provider).and_then(|p| p.models.iter().find(|m| m.name == model)).map_or(0, |m| m.context_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, context_tokens: u32) -> ModelSpec {
        ModelSpec { name: name.into(), context_tokens }
    }

    #[test]
    fn a_missing_or_default_name_means_the_default_provider() {
        let offer = Offer::new(vec![
            ProviderModels { name: "cerebras".into(), models: vec![model("m", 8192)], discovered: false },
            ProviderModels { name: "local".into(), models: vec![model("m", 32_768)], discovered: true },
        ]);
        for name in [None, Some(""), Some("default"), Some("cerebras")] {
            assert_eq!(offer.provider(name).unwrap().name, "cerebras", "{name:?}");
        }
        assert_eq!(offer.provider(Some("local")).unwrap().name, "local");
        assert!(offer.provider(Some("groq")).is_none());
        // The same model name can have a different context on each provider.
        assert_eq!((offer.context(None, "m"), offer.context(Some("local"), "m")), (8192, 32_768));
        assert_eq!(offer.context(Some("local"), "other"), 0);
        assert!(offer.is_multi() && !Offer::single(vec![model("m", 8192)]).is_multi());
    }
}
