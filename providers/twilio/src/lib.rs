//! A Twilio client on ratewise: the account's API concurrency, each sender's segment
//! throughput, creates that never send a duplicate SMS, and webhook signature validation.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`TwilioProvider`]: how responses read (20429, 21611, 5xx), costs, limiters |
//! | [`limits`] | account concurrency and per-sender budgets ([`TwilioLimits`]) |
//! | [`sender`] | [`SenderType`]: long code, toll-free, short code, inferred from `From` |
//! | [`segments`] | GSM-7 / UCS-2 segment counting, as carriers count |
//! | [`headers`] | Twilio's header names and formats |
//! | [`error`] | [`TwilioError`], both body formats (legacy and RFC 9457) |
//! | [`client`] | [`TwilioClient`]: builder, `from_env`, basic auth, region and edge, dedupe |
//! | [`messages`], [`calls`] | typed resources and their params |
//! | [`request`] | [`Request`]: one logical call; the no-duplicate rules for creates |
//! | [`form`] | form encoding and decoding |
//! | `sim` | Twilio's dialect and a small in-memory Twilio with per-sender queues (feature `sim`) |
//! | `webhook` | `X-Twilio-Signature` validation, webhook retry dedupe (feature `webhook`) |
//!
//! ```no_run
//! use ratewise_twilio::{CreateMessage, TwilioClient, Uuid};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let twilio = TwilioClient::from_env()?; // TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN
//! let message = twilio
//!     .messages()
//!     .create(CreateMessage::new("+14155552671", "+15005550006").body("Your order shipped"))
//!     // With a dedupe store on the client, a redelivered job never sends twice.
//!     .idempotency_key_for(&Uuid::NAMESPACE_URL, "https://shop.example/orders/6735/shipped")
//!     .send()
//!     .await?;
//! println!("{} {:?}", message.sid, message.status);
//! # Ok(()) }
//! ```
//!
//! # What is retried
//!
//! A 429 (20429) is documented as not processed: every call retries it after backoff, and
//! `Retry-After` is honoured when present. A 5xx or a timeout is retried for reads only: Twilio
//! has no idempotency key for Messages or Calls, so a create that may have been processed ends
//! in `Error::Ambiguous` instead of risking a second SMS. A 21611 (sender queue full) is not
//! retried at once; the error is retryable after a park (60 s) for a queue to honour. See
//! [`provider`] and [`request`].
//!
//! # Decisions where Twilio is silent
//!
//! - Account concurrency defaults to 100 (third-party figure); configurable.
//! - A Messaging Service (no `From`) is charged no sender budget: Twilio picks its senders.
//! - Calls are charged a concurrency slot only (no documented per-sender pacing here).

pub mod calls;
pub mod client;
pub mod error;
pub mod form;
pub mod headers;
pub mod limits;
pub mod messages;
pub mod provider;
pub mod request;
pub mod segments;
pub mod sender;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use calls::{Call, CallStatus, Calls, CreateCall, Instructions};
pub use client::{ClientError, Credentials, TwilioClient, TwilioClientBuilder};
pub use error::TwilioError;
pub use limits::TwilioLimits;
pub use messages::{
    CreateMessage, ListMessages, Message, MessagePage, MessageStatus, Messages, Sender,
};
pub use provider::TwilioProvider;
pub use ratewise_core::dedupe::{DedupeStore, MemoryDedupe};
pub use ratewise_core::idempotency::IdempotencyKey;
pub use ratewise_core::options::ClientBuilder;
pub use ratewise_core::secret::Secret;
pub use request::{Error, Meta, Request, is_queue_full};
pub use sender::SenderType;
/// UUIDs, for [`Request::idempotency_key_for`] namespaces.
pub use uuid::Uuid;

/// The dedupe store shared by every process through Redis (feature `redis`): pass it to the
/// client builder's `.dedupe(..)` so a redelivered job is never sent twice by any worker.
#[cfg(feature = "redis")]
pub use ratewise_core::redis::RedisDedupe;
