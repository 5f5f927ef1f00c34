//! Messages: create (SMS/MMS, paced per sender), fetch, list with paging.

use serde::Deserialize;

use crate::client::TwilioClient;
use crate::form;
use crate::request::Request;
use crate::segments;

/// A message's delivery status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageStatus {
    /// Accepted by a Messaging Service, not yet queued.
    Accepted,
    /// Scheduled for later.
    Scheduled,
    /// Canceled before sending.
    Canceled,
    /// In the sender's queue.
    Queued,
    /// Being sent to the carrier.
    Sending,
    /// Handed to the carrier.
    Sent,
    /// Could not be sent.
    Failed,
    /// Delivered to the handset.
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// Inbound, being received.
    Receiving,
    /// Inbound, received.
    Received,
    /// Read (WhatsApp).
    Read,
    /// Some parts delivered.
    PartiallyDelivered,
    /// A status this crate does not know yet.
    #[serde(other)]
    Unknown,
}

/// A Message resource (`SM…`/`MM…`), as Twilio's 2010 API returns it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// The message SID.
    pub sid: String,
    /// The account that sent it.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// The recipient.
    #[serde(default)]
    pub to: Option<String>,
    /// The sender (a number, short code, alphanumeric id or channel address).
    #[serde(default)]
    pub from: Option<String>,
    /// The Messaging Service used, if any.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// The text.
    #[serde(default)]
    pub body: Option<String>,
    /// The delivery status.
    #[serde(default)]
    pub status: Option<MessageStatus>,
    /// Segments, as Twilio counts them (a string in the API).
    #[serde(default)]
    pub num_segments: Option<String>,
    /// Media items (a string in the API).
    #[serde(default)]
    pub num_media: Option<String>,
    /// `inbound`, `outbound-api`, `outbound-call` or `outbound-reply`.
    #[serde(default)]
    pub direction: Option<String>,
    /// The error code of a failed or undelivered message.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// The error's description.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The price charged (negative, a decimal string).
    #[serde(default)]
    pub price: Option<String>,
    /// The price's currency.
    #[serde(default)]
    pub price_unit: Option<String>,
    /// When it was created (RFC 2822).
    #[serde(default)]
    pub date_created: Option<String>,
    /// When it was sent (RFC 2822).
    #[serde(default)]
    pub date_sent: Option<String>,
    /// When it was last updated (RFC 2822).
    #[serde(default)]
    pub date_updated: Option<String>,
    /// Its URI, relative to the API host.
    #[serde(default)]
    pub uri: Option<String>,
}

/// Who a message is sent from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sender {
    /// A number, short code or alphanumeric id (`From`): paced by its own budget.
    From(String),
    /// A Messaging Service (`MessagingServiceSid`): Twilio picks the sender; no sender budget.
    MessagingService(String),
}

/// The parameters of a message create.
///
/// ```
/// use ratewise_twilio::CreateMessage;
///
/// let sms = CreateMessage::new("+14155552671", "+15005550006").body("Your code is 123456");
/// assert_eq!(sms.segments(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateMessage {
    /// The recipient (`To`).
    pub to: String,
    /// The sender.
    pub sender: Sender,
    /// The text (`Body`).
    pub body: Option<String>,
    /// Media URLs (`MediaUrl`, repeated): an MMS.
    pub media_urls: Vec<String>,
    /// Where Twilio posts status changes (`StatusCallback`).
    pub status_callback: Option<String>,
}

impl CreateMessage {
    /// A message to `to` from the number (or short code, or alphanumeric id) `from`.
    pub fn new(to: impl Into<String>, from: impl Into<String>) -> Self {
        Self::with_sender(to, Sender::From(from.into()))
    }

    /// A message to `to` through the Messaging Service `service_sid` (`MG…`).
    pub fn via_service(to: impl Into<String>, service_sid: impl Into<String>) -> Self {
        Self::with_sender(to, Sender::MessagingService(service_sid.into()))
    }

    fn with_sender(to: impl Into<String>, sender: Sender) -> Self {
        Self {
            to: to.into(),
            sender,
            body: None,
            media_urls: Vec::new(),
            status_callback: None,
        }
    }

    /// The text.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// One more media URL (up to 10 per message).
    pub fn media_url(mut self, url: impl Into<String>) -> Self {
        self.media_urls.push(url.into());
        self
    }

    /// The status callback URL.
    pub fn status_callback(mut self, url: impl Into<String>) -> Self {
        self.status_callback = Some(url.into());
        self
    }

    /// The `From` number, unless sent through a Messaging Service.
    pub fn from_number(&self) -> Option<&str> {
        match &self.sender {
            Sender::From(from) => Some(from),
            Sender::MessagingService(_) => None,
        }
    }

    /// Segments this message spends of its sender's throughput: the body's count
    /// ([`segments::count`]), or 1 for an MMS.
    pub fn segments(&self) -> u32 {
        if !self.media_urls.is_empty() {
            return 1;
        }
        segments::count(self.body.as_deref().unwrap_or_default()).count
    }

    fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![("To".to_owned(), self.to.clone())];
        match &self.sender {
            Sender::From(from) => form.push(("From".to_owned(), from.clone())),
            Sender::MessagingService(sid) => {
                form.push(("MessagingServiceSid".to_owned(), sid.clone()));
            }
        }
        if let Some(body) = &self.body {
            form.push(("Body".to_owned(), body.clone()));
        }
        for url in &self.media_urls {
            form.push(("MediaUrl".to_owned(), url.clone()));
        }
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback".to_owned(), url.clone()));
        }
        form
    }
}

