//! [`StripeClient`]: the entry point, cheap to clone, one per secret key.

use http::{HeaderValue, header};
use ratewise_core::options::{ClientBuilder, ClientOptions};
use ratewise_core::secret::Secret;
use ratewise_core::upstream::{ConfigError, Upstream};

use crate::customers::Customers;
use crate::headers::STRIPE_VERSION;
use crate::limits::StripeLimits;
use crate::payment_intents::PaymentIntents;
use crate::provider::StripeProvider;
use crate::refunds::Refunds;

/// Stripe's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// The API version requests are pinned to by default: the version the models of this crate
/// follow (Stripe's OpenAPI spec 2023-08-16). Pinning keeps an account's default version, set
/// in the Dashboard, from changing response shapes under a deployed client.
pub const DEFAULT_API_VERSION: &str = "2023-08-16";

/// The environment variable [`StripeClient::from_env`] reads: `STRIPE_SECRET_KEY`.
pub const SECRET_KEY_ENV: &str = "STRIPE_SECRET_KEY";

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `STRIPE_SECRET_KEY` is not set (or is empty, or not UTF-8).
    #[error("STRIPE_SECRET_KEY is not set: pass the secret key to StripeClient::new")]
    MissingKey,
    /// The key, version or account contains characters a header cannot carry.
    #[error("the {0} is not a valid header value")]
    InvalidHeader(&'static str),
    /// The pipeline refused its configuration (a bad base URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A Stripe client: typed resources over the ratewise pipeline.
///
/// Cheap to clone (an `Arc` inside); clones share the limiters, breaker, retry budget and
/// counters, so build one per secret key and clone it everywhere. Every POST carries an
/// `Idempotency-Key`, minted once per logical call unless supplied, and sent on every retry.
/// The key never appears in `Debug` output.
///
/// ```
/// use ratewise_stripe::StripeClient;
///
/// let client = StripeClient::builder("sk_test_123")
///     .account("acct_1032D82eZvKYlo2C")
///     .build()
///     .unwrap();
/// let _intents = client.payment_intents();
/// assert!(!format!("{client:?}").contains("123"));
/// ```
#[derive(Clone)]
pub struct StripeClient {
    upstream: Upstream<StripeProvider>,
    key: Secret,
    account: Option<HeaderValue>,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("key", &self.key)
            .field("account", &self.account)
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl StripeClient {
    /// A client for `secret_key` with every default (see [`StripeClientBuilder`]).
    pub fn new(secret_key: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::builder(secret_key).build()
    }

    /// A client for the key in `STRIPE_SECRET_KEY`, with every default.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::builder_from_env()?.build()
    }

    /// A builder for the key in `STRIPE_SECRET_KEY`.
    pub fn builder_from_env() -> Result<StripeClientBuilder, ClientError> {
        match std::env::var(SECRET_KEY_ENV) {
            Ok(key) if !key.trim().is_empty() => Ok(Self::builder(key.trim().to_owned())),
            _ => Err(ClientError::MissingKey),
        }
    }

    /// A builder for `secret_key` (`sk_live_…`, `sk_test_…`, or a restricted `rk_…` key).
    pub fn builder(secret_key: impl Into<Secret>) -> StripeClientBuilder {
        StripeClientBuilder::new(secret_key.into())
    }

    /// This client acting for the connected account `account` (Connect's `Stripe-Account`),
    /// sharing everything else.
    pub fn with_account(&self, account: &str) -> Result<Self, ClientError> {
        let value =
            HeaderValue::from_str(account).map_err(|_| ClientError::InvalidHeader("account"))?;
        Ok(Self {
            account: Some(value),
            ..self.clone()
        })
    }

    /// PaymentIntents: create, retrieve, confirm, cancel, list.
    pub fn payment_intents(&self) -> PaymentIntents {
        PaymentIntents::new(self.clone())
    }

    /// Customers: create, retrieve, update, list.
    pub fn customers(&self) -> Customers {
        Customers::new(self.clone())
    }

    /// Refunds: create, retrieve.
    pub fn refunds(&self) -> Refunds {
        Refunds::new(self.clone())
    }

    /// The pipeline (for its stats, breaker and limiters).
    pub fn upstream(&self) -> &Upstream<StripeProvider> {
        &self.upstream
    }

    pub(crate) fn account(&self) -> Option<&HeaderValue> {
        self.account.as_ref()
    }
}

/// Builds a [`StripeClient`]: the secret key is required, everything else has a default.
///
/// Defaults: base URL [`DEFAULT_BASE_URL`]; `Stripe-Version` [`DEFAULT_API_VERSION`]; no
/// `Stripe-Account`; the limits of the key's mode ([`StripeLimits::for_key`]: 100/s live,
/// 25/s sandbox, 25/s per endpoint); the core's `CallPolicy` (4 attempts, full-jitter
/// backoff from 200 ms); the reqwest transport and tokio's clock. The pipeline settings every
/// client shares (base URL, policy, transport, clock, breaker, extra limiters, retry budget,
/// seed) are the provided methods of [`ClientBuilder`] (re-exported by this crate).
pub struct StripeClientBuilder {
    key: Secret,
    api_version: Option<String>,
    account: Option<String>,
    limits: Option<StripeLimits>,
    provider: Option<StripeProvider>,
    options: ClientOptions,
}

impl std::fmt::Debug for StripeClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClientBuilder")
            .field("key", &self.key)
            .field("api_version", &self.api_version)
            .field("account", &self.account)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder for StripeClientBuilder {
    fn options(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl StripeClientBuilder {
    fn new(key: Secret) -> Self {
        Self {
            key,
            api_version: Some(DEFAULT_API_VERSION.to_owned()),
            account: None,
            limits: None,
            provider: None,
            options: ClientOptions::new(),
        }
    }

    /// Pins requests to `version` (default [`DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// Sends no `Stripe-Version`: the account's default version applies.
    pub fn account_default_version(mut self) -> Self {
        self.api_version = None;
        self
    }

    /// Acts for the connected account `account` (`Stripe-Account`, Connect).
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Other limits than the documented ones for the key's mode.
    pub fn limits(mut self, limits: StripeLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// A provider configured beyond its limits (e.g. another throttle pause); replaces
    /// [`limits`](Self::limits).
    pub fn provider(mut self, provider: StripeProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<StripeClient, ClientError> {
        let provider = match (self.provider, self.limits) {
            (Some(provider), _) => provider,
            (None, Some(limits)) => StripeProvider::new(limits),
            (None, None) => StripeProvider::for_key(self.key.expose()),
        };
        let auth = self
            .key
            .header_value("Bearer ")
            .ok_or(ClientError::InvalidHeader("secret key"))?;
        let mut builder = self
            .options
            .upstream(provider, DEFAULT_BASE_URL)
            .secret_header(header::AUTHORIZATION, auth)
            .redact(self.key.clone())
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("ratewise-stripe/", env!("CARGO_PKG_VERSION"))),
            );
        if let Some(version) = &self.api_version {
            let value = HeaderValue::from_str(version)
                .map_err(|_| ClientError::InvalidHeader("API version"))?;
            builder = builder.header(STRIPE_VERSION, value);
        }
        let account = self
            .account
            .map(|a| HeaderValue::from_str(&a).map_err(|_| ClientError::InvalidHeader("account")))
            .transpose()?;
        Ok(StripeClient {
            upstream: builder.build()?,
            key: self.key,
            account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted_from_debug() {
        let client = StripeClient::new("sk_test_verysecret").unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("verysecret"), "{text}");
        let builder = StripeClient::builder("sk_live_verysecret");
        assert!(!format!("{builder:?}").contains("verysecret"));
    }

    #[test]
    fn the_mode_of_the_key_picks_the_limits() {
        let live = StripeClient::new("sk_live_x").unwrap();
        assert_eq!(
            live.upstream().provider().limits().global,
            ratewise_core::limit::Rate::per_second(100)
        );
        let test = StripeClient::new("rk_test_x").unwrap();
        assert_eq!(
            test.upstream().provider().limits().global,
            ratewise_core::limit::Rate::per_second(25)
        );
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        assert!(matches!(
            StripeClient::new("sk_test_\nx"),
            Err(ClientError::InvalidHeader("secret key"))
        ));
        assert!(matches!(
            StripeClient::builder("sk_test_x")
                .base_url("not a url")
                .build(),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            StripeClient::new("sk_test_x")
                .unwrap()
                .with_account("acct\n"),
            Err(ClientError::InvalidHeader("account"))
        ));
    }
}
