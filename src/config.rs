//! Typed settings from the environment (and a `.env` file, read by `main`), with the CLI
//! overriding the listen address. Secrets are wrapped so they never print.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LLM_BASE_URL: &str = "https://api.cerebras.ai/v1";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/workshop.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Models offered when `MOA_MODELS` is unset, with their context windows (as the original).
pub const DEFAULT_MODELS: &str =
    "llama-3.3-70b:8192,llama3.1-8b:8192,llama-4-scout-17b-16e-instruct:8192,qwen-3-32b:16384";

/// A model the chat and challenge pages offer, and how many tokens it reads at most.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ModelSpec {
    pub name: String,
    pub context_tokens: u32,
}

/// Context sizes outside this range are typos, not models.
pub const CONTEXT_TOKENS: std::ops::RangeInclusive<u32> = 1024..=10_000_000;

/// Parses `name:context,name:context` (the `MOA_MODELS` format).
pub fn parse_models(list: &str) -> Result<Vec<ModelSpec>, String> {
    parse_model_list("MOA_MODELS", list)
}

/// Parses a model list in the `MOA_MODELS` format; errors name `variable`.
fn parse_model_list(variable: &str, list: &str) -> Result<Vec<ModelSpec>, String> {
    let mut models: Vec<ModelSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, context) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("{variable}: {item:?} needs a context size, e.g. llama3.1-8b:8192"))?;
        let name = name.trim();
        let context_tokens = context
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| CONTEXT_TOKENS.contains(n))
            .ok_or_else(|| format!("{variable}: the context size of {name:?} must be a number of tokens ≥ 1024"))?;
        if name.is_empty() || models.iter().any(|m| m.name == name) {
            return Err(format!("{variable}: {item:?} has an empty or repeated model name"));
        }
        models.push(ModelSpec { name: name.to_string(), context_tokens });
    }
    if models.is_empty() {
        return Err(format!("{variable} must name at least one model, e.g. llama3.1-8b:8192"));
    }
    Ok(models)
}

/// The name that always means the default provider, whatever `LLM_PROVIDER_NAME` calls it, so
/// a configuration exported on one server imports on another.
pub const DEFAULT_PROVIDER: &str = "default";

/// One OpenAI-compatible endpoint the agents can use.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Lowercase letters, digits and `_`; the first provider is the default one.
    pub name: String,
    /// API root without a trailing slash.
    pub base_url: String,
    /// The server's key; `None` sends no `Authorization` (a local server that needs none).
    pub api_key: Option<Secret>,
    /// The variable that sets the key, for sentences telling an organizer what to fix.
    pub key_variable: String,
    /// The static model list: offered as is, or the fallback when discovery fails.
    pub models: Vec<ModelSpec>,
    /// Ask the provider for its models (`GET {base_url}/models`).
    pub discover: bool,
}

