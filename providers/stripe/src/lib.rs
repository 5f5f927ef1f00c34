//! A Stripe client on ratewise: Stripe's retry rules, its global and per-endpoint budgets, an
//! idempotency key on every POST, and webhook verification.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`StripeProvider`]: how responses read (retry, fail, why), costs, limiters |
//! | [`headers`] | Stripe's header names and formats |
//! | [`error`] | [`StripeError`], the typed error body |
//! | [`limits`] | global, per-endpoint and read/write budgets |
//! | [`client`] | [`StripeClient`]: builder, `from_env`, version pinning, Connect account |
//! | [`payment_intents`], [`customers`], [`refunds`] | typed resources and their params |
//! | [`request`] | [`Request`]: one logical call, its idempotency key, `send`/`send_with_meta` |
//! | [`list`] | one page of a list; [`Pages`] follows `starting_after`, page by page or as a `Stream` |
//! | [`form`] | form encoding with Stripe's nesting (`metadata[k]=v`, `expand[]=x`) |
//! | `sim` | Stripe's dialect and a small in-memory Stripe for the testkit (feature `sim`) |
//! | `webhook` | `Stripe-Signature` verification, event parsing, dedupe (feature `webhook`) |
//!
//! ```no_run
//! use ratewise_stripe::{CreatePaymentIntent, StripeClient, Uuid};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let stripe = StripeClient::from_env()?; // STRIPE_SECRET_KEY
//! let intent = stripe
//!     .payment_intents()
//!     .create(CreatePaymentIntent::new(2000, "usd").metadata("order_id", "6735"))
//!     // Optional: the same order always sends the same key, across processes and restarts.
//!     .idempotency_key_for(&Uuid::NAMESPACE_URL, "https://shop.example/orders/6735")
//!     .send()
//!     .await?;
//! println!("{} {:?}", intent.id, intent.status);
//! # Ok(()) }
//! ```
//!
//! # Where this differs from stripe-node
//!
//! stripe-node does not retry a plain 429 unless `Stripe-Should-Retry: true`; this crate does,
//! after backoff, because Stripe documents that a rate-limited request was not processed, and
//! the shared limiters slow the budget that was exceeded so the retry does not add to the
//! storm. See [`provider`] for every rule.

pub mod client;
pub mod customers;
pub mod error;
pub mod expandable;
pub mod form;
pub mod headers;
pub mod limits;
pub mod list;
pub mod payment_intents;
pub mod provider;
pub mod refunds;
pub mod request;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use client::{ClientError, StripeClient, StripeClientBuilder};
pub use customers::{Customer, CustomerParams};
pub use error::{ErrorType, StripeError};
pub use expandable::Expandable;
pub use limits::{Mode, StripeLimits};
pub use list::{List, Object, Pages};
pub use payment_intents::{CreatePaymentIntent, PaymentIntent, PaymentIntentStatus};
pub use provider::StripeProvider;
pub use ratewise_core::idempotency::IdempotencyKey;
pub use ratewise_core::options::ClientBuilder;
pub use ratewise_core::secret::Secret;
pub use refunds::{CreateRefund, Refund};
pub use request::{Error, Meta, Request};
/// UUIDs, for [`Request::idempotency_key_for`] namespaces.
pub use uuid::Uuid;
