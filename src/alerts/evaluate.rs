//! The alert state machine of one destination. The state (its failure streak and when it last
//! raised an exhausted-retries alert) is stored per destination; each attempt moves it once:
//!
//! - a success ends the streak;
//! - a failure extends it (a streak whose last failure is over 24 h old starts again at 1) and
//!   raises a consecutive-failure alert at the 50/70/90 % counts and on every failure from
//!   100 %, where auto-disable (when on) disables the destination;
//! - a failure of an attempt numbered above the retry budget, for an event eligible for
//!   retries, raises an exhausted-retries alert unless one was raised for the destination
//!   within the suppression window.

use serde::{Deserialize, Serialize};

use super::rules::{AlertRules, STREAK_EXPIRY_MS};

/// What is kept per destination between attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// Failed attempts in a row.
    pub consecutive_failures: u32,
    /// When the last of them was recorded (unix ms).
    pub last_failure_ms: i64,
    /// When the destination last raised an exhausted-retries alert (unix ms).
    pub exhausted_alert_ms: Option<i64>,
}

impl AlertState {
    /// Whether the state says nothing, so its row can go.
    fn is_empty(&self) -> bool {
        self.consecutive_failures == 0 && self.exhausted_alert_ms.is_none()
    }
}

/// The facts of one attempt that alerts look at.
#[derive(Clone, Copy, Debug)]
pub struct AttemptFacts {
    pub success: bool,
    pub attempt_number: u32,
    pub eligible_for_retry: bool,
}

/// The `consecutive_failures` object of an alert: the count, the threshold, and the level
/// reached (a percentage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsecutiveFailures {
    pub current: u32,
    pub max: u32,
    pub threshold: u32,
}

/// What one attempt raises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub consecutive_failure: Option<ConsecutiveFailures>,
    /// Auto-disable the destination now.
    pub disable: bool,
    pub exhausted_retries: bool,
}

