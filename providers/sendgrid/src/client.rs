//! [`SendGridClient`]: the entry point, cheap to clone, one per API key.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, header};
use ratewise_core::dedupe::{DEFAULT_DEDUPE_TTL, DedupeStore};
use ratewise_core::options::{ClientBuilder, ClientOptions};
use ratewise_core::secret::Secret;
use ratewise_core::upstream::{CallPolicy, ConfigError, Upstream};

use crate::campaign::Campaign;
use crate::limits::SendGridLimits;
use crate::mail::{Mail, Personalization};
use crate::provider::SendGridProvider;
use crate::send::SendMail;

/// SendGrid's API host for global users and subusers.
pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com";

/// SendGrid's API host for EU regional subusers (data residency).
pub const EU_BASE_URL: &str = "https://api.eu.sendgrid.com";

/// The environment variable [`SendGridClient::from_env`] reads: `SENDGRID_API_KEY`.
pub const API_KEY_ENV: &str = "SENDGRID_API_KEY";

/// Where the account's data lives: which API host to call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// `api.sendgrid.com` (the default).
    #[default]
    Global,
    /// `api.eu.sendgrid.com`, for EU regional subusers.
    Eu,
}

impl Region {
    /// The API host of this region.
    pub const fn base_url(&self) -> &'static str {
        match self {
            Self::Global => DEFAULT_BASE_URL,
            Self::Eu => EU_BASE_URL,
        }
    }
}

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `SENDGRID_API_KEY` is not set (or is empty, or not UTF-8).
    #[error("SENDGRID_API_KEY is not set: pass the API key to SendGridClient::new")]
    MissingKey,
    /// The key contains characters a header cannot carry.
    #[error("the API key is not a valid header value")]
    InvalidKey,
    /// The pipeline refused its configuration (a bad base URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A SendGrid client: validated mail sends over the ratewise pipeline.
///
/// Cheap to clone (an `Arc` inside); clones share the limiters, breaker, retry budget,
/// counters and dedupe store, so build one per API key and clone it everywhere. The key never
/// appears in `Debug` output.
///
/// ```
/// use ratewise_sendgrid::{ClientBuilder, Region, SendGridClient};
///
/// let client = SendGridClient::builder("SG.secret").region(Region::Eu).build().unwrap();
/// assert!(!format!("{client:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct SendGridClient {
    upstream: Upstream<SendGridProvider>,
    key: Secret,
    dedupe: Option<Arc<dyn DedupeStore>>,
    dedupe_ttl: Duration,
}

impl std::fmt::Debug for SendGridClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGridClient")
            .field("key", &self.key)
            .field("dedupe", &self.dedupe.is_some())
            .field("dedupe_ttl", &self.dedupe_ttl)
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl SendGridClient {
    /// A client for `api_key` with every default (see [`SendGridClientBuilder`]).
    pub fn new(api_key: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::builder(api_key).build()
    }

    /// A client for the key in `SENDGRID_API_KEY`, with every default.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::builder_from_env()?.build()
    }

    /// A builder for the key in `SENDGRID_API_KEY`.
    pub fn builder_from_env() -> Result<SendGridClientBuilder, ClientError> {
        match std::env::var(API_KEY_ENV) {
            Ok(key) if !key.trim().is_empty() => Ok(Self::builder(key.trim().to_owned())),
            _ => Err(ClientError::MissingKey),
        }
    }

    /// A builder for `api_key` (`SG.…`).
    pub fn builder(api_key: impl Into<Secret>) -> SendGridClientBuilder {
        SendGridClientBuilder::new(api_key.into())
    }

    /// `POST /v3/mail/send` of `mail`: checked, then sent with `.send()`.
    pub fn send_mail(&self, mail: Mail) -> SendMail {
        SendMail::new(self.clone(), mail)
    }

    /// A campaign: `template` sent to every envelope of `recipients`, split into requests SendGrid
    /// accepts, each with an idempotency key derived from `campaign_id` and its batch number.
    pub fn campaign(
        &self,
        campaign_id: impl Into<String>,
        template: Mail,
        recipients: Vec<Personalization>,
    ) -> Campaign {
        Campaign::new(self.clone(), campaign_id.into(), template, recipients)
    }

    /// This client running calls with `policy` (a campaign that waits minutes for the
    /// endpoint's window beside interactive sends that fail fast), sharing everything else.
    pub fn with_policy(&self, policy: CallPolicy) -> Self {
        Self {
            upstream: self.upstream.with_policy(policy),
            ..self.clone()
        }
    }

    /// The pipeline (for its stats, breaker and limiters).
    pub fn upstream(&self) -> &Upstream<SendGridProvider> {
        &self.upstream
    }

    pub(crate) fn dedupe(&self) -> Option<&Arc<dyn DedupeStore>> {
        self.dedupe.as_ref()
    }

    pub(crate) fn dedupe_ttl(&self) -> Duration {
        self.dedupe_ttl
    }
}

