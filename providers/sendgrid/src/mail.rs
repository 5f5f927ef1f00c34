//! The body of `POST /v3/mail/send`: [`Mail`] and its parts.
//!
//! Shapes follow SendGrid's OpenAPI description (`tsg_mail_v3.json`). One deviation: the spec
//! types the message-level `custom_args` as a string, while the API (and the personalization
//! level) take an object of string values; it is an object here. Fields not modelled
//! (`asm`, `ip_pool_name`, `tracking_settings`, most `mail_settings`) can be added later without
//! breaking callers: every struct is `#[non_exhaustive]` and built with methods.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An email address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Address {
    /// The address (`alex@example.com`).
    pub email: String,
    /// The display name (`Alex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Address {
    /// An address without a display name.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            name: None,
        }
    }

    /// This address with a display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<&str> for Address {
    fn from(email: &str) -> Self {
        Self::new(email)
    }
}

impl From<String> for Address {
    fn from(email: String) -> Self {
        Self::new(email)
    }
}

/// One envelope of a send: who receives one copy of the message, and what is personal to them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Personalization {
    /// Recipients (at least one).
    #[serde(default)]
    pub to: Vec<Address>,
    /// Copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<Address>,
    /// Blind copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<Address>,
    /// A subject for this envelope, overriding the message's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Data for a dynamic template (`d-…`), as a JSON object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_template_data: BTreeMap<String, Value>,
    /// Custom arguments of this envelope, merged over the message's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_args: BTreeMap<String, String>,
    /// When to send this envelope (unix seconds, at most 72 h ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
}

impl Personalization {
    /// An envelope for `to`.
    pub fn new(to: impl Into<Address>) -> Self {
        Self {
            to: vec![to.into()],
            ..Self::default()
        }
    }

    /// One more recipient.
    pub fn to(mut self, to: impl Into<Address>) -> Self {
        self.to.push(to.into());
        self
    }

    /// One more copy recipient.
    pub fn cc(mut self, cc: impl Into<Address>) -> Self {
        self.cc.push(cc.into());
        self
    }

    /// One more blind-copy recipient.
    pub fn bcc(mut self, bcc: impl Into<Address>) -> Self {
        self.bcc.push(bcc.into());
        self
    }

    /// The subject of this envelope.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// One value for the dynamic template (`{{name}}`).
    pub fn template_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.dynamic_template_data.insert(key.into(), value.into());
        self
    }

    /// One custom argument of this envelope.
    pub fn custom_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_args.insert(key.into(), value.into());
        self
    }

    /// When to send this envelope (unix seconds).
    pub fn send_at(mut self, unix_seconds: i64) -> Self {
        self.send_at = Some(unix_seconds);
        self
    }

    /// How many addresses this envelope reaches (to + cc + bcc).
    pub fn recipients(&self) -> usize {
        self.to
            .len()
            .saturating_add(self.cc.len())
            .saturating_add(self.bcc.len())
    }
}

/// One body of the message, with its MIME type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Content {
    /// The MIME type (`text/plain`, `text/html`).
    #[serde(rename = "type")]
    pub mime_type: String,
    /// The body.
    pub value: String,
}

impl Content {
    /// A body of `mime_type`.
    pub fn new(mime_type: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            mime_type: mime_type.into(),
            value: value.into(),
        }
    }

    /// A `text/plain` body.
    pub fn text(value: impl Into<String>) -> Self {
        Self::new("text/plain", value)
    }

    /// A `text/html` body.
    pub fn html(value: impl Into<String>) -> Self {
        Self::new("text/html", value)
    }
}

/// How an attachment is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disposition {
    /// A file to open or download (the default).
    Attachment,
    /// Shown in the body (an image referenced by `cid:`).
    Inline,
}

/// A file sent with the message, base64-encoded as SendGrid requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attachment {
    /// The file's bytes, base64 (standard alphabet, padded).
    pub content: String,
    /// The file name, extension included.
    pub filename: String,
    /// The MIME type (`application/pdf`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// How it is shown (default: as an attachment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// The content id an inline image is referenced by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

