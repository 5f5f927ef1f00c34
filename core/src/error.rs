//! (error: being built in this session.)
