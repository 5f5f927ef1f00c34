//! The checks SendGrid's mail send applies, made before sending: a request that breaks them
//! would be answered 400 (or 413) and cost a request of the endpoint's budget for nothing.
//!
//! Limits (SendGrid's mail send documentation):
//!
//! | what | limit | constant |
//! |---|---|---|
//! | personalizations per request | 1,000 | [`MAX_PERSONALIZATIONS`] |
//! | recipients (to + cc + bcc) per request | 1,000 | [`MAX_RECIPIENTS`] |
//! | request size | under 30 MB (taken as 30,000,000 bytes of JSON, the stricter reading) | [`MAX_BYTES`] |
//! | custom arguments | under 10,000 bytes (their JSON), per envelope with the message's merged in | [`MAX_CUSTOM_ARGS_BYTES`] |
//! | categories | at most 10, each at most 255 characters | [`MAX_CATEGORIES`] |
//!
//! Also required: at least one recipient, a `to` in every envelope, a body (`content`) or a
//! `template_id`, and a subject (message-level, in every envelope, or from a template).

use std::collections::BTreeMap;

use crate::mail::Mail;

/// At most 1,000 personalizations per request.
pub const MAX_PERSONALIZATIONS: usize = 1_000;
/// At most 1,000 recipients (to + cc + bcc) per request.
pub const MAX_RECIPIENTS: usize = 1_000;
/// A request must be smaller than this many bytes (30 MB).
pub const MAX_BYTES: usize = 30_000_000;
/// Custom arguments must be smaller than this many bytes of JSON.
pub const MAX_CUSTOM_ARGS_BYTES: usize = 10_000;
/// At most 10 categories.
pub const MAX_CATEGORIES: usize = 10;
/// A category is at most 255 characters.
pub const MAX_CATEGORY_CHARS: usize = 255;

/// A mail that SendGrid would refuse, with the field at fault. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMail {
    /// More than [`MAX_PERSONALIZATIONS`] envelopes.
    #[error(
        "`personalizations`: {count} envelopes, at most {MAX_PERSONALIZATIONS} per request; split the send"
    )]
    TooManyPersonalizations {
        /// How many there were.
        count: usize,
    },
    /// More than [`MAX_RECIPIENTS`] addresses in total.
    #[error(
        "`personalizations`: {count} recipients (to + cc + bcc), at most {MAX_RECIPIENTS} per request; split the send"
    )]
    TooManyRecipients {
        /// How many there were.
        count: usize,
    },
    /// No recipient at all.
    #[error("`personalizations`: no recipient; add at least one envelope with a `to`")]
    NoRecipients,
    /// An envelope without a `to`.
    #[error("`personalizations.{index}.to`: every envelope needs at least one `to` address")]
    MissingTo {
        /// The envelope's position.
        index: usize,
    },
    /// An address with an empty email.
    #[error("`{field}`: the email address is empty")]
    EmptyAddress {
        /// Where (`personalizations.0.to.2.email`, `from.email`).
        field: String,
    },
    /// Neither a body nor a template.
    #[error("`content`: no body and no `template_id`; add text or html content, or a template")]
    NoContent,
    /// A body with an empty type or value.
    #[error("`content.{index}`: a body needs a MIME type and a non-empty value")]
    EmptyContent {
        /// The body's position.
        index: usize,
    },
    /// No subject for an envelope, and no template to supply one.
    #[error(
        "`personalizations.{index}.subject`: no subject here, on the message, or from a template"
    )]
    MissingSubject {
        /// The envelope's position.
        index: usize,
    },
    /// Custom arguments of `bytes` bytes, not under [`MAX_CUSTOM_ARGS_BYTES`].
    #[error(
        "`{field}`: custom arguments take {bytes} bytes, they must stay under {MAX_CUSTOM_ARGS_BYTES}"
    )]
    CustomArgsTooLarge {
        /// `custom_args`, or `personalizations.<i>.custom_args` (merged with the message's).
        field: String,
        /// Their size as JSON, this client's idempotency key included.
        bytes: usize,
    },
    /// More than [`MAX_CATEGORIES`] categories.
    #[error("`categories`: {count} categories, at most {MAX_CATEGORIES}")]
    TooManyCategories {
        /// How many there were.
        count: usize,
    },
    /// A category longer than [`MAX_CATEGORY_CHARS`].
    #[error("`categories.{index}`: longer than {MAX_CATEGORY_CHARS} characters")]
    CategoryTooLong {
        /// The category's position.
        index: usize,
    },
    /// A request of `bytes` bytes, not under [`MAX_BYTES`].
    #[error(
        "the request takes {bytes} bytes, it must stay under {MAX_BYTES} (30 MB); send fewer or smaller attachments"
    )]
    TooLarge {
        /// The size of the JSON body.
        bytes: usize,
    },
    /// The mail could not be encoded as JSON.
    #[error("the mail could not be encoded: {0}")]
    Encode(String),
}

