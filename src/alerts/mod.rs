//! Delivery-health alerts: what an attempt's outcome means for its destination's failure streak
//! and retry budget. The rules (`rules.rs`) come from the `ALERT_*` settings; the evaluation
//! (`evaluate.rs`) is a pure function from the destination's stored alert state and one
//! attempt to the new state and the alerts it raises. The store applies it inside the commit
//! that records the attempt, so a crash neither loses nor doubles a count.

mod evaluate;
mod rules;

pub use evaluate::{evaluate, AlertState, AttemptFacts, ConsecutiveFailures, Verdict};
pub use rules::{AlertRules, STREAK_EXPIRY_MS};
