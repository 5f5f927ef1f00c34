//! What every provider client's builder accepts beyond its credentials and dialect.
//!
//! Each provider crate (`StripeClient::builder`, `OpenAiClient::builder`, …) owns a
//! [`ClientOptions`] and implements [`ClientBuilder`] by handing it out; the trait's provided
//! methods are the shared setters (base URL, call policy, transport, clock, breaker, extra
//! limiters, retry budget, seed), so every client configures the pipeline the same way and no
//! crate repeats them. At build time [`ClientOptions::upstream`] turns them into an
//! [`UpstreamBuilder`] to which the crate adds its headers.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_core::limit::{GcraLimiter, Rate};
//! use ratewise_core::options::{ClientBuilder, ClientOptions};
//! use ratewise_core::upstream::CallPolicy;
//!
//! struct MyBuilder { options: ClientOptions }
//! impl ClientBuilder for MyBuilder {
//!     fn options(&mut self) -> &mut ClientOptions { &mut self.options }
//! }
//!
//! let builder = MyBuilder { options: ClientOptions::new() }
//!     .base_url("http://127.0.0.1:8080")
//!     .policy(CallPolicy::new().max_attempts(6))
//!     .limiter(Arc::new(GcraLimiter::new(Rate::per_second(10))));
//! assert_eq!(builder.options.base_url.as_deref(), Some("http://127.0.0.1:8080"));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::breaker::BreakerConfig;
use crate::budget::RetryBudget;
use crate::clock::SharedClock;
use crate::limit::Limiter;
use crate::provider::Provider;
use crate::transport::Transport;
use crate::upstream::{CallPolicy, UpstreamBuilder};

/// The pipeline settings a client builder accepts; every field has a documented default.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Another base URL (a proxy, an enterprise host, a simulator); default: the provider's.
    pub base_url: Option<String>,
    /// The call policy; default [`CallPolicy::new`].
    pub policy: Option<CallPolicy>,
    /// The transport; default the reqwest transport.
    pub transport: Option<Arc<dyn Transport>>,
    /// The clock; default tokio's.
    pub clock: Option<SharedClock>,
    /// The breaker; default [`BreakerConfig::new`] named after the provider.
    pub breaker: Option<BreakerConfig>,
    /// Limiters enforced in addition to the provider's (a process-wide or Redis-shared budget).
    pub limiters: Vec<Arc<dyn Limiter>>,
    /// The retry budget; default 20 % of calls plus 10/s.
    pub budget: Option<RetryBudget>,
    /// Seeds the backoff jitter, for reproducible runs; default random.
    pub seed: Option<u64>,
}

impl ClientOptions {
    /// Every setting at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The clock these options name, if any (provider limiters must run on the same one).
    pub fn clock(&self) -> Option<&SharedClock> {
        self.clock.as_ref()
    }

    /// An [`UpstreamBuilder`] for `provider` with these options applied, at the configured base
    /// URL or else `default_base_url`.
    pub fn upstream<P: Provider>(self, provider: P, default_base_url: &str) -> UpstreamBuilder<P> {
        let base_url = self.base_url.unwrap_or_else(|| default_base_url.to_owned());
        let mut builder = UpstreamBuilder::new(provider, base_url);
        if let Some(policy) = self.policy {
            builder = builder.policy(policy);
        }
        if let Some(transport) = self.transport {
            builder = builder.transport(transport);
        }
        if let Some(clock) = self.clock {
            builder = builder.clock(clock);
        }
        if let Some(breaker) = self.breaker {
            builder = builder.breaker(breaker);
        }
        for limiter in self.limiters {
            builder = builder.limiter(limiter);
        }
        if let Some(budget) = self.budget {
            builder = builder.budget(budget);
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        builder
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .field("custom_transport", &self.transport.is_some())
            .field("custom_clock", &self.clock.is_some())
            .field("breaker", &self.breaker)
            .field("extra_limiters", &self.limiters.len())
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// The shared setters of every provider client builder. Implement [`options`](Self::options);
/// the rest is provided.
pub trait ClientBuilder: Sized {
    /// The options this builder accumulates.
    fn options(&mut self) -> &mut ClientOptions;

    /// Another base URL (a proxy, an enterprise host, a simulator).
    fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options().base_url = Some(url.into());
        self
    }

    /// The call policy: attempts, timeouts, how long a call may wait (default
    /// [`CallPolicy::new`]).
    fn policy(mut self, policy: CallPolicy) -> Self {
        self.options().policy = Some(policy);
        self
    }

    /// The transport (default: reqwest). Tests pass a simulator's.
    fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.options().transport = Some(transport);
        self
    }

    /// The clock (default tokio's). Tests pass a virtual one.
    fn clock(mut self, clock: SharedClock) -> Self {
        self.options().clock = Some(clock);
        self
    }

    /// The circuit breaker's configuration.
    fn breaker(mut self, config: BreakerConfig) -> Self {
        self.options().breaker = Some(config);
        self
    }

    /// A limiter enforced in addition to the provider's (a process-wide or Redis-shared budget).
    ///
    /// Every request the client sends costs one [`BudgetName::REQUESTS`](crate::quota::BudgetName::REQUESTS)
    /// besides the provider's own budgets, so a limiter on `requests` (the default of every
    /// limiter) paces every client; one on a provider budget (OpenAI's `tokens`) paces that.
    fn limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.options().limiters.push(limiter);
        self
    }

    /// The retry budget (default 20 % of calls plus 10/s).
    fn budget(mut self, budget: RetryBudget) -> Self {
        self.options().budget = Some(budget);
        self
    }

    /// Seeds the backoff jitter, for reproducible runs (default: random).
    fn seed(mut self, seed: u64) -> Self {
        self.options().seed = Some(seed);
        self
    }
}
