//! Refunds: create, retrieve.

use std::collections::HashMap;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::StripeClient;
use crate::list::Object;
use crate::request::{Request, object_path};

/// Why a refund was made. Unknown values read as [`Self::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundReason {
    /// A duplicate payment.
    Duplicate,
    /// Fraud.
    Fraudulent,
    /// The customer asked.
    RequestedByCustomer,
    /// An uncaptured charge expired (set by Stripe).
    ExpiredUncapturedCharge,
    /// A value this crate does not know yet (never sent).
    #[serde(other, skip_serializing)]
    Unknown,
}

/// The status of a refund. Unknown values read as [`Self::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundStatus {
    /// Waiting to be processed.
    Pending,
    /// The customer must act.
    RequiresAction,
    /// Refunded.
    Succeeded,
    /// Failed.
    Failed,
    /// Canceled.
    Canceled,
    /// A status this crate does not know yet.
    #[serde(other)]
    Unknown,
}

/// A Refund. Fields not modelled here are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Refund {
    /// `re_…`.
    pub id: String,
    /// Amount refunded, smallest currency unit.
    pub amount: i64,
    /// Currency, lowercase.
    pub currency: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The status.
    #[serde(default)]
    pub status: Option<RefundStatus>,
    /// Why.
    #[serde(default)]
    pub reason: Option<RefundReason>,
    /// The PaymentIntent refunded (an id unless expanded).
    #[serde(default)]
    pub payment_intent: Option<serde_json::Value>,
    /// The charge refunded (an id unless expanded).
    #[serde(default)]
    pub charge: Option<serde_json::Value>,
    /// Why it failed, if it did.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Your key-value data.
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

impl Object for Refund {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Parameters of `POST /v1/refunds`: what to refund is required in the constructor.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CreateRefund {
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<RefundReason>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
}

impl CreateRefund {
    /// Refunds the PaymentIntent `id` (`pi_…`), in full unless [`amount`](Self::amount) is set.
    pub fn payment_intent(id: impl Into<String>) -> Self {
        Self {
            payment_intent: Some(id.into()),
            charge: None,
            amount: None,
            reason: None,
            metadata: HashMap::new(),
        }
    }

    /// Refunds the charge `id` (`ch_…`), in full unless [`amount`](Self::amount) is set.
    pub fn charge(id: impl Into<String>) -> Self {
        Self {
            payment_intent: None,
            charge: Some(id.into()),
            amount: None,
            reason: None,
            metadata: HashMap::new(),
        }
    }

    /// A partial refund of `amount` (default: the full amount).
    pub fn amount(mut self, amount: i64) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Why (default none).
    pub fn reason(mut self, reason: RefundReason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// One metadata entry (default none).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The Refunds resource of a [`StripeClient`].
#[derive(Clone, Debug)]
pub struct Refunds {
    client: StripeClient,
}

impl Refunds {
    pub(crate) fn new(client: StripeClient) -> Self {
        Self { client }
    }

    /// `POST /v1/refunds`.
    pub fn create(&self, params: CreateRefund) -> Request<Refund> {
        Request::new(
            self.client.clone(),
            Method::POST,
            "/v1/refunds".to_owned(),
            "refunds.create",
        )
        .params(&params)
    }

    /// `GET /v1/refunds/{id}`.
    pub fn retrieve(&self, id: &str) -> Request<Refund> {
        Request::new(
            self.client.clone(),
            Method::GET,
            object_path("refunds", id),
            "refunds.retrieve",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_refund_encodes_its_fields() {
        let params = CreateRefund::payment_intent("pi_1")
            .amount(500)
            .reason(RefundReason::RequestedByCustomer);
        assert_eq!(
            crate::form::to_form(&params).unwrap(),
            "amount=500&payment_intent=pi_1&reason=requested_by_customer"
        );
    }

    #[test]
    fn a_refund_decodes_unknown_statuses() {
        let refund: Refund = serde_json::from_str(
            r#"{"id":"re_1","amount":500,"currency":"usd","status":"in_limbo","reason":null}"#,
        )
        .unwrap();
        assert_eq!(refund.status, Some(RefundStatus::Unknown));
    }
}
