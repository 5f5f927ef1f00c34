//! PaymentIntents: create, retrieve, confirm, cancel, list.

use std::collections::HashMap;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::StripeClient;
use crate::customers::Customer;
use crate::expandable::Expandable;
use crate::list::{List, Object};
use crate::request::{Request, object_path};

/// The status of a PaymentIntent. Values added by Stripe later read as [`Self::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentIntentStatus {
    /// Waiting for a payment method.
    RequiresPaymentMethod,
    /// Waiting for confirmation.
    RequiresConfirmation,
    /// Waiting for the customer (3-D Secure, a redirect).
    RequiresAction,
    /// Being processed.
    Processing,
    /// Authorised, waiting for capture (`capture_method: manual`).
    RequiresCapture,
    /// Canceled.
    Canceled,
    /// Paid.
    Succeeded,
    /// A status this crate does not know yet.
    #[serde(other)]
    Unknown,
}

/// When the funds are captured. Unknown values read as [`Self::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CaptureMethod {
    /// Captured when the customer authorises (the default).
    Automatic,
    /// Captured asynchronously after authorisation.
    AutomaticAsync,
    /// Captured later, with a capture call.
    Manual,
    /// A value this crate does not know yet (never sent).
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Why a PaymentIntent was canceled. Unknown values read as [`Self::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancellationReason {
    /// Abandoned by the customer.
    Abandoned,
    /// Canceled automatically.
    Automatic,
    /// A duplicate.
    Duplicate,
    /// Its invoice failed.
    FailedInvoice,
    /// Fraudulent.
    Fraudulent,
    /// The customer asked.
    RequestedByCustomer,
    /// Its invoice was voided.
    VoidInvoice,
    /// A value this crate does not know yet (never sent).
    #[serde(other, skip_serializing)]
    Unknown,
}

/// A PaymentIntent: one attempt to collect a payment, through its lifecycle.
///
/// Fields not modelled here are ignored; nullable and expandable fields are `Option`s.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PaymentIntent {
    /// `pi_…`.
    pub id: String,
    /// Amount to collect, in the currency's smallest unit (cents).
    pub amount: i64,
    /// Amount that can be captured.
    #[serde(default)]
    pub amount_capturable: i64,
    /// Amount received.
    #[serde(default)]
    pub amount_received: i64,
    /// Three-letter ISO currency code, lowercase.
    pub currency: String,
    /// The status.
    pub status: PaymentIntentStatus,
    /// When the funds are captured.
    #[serde(default)]
    pub capture_method: Option<CaptureMethod>,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// True in live mode.
    #[serde(default)]
    pub livemode: bool,
    /// The customer, an id unless expanded.
    #[serde(default)]
    pub customer: Option<Expandable<Customer>>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The client secret (to confirm in the browser). Never log it.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The payment method attached, if any (an id unless expanded).
    #[serde(default)]
    pub payment_method: Option<serde_json::Value>,
    /// Payment method types allowed.
    #[serde(default)]
    pub payment_method_types: Vec<String>,
    /// The latest charge (an id unless expanded).
    #[serde(default)]
    pub latest_charge: Option<serde_json::Value>,
    /// The error of the last payment attempt, if it failed.
    #[serde(default)]
    pub last_payment_error: Option<serde_json::Value>,
    /// What the customer must do next, if anything.
    #[serde(default)]
    pub next_action: Option<serde_json::Value>,
    /// When canceled: unix seconds.
    #[serde(default)]
    pub canceled_at: Option<i64>,
    /// When canceled: why.
    #[serde(default)]
    pub cancellation_reason: Option<CancellationReason>,
    /// Email for the receipt.
    #[serde(default)]
    pub receipt_email: Option<String>,
    /// Your key-value data.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl Object for PaymentIntent {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Parameters of `POST /v1/payment_intents`: amount and currency required, the rest optional.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CreatePaymentIntent {
    amount: i64,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    payment_method_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture_method: Option<CaptureMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    automatic_payment_methods: Option<AutomaticPaymentMethods>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct AutomaticPaymentMethods {
    enabled: bool,
}

impl CreatePaymentIntent {
    /// `amount` in the currency's smallest unit (2000 = $20.00) of `currency` (`"usd"`).
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self {
            amount,
            currency: currency.into(),
            customer: None,
            description: None,
            payment_method: None,
            payment_method_types: Vec::new(),
            confirm: None,
            capture_method: None,
            receipt_email: None,
            automatic_payment_methods: None,
            metadata: HashMap::new(),
        }
    }

    /// The customer (`cus_…`; default none).
    pub fn customer(mut self, id: impl Into<String>) -> Self {
        self.customer = Some(id.into());
        self
    }

    /// A description (default none).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The payment method (`pm_…`; default none).
    pub fn payment_method(mut self, id: impl Into<String>) -> Self {
        self.payment_method = Some(id.into());
        self
    }

    /// Allows a payment method type (`card`; default: Stripe's choice).
    pub fn payment_method_type(mut self, kind: impl Into<String>) -> Self {
        self.payment_method_types.push(kind.into());
        self
    }

    /// Confirms at creation (default false).
    pub fn confirm(mut self, confirm: bool) -> Self {
        self.confirm = Some(confirm);
        self
    }

    /// When to capture (default automatic).
    pub fn capture_method(mut self, method: CaptureMethod) -> Self {
        self.capture_method = Some(method);
        self
    }

    /// Email for the receipt (default none).
    pub fn receipt_email(mut self, email: impl Into<String>) -> Self {
        self.receipt_email = Some(email.into());
        self
    }

    /// Lets Stripe pick the payment methods from the Dashboard settings (default: unset).
    pub fn automatic_payment_methods(mut self, enabled: bool) -> Self {
        self.automatic_payment_methods = Some(AutomaticPaymentMethods { enabled });
        self
    }

    /// One metadata entry (default none).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The PaymentIntents resource of a [`StripeClient`].
#[derive(Clone, Debug)]
pub struct PaymentIntents {
    client: StripeClient,
}

impl PaymentIntents {
    pub(crate) fn new(client: StripeClient) -> Self {
        Self { client }
    }

    /// `POST /v1/payment_intents`.
    pub fn create(&self, params: CreatePaymentIntent) -> Request<PaymentIntent> {
        Request::new(
            self.client.clone(),
            Method::POST,
            "/v1/payment_intents".to_owned(),
            "payment_intents.create",
        )
        .params(&params)
    }

    /// `GET /v1/payment_intents/{id}`.
    pub fn retrieve(&self, id: &str) -> Request<PaymentIntent> {
        Request::new(
            self.client.clone(),
            Method::GET,
            object_path("payment_intents", id),
            "payment_intents.retrieve",
        )
    }

    /// `POST /v1/payment_intents/{id}/confirm` (add `payment_method`, `return_url`, … with
    /// [`Request::param`]).
    pub fn confirm(&self, id: &str) -> Request<PaymentIntent> {
        Request::new(
            self.client.clone(),
            Method::POST,
            format!("{}/confirm", object_path("payment_intents", id)),
            "payment_intents.confirm",
        )
    }

    /// `POST /v1/payment_intents/{id}/cancel`, with an optional reason.
    pub fn cancel(&self, id: &str, reason: Option<CancellationReason>) -> Request<PaymentIntent> {
        let request = Request::new(
            self.client.clone(),
            Method::POST,
            format!("{}/cancel", object_path("payment_intents", id)),
            "payment_intents.cancel",
        );
        match reason.and_then(|r| serde_json::to_value(r).ok()) {
            Some(reason) => request.param("cancellation_reason", reason),
            None => request,
        }
    }

    /// `GET /v1/payment_intents`: one page; see [`Request::pages`] for all of them.
    pub fn list(&self) -> Request<List<PaymentIntent>> {
        Request::new(
            self.client.clone(),
            Method::GET,
            "/v1/payment_intents".to_owned(),
            "payment_intents.list",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::to_form;

    fn pairs(form: &str) -> std::collections::BTreeSet<String> {
        form.split('&').map(str::to_owned).collect()
    }

    #[test]
    fn create_params_encode_the_required_fields_and_only_the_optional_ones_set() {
        let params = CreatePaymentIntent::new(2000, "usd")
            .payment_method_type("card")
            .capture_method(CaptureMethod::Manual)
            .metadata("order_id", "6735");
        assert_eq!(
            pairs(&to_form(&params).unwrap()),
            pairs(
                "amount=2000&currency=usd&payment_method_types[]=card&capture_method=manual&metadata[order_id]=6735"
            )
        );
        assert_eq!(
            to_form(&CreatePaymentIntent::new(5, "eur")).unwrap(),
            "amount=5&currency=eur"
        );
    }

    #[test]
    fn a_payment_intent_decodes_with_unknown_fields_and_statuses() {
        let intent: PaymentIntent = serde_json::from_str(
            r#"{"id":"pi_1","object":"payment_intent","amount":2000,"currency":"usd",
            "status":"requires_teleportation","capture_method":"automatic_async","created":1,
            "livemode":false,"customer":"cus_1","brand_new_field":{"x":1},"metadata":{"a":"b"}}"#,
        )
        .unwrap();
        assert_eq!(intent.status, PaymentIntentStatus::Unknown);
        assert_eq!(intent.capture_method, Some(CaptureMethod::AutomaticAsync));
        assert_eq!(intent.customer.as_ref().map(Expandable::id), Some("cus_1"));
        assert_eq!(intent.metadata.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn an_expanded_customer_decodes_as_the_object() {
        let intent: PaymentIntent = serde_json::from_str(
            r#"{"id":"pi_1","amount":1,"currency":"eur","status":"succeeded",
            "customer":{"id":"cus_9","object":"customer","email":"a@b.c","created":5}}"#,
        )
        .unwrap();
        let customer = intent.customer.unwrap();
        assert_eq!(customer.id(), "cus_9");
        assert_eq!(
            customer.as_object().unwrap().email.as_deref(),
            Some("a@b.c")
        );
    }
}