/// A value that must never reach logs, pages or the database.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    pub llm_base_url: String,
    pub llm_api_key: Option<Secret>,
    pub organizer_token: Option<Secret>,
    /// The Python interpreter the grader runs (`MOA_PYTHON`).
    pub python: String,
    /// Gradings at once (`MOA_GRADE_CONCURRENCY`, default: CPUs) and waiting (`MOA_GRADE_QUEUE`).
    pub grade_concurrency: Option<usize>,
    pub grade_queue: Option<usize>,
    /// Start the fork server (one confined interpreter with the harness loaded, forking a child
    /// per submission) with the server and restart it in the background when it dies
    /// (`MOA_GRADE_PREWARM`, default: the grading concurrency, i.e. on; 0 starts it with the
    /// first submission).
    pub grade_prewarm: Option<usize>,
    /// Wall-clock limit of one grading run (`MOA_GRADE_TIMEOUT_SECS`).
    pub grade_timeout: Duration,
    /// Namespaces for each sandbox where the kernel allows them (`MOA_SANDBOX_NAMESPACES`,
    /// default on; off tests the seccomp-only fallback that Docker's default profile gets).
    pub sandbox_namespaces: bool,
    /// Models offered, with context sizes (`MOA_MODELS="name:context,…"`, default [`DEFAULT_MODELS`]).
    pub models: Vec<ModelSpec>,
    /// Limit for one LLM call, streaming included (`MOA_LLM_TIMEOUT_SECS`, default 120).
    pub llm_timeout: Duration,
    /// How long after a run starts 429/5xx answers are still retried (`MOA_LLM_RETRY_SECS`,
    /// default 20; 0 turns retries off).
    pub llm_retry_window: Duration,
    /// Per-participant limits, so one attendee cannot exhaust a shared API key or the grader
    /// (`MOA_GENERATE_PER_MINUTE`, default 6; `MOA_SUBMIT_PER_MINUTE`, default 12; 0 = no limit).
    pub generate_per_minute: u32,
    pub submit_per_minute: u32,
    /// MoA runs (chat and generate) at once on this instance, beyond which new ones get a 429
    /// with Retry-After (`MOA_MAX_RUNS`, default 1,000; 0 = no limit). Each open run holds
    /// about 100 KiB and two sockets.
    pub max_runs: usize,
    /// Whether attendees may evaluate, compare and tune (`MOA_EVALUATION`, default on; the
    /// organizer can also turn it off on the organizer page).
    pub evaluation: bool,
    /// The most generations one evaluation, comparison side or tuning search may make
    /// (`MOA_EVALUATION_MAX_RUNS`, default 20).
    pub evaluation_max_runs: u32,
    /// What the pages and exports call the provider `LLM_BASE_URL` points at
    /// (`LLM_PROVIDER_NAME`, default `default`).
    pub llm_provider_name: String,
    /// Ask the default provider for its models instead of offering `MOA_MODELS` only
    /// (`LLM_DISCOVER_MODELS`, default false).
    pub llm_discover_models: bool,
    /// Further providers (`MOA_PROVIDERS=local,groq` with `MOA_PROVIDER_<NAME>_…`).
    pub extra_providers: Vec<ProviderSettings>,
    /// Runs on the default provider need the participant's own key (`MOA_REQUIRE_USER_KEY`).
    pub require_user_key: bool,
    /// A connection must send a complete request head within this after connecting or after
    /// its previous answer, else it is closed: covers idle sockets, trickled headers and idle
    /// keep-alive alike (`MOA_HEADER_TIMEOUT_SECS`, default 10). Streams being answered are
    /// not affected.
    pub header_timeout: Duration,
    /// Open client connections at once; past it, new ones get a 503 sentence and are closed
    /// (`MOA_MAX_CONNECTIONS`, default 0 = half the open-file limit, so the provider sockets,
    /// the database and the grader keep descriptors).
    pub max_connections: usize,
    /// Live leaderboard viewers (public and organizer) at once on this instance; past it, a
    /// 503 sentence (`MOA_MAX_LIVE_VIEWERS`, default 5,000).
    pub max_live_viewers: usize,
    /// Connecting to a provider must succeed within this (`MOA_LLM_CONNECT_TIMEOUT_SECS`, default 10).
    pub llm_connect_timeout: Duration,
    /// The address attendees use, e.g. `https://moa.example.org` (`MOA_PUBLIC_URL`): an
    /// https address makes cookies `Secure`, and its origin counts as this server's own.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-Proto` / `X-Forwarded-For` are believed
    /// (`MOA_TRUSTED_PROXIES`, comma-separated addresses or CIDR ranges; default none).
    pub trusted_proxies: Vec<IpRange>,
    /// Fair use: what one client may spend (see `web::fair_use`, which owns the rules).
    pub fair_use: FairUseSettings,
    /// Serve `/metrics` (`MOA_METRICS`, default on; `off` leaves the route out).
    pub metrics_enabled: bool,
    /// A token that reads `/metrics` and nothing else (`MOA_METRICS_TOKEN`); the organizer
    /// token reads it too.
    pub metrics_token: Option<Secret>,
    /// How log lines are written (`MOA_LOG_FORMAT`: `text`, the default, or `json`).
    pub log_format: LogFormat,
    /// An organizer's folder of challenge folders (`MOA_CHALLENGES_DIR`), offered besides the
    /// built-in ones (a folder with a built-in's id replaces it).
    pub challenges_dir: Option<PathBuf>,
    /// The challenges attendees may pick at start-up (`MOA_CHALLENGES`, ids separated by
    /// commas; default: the default challenge). The organizer page can change them.
    pub active_challenges: Vec<String>,
    /// The uid each sandbox runs as where the server may switch to it (`MOA_SANDBOX_UID`:
    /// `uid` or `uid:gid`, `off`; default 61000 when the server runs as root).
    pub sandbox_uid: SandboxUid,
}

