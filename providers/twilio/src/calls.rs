//! Calls: create and fetch.

use serde::Deserialize;

use crate::client::TwilioClient;
use crate::form;
use crate::limits;
use crate::request::Request;

/// A call's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CallStatus {
    /// Waiting to be dialled.
    Queued,
    /// Ringing.
    Ringing,
    /// Answered, in progress.
    InProgress,
    /// Canceled while queued or ringing.
    Canceled,
    /// Ended after being answered.
    Completed,
    /// Could not be placed.
    Failed,
    /// The callee was busy.
    Busy,
    /// Not answered.
    NoAnswer,
    /// A status this crate does not know yet.
    #[serde(other)]
    Unknown,
}

/// A Call resource (`CA…`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Call {
    /// The call SID.
    pub sid: String,
    /// The account that placed it.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// The callee.
    #[serde(default)]
    pub to: Option<String>,
    /// The caller.
    #[serde(default)]
    pub from: Option<String>,
    /// The status.
    #[serde(default)]
    pub status: Option<CallStatus>,
    /// `inbound`, `outbound-api` or `outbound-dial`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Length in seconds, once completed (a string in the API).
    #[serde(default)]
    pub duration: Option<String>,
    /// The parent call, for a dialled leg.
    #[serde(default)]
    pub parent_call_sid: Option<String>,
    /// The price charged (a decimal string).
    #[serde(default)]
    pub price: Option<String>,
    /// The price's currency.
    #[serde(default)]
    pub price_unit: Option<String>,
    /// When it started (RFC 2822).
    #[serde(default)]
    pub start_time: Option<String>,
    /// When it ended (RFC 2822).
    #[serde(default)]
    pub end_time: Option<String>,
    /// When it was created (RFC 2822).
    #[serde(default)]
    pub date_created: Option<String>,
    /// Its URI, relative to the API host.
    #[serde(default)]
    pub uri: Option<String>,
}

/// What the call does once answered: one of Twilio's three required instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Instructions {
    /// Fetch TwiML from this URL (`Url`).
    Url(String),
    /// Run this TwiML (`Twiml`).
    Twiml(String),
    /// Run this TwiML application (`ApplicationSid`).
    Application(String),
}

/// The parameters of a call create.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateCall {
    /// The callee (`To`).
    pub to: String,
    /// The caller id (`From`).
    pub from: String,
    /// What happens when answered.
    pub instructions: Instructions,
    /// Where Twilio posts status changes (`StatusCallback`).
    pub status_callback: Option<String>,
}

impl CreateCall {
    /// A call to `to` from `from`, running `instructions` once answered.
    pub fn new(to: impl Into<String>, from: impl Into<String>, instructions: Instructions) -> Self {
        Self {
            to: to.into(),
            from: from.into(),
            instructions,
            status_callback: None,
        }
    }

    /// The status callback URL.
    pub fn status_callback(mut self, url: impl Into<String>) -> Self {
        self.status_callback = Some(url.into());
        self
    }

    fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![
            ("To".to_owned(), self.to.clone()),
            ("From".to_owned(), self.from.clone()),
        ];
        let (name, value) = match &self.instructions {
            Instructions::Url(url) => ("Url", url),
            Instructions::Twiml(twiml) => ("Twiml", twiml),
            Instructions::Application(sid) => ("ApplicationSid", sid),
        };
        form.push((name.to_owned(), value.clone()));
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback".to_owned(), url.clone()));
        }
        form
    }
}

/// The Calls resource of one account.
#[derive(Clone, Debug)]
pub struct Calls {
    client: TwilioClient,
}

impl Calls {
    pub(crate) fn new(client: TwilioClient) -> Self {
        Self { client }
    }

    /// Places a call. One concurrency slot; retried only when certainly not processed, like a
    /// message create.
    pub fn create(&self, params: CreateCall) -> Request<Call> {
        Request::create(
            self.client.clone(),
            self.client.account_path("Calls"),
            "calls.create",
            params.form(),
            ratewise_core::quota::Cost::none().with(limits::CONCURRENCY, 1),
            None,
            "call",
        )
    }

    /// Fetches the call `sid`.
    pub fn fetch(&self, sid: &str) -> Request<Call> {
        let path = self
            .client
            .account_path(&format!("Calls/{}.json", form::path_segment(sid)));
        Request::get(self.client.clone(), path, "calls.fetch", Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_decodes_and_its_form_names_one_instruction() {
        let call: Call = serde_json::from_str(
            r#"{"sid":"CA1","status":"in-progress","to":"+1","from":"+2","duration":null}"#,
        )
        .unwrap();
        assert_eq!(call.status, Some(CallStatus::InProgress));
        let form = CreateCall::new("+1", "+2", Instructions::Twiml("<Response/>".into())).form();
        assert_eq!(form[2], ("Twiml".to_owned(), "<Response/>".to_owned()));
    }
}
