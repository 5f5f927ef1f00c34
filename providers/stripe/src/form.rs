//! Form encoding the way Stripe reads it: nested objects and arrays in bracket notation.
//!
//! Stripe's v1 API takes `application/x-www-form-urlencoded` bodies with nesting written in
//! brackets, which `serde_urlencoded` does not do. This encoder walks a [`serde_json::Value`]:
//!
//! | value | encoded |
//! |---|---|
//! | `{"amount": 2000}` | `amount=2000` |
//! | `{"confirm": true}` | `confirm=true` |
//! | `{"metadata": {"order": "42"}}` | `metadata[order]=42` |
//! | `{"expand": ["customer", "latest_charge"]}` | `expand[]=customer&expand[]=latest_charge` |
//! | `{"payment_method_options": {"card": {"capture_method": "manual"}}}` | `payment_method_options[card][capture_method]=manual` |
//! | `{"items": [{"price": "p_1"}]}` | `items[0][price]=p_1` (arrays of objects are indexed) |
//! | `{"description": null}` | nothing (absent) |
//! | `{"description": ""}` | `description=` (Stripe: unset the field) |
//!
//! Key segments and values are percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`); the
//! brackets that give the structure are written as is, as Stripe's own examples send them.
//! Fields come out in [`serde_json::Map`] order (alphabetical unless serde_json's
//! `preserve_order` feature is on); Stripe does not care about order.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// A value could not be turned into a form (it was not an object, or serialisation failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// Serialising the value to JSON failed.
    #[error("could not serialise the parameters: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The top level was not an object (a form is a list of named fields).
    #[error("form parameters must be an object at the top level")]
    NotAnObject,
}

/// Encodes `params` (any `Serialize` struct or map) as a Stripe form body.
pub fn to_form<T: Serialize + ?Sized>(params: &T) -> Result<String, FormError> {
    encode(&serde_json::to_value(params)?)
}

/// Encodes a JSON object as a Stripe form body.
pub fn encode(value: &Value) -> Result<String, FormError> {
    let Value::Object(map) = value else {
        return Err(FormError::NotAnObject);
    };
    let mut out = String::new();
    for (key, value) in map {
        let mut name = String::new();
        push_encoded(&mut name, key);
        write_value(&mut out, &name, value);
    }
    Ok(out)
}

fn write_value(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => pair(out, name, if *b { "true" } else { "false" }),
        Value::Number(n) => pair(out, name, &n.to_string()),
        Value::String(s) => pair(out, name, s),
        Value::Object(map) => {
            for (key, value) in map {
                let mut nested = format!("{name}[");
                push_encoded(&mut nested, key);
                nested.push(']');
                write_value(out, &nested, value);
            }
        }
        Value::Array(items) => {
            let indexed = items
                .iter()
                .any(|v| matches!(v, Value::Object(_) | Value::Array(_)));
            for (index, item) in items.iter().enumerate() {
                let nested = if indexed {
                    format!("{name}[{index}]")
                } else {
                    format!("{name}[]")
                };
                write_value(out, &nested, item);
            }
        }
    }
}

fn pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    push_encoded(out, value);
}

/// `text` percent-encoded as one path segment or form component.
pub(crate) fn component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_encoded(&mut out, text);
    out
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn push_encoded(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(value: Value) -> String {
        encode(&value).unwrap()
    }

    #[test]
    fn scalars_encode_as_plain_fields() {
        assert_eq!(
            form(json!({"amount": 2000, "confirm": true, "currency": "usd", "off_session": false})),
            "amount=2000&confirm=true&currency=usd&off_session=false"
        );
    }

    #[test]
    fn nested_maps_use_brackets() {
        assert_eq!(
            form(json!({"metadata": {"order_id": "6735", "user": "u1"}})),
            "metadata[order_id]=6735&metadata[user]=u1"
        );
    }

    #[test]
    fn deeply_nested_objects_use_one_bracket_per_level() {
        assert_eq!(
            form(json!({"payment_method_options": {"card": {"capture_method": "manual"}}})),
            "payment_method_options[card][capture_method]=manual"
        );
    }

    #[test]
    fn arrays_of_scalars_use_empty_brackets() {
        assert_eq!(
            form(json!({"expand": ["customer", "latest_charge"]})),
            "expand[]=customer&expand[]=latest_charge"
        );
        assert_eq!(
            form(json!({"payment_method_types": ["card"]})),
            "payment_method_types[]=card"
        );
    }

    #[test]
    fn arrays_of_objects_are_indexed() {
        assert_eq!(
            form(json!({"items": [{"price": "p_1", "quantity": 2}, {"price": "p_2"}]})),
            "items[0][price]=p_1&items[0][quantity]=2&items[1][price]=p_2"
        );
    }

    #[test]
    fn nulls_are_absent_and_empty_strings_unset() {
        assert_eq!(form(json!({"description": null, "amount": 1})), "amount=1");
        assert_eq!(form(json!({"description": ""})), "description=");
        assert_eq!(form(json!({})), "");
    }

    #[test]
    fn keys_and_values_are_percent_encoded_but_structure_is_not() {
        assert_eq!(
            form(json!({"metadata": {"a b[c]": "x&y=z é+"}})),
            "metadata[a%20b%5Bc%5D]=x%26y%3Dz%20%C3%A9%2B"
        );
    }

    #[test]
    fn numbers_keep_their_json_form() {
        assert_eq!(form(json!({"a": -5, "b": 1.5})), "a=-5&b=1.5");
    }

    #[test]
    fn a_top_level_that_is_not_an_object_is_refused() {
        assert!(matches!(
            encode(&json!([1, 2])),
            Err(FormError::NotAnObject)
        ));
        assert!(matches!(to_form(&5), Err(FormError::NotAnObject)));
    }

    #[test]
    fn structs_serialise_through_serde() {
        #[derive(Serialize)]
        struct Params {
            amount: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            customer: Option<String>,
            expand: Vec<&'static str>,
        }
        let params = Params {
            amount: 500,
            customer: None,
            expand: vec!["customer"],
        };
        assert_eq!(to_form(&params).unwrap(), "amount=500&expand[]=customer");
    }
}
