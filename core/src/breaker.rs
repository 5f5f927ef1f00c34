//! (breaker: being built in this session.)
