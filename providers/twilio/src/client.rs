//! [`TwilioClient`]: the entry point, cheap to clone, one per account credential.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, header};
use ratewise_core::dedupe::{DEFAULT_DEDUPE_TTL, DedupeStore};
use ratewise_core::options::{ClientBuilder, ClientOptions};
use ratewise_core::secret::Secret;
use ratewise_core::upstream::{ConfigError, Upstream};

use crate::calls::Calls;
use crate::limits::TwilioLimits;
use crate::messages::Messages;
use crate::provider::TwilioProvider;

/// Twilio's API host (region `us1`, default edge).
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// `TWILIO_ACCOUNT_SID`: the account (`AC…`), read by [`TwilioClient::from_env`].
pub const ACCOUNT_SID_ENV: &str = "TWILIO_ACCOUNT_SID";
/// `TWILIO_AUTH_TOKEN`: the account's auth token.
pub const AUTH_TOKEN_ENV: &str = "TWILIO_AUTH_TOKEN";
/// `TWILIO_API_KEY`: an API key SID (`SK…`), used with [`API_SECRET_ENV`] instead of the token.
pub const API_KEY_ENV: &str = "TWILIO_API_KEY";
/// `TWILIO_API_SECRET`: the API key's secret.
pub const API_SECRET_ENV: &str = "TWILIO_API_SECRET";
/// `TWILIO_REGION`: the region (`au1`, `ie1`, …), optional.
pub const REGION_ENV: &str = "TWILIO_REGION";
/// `TWILIO_EDGE`: the edge location (`sydney`, `dublin`, …), optional.
pub const EDGE_ENV: &str = "TWILIO_EDGE";

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A required environment variable is not set (or empty, or not UTF-8).
    #[error(
        "{0} is not set: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET), or pass credentials to TwilioClient::builder"
    )]
    MissingEnv(&'static str),
    /// A credential or setting contains characters a header or URL cannot carry.
    #[error("the {0} is not valid in a header or URL")]
    Invalid(&'static str),
    /// The pipeline refused its configuration (a bad base URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// How requests authenticate (HTTP basic auth).
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// The account SID and its auth token.
    AuthToken {
        /// The account (`AC…`).
        account_sid: String,
        /// The auth token.
        token: Secret,
    },
    /// An API key (`SK…`) and its secret, acting for `account_sid`.
    ApiKey {
        /// The account (`AC…`) the key belongs to.
        account_sid: String,
        /// The API key SID (`SK…`).
        key_sid: String,
        /// The key's secret.
        secret: Secret,
    },
}

impl Credentials {
    /// The account SID and auth token.
    pub fn auth_token(account_sid: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self::AuthToken {
            account_sid: account_sid.into(),
            token: token.into(),
        }
    }

    /// An API key SID and secret for `account_sid`.
    pub fn api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        secret: impl Into<Secret>,
    ) -> Self {
        Self::ApiKey {
            account_sid: account_sid.into(),
            key_sid: key_sid.into(),
            secret: secret.into(),
        }
    }

    /// The account requests are made for.
    pub fn account_sid(&self) -> &str {
        match self {
            Self::AuthToken { account_sid, .. } | Self::ApiKey { account_sid, .. } => account_sid,
        }
    }

    /// What to scrub from error bodies: the token or secret, and the encoded header credential
    /// (a server echoing `Authorization` back would echo that form).
    fn redactions(&self, header: &HeaderValue) -> Vec<Secret> {
        let password = match self {
            Self::AuthToken { token, .. } => token.clone(),
            Self::ApiKey { secret, .. } => secret.clone(),
        };
        let encoded = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic "))
            .map(Secret::from);
        std::iter::once(password).chain(encoded).collect()
    }

    /// `Basic base64(user:password)`, marked sensitive.
    fn header(&self) -> Option<HeaderValue> {
        let (user, password) = match self {
            Self::AuthToken {
                account_sid, token, ..
            } => (account_sid.as_str(), token.expose()),
            Self::ApiKey {
                key_sid, secret, ..
            } => (key_sid.as_str(), secret.expose()),
        };
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AuthToken { account_sid, token } => f
                .debug_struct("AuthToken")
                .field("account_sid", account_sid)
                .field("token", token)
                .finish(),
            Self::ApiKey {
                account_sid,
                key_sid,
                secret,
            } => f
                .debug_struct("ApiKey")
                .field("account_sid", account_sid)
                .field("key_sid", key_sid)
                .field("secret", secret)
                .finish(),
        }
    }
}

/// The host for a region and edge, as Twilio's SDKs build it: `api.{edge}.{region}.twilio.com`;
/// an edge without a region means region `us1`; a region without an edge is
/// `api.{region}.twilio.com`.
pub fn regional_base_url(region: Option<&str>, edge: Option<&str>) -> String {
    match (edge, region) {
        (None, None) => DEFAULT_BASE_URL.to_owned(),
        (Some(edge), region) => {
            format!("https://api.{edge}.{}.twilio.com", region.unwrap_or("us1"))
        }
        (None, Some(region)) => format!("https://api.{region}.twilio.com"),
    }
}

