//! Webhooks: `Stripe-Signature` verification, the event envelope, and delivery dedupe.
//!
//! Stripe signs each delivery with `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`:
//! `v1` is HMAC-SHA256 of `"{t}.{payload}"` under the endpoint's signing secret (`whsec_…`).
//! During a secret rotation Stripe sends one `v1` per active secret, and a verifier may hold
//! several secrets too: any match passes. The timestamp must be within the tolerance (default
//! 300 s, Stripe's) of the injected clock, in either direction, so a captured delivery cannot
//! be replayed later. Signatures are compared in constant time (`hmac`'s `verify_slice`).
//!
//! Stripe delivers at least once: the same event can arrive twice. [`EventDedupe`] remembers
//! the ids it has seen (bounded, oldest forgotten first) so a handler runs once per event.
//!
//! ```
//! use ratewise_core::clock::ManualClock;
//! use ratewise_stripe::webhook::{WebhookVerifier, signature_header};
//!
//! let clock = ManualClock::new();
//! let verifier = WebhookVerifier::new("whsec_test").clock(clock.shared());
//! let payload = br#"{"id":"evt_1","type":"payment_intent.succeeded","created":1,"data":{"object":{"id":"pi_1"}}}"#;
//! let now = ratewise_stripe::webhook::unix_seconds(&clock);
//! let header = signature_header("whsec_test", now, payload);
//! let event = verifier.construct_event(payload, &header).unwrap();
//! assert_eq!(event.kind, "payment_intent.succeeded");
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use ratewise_core::clock::{Clock, SharedClock, TokioClock};
use ratewise_core::dedupe::{DedupeStore, Deliveries};
use ratewise_core::secret::Secret;
use serde::Deserialize;
use sha2::Sha256;

use crate::headers::STRIPE_SIGNATURE;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between the signed timestamp and now: 300 s.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request had no `Stripe-Signature` header (or it was not text).
    #[error("no Stripe-Signature header: not a Stripe delivery")]
    MissingHeader,
    /// The header could not be read (`t=…,v1=…` expected).
    #[error("malformed Stripe-Signature header: {0}")]
    BadFormat(&'static str),
    /// No `v1` signature matched any configured secret.
    #[error("no v1 signature matches the signing secret(s): wrong secret or tampered payload")]
    NoMatchingSignature,
    /// The signed timestamp is further from now than the tolerance.
    #[error(
        "signed timestamp {timestamp} is {age_secs}s from now, beyond the {tolerance_secs}s tolerance: replayed or the clock is off"
    )]
    TimestampOutsideTolerance {
        /// The signed timestamp, unix seconds.
        timestamp: i64,
        /// How far it is from now, seconds (absolute).
        age_secs: u64,
        /// The tolerance, seconds.
        tolerance_secs: u64,
    },
    /// The signature matched but the payload is not an event.
    #[error("the payload is not a Stripe event: {0}")]
    InvalidPayload(#[from] serde_json::Error),
}

/// A Stripe event, as delivered: the envelope, with the object as JSON.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The event id (`evt_…`): the dedupe key.
    pub id: String,
    /// The event type (`payment_intent.succeeded`).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event was created, unix seconds.
    pub created: i64,
    /// True for live-mode events.
    #[serde(default)]
    pub livemode: bool,
    /// The API version the object is rendered in.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The connected account the event is about (Connect), if any.
    #[serde(default)]
    pub account: Option<String>,
    /// The object and, for updates, its previous attributes.
    pub data: EventData,
}

/// The `data` of an [`Event`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct EventData {
    /// The object the event is about, as JSON (decode it into the resource type you expect).
    pub object: serde_json::Value,
    /// For `*.updated` events: the attributes before the change.
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

/// Verifies `Stripe-Signature` headers and parses events.
///
/// Defaults: tolerance [`DEFAULT_TOLERANCE`] (300 s), clock [`TokioClock`]. The secrets are
/// kept as [`Secret`]s and never appear in `Debug`.
#[derive(Clone, Debug)]
pub struct WebhookVerifier {
    secrets: Vec<Secret>,
    tolerance: Duration,
    clock: SharedClock,
}

