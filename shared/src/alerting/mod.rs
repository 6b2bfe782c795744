//! Alert rules and their evaluation, shared by the alerter (which applies them live) and the
//! gateway (which shows and validates them, and replays them over stored samples to preview a
//! change). One model, one validation, one state machine: what the dashboard shows, accepts
//! and previews is what the alerter does.
//!
//! - [`rules`]: the metrics, a rule, the rules in force (defaults and per-server overrides);
//! - [`defaults`]: the built-in defaults;
//! - [`validate`]: the ranges a rule must keep to;
//! - [`threshold`]: one threshold's pure state machine (pending, firing, hysteresis);
//! - [`evaluate`]: every server's thresholds advanced by samples, one event per transition;
//! - [`backtest`]: that evaluator replayed over past samples.

pub mod backtest;
pub mod defaults;
pub mod evaluate;
pub mod rules;
pub mod threshold;
pub mod validate;