/// Moves `state` by one attempt made at `now_ms`. Returns the new state (`None`: nothing left
/// to keep) and what the attempt raises.
pub fn evaluate(
    rules: &AlertRules,
    state: Option<AlertState>,
    attempt: AttemptFacts,
    now_ms: i64,
) -> (Option<AlertState>, Verdict) {
    let mut state = state.unwrap_or_default();
    let mut verdict = Verdict::default();
    if let Some(max) = rules.consecutive_failure_count {
        if attempt.success {
            state.consecutive_failures = 0;
        } else {
            let expired = now_ms.saturating_sub(state.last_failure_ms) > STREAK_EXPIRY_MS;
            let before = if expired {
                0
            } else {
                state.consecutive_failures
            };
            state.consecutive_failures = before.saturating_add(1);
            state.last_failure_ms = now_ms;
            if let Some(level) = rules.level(state.consecutive_failures) {
                verdict.consecutive_failure = Some(ConsecutiveFailures {
                    current: state.consecutive_failures,
                    max,
                    threshold: level,
                });
                verdict.disable = level == 100 && rules.auto_disable;
            }
        }
    }
    if !attempt.success
        && rules.exhausted_retries_enabled()
        && attempt.eligible_for_retry
        && attempt.attempt_number > rules.max_retries
    {
        let window_ms = rules
            .exhausted_retries_window_seconds
            .unwrap_or(0)
            .saturating_mul(1000);
        let window_ms = i64::try_from(window_ms).unwrap_or(i64::MAX);
        let suppressed = window_ms > 0
            && state
                .exhausted_alert_ms
                .is_some_and(|last| now_ms < last.saturating_add(window_ms));
        if !suppressed {
            verdict.exhausted_retries = true;
            state.exhausted_alert_ms = Some(now_ms);
        }
    }
    ((!state.is_empty()).then_some(state), verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn rules() -> AlertRules {
        AlertRules {
            consecutive_failure_count: Some(4),
            auto_disable: true,
            exhausted_retries_window_seconds: Some(3600),
            max_retries: 2,
        }
    }

    fn failure(number: u32) -> AttemptFacts {
        AttemptFacts {
            success: false,
            attempt_number: number,
            eligible_for_retry: true,
        }
    }

    fn success() -> AttemptFacts {
        AttemptFacts {
            success: true,
            attempt_number: 1,
            eligible_for_retry: true,
        }
    }

    /// Runs attempts one after another, a minute apart, returning every verdict.
    fn run(rules: &AlertRules, attempts: &[AttemptFacts]) -> (Option<AlertState>, Vec<Verdict>) {
        let mut state = None;
        let mut verdicts = Vec::new();
        for (i, attempt) in attempts.iter().enumerate() {
            let (next, verdict) = evaluate(rules, state, *attempt, i as i64 * 60_000);
            state = next;
            verdicts.push(verdict);
        }
        (state, verdicts)
    }

    #[test]
    fn a_streak_alerts_at_each_level_and_disables_at_the_threshold() {
        let (state, verdicts) = run(&rules(), &[failure(1); 5]);
        let levels: Vec<Option<u32>> = verdicts
            .iter()
            .map(|v| v.consecutive_failure.map(|c| c.threshold))
            .collect();
        // Threshold 4: 50 % = 2, 70 % = ceil(2.8) = 3, 90 % = ceil(3.6) = 4 = 100 %.
        assert_eq!(levels, [None, Some(50), Some(70), Some(100), Some(100)]);
        assert_eq!(
            verdicts.iter().map(|v| v.disable).collect::<Vec<_>>(),
            [false, false, false, true, true]
        );
        let alert = verdicts[3].consecutive_failure.unwrap();
        assert_eq!((alert.current, alert.max), (4, 4));
        assert_eq!(state.unwrap().consecutive_failures, 5);
    }

    #[test]
    fn without_auto_disable_the_100_percent_alert_still_fires() {
        let rules = AlertRules {
            auto_disable: false,
            ..rules()
        };
        let (_, verdicts) = run(&rules, &[failure(1); 4]);
        assert_eq!(verdicts[3].consecutive_failure.unwrap().threshold, 100);
        assert!(verdicts.iter().all(|v| !v.disable));
    }

    #[test]
    fn a_success_ends_the_streak() {
        let (state, verdicts) = run(
            &rules(),
            &[
                failure(1),
                failure(1),
                failure(1),
                success(),
                failure(1),
                failure(1),
            ],
        );
        assert_eq!(verdicts[5].consecutive_failure.unwrap().current, 2);
        assert_eq!(state.unwrap().consecutive_failures, 2);
        let (state, _) = run(&rules(), &[failure(1), success()]);
        assert_eq!(state, None, "nothing left to keep");
    }

    #[test]
    fn a_streak_older_than_a_day_starts_again() {
        let rules = rules();
        let (state, _) = evaluate(&rules, None, failure(1), 0);
        let (state, verdict) = evaluate(&rules, state, failure(1), HOUR_MS);
        assert_eq!(verdict.consecutive_failure.unwrap().current, 2);
        let (state, verdict) = evaluate(&rules, state, failure(1), HOUR_MS + 25 * HOUR_MS);
        assert_eq!(verdict, Verdict::default());
        assert_eq!(state.unwrap().consecutive_failures, 1);
    }

    #[test]
    fn exhausted_retries_fires_once_per_window() {
        let rules = AlertRules {
            consecutive_failure_count: None,
            ..rules()
        };
        // max_retries 2: attempt 3 is the last one.
        let (state, verdict) = evaluate(&rules, None, failure(2), 0);
        assert!(!verdict.exhausted_retries);
        let (state, verdict) = evaluate(&rules, state, failure(3), 0);
        assert!(verdict.exhausted_retries);
        let (state, verdict) = evaluate(&rules, state, failure(3), HOUR_MS - 1);
        assert!(!verdict.exhausted_retries, "inside the window");
        let (_, verdict) = evaluate(&rules, state, failure(3), HOUR_MS);
        assert!(verdict.exhausted_retries, "the window is over");
    }

    #[test]
    fn a_zero_window_never_suppresses_and_ineligible_events_never_exhaust() {
        let rules = AlertRules {
            exhausted_retries_window_seconds: Some(0),
            ..rules()
        };
        let (state, first) = evaluate(&rules, None, failure(3), 0);
        let (_, second) = evaluate(&rules, state, failure(3), 1);
        assert!(first.exhausted_retries && second.exhausted_retries);
        let ineligible = AttemptFacts {
            eligible_for_retry: false,
            ..failure(3)
        };
        assert!(!evaluate(&rules, None, ineligible, 0).1.exhausted_retries);
    }

    #[test]
    fn with_every_alert_off_nothing_is_kept() {
        let (state, verdicts) = run(&AlertRules::OFF, &[failure(1), failure(9)]);
        assert_eq!(state, None);
        assert!(verdicts.iter().all(|v| *v == Verdict::default()));
    }
}