impl InvalidMail {
    /// The request field at fault, in SendGrid's notation (`personalizations.3.to`); empty for
    /// the request as a whole.
    pub fn field(&self) -> String {
        match self {
            Self::TooManyPersonalizations { .. }
            | Self::TooManyRecipients { .. }
            | Self::NoRecipients => "personalizations".to_owned(),
            Self::MissingTo { index } => format!("personalizations.{index}.to"),
            Self::EmptyAddress { field } | Self::CustomArgsTooLarge { field, .. } => field.clone(),
            Self::NoContent => "content".to_owned(),
            Self::EmptyContent { index } => format!("content.{index}"),
            Self::MissingSubject { index } => format!("personalizations.{index}.subject"),
            Self::TooManyCategories { .. } => "categories".to_owned(),
            Self::CategoryTooLong { index } => format!("categories.{index}"),
            Self::TooLarge { .. } | Self::Encode(_) => String::new(),
        }
    }
}

/// Checks `mail` and returns its JSON body, ready to send.
pub fn encode(mail: &Mail) -> Result<Vec<u8>, InvalidMail> {
    encode_under(mail, MAX_BYTES)
}

/// [`encode`] with the size limit as a parameter (so tests need not build 30 MB).
fn encode_under(mail: &Mail, max_bytes: usize) -> Result<Vec<u8>, InvalidMail> {
    check(mail)?;
    let body = serde_json::to_vec(mail).map_err(|e| InvalidMail::Encode(e.to_string()))?;
    if body.len() >= max_bytes {
        return Err(InvalidMail::TooLarge { bytes: body.len() });
    }
    Ok(body)
}

