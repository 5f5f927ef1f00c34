//! Idempotency keys: one per logical operation, the same on every retry and redelivery.
//!
//! A retried POST without a key can charge a card twice: the first attempt may have been
//! processed before the connection dropped. The key is minted once, before the first attempt
//! (as async-stripe's request strategy does), and every attempt sends it. A queue job carries its
//! key from enqueue, so a job redelivered after a worker crash sends the same key again; when the
//! job has a business id (an order number), [`IdempotencyKey::derive`] makes the key a pure
//! function of it, so even a job enqueued twice sends one key.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use uuid::Uuid;

/// The longest key accepted: Stripe's documented limit, 255 characters.
pub const MAX_LEN: usize = 255;

/// A validated idempotency key: 1 to 255 visible ASCII characters (`!`..=`~`).
///
/// Cheap to clone. Serialises as its text, and deserialising validates it, so a key read back from
/// a queue is as valid as one minted here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// A fresh random key (UUID v4): one per logical operation.
    #[allow(clippy::new_without_default)] // a fresh random key is not a "default"
    pub fn new() -> Self {
        Self::from_uuid(Uuid::new_v4())
    }

    /// A key derived from a business id (UUID v5 of `business_id` in `namespace`).
    ///
    /// The same `(namespace, business_id)` always gives the same key, so an operation enqueued or
    /// delivered twice sends one key and the provider performs it once.
    pub fn derive(namespace: &Uuid, business_id: impl AsRef<[u8]>) -> Self {
        Self::from_uuid(Uuid::new_v5(namespace, business_id.as_ref()))
    }

    /// A key holding a given UUID (hyphenated, lowercase).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(Arc::from(uuid.hyphenated().to_string()))
    }

    /// Validates a key supplied by the caller.
    pub fn parse(key: &str) -> Result<Self, InvalidIdempotencyKey> {
        if key.is_empty() {
            return Err(InvalidIdempotencyKey::Empty);
        }
        if key.len() > MAX_LEN {
            return Err(InvalidIdempotencyKey::TooLong { len: key.len() });
        }
        if let Some(position) = key.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(InvalidIdempotencyKey::InvalidCharacter { position });
        }
        Ok(Self(Arc::from(key)))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as an HTTP header value (always valid: visible ASCII only).
    pub fn header_value(&self) -> HeaderValue {
        // Visible ASCII is always a valid header value; the fallback is unreachable by
        // construction but keeps this function free of panics.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid-key"))
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotencyKey").field(&&*self.0).finish()
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for IdempotencyKey {
    type Err = InvalidIdempotencyKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0.to_string()
    }
}

impl serde::Serialize for IdempotencyKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A caller-supplied idempotency key was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIdempotencyKey {
    /// The key was empty.
    #[error("idempotency key is empty; use IdempotencyKey::new() or derive one from a business id")]
    Empty,
    /// The key was longer than 255 characters.
    #[error("idempotency key is {len} characters long; at most 255 are accepted")]
    TooLong {
        /// The key's length in bytes.
        len: usize,
    },
    /// The key held a character that is not visible ASCII (space, control, non-ASCII).
    #[error("idempotency key has a character that is not visible ASCII at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first offending character.
        position: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_are_distinct_uuid_v4s() {
        let (a, b) = (IdempotencyKey::new(), IdempotencyKey::new());
        assert_ne!(a, b);
        let uuid = Uuid::parse_str(a.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }

    #[test]
    fn derived_keys_are_a_pure_function_of_namespace_and_business_id() {
        let ns = Uuid::NAMESPACE_OID;
        assert_eq!(
            IdempotencyKey::derive(&ns, "order-42"),
            IdempotencyKey::derive(&ns, "order-42")
        );
        assert_ne!(
            IdempotencyKey::derive(&ns, "order-42"),
            IdempotencyKey::derive(&ns, "order-43")
        );
        assert_ne!(
            IdempotencyKey::derive(&ns, "order-42"),
            IdempotencyKey::derive(&Uuid::NAMESPACE_URL, "order-42")
        );
        let uuid = Uuid::parse_str(IdempotencyKey::derive(&ns, "x").as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 5);
    }

    #[test]
    fn parse_accepts_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("stripe-node-retry-8f0c!~").is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(InvalidIdempotencyKey::Empty));
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(InvalidIdempotencyKey::TooLong { len: 256 })
        );
        assert_eq!(
            IdempotencyKey::parse("has space"),
            Err(InvalidIdempotencyKey::InvalidCharacter { position: 3 })
        );
        assert_eq!(
            IdempotencyKey::parse("tab\there"),
            Err(InvalidIdempotencyKey::InvalidCharacter { position: 3 })
        );
        assert_eq!(
            IdempotencyKey::parse("é"),
            Err(InvalidIdempotencyKey::InvalidCharacter { position: 0 })
        );
    }

    #[test]
    fn a_key_survives_a_serde_round_trip_and_invalid_text_is_rejected_on_the_way_in() {
        let key = IdempotencyKey::new();
        let json = serde_json::to_string(&key).unwrap();
        let back: IdempotencyKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key);
        assert!(serde_json::from_str::<IdempotencyKey>("\"bad key\"").is_err());
        assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
    }

    #[test]
    fn header_value_is_the_key_text() {
        let key = IdempotencyKey::parse("order-42-v1").unwrap();
        assert_eq!(key.header_value(), "order-42-v1");
    }
}