/// Which uid the sandboxes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxUid {
    /// The grader's default uid where the server may switch (root); the server's own where it
    /// may not, or where that uid could not read the Python installation.
    #[default]
    Automatic,
    /// The server's uid, always.
    Off,
    /// This uid and gid where the server may switch; a Python they cannot read is an error.
    Given { uid: u32, gid: u32 },
}

impl SandboxUid {
    pub fn parse(value: &str) -> Result<SandboxUid, String> {
        let value = value.trim().to_ascii_lowercase();
        match value.as_str() {
            "" | "auto" => return Ok(SandboxUid::Automatic),
            "off" | "false" | "no" => return Ok(SandboxUid::Off),
            _ => {}
        }
        let id = |text: &str| text.trim().parse::<u32>().ok().filter(|&n| n != 0 && n != u32::MAX);
        let (uid, gid) = match value.split_once(':') {
            Some((uid, gid)) => (id(uid), id(gid)),
            None => (id(&value), id(&value)),
        };
        match (uid, gid) {
            (Some(uid), Some(gid)) => Ok(SandboxUid::Given { uid, gid }),
            _ => {
                Err(format!("MOA_SANDBOX_UID must be a uid other than 0 (e.g. 61000), uid:gid, or off, not {value:?}"))
            }
        }
    }
}

/// How `serve` writes its log lines to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line a person reads.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> Result<LogFormat, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("MOA_LOG_FORMAT must be text or json, not {value:?}")),
        }
    }
}