impl WebhookVerifier {
    /// A verifier for the endpoint signing secret `secret` (`whsec_…`).
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            secrets: vec![secret.into()],
            tolerance: DEFAULT_TOLERANCE,
            clock: TokioClock::shared(),
        }
    }

    /// Also accepts signatures under `secret` (while rotating secrets).
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The largest accepted distance between the signed timestamp and now (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The clock now is read from (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks that `header` signs `payload` with one of the secrets, recently enough.
    pub fn verify(&self, payload: &[u8], header: &str) -> Result<(), WebhookError> {
        let parsed = SignatureHeader::parse(header)?;
        let matched = self.secrets.iter().any(|secret| {
            let mac = mac(secret.expose(), parsed.timestamp_text, payload);
            parsed
                .signatures
                .iter()
                .any(|sig| mac.clone().verify_slice(sig).is_ok())
        });
        if !matched {
            return Err(WebhookError::NoMatchingSignature);
        }
        let now = unix_seconds(&*self.clock);
        let age = now.abs_diff(parsed.timestamp);
        if age > self.tolerance.as_secs() {
            return Err(WebhookError::TimestampOutsideTolerance {
                timestamp: parsed.timestamp,
                age_secs: age,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        Ok(())
    }

    /// Verifies `payload` against `header` and parses it as an [`Event`].
    pub fn construct_event(&self, payload: &[u8], header: &str) -> Result<Event, WebhookError> {
        self.verify(payload, header)?;
        Ok(serde_json::from_slice(payload)?)
    }

    /// [`construct_event`](Self::construct_event) reading `Stripe-Signature` from `headers`.
    pub fn construct_event_from_headers(
        &self,
        payload: &[u8],
        headers: &HeaderMap,
    ) -> Result<Event, WebhookError> {
        let header = headers
            .get(STRIPE_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader)?;
        self.construct_event(payload, header)
    }
}

/// The clock's wall time as unix seconds (0 before the epoch, saturating far after it).
pub fn unix_seconds(clock: &dyn Clock) -> i64 {
    clock
        .wall()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A `Stripe-Signature` header value signing `payload` at `timestamp` with `secret`: for
/// testing webhook handlers (stripe-node's `generateTestHeaderString`).
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let digest = mac(secret, &timestamp, payload).finalize().into_bytes();
    let mut header = format!("t={timestamp},v1=");
    for byte in digest {
        let _ = write!(header, "{byte:02x}");
    }
    header
}

fn mac(secret: &str, timestamp: &str, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never takes the fallback.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

struct SignatureHeader<'a> {
    timestamp: i64,
    timestamp_text: &'a str,
    signatures: Vec<Vec<u8>>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, WebhookError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in header.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or(WebhookError::BadFormat("an item without `=`"))?;
            match key {
                "t" => {
                    let parsed: i64 = value
                        .parse()
                        .map_err(|_| WebhookError::BadFormat("`t` is not unix seconds"))?;
                    timestamp = Some((parsed, value));
                }
                "v1" => signatures.extend(hex(value)),
                _ => {}
            }
        }
        let (timestamp, timestamp_text) =
            timestamp.ok_or(WebhookError::BadFormat("no timestamp `t=`"))?;
        if signatures.is_empty() {
            return Err(WebhookError::BadFormat("no `v1=` signature"));
        }
        Ok(Self {
            timestamp,
            timestamp_text,
            signatures,
        })
    }
}

/// Decodes lowercase or uppercase hex; `None` for anything else.
fn hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [high, low] => Some((nibble(*high)? << 4) | nibble(*low)?),
            _ => None,
        })
        .collect()
}