/// A Twilio client: typed resources over the ratewise pipeline.
///
/// Cheap to clone (an `Arc` inside); clones share the limiters (account concurrency, one bucket
/// per sender), breaker, retry budget, counters and dedupe store, so build one per account and
/// clone it everywhere. Credentials never appear in `Debug` output.
///
/// ```
/// use ratewise_twilio::TwilioClient;
///
/// let client = TwilioClient::builder("AC123", "auth-token-secret")
///     .region("au1")
///     .edge("sydney")
///     .build()
///     .unwrap();
/// let _messages = client.messages();
/// assert!(!format!("{client:?}").contains("auth-token-secret"));
/// ```
#[derive(Clone)]
pub struct TwilioClient {
    upstream: Upstream<TwilioProvider>,
    credentials: Credentials,
    dedupe: Option<Arc<dyn DedupeStore>>,
    dedupe_ttl: Duration,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("credentials", &self.credentials)
            .field("dedupe", &self.dedupe.is_some())
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl TwilioClient {
    /// A client for `account_sid` and its auth token, with every default.
    pub fn new(
        account_sid: impl Into<String>,
        token: impl Into<Secret>,
    ) -> Result<Self, ClientError> {
        Self::builder(account_sid, token).build()
    }

    /// A client from the environment (see [`TwilioClient::builder_from_env`]).
    pub fn from_env() -> Result<Self, ClientError> {
        Self::builder_from_env()?.build()
    }

    /// A builder from the environment: `TWILIO_ACCOUNT_SID` with `TWILIO_AUTH_TOKEN`, or with
    /// `TWILIO_API_KEY` and `TWILIO_API_SECRET` (preferred when both are set); `TWILIO_REGION`
    /// and `TWILIO_EDGE` when set.
    pub fn builder_from_env() -> Result<TwilioClientBuilder, ClientError> {
        fn var(name: &'static str) -> Option<String> {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        }
        let account = var(ACCOUNT_SID_ENV).ok_or(ClientError::MissingEnv(ACCOUNT_SID_ENV))?;
        let credentials = match (var(API_KEY_ENV), var(API_SECRET_ENV)) {
            (Some(key), Some(secret)) => Credentials::api_key(account, key, secret),
            _ => Credentials::auth_token(
                account,
                var(AUTH_TOKEN_ENV).ok_or(ClientError::MissingEnv(AUTH_TOKEN_ENV))?,
            ),
        };
        let mut builder = TwilioClientBuilder::new(credentials);
        builder.region = var(REGION_ENV);
        builder.edge = var(EDGE_ENV);
        Ok(builder)
    }

    /// A builder for `account_sid` and its auth token.
    pub fn builder(
        account_sid: impl Into<String>,
        token: impl Into<Secret>,
    ) -> TwilioClientBuilder {
        TwilioClientBuilder::new(Credentials::auth_token(account_sid, token))
    }

    /// A builder for any [`Credentials`] (an API key and secret).
    pub fn builder_with(credentials: Credentials) -> TwilioClientBuilder {
        TwilioClientBuilder::new(credentials)
    }

    /// Messages: create, fetch, list.
    pub fn messages(&self) -> Messages {
        Messages::new(self.clone())
    }

    /// Calls: create, fetch.
    pub fn calls(&self) -> Calls {
        Calls::new(self.clone())
    }

    /// The account requests are made for.
    pub fn account_sid(&self) -> &str {
        self.credentials.account_sid()
    }

    /// The pipeline (for its stats, breaker and limiters).
    pub fn upstream(&self) -> &Upstream<TwilioProvider> {
        &self.upstream
    }

    /// The last `Twilio-Concurrent-Requests` value Twilio sent, if any.
    pub fn concurrent_requests(&self) -> Option<u64> {
        self.upstream.provider().concurrent_requests()
    }

    pub(crate) fn dedupe(&self) -> Option<(&Arc<dyn DedupeStore>, Duration)> {
        self.dedupe.as_ref().map(|store| (store, self.dedupe_ttl))
    }

    /// `/2010-04-01/Accounts/{AccountSid}/{rest}`.
    pub(crate) fn account_path(&self, rest: &str) -> String {
        format!(
            "/2010-04-01/Accounts/{}/{rest}",
            crate::form::path_segment(self.account_sid())
        )
    }
}

/// Builds a [`TwilioClient`]: the credentials are required, everything else has a default.
///
/// Defaults: base URL [`DEFAULT_BASE_URL`] (or the [region and edge](Self::region) host); the
/// limits of [`TwilioLimits::new`] (100 requests in flight, each sender at its type's rate); no
/// dedupe store; the core's `CallPolicy` (4 attempts, full-jitter backoff from 200 ms, at most
/// 30 s waiting for the limiters: raise `max_wait` for batch sends on slow senders); the
/// reqwest transport and tokio's clock. The shared pipeline settings are the provided methods of
/// [`ClientBuilder`] (re-exported by this crate).
pub struct TwilioClientBuilder {
    credentials: Credentials,
    region: Option<String>,
    edge: Option<String>,
    limits: Option<TwilioLimits>,
    provider: Option<TwilioProvider>,
    dedupe: Option<Arc<dyn DedupeStore>>,
    dedupe_ttl: Duration,
    options: ClientOptions,
}

impl std::fmt::Debug for TwilioClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClientBuilder")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("edge", &self.edge)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder for TwilioClientBuilder {
    fn options(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl TwilioClientBuilder {
    fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            region: None,
            edge: None,
            limits: None,
            provider: None,
            dedupe: None,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            options: ClientOptions::new(),
        }
    }

    /// The region (`au1`, `ie1`, `jp1`, …); ignored when a base URL is set.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The edge location (`sydney`, `dublin`, `tokyo`, …); ignored when a base URL is set.
    pub fn edge(mut self, edge: impl Into<String>) -> Self {
        self.edge = Some(edge.into());
        self
    }

    /// Other limits than the documented defaults (concurrency, sender types and rates).
    pub fn limits(mut self, limits: TwilioLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// A provider configured beyond its limits (another 21611 park); replaces
    /// [`limits`](Self::limits).
    pub fn provider(mut self, provider: TwilioProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Deduplicates creates that carry a caller-supplied idempotency key through `store`
    /// (a `MemoryDedupe`, or a Redis-backed store shared by every worker): a queue redelivering
    /// a job never sends its message twice.
    pub fn dedupe(mut self, store: Arc<dyn DedupeStore>) -> Self {
        self.dedupe = Some(store);
        self
    }

    /// How long a dedupe claim or record is kept (default 24 h).
    pub fn dedupe_ttl(mut self, ttl: Duration) -> Self {
        self.dedupe_ttl = ttl;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<TwilioClient, ClientError> {
        let provider = match (self.provider, self.limits) {
            (Some(provider), _) => provider,
            (None, Some(limits)) => TwilioProvider::new(limits),
            (None, None) => TwilioProvider::default(),
        };
        let host_ok = |part: &Option<String>| {
            part.as_deref().is_none_or(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        };
        if !host_ok(&self.region) {
            return Err(ClientError::Invalid("region"));
        }
        if !host_ok(&self.edge) {
            return Err(ClientError::Invalid("edge"));
        }
        if self.credentials.account_sid().is_empty() {
            return Err(ClientError::Invalid("account SID"));
        }
        let auth = self
            .credentials
            .header()
            .ok_or(ClientError::Invalid("credentials"))?;
        let default_base = regional_base_url(self.region.as_deref(), self.edge.as_deref());
        let redactions = self.credentials.redactions(&auth);
        let upstream = redactions
            .into_iter()
            .fold(self.options.upstream(provider, &default_base), |b, s| {
                b.redact(s)
            })
            .secret_header(header::AUTHORIZATION, auth)
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("ratewise-twilio/", env!("CARGO_PKG_VERSION"))),
            )
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .build()?;
        Ok(TwilioClient {
            upstream,
            credentials: self.credentials,
            dedupe: self.dedupe,
            dedupe_ttl: self.dedupe_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_from_debug() {
        let client = TwilioClient::new("AC1", "verysecret").unwrap();
        assert!(!format!("{client:?}").contains("verysecret"));
        let builder = TwilioClient::builder_with(Credentials::api_key("AC1", "SK1", "keysecret"));
        assert!(!format!("{builder:?}").contains("keysecret"));
    }

    #[test]
    fn basic_auth_uses_the_account_or_the_api_key() {
        let token = Credentials::auth_token("AC1", "tok").header().unwrap();
        assert!(token.is_sensitive());
        assert_eq!(token.to_str().unwrap(), "Basic QUMxOnRvaw==");
        let key = Credentials::api_key("AC1", "SK1", "sec").header().unwrap();
        assert_eq!(key.to_str().unwrap(), "Basic U0sxOnNlYw==");
    }

    #[test]
    fn region_and_edge_build_the_host_as_the_sdks_do() {
        assert_eq!(regional_base_url(None, None), "https://api.twilio.com");
        assert_eq!(
            regional_base_url(Some("au1"), Some("sydney")),
            "https://api.sydney.au1.twilio.com"
        );
        assert_eq!(
            regional_base_url(None, Some("dublin")),
            "https://api.dublin.us1.twilio.com"
        );
        assert_eq!(
            regional_base_url(Some("ie1"), None),
            "https://api.ie1.twilio.com"
        );
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        assert!(matches!(
            TwilioClient::builder("AC1", "t").region("au1/../x").build(),
            Err(ClientError::Invalid("region"))
        ));
        assert!(matches!(
            TwilioClient::new("", "t"),
            Err(ClientError::Invalid("account SID"))
        ));
        assert!(matches!(
            TwilioClient::builder("AC1", "t")
                .base_url("not a url")
                .build(),
            Err(ClientError::Config(_))
        ));
        assert!(
            TwilioClient::new("AC1", "bad\ntoken").is_ok(),
            "base64 carries any token"
        );
        assert_eq!(
            TwilioClient::new("AC 1", "t")
                .unwrap()
                .account_path("Messages.json"),
            "/2010-04-01/Accounts/AC%201/Messages.json"
        );
    }
}