/// Builds a [`SendGridClient`]: the API key is required, everything else has a default.
///
/// Defaults: [`Region::Global`] ([`DEFAULT_BASE_URL`]); the configured budgets of
/// [`SendGridLimits::new`] (10 requests per second per endpoint, burst 10) under the
/// header-driven pacer; no retry of ambiguous failures; no dedupe store (a queue that may
/// redeliver should set one, see [`dedupe`](Self::dedupe)), and claims kept 24 h when one is
/// set; the core's `CallPolicy` (4 attempts, full-jitter backoff from 200 ms, hints obeyed up to
/// 120 s); the reqwest transport and tokio's clock. The shared pipeline settings (base URL,
/// policy, transport, clock, breaker, extra limiters, retry budget, seed) are the provided
/// methods of [`ClientBuilder`] (re-exported by this crate); an explicit base URL wins over
/// the region.
pub struct SendGridClientBuilder {
    key: Secret,
    region: Region,
    provider: SendGridProvider,
    dedupe: Option<Arc<dyn DedupeStore>>,
    dedupe_ttl: Duration,
    options: ClientOptions,
}

impl std::fmt::Debug for SendGridClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGridClientBuilder")
            .field("key", &self.key)
            .field("region", &self.region)
            .field("provider", &self.provider)
            .field("dedupe", &self.dedupe.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder for SendGridClientBuilder {
    fn options(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl SendGridClientBuilder {
    fn new(key: Secret) -> Self {
        Self {
            key,
            region: Region::Global,
            provider: SendGridProvider::default(),
            dedupe: None,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            options: ClientOptions::new(),
        }
    }

    /// The data-residency region (default [`Region::Global`]); `Region::Eu` calls
    /// `api.eu.sendgrid.com`.
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Other configured budgets than the defaults, with the provider's other settings at
    /// their defaults (use [`provider`](Self::provider) to set both).
    pub fn limits(mut self, limits: SendGridLimits) -> Self {
        self.provider = SendGridProvider::new(limits);
        self
    }

    /// A provider configured beyond its limits (throttle pause, retry of ambiguous failures);
    /// replaces [`limits`](Self::limits).
    pub fn provider(mut self, provider: SendGridProvider) -> Self {
        self.provider = provider;
        self
    }

    /// Claims every send's idempotency key in `store` before sending, so a send that already
    /// happened (a queue redelivered the job) is not sent again, and one whose outcome is
    /// unknown is refused rather than risked. Default: none. `MemoryDedupe` covers one process;
    /// a Redis-backed store (core feature `redis`) covers every worker.
    pub fn dedupe(mut self, store: Arc<dyn DedupeStore>) -> Self {
        self.dedupe = Some(store);
        self
    }

    /// How long claims and records are kept (default 24 h, `DEFAULT_DEDUPE_TTL`).
    pub fn dedupe_ttl(mut self, ttl: Duration) -> Self {
        self.dedupe_ttl = ttl;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<SendGridClient, ClientError> {
        let auth = self
            .key
            .header_value("Bearer ")
            .ok_or(ClientError::InvalidKey)?;
        let upstream = self
            .options
            .upstream(self.provider, self.region.base_url())
            .secret_header(header::AUTHORIZATION, auth)
            .redact(self.key.clone())
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("ratewise-sendgrid/", env!("CARGO_PKG_VERSION"))),
            )
            .build()?;
        Ok(SendGridClient {
            upstream,
            key: self.key,
            dedupe: self.dedupe,
            dedupe_ttl: self.dedupe_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted_from_debug() {
        let client = SendGridClient::new("SG.verysecret").unwrap();
        assert!(!format!("{client:?}").contains("verysecret"));
        let builder = SendGridClient::builder("SG.verysecret");
        assert!(!format!("{builder:?}").contains("verysecret"));
    }

    #[test]
    fn the_region_picks_the_host_and_an_explicit_base_url_wins() {
        assert_eq!(Region::default().base_url(), "https://api.sendgrid.com");
        assert_eq!(Region::Eu.base_url(), "https://api.eu.sendgrid.com");
        let eu = SendGridClient::builder("SG.x")
            .region(Region::Eu)
            .build()
            .unwrap();
        assert!(format!("{:?}", eu.upstream()).contains("api.eu.sendgrid.com"));
        let proxy = SendGridClient::builder("SG.x")
            .region(Region::Eu)
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        assert!(format!("{:?}", proxy.upstream()).contains("127.0.0.1:9"));
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        assert!(matches!(
            SendGridClient::new("SG.\nx"),
            Err(ClientError::InvalidKey)
        ));
        assert!(matches!(
            SendGridClient::builder("SG.x")
                .base_url("not a url")
                .build(),
            Err(ClientError::Config(_))
        ));
    }
}