/// Remembers the event ids already handled, so a delivery repeated by Stripe runs once.
///
/// In memory and bounded (default 10,000 ids; the oldest is forgotten first): enough for
/// Stripe's retries of recent deliveries in one process. Several processes, or restarts, need
/// a shared store: [`event_deliveries`] over Redis (or the event id as a unique key in your
/// database). Cheap to clone; clones share the memory.
#[derive(Clone, Debug)]
pub struct EventDedupe {
    capacity: usize,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

/// The default number of ids [`EventDedupe`] remembers: 10,000.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 10_000;

impl Default for EventDedupe {
    fn default() -> Self {
        Self::new(DEFAULT_DEDUPE_CAPACITY)
    }
}

impl EventDedupe {
    /// A dedupe remembering at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Arc::default(),
        }
    }

    /// True the first time `id` is seen (handle the event), false for a repeat (acknowledge it
    /// and do nothing).
    pub fn first_delivery(&self, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.contains(id) {
            return false;
        }
        while seen.order.len() >= self.capacity {
            match seen.order.pop_front() {
                Some(oldest) => {
                    seen.ids.remove(&oldest);
                }
                None => break,
            }
        }
        seen.ids.insert(id.to_owned());
        seen.order.push_back(id.to_owned());
        true
    }

    /// Forgets `id`, so its next delivery is handled again (call it when handling failed).
    pub fn forget(&self, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.remove(id) {
            seen.order.retain(|x| x != id);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Event-id dedupe shared by every process: the core's [`Deliveries`] over `store`, keys
/// prefixed `stripe.event:`. Pass `RedisDedupe` (feature `redis` of `ratewise-core`) so that
/// Stripe's redelivery of an event to another instance behind the load balancer is recognised;
/// [`EventDedupe`] is the synchronous in-process alternative.
///
/// ```
/// use std::sync::Arc;
/// use ratewise_core::dedupe::{Delivery, MemoryDedupe};
/// use ratewise_stripe::webhook::event_deliveries;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events = event_deliveries(Arc::new(MemoryDedupe::default()));
/// assert_eq!(events.begin("evt_1").await.unwrap(), Delivery::First);
/// events.handled("evt_1").await.unwrap();
/// assert_eq!(events.begin("evt_1").await.unwrap(), Delivery::Duplicate);
/// # }
/// ```
pub fn event_deliveries(store: Arc<dyn DedupeStore>) -> Deliveries {
    Deliveries::new(store, "stripe.event:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ratewise_core::clock::ManualClock;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_1","object":"payment_intent","amount":2000}}}"#;

    fn setup() -> (ManualClock, WebhookVerifier, i64) {
        let clock = ManualClock::new();
        let verifier = WebhookVerifier::new(SECRET).clock(clock.shared());
        let now = unix_seconds(&clock);
        (clock, verifier, now)
    }

    #[test]
    fn a_valid_signature_verifies_and_the_event_parses() {
        let (_clock, verifier, now) = setup();
        let event = verifier
            .construct_event(PAYLOAD, &signature_header(SECRET, now, PAYLOAD))
            .unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.kind, "payment_intent.succeeded");
        assert_eq!(event.created, 1_700_000_000);
        assert_eq!(event.data.object["amount"], 2000);
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let (_clock, verifier, now) = setup();
        let header = signature_header(SECRET, now, PAYLOAD);
        let tampered = String::from_utf8_lossy(PAYLOAD).replace("2000", "1");
        assert!(matches!(
            verifier.verify(tampered.as_bytes(), &header),
            Err(WebhookError::NoMatchingSignature)
        ));
    }

    #[test]
    fn a_signature_under_another_secret_is_refused() {
        let (_clock, verifier, now) = setup();
        let header = signature_header("whsec_other", now, PAYLOAD);
        assert!(matches!(
            verifier.verify(PAYLOAD, &header),
            Err(WebhookError::NoMatchingSignature)
        ));
    }

    #[test]
    fn an_old_delivery_is_refused_and_one_within_tolerance_passes() {
        let (clock, verifier, now) = setup();
        let header = signature_header(SECRET, now, PAYLOAD);
        clock.advance(Duration::from_secs(300));
        verifier.verify(PAYLOAD, &header).unwrap();
        clock.advance(Duration::from_secs(1));
        let error = verifier.verify(PAYLOAD, &header).unwrap_err();
        assert!(
            matches!(
                error,
                WebhookError::TimestampOutsideTolerance {
                    age_secs: 301,
                    tolerance_secs: 300,
                    ..
                }
            ),
            "{error}"
        );
        let future = signature_header(SECRET, now + 10_000, PAYLOAD);
        assert!(matches!(
            verifier.verify(PAYLOAD, &future),
            Err(WebhookError::TimestampOutsideTolerance { .. })
        ));
    }

    #[test]
    fn during_a_rotation_any_v1_under_any_secret_matches() {
        let (_clock, verifier, now) = setup();
        // Stripe signs with the old and the new secret; we know only the new one.
        let old = signature_header("whsec_old", now, PAYLOAD);
        let new = signature_header(SECRET, now, PAYLOAD);
        let new_sig = new.split("v1=").nth(1).unwrap();
        let header = format!("{old},v1={new_sig},v0=deadbeef");
        verifier.verify(PAYLOAD, &header).unwrap();
        // We hold two secrets; Stripe signs with one of them.
        let both = WebhookVerifier::new("whsec_new")
            .secret("whsec_old")
            .clock(ManualClock::new().shared());
        both.verify(PAYLOAD, &old).unwrap();
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let (_clock, verifier, now) = setup();
        let bad = |header: &str| match verifier.verify(PAYLOAD, header) {
            Err(WebhookError::BadFormat(why)) => why,
            other => panic!("{header}: {other:?}"),
        };
        assert_eq!(bad(""), "no timestamp `t=`");
        assert_eq!(bad("garbage"), "an item without `=`");
        assert_eq!(bad("t=yesterday,v1=00"), "`t` is not unix seconds");
        assert_eq!(bad(&format!("t={now}")), "no `v1=` signature");
        assert_eq!(bad(&format!("t={now},v1=not-hex")), "no `v1=` signature");
        let headers = HeaderMap::new();
        assert!(matches!(
            verifier.construct_event_from_headers(PAYLOAD, &headers),
            Err(WebhookError::MissingHeader)
        ));
    }

    #[test]
    fn a_signed_payload_that_is_not_an_event_is_refused_as_such() {
        let (_clock, verifier, now) = setup();
        let payload = br#"{"hello":"world"}"#;
        let header = signature_header(SECRET, now, payload);
        assert!(matches!(
            verifier.construct_event(payload, &header),
            Err(WebhookError::InvalidPayload(_))
        ));
    }

    #[test]
    fn the_header_from_a_header_map_is_used() {
        let (_clock, verifier, now) = setup();
        let mut headers = HeaderMap::new();
        headers.insert(
            STRIPE_SIGNATURE,
            signature_header(SECRET, now, PAYLOAD).parse().unwrap(),
        );
        let event = verifier
            .construct_event_from_headers(PAYLOAD, &headers)
            .unwrap();
        assert_eq!(event.id, "evt_1");
    }

    #[test]
    fn secrets_never_appear_in_debug() {
        let verifier = WebhookVerifier::new("whsec_supersecret");
        assert!(!format!("{verifier:?}").contains("supersecret"));
    }

    #[test]
    fn a_delivery_seen_twice_is_handled_once_and_memory_is_bounded() {
        let dedupe = EventDedupe::new(2);
        assert!(dedupe.first_delivery("evt_1"));
        assert!(!dedupe.first_delivery("evt_1"));
        assert!(dedupe.first_delivery("evt_2"));
        assert!(dedupe.first_delivery("evt_3"));
        assert_eq!(dedupe.len(), 2);
        assert!(dedupe.first_delivery("evt_1"), "the oldest was forgotten");
        dedupe.forget("evt_3");
        assert!(
            dedupe.first_delivery("evt_3"),
            "a failed handling is retried"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..256), header in ".{0,200}") {
            let (_clock, verifier, _now) = setup();
            let _ = verifier.construct_event(&payload, &header);
        }

        #[test]
        fn arbitrary_structured_headers_never_panic(t in any::<i64>(), sig in "[0-9a-fA-F]{0,80}", payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let (_clock, verifier, _now) = setup();
            let _ = verifier.construct_event(&payload, &format!("t={t},v1={sig},v1=,=,"));
        }
    }
}