/// An address range such as `10.0.0.0/8` or a single address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub network: std::net::IpAddr,
    pub prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<IpRange> {
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let network: std::net::IpAddr = address.trim().parse().ok()?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= bits)?,
            None => bits,
        };
        Some(IpRange { network, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        // An IPv4 client reaching an IPv6 socket appears as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The shortest organizer token accepted: anything shorter can be guessed.
pub const MIN_ORGANIZER_TOKEN: usize = 16;

/// Refuses an organizer token that is too short to resist guessing.
pub fn check_organizer_token(token: &Secret) -> Result<(), String> {
    check_token_length("ORGANIZER_TOKEN", token)
}

fn check_token_length(variable: &str, token: &Secret) -> Result<(), String> {
    let length = token.expose().chars().count();
    if length < MIN_ORGANIZER_TOKEN {
        return Err(format!(
            "{variable} is too short ({length} characters; at least {MIN_ORGANIZER_TOKEN} are needed so it \
             cannot be guessed). Make one with: openssl rand -hex 16"
        ));
    }
    Ok(())
}

/// Bounds on what one client can spend, so nobody can exhaust the event's key or the server
/// for the others. A client is a claimed participant, else an anonymous browser (its
/// `moa_browser` cookie), else its network address; every request also counts against its
/// address, a generous backstop for scripts that drop cookies. 0 turns a bound off.
#[derive(Debug, Clone, PartialEq)]
pub struct FairUseSettings {
    /// MoA runs one client may have going at once (`MOA_RUNS_PER_CLIENT`, default 3).
    pub runs_per_client: usize,
    /// MoA runs from one network address at once (`MOA_RUNS_PER_IP`, default 100).
    pub runs_per_ip: usize,
    /// Model calls one client may start per minute (`MOA_CALLS_PER_MINUTE`, default 250:
    /// three runs of the largest configuration, 8 agents × 10 layers + 1).
    pub calls_per_minute: u64,
    /// Model calls per minute from one network address (`MOA_CALLS_PER_IP_PER_MINUTE`, default 2,500).
    pub calls_per_ip_per_minute: u64,
    /// Tokens per minute all runs on the event's own key may plan to use
    /// (`MOA_EVENT_TOKENS_PER_MINUTE`, default 0 = no budget).
    pub event_tokens_per_minute: u64,
    /// Whether the MoA chat needs a claimed display name (`MOA_CHAT_REQUIRES_NAME`, default false).
    pub chat_requires_name: bool,
    /// Display names one network address may claim per minute (`MOA_CLAIMS_PER_IP_PER_MINUTE`, default 30).
    pub claims_per_ip_per_minute: u32,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| v.parse::<u64>().map_err(|_| format!("{name} must be a whole number, not {v:?}")))
                .transpose()
        };
        let llm_base_url =
            base_url("LLM_BASE_URL", Some(get("LLM_BASE_URL").as_deref().unwrap_or(DEFAULT_LLM_BASE_URL)))?;
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres:")
            || database_url.starts_with("postgresql:"))
        {
            return Err("DATABASE_URL must be a sqlite:// or postgres:// URL".into());
        }
        let grade_timeout = number("MOA_GRADE_TIMEOUT_SECS")?.unwrap_or(10);
        if !(1..=600).contains(&grade_timeout) {
            return Err("MOA_GRADE_TIMEOUT_SECS must be between 1 and 600".into());
        }
        let llm_timeout = number("MOA_LLM_TIMEOUT_SECS")?.unwrap_or(120);
        if !(1..=3600).contains(&llm_timeout) {
            return Err("MOA_LLM_TIMEOUT_SECS must be between 1 and 3600".into());
        }
        let llm_retry_window = number("MOA_LLM_RETRY_SECS")?.unwrap_or(20).min(3600);
        let models = parse_models(&get("MOA_MODELS").unwrap_or_else(|| DEFAULT_MODELS.into()))?;
        let flag = |name: &str, default: bool| -> Result<bool, String> {
            match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
                None => Ok(default),
                Some("true" | "1" | "yes" | "on") => Ok(true),
                Some("false" | "0" | "no" | "off") => Ok(false),
                Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
            }
        };
        let llm_provider_name = match get("LLM_PROVIDER_NAME") {
            Some(name) => provider_name("LLM_PROVIDER_NAME", &name)?,
            None => DEFAULT_PROVIDER.to_string(),
        };
        let mut extra_providers: Vec<ProviderSettings> = Vec::new();
        for name in get("MOA_PROVIDERS").unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let name = provider_name("MOA_PROVIDERS", name)?;
            if name == DEFAULT_PROVIDER || name == llm_provider_name || extra_providers.iter().any(|p| p.name == name) {
                return Err(format!(
                    "MOA_PROVIDERS: the name {name:?} is repeated or taken by the default provider (LLM_BASE_URL)"
                ));
            }
            let prefix = format!("MOA_PROVIDER_{}_", name.to_ascii_uppercase());
            let var = |suffix: &str| format!("{prefix}{suffix}");
            let base_url = base_url(&var("BASE_URL"), get(&var("BASE_URL")).as_deref())?;
            let models = parse_model_list(
                &var("MODELS"),
                &get(&var("MODELS")).ok_or_else(|| {
                    format!("{} must list the models of {name:?} with context sizes, e.g. llama3.2:8192", var("MODELS"))
                })?,
            )?;
            extra_providers.push(ProviderSettings {
                api_key: get(&var("API_KEY")).map(Secret::new),
                key_variable: var("API_KEY"),
                discover: flag(&var("DISCOVER"), true)?,
                name,
                base_url,
                models,
            });
        }
        let organizer_token = get("ORGANIZER_TOKEN").map(Secret::new);
        if let Some(token) = &organizer_token {
            check_organizer_token(token)?;
        }
        let metrics_token = get("MOA_METRICS_TOKEN").map(Secret::new);
        if let Some(token) = &metrics_token {
            check_token_length("MOA_METRICS_TOKEN", token)?;
        }
        Ok(Settings {
            listen: get("MOA_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database_url,
            llm_base_url,
            llm_api_key: get("LLM_API_KEY").or_else(|| get("CEREBRAS_API_KEY")).map(Secret::new),
            organizer_token,
            python: get("MOA_PYTHON").unwrap_or_else(|| "python3".into()),
            grade_concurrency: number("MOA_GRADE_CONCURRENCY")?.map(|n| n.max(1) as usize),
            grade_queue: number("MOA_GRADE_QUEUE")?.map(|n| n as usize),
            grade_prewarm: number("MOA_GRADE_PREWARM")?.map(|n| n.min(64) as usize),
            grade_timeout: Duration::from_secs(grade_timeout),
            sandbox_namespaces: flag("MOA_SANDBOX_NAMESPACES", true)?,
            models,
            llm_timeout: Duration::from_secs(llm_timeout),
            llm_retry_window: Duration::from_secs(llm_retry_window),
            generate_per_minute: number("MOA_GENERATE_PER_MINUTE")?.unwrap_or(6).min(10_000) as u32,
            submit_per_minute: number("MOA_SUBMIT_PER_MINUTE")?.unwrap_or(12).min(10_000) as u32,
            max_runs: number("MOA_MAX_RUNS")?.unwrap_or(1_000) as usize,
            evaluation: flag("MOA_EVALUATION", true)?,
            evaluation_max_runs: number("MOA_EVALUATION_MAX_RUNS")?.unwrap_or(20).clamp(1, 200) as u32,
            llm_provider_name,
            llm_discover_models: flag("LLM_DISCOVER_MODELS", false)?,
            extra_providers,
            require_user_key: flag("MOA_REQUIRE_USER_KEY", false)?,
            header_timeout: Duration::from_secs(number("MOA_HEADER_TIMEOUT_SECS")?.unwrap_or(10).clamp(1, 3600)),
            max_connections: number("MOA_MAX_CONNECTIONS")?.unwrap_or(0) as usize,
            max_live_viewers: number("MOA_MAX_LIVE_VIEWERS")?.unwrap_or(5_000).max(1) as usize,
            llm_connect_timeout: Duration::from_secs(
                number("MOA_LLM_CONNECT_TIMEOUT_SECS")?.unwrap_or(10).clamp(1, 600),
            ),
            public_url: get("MOA_PUBLIC_URL").map(|url| base_url("MOA_PUBLIC_URL", Some(&url))).transpose()?,
            trusted_proxies: get("MOA_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    IpRange::parse(p).ok_or_else(|| {
                        format!("MOA_TRUSTED_PROXIES: {p:?} is not an address or range, e.g. 127.0.0.1 or 10.0.0.0/8")
                    })
                })
                .collect::<Result<_, _>>()?,
            fair_use: FairUseSettings {
                runs_per_client: number("MOA_RUNS_PER_CLIENT")?.unwrap_or(3) as usize,
                runs_per_ip: number("MOA_RUNS_PER_IP")?.unwrap_or(100) as usize,
                calls_per_minute: number("MOA_CALLS_PER_MINUTE")?.unwrap_or(250),
                calls_per_ip_per_minute: number("MOA_CALLS_PER_IP_PER_MINUTE")?.unwrap_or(2_500),
                event_tokens_per_minute: number("MOA_EVENT_TOKENS_PER_MINUTE")?.unwrap_or(0),
                chat_requires_name: flag("MOA_CHAT_REQUIRES_NAME", false)?,
                claims_per_ip_per_minute: number("MOA_CLAIMS_PER_IP_PER_MINUTE")?.unwrap_or(30).min(100_000) as u32,
            },
            metrics_enabled: flag("MOA_METRICS", true)?,
            metrics_token,
            log_format: get("MOA_LOG_FORMAT").map(|v| LogFormat::parse(&v)).transpose()?.unwrap_or_default(),
            challenges_dir: get("MOA_CHALLENGES_DIR").map(PathBuf::from),
            active_challenges: get("MOA_CHALLENGES")
                .map(|list| list.split(',').map(str::trim).filter(|id| !id.is_empty()).map(String::from).collect())
                .unwrap_or_default(),
            sandbox_uid: get("MOA_SANDBOX_UID").map(|v| SandboxUid::parse(&v)).transpose()?.unwrap_or_default(),
        })
    }

    /// Every provider, the default one (`LLM_BASE_URL`, `LLM_API_KEY`, `MOA_MODELS`) first.
    pub fn providers(&self) -> Vec<ProviderSettings> {
        let default = ProviderSettings {
            name: self.llm_provider_name.clone(),
            base_url: self.llm_base_url.clone(),
            api_key: self.llm_api_key.clone(),
            key_variable: "LLM_API_KEY".into(),
            models: self.models.clone(),
            discover: self.llm_discover_models,
        };
        std::iter::once(default).chain(self.extra_providers.iter().cloned()).collect()
    }
}

