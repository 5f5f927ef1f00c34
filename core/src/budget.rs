//! (budget: being built in this session.)
