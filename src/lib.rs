//! ratewise: call rate-limited APIs the way production needs.
//!
//! This facade re-exports [`ratewise_core`] and, behind feature flags, the provider crates.
//! It holds no logic of its own.

pub use ratewise_core as core;
pub use ratewise_core::*;

/// The Stripe client: payment intents, customers, refunds, webhooks (feature `stripe`).
#[cfg(feature = "stripe")]
pub use ratewise_stripe as stripe;

/// The SendGrid client: validated mail sends, campaigns, dedupe (feature `sendgrid`).
#[cfg(feature = "sendgrid")]
pub use ratewise_sendgrid as sendgrid;