/// Filters and page size of a message list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListMessages {
    /// Only messages to this number.
    pub to: Option<String>,
    /// Only messages from this number.
    pub from: Option<String>,
    /// Only messages sent on this date (`YYYY-MM-DD`).
    pub date_sent: Option<String>,
    /// Messages per page (Twilio: default 50, at most 1,000).
    pub page_size: Option<u32>,
}

impl ListMessages {
    /// Every message, Twilio's default page size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only messages to `to`.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Only messages from `from`.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// Only messages sent on `date` (`YYYY-MM-DD`).
    pub fn date_sent(mut self, date: impl Into<String>) -> Self {
        self.date_sent = Some(date.into());
        self
    }

    /// `size` messages per page.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        let fields = [
            ("To", &self.to),
            ("From", &self.from),
            ("DateSent", &self.date_sent),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                query.push((name.to_owned(), value.clone()));
            }
        }
        if let Some(size) = self.page_size {
            query.push(("PageSize".to_owned(), size.to_string()));
        }
        query
    }
}

/// One page of messages.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MessagePage {
    /// The messages on this page, newest first.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The page number, from 0.
    #[serde(default)]
    pub page: u32,
    /// The page size.
    #[serde(default)]
    pub page_size: u32,
    /// The next page's URI (relative, with its `PageToken`), if there is one.
    #[serde(default)]
    pub next_page_uri: Option<String>,
    /// The previous page's URI, if there is one.
    #[serde(default)]
    pub previous_page_uri: Option<String>,
    /// This page's URI.
    #[serde(default)]
    pub uri: Option<String>,
}

/// The Messages resource of one account.
#[derive(Clone, Debug)]
pub struct Messages {
    client: TwilioClient,
}

impl Messages {
    pub(crate) fn new(client: TwilioClient) -> Self {
        Self { client }
    }

    /// Creates (sends) a message. Charged one concurrency slot and its segments against its
    /// sender's budget; retried only when certainly not processed (see [`crate::request`]).
    pub fn create(&self, params: CreateMessage) -> Request<Message> {
        let from = params.from_number().map(str::to_owned);
        let cost = self
            .client
            .upstream()
            .provider()
            .message_cost(from.as_deref(), params.segments());
        Request::create(
            self.client.clone(),
            self.client.account_path("Messages"),
            "messages.create",
            params.form(),
            cost,
            from,
            "SMS",
        )
    }

    /// Fetches the message `sid`.
    pub fn fetch(&self, sid: &str) -> Request<Message> {
        let path = self
            .client
            .account_path(&format!("Messages/{}.json", form::path_segment(sid)));
        Request::get(self.client.clone(), path, "messages.fetch", Vec::new())
    }

    /// Lists messages, first page.
    pub fn list(&self, params: ListMessages) -> Request<MessagePage> {
        let path = self.client.account_path("Messages.json");
        Request::get(self.client.clone(), path, "messages.list", params.query())
    }

    /// The page after `page`, if there is one (Twilio's `next_page_uri`).
    pub fn next_page(&self, page: &MessagePage) -> Option<Request<MessagePage>> {
        let uri = page.next_page_uri.as_deref()?;
        uri.starts_with('/').then(|| {
            Request::get(
                self.client.clone(),
                uri.to_owned(),
                "messages.list",
                Vec::new(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_decodes_from_the_api_shape() {
        let message: Message = serde_json::from_str(
            r#"{"account_sid":"AC1","api_version":"2010-04-01","body":"Hi","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","date_sent":null,"direction":"outbound-api","error_code":null,"error_message":null,"from":"+15005550006","messaging_service_sid":null,"num_media":"0","num_segments":"1","price":null,"price_unit":"USD","sid":"SM1","status":"queued","subresource_uris":{"media":"/x"},"to":"+14155552671","uri":"/2010-04-01/Accounts/AC1/Messages/SM1.json"}"#,
        )
        .unwrap();
        assert_eq!(message.sid, "SM1");
        assert_eq!(message.status, Some(MessageStatus::Queued));
        assert_eq!(message.num_segments.as_deref(), Some("1"));
        let odd: Message = serde_json::from_str(r#"{"sid":"SM2","status":"teleported"}"#).unwrap();
        assert_eq!(odd.status, Some(MessageStatus::Unknown));
    }

    #[test]
    fn the_form_carries_every_field_and_media_repeats() {
        let params = CreateMessage::new("+14155552671", "+15005550006")
            .body("Hi")
            .media_url("https://a/1.png")
            .media_url("https://a/2.png")
            .status_callback("https://cb");
        assert_eq!(params.segments(), 1, "an MMS is one");
        let names: Vec<_> = params.form().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "To",
                "From",
                "Body",
                "MediaUrl",
                "MediaUrl",
                "StatusCallback"
            ]
        );
        let service = CreateMessage::via_service("+14155552671", "MG1").body(&*"a".repeat(200));
        assert_eq!(service.from_number(), None);
        assert_eq!(service.segments(), 2);
        assert_eq!(
            service.form()[1],
            ("MessagingServiceSid".to_owned(), "MG1".to_owned())
        );
    }

    #[test]
    fn list_filters_become_the_query() {
        let query = ListMessages::new()
            .to("+1")
            .from("+2")
            .page_size(20)
            .query();
        assert_eq!(query.len(), 3);
        assert_eq!(query[2], ("PageSize".to_owned(), "20".to_owned()));
    }
}