/// Every check but the size of the encoded request.
pub fn check(mail: &Mail) -> Result<(), InvalidMail> {
    let count = mail.personalizations.len();
    if count > MAX_PERSONALIZATIONS {
        return Err(InvalidMail::TooManyPersonalizations { count });
    }
    let recipients = mail.recipients();
    if recipients == 0 {
        return Err(InvalidMail::NoRecipients);
    }
    if recipients > MAX_RECIPIENTS {
        return Err(InvalidMail::TooManyRecipients { count: recipients });
    }
    check_address(&mail.from.email, || "from.email".to_owned())?;
    let templated = mail.template_id.as_deref().is_some_and(|t| !t.is_empty());
    let has_subject = mail.subject.as_deref().is_some_and(|s| !s.is_empty());
    let message_args = args_bytes(&mail.custom_args, None);
    if message_args >= MAX_CUSTOM_ARGS_BYTES {
        return Err(InvalidMail::CustomArgsTooLarge {
            field: "custom_args".to_owned(),
            bytes: message_args,
        });
    }
    for (index, envelope) in mail.personalizations.iter().enumerate() {
        if envelope.to.is_empty() {
            return Err(InvalidMail::MissingTo { index });
        }
        for (kind, list) in [
            ("to", &envelope.to),
            ("cc", &envelope.cc),
            ("bcc", &envelope.bcc),
        ] {
            for (i, address) in list.iter().enumerate() {
                check_address(&address.email, || {
                    format!("personalizations.{index}.{kind}.{i}.email")
                })?;
            }
        }
        if !templated && !has_subject && envelope.subject.as_deref().is_none_or(str::is_empty) {
            return Err(InvalidMail::MissingSubject { index });
        }
        if !envelope.custom_args.is_empty() {
            let bytes = args_bytes(&mail.custom_args, Some(&envelope.custom_args));
            if bytes >= MAX_CUSTOM_ARGS_BYTES {
                return Err(InvalidMail::CustomArgsTooLarge {
                    field: format!("personalizations.{index}.custom_args"),
                    bytes,
                });
            }
        }
    }
    if mail.content.is_empty() && !templated {
        return Err(InvalidMail::NoContent);
    }
    if let Some(index) = mail
        .content
        .iter()
        .position(|c| c.mime_type.is_empty() || c.value.is_empty())
    {
        return Err(InvalidMail::EmptyContent { index });
    }
    if mail.categories.len() > MAX_CATEGORIES {
        return Err(InvalidMail::TooManyCategories {
            count: mail.categories.len(),
        });
    }
    if let Some(index) = mail
        .categories
        .iter()
        .position(|c| c.chars().count() > MAX_CATEGORY_CHARS)
    {
        return Err(InvalidMail::CategoryTooLong { index });
    }
    Ok(())
}

fn check_address(email: &str, field: impl FnOnce() -> String) -> Result<(), InvalidMail> {
    if email.trim().is_empty() {
        return Err(InvalidMail::EmptyAddress { field: field() });
    }
    Ok(())
}