impl Attachment {
    /// `bytes` as the file `filename` (encoded to base64 here).
    pub fn new(filename: impl Into<String>, bytes: &[u8]) -> Self {
        Self::from_base64(
            filename,
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )
    }

    /// A file whose content is already base64.
    pub fn from_base64(filename: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            filename: filename.into(),
            mime_type: None,
            disposition: None,
            content_id: None,
        }
    }

    /// The MIME type.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// Shown inline, referenced as `cid:<content_id>`.
    pub fn inline(mut self, content_id: impl Into<String>) -> Self {
        self.disposition = Some(Disposition::Inline);
        self.content_id = Some(content_id.into());
        self
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MailSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sandbox_mode: Option<Enable>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Enable {
    enable: bool,
}

/// One `POST /v3/mail/send` request: a message and its envelopes.
///
/// Checked before sending ([`crate::validate`]): at most 1,000 personalizations and 1,000
/// recipients in total, at least one recipient, content or a template, under 30 MB, custom
/// arguments under 10,000 bytes.
///
/// ```
/// use ratewise_sendgrid::{Content, Mail, Personalization};
///
/// let mail = Mail::new("orders@example.com")
///     .subject("Your order")
///     .content(Content::text("It ships today."))
///     .personalization(Personalization::new("alex@example.com").template_data("name", "Alex"))
///     .category("orders");
/// assert_eq!(mail.recipients(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Mail {
    /// The envelopes (1 to 1,000).
    #[serde(default)]
    pub personalizations: Vec<Personalization>,
    /// The sender (a verified sender of the account).
    pub from: Address,
    /// Where replies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Address>,
    /// The subject, unless every envelope or the template has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The bodies (text, html), unless a template supplies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Content>,
    /// Files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// A template id (`d-…` for dynamic templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Categories (at most 10, each at most 255 characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Custom arguments carried with every envelope into the event webhook.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_args: BTreeMap<String, String>,
    /// When to send (unix seconds, at most 72 h ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
    /// A batch id (from the Scheduled Sends API), to pause or cancel the send later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mail_settings: Option<MailSettings>,
}

impl Mail {
    /// A message from `from`, with no envelope yet.
    pub fn new(from: impl Into<Address>) -> Self {
        Self {
            personalizations: Vec::new(),
            from: from.into(),
            reply_to: None,
            subject: None,
            content: Vec::new(),
            attachments: Vec::new(),
            template_id: None,
            categories: Vec::new(),
            custom_args: BTreeMap::new(),
            send_at: None,
            batch_id: None,
            mail_settings: None,
        }
    }

    /// One more envelope.
    pub fn personalization(mut self, personalization: Personalization) -> Self {
        self.personalizations.push(personalization);
        self
    }

    /// These envelopes, replacing any.
    pub fn personalizations(mut self, all: impl IntoIterator<Item = Personalization>) -> Self {
        self.personalizations = all.into_iter().collect();
        self
    }

    /// Where replies go.
    pub fn reply_to(mut self, reply_to: impl Into<Address>) -> Self {
        self.reply_to = Some(reply_to.into());
        self
    }

    /// The subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// One more body.
    pub fn content(mut self, content: Content) -> Self {
        self.content.push(content);
        self
    }

    /// One more file.
    pub fn attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// A template (`d-…` for a dynamic template).
    pub fn template_id(mut self, id: impl Into<String>) -> Self {
        self.template_id = Some(id.into());
        self
    }

