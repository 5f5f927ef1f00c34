//! A SendGrid mail client on ratewise: sends checked before they leave, each endpoint paced by
//! the `X-RateLimit-*` headers (and a configured budget when they are absent), spent credits told
//! apart from rate limits, and no email sent twice.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`SendGridProvider`]: how responses read (retry, fail, why), costs, limiters |
//! | [`headers`] | `X-RateLimit-*` (epoch-second resets) and `X-Message-Id` |
//! | [`error`] | [`SendGridError`], the typed error body (`errors[] {field, message, help}`) |
//! | [`lenient`] | JSON decoding that survives SendGrid's trailing commas |
//! | [`limits`] | the per-endpoint pacer and the configured budget |
//! | [`client`] | [`SendGridClient`]: builder, `from_env`, EU region, dedupe store |
//! | [`mail`] | [`Mail`], [`Personalization`], [`Address`], [`Content`], [`Attachment`] |
//! | [`validate`] | SendGrid's limits checked before sending, errors naming the field |
//! | [`send`] | [`SendMail`]: one send, its idempotency key, dedupe; the crate's [`Error`] |
//! | [`campaign`] | [`Campaign`]: one message to many envelopes, batch by batch |
//! | `sim` | SendGrid's dialect and a small in-memory mail send for the testkit (feature `sim`) |
//!
//! ```no_run
//! use ratewise_sendgrid::{Content, Mail, Personalization, SendGridClient, Uuid};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sendgrid = SendGridClient::from_env()?; // SENDGRID_API_KEY
//! let mail = Mail::new("orders@example.com")
//!     .subject("Your order 6735")
//!     .content(Content::text("It ships today."))
//!     .personalization(Personalization::new("alex@example.com"));
//! let accepted = sendgrid
//!     .send_mail(mail)
//!     // The same order always carries the same key: with a dedupe store, sent at most once.
//!     .idempotency_key_for(&Uuid::NAMESPACE_URL, "https://shop.example/orders/6735/confirmation")
//!     .send()
//!     .await?;
//! println!("{:?}", accepted.message_id);
//! # Ok(()) }
//! ```
//!
//! # Decisions
//!
//! - The idempotency key travels in `custom_args` as `ratewise_idempotency_key` (SendGrid has
//!   no idempotency header); it counts against the 10,000-byte limit.
//! - The configured budget defaults to 10 requests per second per endpoint (burst 10): SendGrid
//!   publishes no numbers, and mail send often sends no headers.
//! - A 429 without a usable reset holds the endpoint 1 s and backs off; with a reset, every
//!   caller waits for it.
//! - Size limit: 30,000,000 bytes of JSON (the stricter reading of "30 MB").

pub mod campaign;
pub mod client;
pub mod error;
pub mod headers;
pub mod lenient;
pub mod limits;
pub mod mail;
pub mod provider;
pub mod send;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod validate;

pub use campaign::{Batch, Campaign, CampaignReport};
pub use client::{ClientError, Region, SendGridClient, SendGridClientBuilder};
pub use error::{ErrorItem, SendGridError};
pub use limits::SendGridLimits;
pub use mail::{Address, Attachment, Content, Disposition, Mail, Personalization};
pub use provider::SendGridProvider;
pub use ratewise_core::dedupe::{DedupeStore, MemoryDedupe};
pub use ratewise_core::idempotency::IdempotencyKey;
pub use ratewise_core::options::ClientBuilder;
pub use ratewise_core::secret::Secret;
pub use send::{Accepted, CallError, Error, IDEMPOTENCY_ARG, SendMail};
/// UUIDs, for [`SendMail::idempotency_key_for`] namespaces.
pub use uuid::Uuid;
pub use validate::InvalidMail;

/// The dedupe store shared by every process through Redis (feature `redis`): pass it to the
/// client builder's `.dedupe(..)` so a redelivered job is never sent twice by any worker.
#[cfg(feature = "redis")]
pub use ratewise_core::redis::RedisDedupe;
