//! ratewise: call rate-limited APIs the way production needs.
//!
//! This facade re-exports [`ratewise_core`] and, behind feature flags, the provider crates.
//! It holds no logic of its own.

pub use ratewise_core as core;
pub use ratewise_core::*;

/// The Stripe client: payment intents, customers, refunds, webhooks (feature `stripe`).
#[cfg(feature = "stripe")]
pub use ratewise_stripe as stripe;

/// The Twilio client: messages, calls, sender pacing, webhooks (feature `twilio`).
#[cfg(feature = "twilio")]
pub use ratewise_twilio as twilio;

/// The GitHub REST client: repositories, issues, pulls, contents, search, rate limits
/// (feature `github`).
#[cfg(feature = "github")]
pub use ratewise_github as github;

/// The OpenAI client: chat completions, embeddings, models; RPM and TPM pacing (feature
/// `openai`).
#[cfg(feature = "openai")]
pub use ratewise_openai as openai;

/// The SendGrid client: validated mail sends, campaigns, dedupe (feature `sendgrid`).
#[cfg(feature = "sendgrid")]
pub use ratewise_sendgrid as sendgrid;
