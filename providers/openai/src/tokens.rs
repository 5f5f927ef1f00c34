//! Token estimates: what a request will charge against the tokens-per-minute budget.
//!
//! OpenAI reserves a request's tokens when it arrives: "the maximum of `max_tokens` and the
//! estimated number of tokens based on the character count of your request". The client
//! reserves the same amount before sending ([`request_tokens`]) and reconciles it with the
//! response's `usage` afterwards, so the estimate only has to be close.
//!
//! With the default feature `tokenizer`, prompt tokens are counted with OpenAI's own BPE
//! (`o200k_base` for the GPT-4o / GPT-4.1 / GPT-5 / o-series families, `cl100k_base` for
//! GPT-4, GPT-3.5 and the embedding models) through `tiktoken-rs`, whose tables are compiled
//! into the binary: nothing is downloaded at run time. Loading a table takes about 0.1 s the
//! first time (once per process). Without the feature, [`estimate_chars`] is used: one token
//! per 4 characters, rounded up, OpenAI's own rule of thumb for English text; it over-counts
//! dense code a little and under-counts CJK text.
//!
//! Chat messages are counted the way OpenAI's cookbook does: 3 tokens of framing per message,
//! 1 more for a `name`, and 3 for the reply's priming.

/// A BPE vocabulary OpenAI models use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `cl100k_base`: GPT-4, GPT-3.5, `text-embedding-3-*`, `text-embedding-ada-002`.
    Cl100kBase,
    /// `o200k_base`: GPT-4o, GPT-4.1, GPT-5, o1/o3/o4.
    O200kBase,
}

impl Encoding {
    /// The encoding `model` uses (`cl100k_base` for unknown models).
    pub fn for_model(model: &str) -> Self {
        const O200K: [&str; 7] = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4"];
        // Fine-tunes name their base model: `ft:gpt-4o-mini:org::id`.
        let base = match model.strip_prefix("ft:") {
            Some(rest) => rest.split(':').next().unwrap_or(rest),
            None => model,
        };
        if O200K.iter().any(|p| base.starts_with(p)) || base.starts_with("chatgpt-4o") {
            Self::O200kBase
        } else {
            Self::Cl100kBase
        }
    }
}

/// Tokens of `text` for `model`: BPE with the feature `tokenizer`, else [`estimate_chars`].
pub fn count(model: &str, text: &str) -> u64 {
    bpe::count(Encoding::for_model(model), text).unwrap_or_else(|| estimate_chars(text))
}

/// The character-based fallback: one token per 4 characters (Unicode scalar values), rounded up.
pub fn estimate_chars(text: &str) -> u64 {
    let chars = u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
    chars.div_ceil(4)
}

/// Tokens a chat prompt takes: per message 3 + role + content (+ 1 + name), plus 3 for the reply.
pub fn chat_prompt<'a>(
    model: &str,
    messages: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> u64 {
    let mut total: u64 = 3;
    for (role, content, name) in messages {
        total = total
            .saturating_add(3)
            .saturating_add(count(model, role))
            .saturating_add(count(model, content));
        if let Some(name) = name {
            total = total.saturating_add(1).saturating_add(count(model, name));
        }
    }
    total
}

/// What a request reserves against the token budget: the larger of the completion allowance
/// (`max_tokens` × `n`) and the prompt's tokens, as OpenAI documents.
pub fn request_tokens(prompt_tokens: u64, max_tokens: Option<u64>, n: Option<u64>) -> u64 {
    let completion = max_tokens
        .unwrap_or(0)
        .saturating_mul(n.unwrap_or(1).max(1));
    completion.max(prompt_tokens)
}

/// True when prompt tokens are counted with OpenAI's BPE (feature `tokenizer`).
pub const fn uses_bpe() -> bool {
    cfg!(feature = "tokenizer")
}

#[cfg(feature = "tokenizer")]
mod bpe {
    use std::sync::OnceLock;

    use tiktoken_rs::CoreBPE;

    use super::Encoding;

    static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
    static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();

    pub(super) fn count(encoding: Encoding, text: &str) -> Option<u64> {
        let table = match encoding {
            Encoding::Cl100kBase => CL100K.get_or_init(|| tiktoken_rs::cl100k_base().ok()),
            Encoding::O200kBase => O200K.get_or_init(|| tiktoken_rs::o200k_base().ok()),
        };
        let tokens = table.as_ref()?.encode_ordinary(text).len();
        u64::try_from(tokens).ok()
    }
}

#[cfg(not(feature = "tokenizer"))]
mod bpe {
    use super::Encoding;

    pub(super) fn count(_encoding: Encoding, _text: &str) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_their_encodings() {
        assert_eq!(Encoding::for_model("gpt-4o-mini"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("gpt-4.1"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("o3-mini"), Encoding::O200kBase);
        assert_eq!(
            Encoding::for_model("ft:gpt-4o-mini:acme::abc"),
            Encoding::O200kBase
        );
        assert_eq!(Encoding::for_model("gpt-4"), Encoding::Cl100kBase);
        assert_eq!(Encoding::for_model("gpt-3.5-turbo"), Encoding::Cl100kBase);
        assert_eq!(
            Encoding::for_model("text-embedding-3-small"),
            Encoding::Cl100kBase
        );
    }

    #[test]
    fn the_character_fallback_is_a_quarter_rounded_up() {
        assert_eq!(estimate_chars(""), 0);
        assert_eq!(estimate_chars("abc"), 1);
        assert_eq!(estimate_chars("abcd"), 1);
        assert_eq!(estimate_chars("abcde"), 2);
        assert_eq!(estimate_chars("日本語の文"), 2, "characters, not bytes");
    }

    #[cfg(feature = "tokenizer")]
    #[test]
    fn bpe_counts_match_tiktoken_offline() {
        // Known counts from OpenAI's tiktoken.
        assert_eq!(count("gpt-4", "hello world"), 2);
        assert_eq!(count("text-embedding-3-small", "tiktoken is great!"), 6);
        assert_eq!(count("gpt-4o", "hello world"), 2);
        assert!(uses_bpe());
    }

    #[test]
    fn a_request_reserves_the_larger_of_completion_and_prompt() {
        assert_eq!(request_tokens(100, None, None), 100);
        assert_eq!(request_tokens(100, Some(500), None), 500);
        assert_eq!(request_tokens(100, Some(40), Some(3)), 120);
        assert_eq!(request_tokens(1000, Some(40), Some(3)), 1000);
        assert_eq!(request_tokens(10, Some(u64::MAX), Some(2)), u64::MAX);
        assert_eq!(request_tokens(10, Some(5), Some(0)), 10);
    }

    #[test]
    fn chat_prompts_count_framing_per_message_and_the_reply_priming() {
        let two = chat_prompt("gpt-4", [("system", "", None), ("user", "", Some("ada"))]);
        let roles = count("gpt-4", "system") + count("gpt-4", "user") + count("gpt-4", "ada");
        assert_eq!(two, 3 + 3 + 3 + 1 + roles);
    }
}
