//! [`RedisError`]: what went wrong talking to Redis, without exposing the driver's types.

/// What kind of failure a [`RedisError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// The configured URL is not a Redis URL (`redis://host:port/db`).
    InvalidUrl,
    /// Redis could not be reached, dropped the connection or did not answer in time. Nothing
    /// was changed by the failed command as far as the caller can tell; retry later.
    Unreachable,
    /// Redis answered with an error, or with a reply this crate did not expect.
    Protocol,
}

impl RedisErrorKind {
    /// A snake-case label for traces and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::Unreachable => "unreachable",
            Self::Protocol => "protocol",
        }
    }
}

/// A Redis command failed: which kind of failure, and what the driver said.
///
/// The detail never carries the URL (which may hold a password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("redis {}: {detail}", kind.as_str())]
#[non_exhaustive]
pub struct RedisError {
    /// What kind of failure.
    pub kind: RedisErrorKind,
    /// The driver's description.
    pub detail: String,
}

impl RedisError {
    /// An error of `kind` described by `detail`.
    pub fn new(kind: RedisErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// True when Redis could not be reached (as opposed to answering something wrong).
    pub fn is_unreachable(&self) -> bool {
        self.kind == RedisErrorKind::Unreachable
    }

    /// A reply that does not have the shape a script returns.
    pub(crate) fn unexpected(what: &str) -> Self {
        Self::new(
            RedisErrorKind::Protocol,
            format!("unexpected reply: {what}"),
        )
    }
}

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        let kind = if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            RedisErrorKind::Unreachable
        } else {
            RedisErrorKind::Protocol
        };
        Self::new(kind, e.to_string())
    }
}
