//! Customers: create, retrieve, update, list.

use std::collections::HashMap;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::StripeClient;
use crate::list::{List, Object};
use crate::request::{Request, object_path};

/// A Customer. Fields not modelled here are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Customer {
    /// `cus_…`.
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// True in live mode.
    #[serde(default)]
    pub livemode: bool,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Full name or business name.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Balance in the smallest currency unit (negative: credit).
    #[serde(default)]
    pub balance: i64,
    /// Default currency, lowercase.
    #[serde(default)]
    pub currency: Option<String>,
    /// True when the latest invoice is unpaid.
    #[serde(default)]
    pub delinquent: Option<bool>,
    /// Your key-value data.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl Object for Customer {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Parameters of `POST /v1/customers` and `POST /v1/customers/{id}`: every field optional;
/// unset fields are not sent (an update leaves them unchanged).
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct CustomerParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
}

impl CustomerParams {
    /// No fields set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The phone number.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    /// The description (an empty string unsets it on update).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// A payment method to attach (`pm_…`).
    pub fn payment_method(mut self, id: impl Into<String>) -> Self {
        self.payment_method = Some(id.into());
        self
    }

    /// One metadata entry (an empty value deletes the key on update).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The Customers resource of a [`StripeClient`].
#[derive(Clone, Debug)]
pub struct Customers {
    client: StripeClient,
}

impl Customers {
    pub(crate) fn new(client: StripeClient) -> Self {
        Self { client }
    }

    /// `POST /v1/customers`.
    pub fn create(&self, params: CustomerParams) -> Request<Customer> {
        Request::new(
            self.client.clone(),
            Method::POST,
            "/v1/customers".to_owned(),
            "customers.create",
        )
        .params(&params)
    }

    /// `GET /v1/customers/{id}`.
    pub fn retrieve(&self, id: &str) -> Request<Customer> {
        Request::new(
            self.client.clone(),
            Method::GET,
            object_path("customers", id),
            "customers.retrieve",
        )
    }

    /// `POST /v1/customers/{id}`: changes the fields set in `params`.
    pub fn update(&self, id: &str, params: CustomerParams) -> Request<Customer> {
        Request::new(
            self.client.clone(),
            Method::POST,
            object_path("customers", id),
            "customers.update",
        )
        .params(&params)
    }

    /// `GET /v1/customers`: one page (filter by email with `.param("email", …)`).
    pub fn list(&self) -> Request<List<Customer>> {
        Request::new(
            self.client.clone(),
            Method::GET,
            "/v1/customers".to_owned(),
            "customers.list",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_decodes_with_nulls_and_unknown_fields() {
        let customer: Customer = serde_json::from_str(
            r#"{"id":"cus_1","object":"customer","created":1,"livemode":false,"email":null,
            "name":"Ada","balance":-500,"invoice_settings":{"footer":null},"metadata":{}}"#,
        )
        .unwrap();
        assert_eq!(customer.name.as_deref(), Some("Ada"));
        assert_eq!(customer.email, None);
        assert_eq!(customer.balance, -500);
    }

    #[test]
    fn update_params_send_only_what_was_set() {
        let params = CustomerParams::new().email("a@b.c").metadata("tier", "");
        assert_eq!(
            crate::form::to_form(&params).unwrap(),
            "email=a%40b.c&metadata[tier]="
        );
    }
}