/// The JSON size of `message` custom arguments with `envelope`'s merged over them.
fn args_bytes(
    message: &BTreeMap<String, String>,
    envelope: Option<&BTreeMap<String, String>>,
) -> usize {
    let merged;
    let args = match envelope {
        Some(envelope) => {
            let mut all = message.clone();
            all.extend(envelope.iter().map(|(k, v)| (k.clone(), v.clone())));
            merged = all;
            &merged
        }
        None => message,
    };
    serde_json::to_vec(args).map_or(usize::MAX, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{Attachment, Content, Personalization};

    fn mail(envelopes: usize, per_envelope: usize) -> Mail {
        Mail::new("from@example.com")
            .subject("s")
            .content(Content::text("t"))
            .personalizations((0..envelopes).map(|i| {
                (1..per_envelope).fold(Personalization::new(format!("r{i}@example.com")), |p, j| {
                    p.bcc(format!("r{i}-{j}@example.com"))
                })
            }))
    }

    #[test]
    fn a_thousand_personalizations_pass_and_one_more_names_the_field() {
        assert!(encode(&mail(1_000, 1)).is_ok());
        let error = encode(&mail(1_001, 1)).unwrap_err();
        assert_eq!(error, InvalidMail::TooManyPersonalizations { count: 1_001 });
        assert_eq!(error.field(), "personalizations");
    }

    #[test]
    fn personalizations_over_the_limit_are_refused_before_recipients_are_counted() {
        let mut over = mail(1, 1);
        over.personalizations = vec![Personalization::default(); 1_001];
        assert_eq!(
            check(&over),
            Err(InvalidMail::TooManyPersonalizations { count: 1_001 })
        );
        assert_eq!(over.personalizations[0].recipients(), 0);
    }

    #[test]
    fn recipients_count_to_cc_and_bcc_together() {
        assert!(check(&mail(100, 10)).is_ok());
        assert_eq!(
            check(&mail(100, 11)),
            Err(InvalidMail::TooManyRecipients { count: 1_100 })
        );
    }

    #[test]
    fn a_mail_needs_a_recipient_a_to_and_a_body_or_template() {
        let empty = Mail::new("from@example.com")
            .subject("s")
            .content(Content::text("t"));
        assert_eq!(check(&empty), Err(InvalidMail::NoRecipients));
        let mut no_to = mail(2, 1);
        no_to.personalizations[1].to.clear();
        no_to.personalizations[1].cc.push("cc@example.com".into());
        let error = check(&no_to).unwrap_err();
        assert_eq!(error.field(), "personalizations.1.to");
        let mut no_body = mail(1, 1);
        no_body.content.clear();
        assert_eq!(check(&no_body), Err(InvalidMail::NoContent));
        assert!(check(&no_body.clone().template_id("d-1")).is_ok());
        let mut no_subject = mail(1, 1);
        no_subject.subject = None;
        assert_eq!(
            check(&no_subject).unwrap_err().field(),
            "personalizations.0.subject"
        );
        no_subject.personalizations[0].subject = Some("own".into());
        assert!(check(&no_subject).is_ok());
        assert_eq!(
            check(&mail(1, 1).content(Content::html(""))),
            Err(InvalidMail::EmptyContent { index: 1 })
        );
        let blank = Mail::new(" ").subject("s").content(Content::text("t"));
        let blank = blank.personalization(Personalization::new("a@example.com"));
        assert_eq!(check(&blank).unwrap_err().field(), "from.email");
    }

    #[test]
    fn custom_args_must_stay_under_ten_thousand_bytes_merged_per_envelope() {
        // {"k":"<v>"} is 8 bytes plus the value.
        let at_limit = mail(1, 1).custom_arg("k", "x".repeat(MAX_CUSTOM_ARGS_BYTES - 8));
        assert_eq!(
            check(&at_limit),
            Err(InvalidMail::CustomArgsTooLarge {
                field: "custom_args".into(),
                bytes: MAX_CUSTOM_ARGS_BYTES
            })
        );
        let under = mail(1, 1).custom_arg("k", "x".repeat(MAX_CUSTOM_ARGS_BYTES - 9));
        assert!(check(&under).is_ok());
        let mut merged = mail(2, 1).custom_arg("k", "x".repeat(6_000));
        merged.personalizations[1] = merged.personalizations[1]
            .clone()
            .custom_arg("j", "y".repeat(4_000));
        let error = check(&merged).unwrap_err();
        assert_eq!(error.field(), "personalizations.1.custom_args");
    }

    #[test]
    fn categories_are_at_most_ten_of_at_most_255_characters() {
        let ten = (0..10).fold(mail(1, 1), |m, i| m.category(format!("c{i}")));
        assert!(check(&ten).is_ok());
        assert_eq!(
            check(&ten.category("c10")),
            Err(InvalidMail::TooManyCategories { count: 11 })
        );
        assert_eq!(
            check(&mail(1, 1).category("é".repeat(256))),
            Err(InvalidMail::CategoryTooLong { index: 0 })
        );
    }

    #[test]
    fn a_request_at_the_size_limit_is_refused_and_one_byte_under_passes() {
        assert_eq!(MAX_BYTES, 30_000_000);
        const LIMIT: usize = 50_000;
        let base = encode(&mail(1, 1)).unwrap().len();
        let overhead = encode(&mail(1, 1).attachment(Attachment::from_base64("f", "")))
            .unwrap()
            .len()
            - base;
        let room = LIMIT - base - overhead - 1;
        let fits = mail(1, 1).attachment(Attachment::from_base64("f", "A".repeat(room)));
        assert_eq!(encode_under(&fits, LIMIT).unwrap().len(), LIMIT - 1);
        let over = mail(1, 1).attachment(Attachment::new("f", &vec![0; room]));
        assert!(matches!(
            encode_under(&over, LIMIT),
            Err(InvalidMail::TooLarge { bytes }) if bytes > LIMIT
        ));
        let at = mail(1, 1).attachment(Attachment::from_base64("f", "A".repeat(room + 1)));
        assert_eq!(
            encode_under(&at, LIMIT),
            Err(InvalidMail::TooLarge { bytes: LIMIT })
        );
    }
}
