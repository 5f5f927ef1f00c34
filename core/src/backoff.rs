//! (backoff: being built in this session.)