/// A provider name as pages, exports and variable names use it: `Local` → `local`.
fn provider_name(variable: &str, name: &str) -> Result<String, String> {
    let name = name.trim().to_ascii_lowercase();
    let valid = (1..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "{variable}: {name:?} is not a usable provider name (1–24 letters, digits or _, starting with a letter)"
        ))
    }
}

/// An API root: required, http(s), no trailing slash.
fn base_url(variable: &str, value: Option<&str>) -> Result<String, String> {
    let url = value.ok_or_else(|| format!("{variable} must be set, e.g. http://127.0.0.1:11434/v1"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{variable} must start with http:// or https://, not {url:?}"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_uid_is_a_uid_a_pair_or_off_and_never_root() {
        assert_eq!(SandboxUid::parse("").unwrap(), SandboxUid::Automatic);
        assert_eq!(SandboxUid::parse("off").unwrap(), SandboxUid::Off);
        assert_eq!(SandboxUid::parse("61000").unwrap(), SandboxUid::Given { uid: 61000, gid: 61000 });
        assert_eq!(SandboxUid::parse(" 70000:70001 ").unwrap(), SandboxUid::Given { uid: 70000, gid: 70001 });
        for bad in ["0", "0:5", "5:0", "-1", "nobody", "4294967295", "1:2:3"] {
            let error = SandboxUid::parse(bad).unwrap_err();
            assert!(error.contains("MOA_SANDBOX_UID"), "{bad}: {error}");
        }
    }
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.llm_base_url, DEFAULT_LLM_BASE_URL);
        assert!(s.llm_api_key.is_none() && s.organizer_token.is_none());
    }

    #[test]
    fn fair_use_has_defaults_and_can_be_changed() {
        let f = settings(&[]).unwrap().fair_use;
        assert_eq!(
            (f.runs_per_client, f.runs_per_ip, f.calls_per_minute, f.calls_per_ip_per_minute),
            (3, 100, 250, 2_500)
        );
        assert_eq!((f.event_tokens_per_minute, f.chat_requires_name, f.claims_per_ip_per_minute), (0, false, 30));
        let f =
            settings(&[("MOA_EVENT_TOKENS_PER_MINUTE", "60000"), ("MOA_CHAT_REQUIRES_NAME", "yes")]).unwrap().fair_use;
        assert_eq!((f.event_tokens_per_minute, f.chat_requires_name), (60_000, true));
        assert!(settings(&[("MOA_RUNS_PER_CLIENT", "three")]).unwrap_err().contains("MOA_RUNS_PER_CLIENT"));
    }

    #[test]
    fn cerebras_key_is_accepted_and_never_printed() {
        let s = settings(&[("CEREBRAS_API_KEY", "csk-very-secret")]).unwrap();
        assert_eq!(s.llm_api_key.as_ref().unwrap().expose(), "csk-very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        let s = settings(&[("CEREBRAS_API_KEY", "a"), ("LLM_API_KEY", "b")]).unwrap();
        assert_eq!(s.llm_api_key.unwrap().expose(), "b");
    }

    #[test]
    fn bad_values_get_clear_errors() {
        assert!(settings(&[("LLM_BASE_URL", "api.example")]).unwrap_err().contains("http://"));
        assert!(settings(&[("DATABASE_URL", "mysql://x")]).unwrap_err().contains("sqlite://"));
        assert!(settings(&[("MOA_GRADE_CONCURRENCY", "two")]).unwrap_err().contains("whole number"));
        assert!(settings(&[("MOA_MODELS", "llama3.1-8b")]).unwrap_err().contains("context size"));
        assert!(settings(&[("MOA_MODELS", "a:8192,a:9000")]).unwrap_err().contains("repeated"));
    }

    #[test]
    fn models_default_as_the_original_and_can_be_replaced() {
        let s = settings(&[]).unwrap();
        let names: Vec<_> = s.models.iter().map(|m| (m.name.as_str(), m.context_tokens)).collect();
        assert_eq!(
            names,
            [
                ("llama-3.3-70b", 8192),
                ("llama3.1-8b", 8192),
                ("llama-4-scout-17b-16e-instruct", 8192),
                ("qwen-3-32b", 16384)
            ]
        );
        let s = settings(&[("MOA_MODELS", " gpt-4o-mini:128000 , llama3.2:8192 ")]).unwrap();
        assert_eq!(s.models[0], ModelSpec { name: "gpt-4o-mini".into(), context_tokens: 128_000 });
        assert_eq!(s.models[1].name, "llama3.2");
    }

    #[test]
    fn the_default_provider_is_the_llm_settings() {
        let s = settings(&[("LLM_BASE_URL", "http://127.0.0.1:9/v1/"), ("LLM_API_KEY", "sk-default")]).unwrap();
        let providers = s.providers();
        assert_eq!(providers.len(), 1);
        let default = &providers[0];
        assert_eq!((default.name.as_str(), default.base_url.as_str()), (DEFAULT_PROVIDER, "http://127.0.0.1:9/v1"));
        assert_eq!(default.api_key.as_ref().unwrap().expose(), "sk-default");
        assert_eq!((default.key_variable.as_str(), default.discover), ("LLM_API_KEY", false));
        assert_eq!(default.models, s.models);
        assert!(!s.require_user_key);
        let s = settings(&[("LLM_PROVIDER_NAME", " Cerebras "), ("LLM_DISCOVER_MODELS", "yes")]).unwrap();
        assert_eq!((s.providers()[0].name.as_str(), s.providers()[0].discover), ("cerebras", true));
    }

    #[test]
    fn named_providers_come_from_their_own_variables() {
        let s = settings(&[
            ("MOA_PROVIDERS", "local, Groq"),
            ("MOA_PROVIDER_LOCAL_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("MOA_PROVIDER_LOCAL_MODELS", "llama3.2:8192,qwen3:32768"),
            ("MOA_PROVIDER_GROQ_BASE_URL", "https://api.groq.com/openai/v1/"),
            ("MOA_PROVIDER_GROQ_API_KEY", "gsk-secret-value"),
            ("MOA_PROVIDER_GROQ_MODELS", "llama-3.1-8b-instant:131072"),
            ("MOA_PROVIDER_GROQ_DISCOVER", "false"),
            ("MOA_REQUIRE_USER_KEY", "true"),
        ])
        .unwrap();
        let providers = s.providers();
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, [DEFAULT_PROVIDER, "local", "groq"]);
        let (local, groq) = (&providers[1], &providers[2]);
        assert!(local.api_key.is_none() && local.discover);
        assert_eq!(local.models[1], ModelSpec { name: "qwen3".into(), context_tokens: 32_768 });
        assert_eq!(groq.base_url, "https://api.groq.com/openai/v1");
        assert_eq!(groq.api_key.as_ref().unwrap().expose(), "gsk-secret-value");
        assert_eq!((groq.key_variable.as_str(), groq.discover), ("MOA_PROVIDER_GROQ_API_KEY", false));
        assert!(s.require_user_key);
        assert!(!format!("{s:?}").contains("gsk-secret-value"), "keys never print");
    }

    #[test]
    fn short_organizer_tokens_are_refused_with_a_recipe() {
        let problem = settings(&[("ORGANIZER_TOKEN", "ab")]).unwrap_err();
        assert!(
            problem.contains("ORGANIZER_TOKEN is too short") && problem.contains("openssl rand -hex 16"),
            "{problem}"
        );
        assert!(settings(&[("ORGANIZER_TOKEN", "0123456789abcdef")]).is_ok());
    }

    #[test]
    fn hygiene_settings_parse() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.header_timeout, s.max_connections, s.max_live_viewers), (Duration::from_secs(10), 0, 5_000));
        assert!(s.public_url.is_none() && s.trusted_proxies.is_empty());
        let s = settings(&[
            ("MOA_PUBLIC_URL", "https://moa.example.org/"),
            ("MOA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1"),
        ])
        .unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://moa.example.org"));
        let proxies = &s.trusted_proxies;
        assert!(proxies[0].contains("127.0.0.1".parse().unwrap()));
        assert!(!proxies[0].contains("127.0.0.2".parse().unwrap()));
        assert!(proxies[1].contains("10.200.3.4".parse().unwrap()));
        assert!(proxies[1].contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(proxies[2].contains("::1".parse().unwrap()));
        assert!(settings(&[("MOA_TRUSTED_PROXIES", "proxy.local")]).unwrap_err().contains("MOA_TRUSTED_PROXIES"));
        assert!(settings(&[("MOA_TRUSTED_PROXIES", "10.0.0.0/33")]).is_err());
    }

    #[test]
    fn operability_settings_parse() {
        let s = settings(&[]).unwrap();
        assert!(s.metrics_enabled && s.metrics_token.is_none());
        assert_eq!(s.log_format, LogFormat::Text);
        let s = settings(&[
            ("MOA_METRICS", "off"),
            ("MOA_METRICS_TOKEN", "m3tr1cs-t0ken-0123"),
            ("MOA_LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        assert!(!s.metrics_enabled);
        assert_eq!(s.metrics_token.as_ref().unwrap().expose(), "m3tr1cs-t0ken-0123");
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(!format!("{s:?}").contains("m3tr1cs"), "the token never prints");
        let bad = settings(&[("MOA_LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(bad, "MOA_LOG_FORMAT must be text or json, not \"xml\"");
        assert!(settings(&[("MOA_METRICS_TOKEN", "short")]).unwrap_err().starts_with("MOA_METRICS_TOKEN is too short"));
        assert!(settings(&[("MOA_METRICS", "maybe")]).unwrap_err().contains("MOA_METRICS"));
    }

    #[test]
    fn bad_provider_settings_get_clear_errors() {
        let local = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("MOA_PROVIDERS", "local"),
                ("MOA_PROVIDER_LOCAL_BASE_URL", "http://127.0.0.1:11434/v1"),
                ("MOA_PROVIDER_LOCAL_MODELS", "llama3.2:8192"),
            ];
            vars.extend_from_slice(extra);
            settings(&vars).map(|_| ()).unwrap_err()
        };
        assert!(local(&[("MOA_PROVIDER_LOCAL_BASE_URL", "localhost:11434")]).contains("MOA_PROVIDER_LOCAL_BASE_URL"));
        assert!(local(&[("MOA_PROVIDER_LOCAL_MODELS", "llama3.2")]).contains("MOA_PROVIDER_LOCAL_MODELS"));
        assert!(local(&[("MOA_PROVIDER_LOCAL_DISCOVER", "maybe")]).contains("true or false"));
        assert!(local(&[("MOA_PROVIDERS", "local,local")]).contains("repeated"));
        assert!(local(&[("MOA_PROVIDERS", "default")]).contains("taken by the default provider"));
        assert!(local(&[("MOA_PROVIDERS", "my-local")]).contains("not a usable provider name"));
        let missing = settings(&[("MOA_PROVIDERS", "local")]).unwrap_err();
        assert!(missing.contains("MOA_PROVIDER_LOCAL_BASE_URL must be set"), "{missing}");
        assert!(settings(&[("MOA_REQUIRE_USER_KEY", "please")]).unwrap_err().contains("MOA_REQUIRE_USER_KEY"));
    }
}
