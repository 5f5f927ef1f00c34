//! A Stripe client on ratewise: Stripe's retry rules, its global and per-endpoint budgets, an
//! idempotency key on every POST, and webhook verification.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`StripeProvider`]: how responses read (retry, fail, why), costs, limiters |
//! | [`headers`] | Stripe's header names and formats |
//! | [`error`] | [`StripeError`], the typed error body |
//! | [`limits`] | global, per-endpoint and read/write budgets |
//! | [`form`] | form encoding with Stripe's nesting (`metadata[k]=v`, `expand[]=x`) |
//! | `webhook` | `Stripe-Signature` verification, event parsing, dedupe (feature `webhook`) |
//!
//! # Where this differs from stripe-node
//!
//! stripe-node does not retry a plain 429 unless `Stripe-Should-Retry: true`; this crate does,
//! after backoff, because Stripe documents that a rate-limited request was not processed, and
//! the shared limiters slow the budget that was exceeded so the retry does not add to the
//! storm. See [`provider`] for every rule.

pub mod error;
pub mod form;
pub mod headers;
pub mod limits;
pub mod provider;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use error::{ErrorType, StripeError};
pub use limits::{Mode, StripeLimits};
pub use provider::StripeProvider;
pub use ratewise_core::idempotency::IdempotencyKey;
pub use ratewise_core::secret::Secret;