    /// One more category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// One custom argument of the whole send.
    pub fn custom_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_args.insert(key.into(), value.into());
        self
    }

    /// When to send (unix seconds).
    pub fn send_at(mut self, unix_seconds: i64) -> Self {
        self.send_at = Some(unix_seconds);
        self
    }

    /// The batch id.
    pub fn batch_id(mut self, id: impl Into<String>) -> Self {
        self.batch_id = Some(id.into());
        self
    }

    /// Sandbox mode: SendGrid validates the request and sends nothing (default off).
    pub fn sandbox_mode(mut self, enable: bool) -> Self {
        self.mail_settings
            .get_or_insert_with(MailSettings::default)
            .sandbox_mode = Some(Enable { enable });
        self
    }

    /// How many addresses the send reaches (to + cc + bcc over every envelope).
    pub fn recipients(&self) -> usize {
        self.personalizations
            .iter()
            .fold(0, |n, p| n.saturating_add(p.recipients()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mail_serialises_to_sendgrids_field_names_and_only_what_is_set() {
        let mail = Mail::new(Address::new("orders@example.com").name("Orders"))
            .personalization(
                Personalization::new(Address::new("alex@example.com").name("Alex"))
                    .cc("charlie@example.com")
                    .subject("Hello, Alex")
                    .template_data("customer_name", "Alex")
                    .custom_arg("order", "6735")
                    .send_at(1_617_260_400),
            )
            .reply_to("service@example.com")
            .subject("Your order")
            .content(Content::html("<p>Hi</p>"))
            .attachment(Attachment::new("a.txt", b"hello").mime_type("text/plain"))
            .template_id("d-123")
            .category("orders")
            .custom_arg("campaign", "spring")
            .send_at(1_617_260_400)
            .batch_id("batch-1")
            .sandbox_mode(true);
        let value = serde_json::to_value(&mail).unwrap();
        assert_eq!(
            value,
            json!({
                "personalizations": [{
                    "to": [{"email": "alex@example.com", "name": "Alex"}],
                    "cc": [{"email": "charlie@example.com"}],
                    "subject": "Hello, Alex",
                    "dynamic_template_data": {"customer_name": "Alex"},
                    "custom_args": {"order": "6735"},
                    "send_at": 1617260400
                }],
                "from": {"email": "orders@example.com", "name": "Orders"},
                "reply_to": {"email": "service@example.com"},
                "subject": "Your order",
                "content": [{"type": "text/html", "value": "<p>Hi</p>"}],
                "attachments": [{"content": "aGVsbG8=", "filename": "a.txt", "type": "text/plain"}],
                "template_id": "d-123",
                "categories": ["orders"],
                "custom_args": {"campaign": "spring"},
                "send_at": 1617260400,
                "batch_id": "batch-1",
                "mail_settings": {"sandbox_mode": {"enable": true}}
            })
        );
        let back: Mail = serde_json::from_value(value).unwrap();
        assert_eq!(back, mail);
    }

    #[test]
    fn the_specs_no_template_example_decodes_and_counts_its_recipients() {
        let mail: Mail = serde_json::from_value(json!({
            "personalizations": [
                {"to": [{"email": "alex@example.com", "name": "Alex"}, {"email": "bola@example.com", "name": "Bola"}],
                 "cc": [{"email": "charlie@example.com", "name": "Charlie"}],
                 "bcc": [{"email": "dana@example.com", "name": "Dana"}]},
                {"from": {"email": "sales@example.com", "name": "Example Sales Team"},
                 "to": [{"email": "ira@example.com", "name": "Ira"}],
                 "bcc": [{"email": "lee@example.com", "name": "Lee"}]}
            ],
            "from": {"email": "orders@example.com", "name": "Example Order Confirmation"},
            "subject": "Your Example Order Confirmation",
            "content": [{"type": "text/html", "value": "<p>Hello from Twilio SendGrid!</p>"}],
            "attachments": [{"content": "PCFET0NUWVBFIGh0bWw+", "filename": "index.html", "type": "text/html", "disposition": "attachment"}],
            "categories": ["cake", "pie", "baking"],
            "asm": {"group_id": 12345}
        }))
        .unwrap();
        assert_eq!(mail.recipients(), 6);
        assert_eq!(
            mail.attachments[0].disposition,
            Some(Disposition::Attachment)
        );
    }

    #[test]
    fn an_inline_attachment_names_its_content_id() {
        let image = Attachment::new("logo.png", &[0x89, b'P', b'N', b'G']).inline("logo");
        assert_eq!(image.disposition, Some(Disposition::Inline));
        assert_eq!(image.content_id.as_deref(), Some("logo"));
        assert_eq!(image.content, "iVBORw==");
    }
}
