//! (retry: being built in this session.)
