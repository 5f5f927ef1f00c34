//! (telemetry: being built in this session.)
