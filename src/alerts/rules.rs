//! The alert settings, typed: the consecutive-failure threshold (the count that means 100 %),
//! auto-disable, and the exhausted-retries alert with its suppression window.

/// A failure streak is forgotten this long after its last failure (upstream keeps the set of
/// failed attempt ids for 24 h).
pub const STREAK_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

/// The percentages of the threshold at which a consecutive-failure alert fires.
pub const LEVELS: [u32; 4] = [50, 70, 90, 100];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRules {
    /// `ALERT_CONSECUTIVE_FAILURE_COUNT`: failures in a row that mean 100 %; `None` (set empty)
    /// turns consecutive-failure tracking off.
    pub consecutive_failure_count: Option<u32>,
    /// `ALERT_AUTO_DISABLE_DESTINATION`: disable the destination at 100 %.
    pub auto_disable: bool,
    /// `ALERT_EXHAUSTED_RETRIES_WINDOW_SECONDS`: `None` (set empty) turns the exhausted-retries
    /// alert off; `Some(0)` never suppresses it; otherwise at most one alert per destination
    /// within this many seconds.
    pub exhausted_retries_window_seconds: Option<u64>,
    /// Automatic retries an event gets (`MAX_RETRY_LIMIT` or the schedule's length): an attempt
    /// numbered above it was the last one.
    pub max_retries: u32,
}

impl AlertRules {
    /// No alert of any kind: what a store opened without settings applies.
    pub const OFF: AlertRules = AlertRules {
        consecutive_failure_count: None,
        auto_disable: false,
        exhausted_retries_window_seconds: None,
        max_retries: 0,
    };

    /// Whether any attempt can change alert state or raise an alert.
    pub fn any(&self) -> bool {
        self.consecutive_failure_count.is_some() || self.exhausted_retries_enabled()
    }

    pub fn exhausted_retries_enabled(&self) -> bool {
        self.exhausted_retries_window_seconds.is_some() && self.max_retries > 0
    }

    /// The consecutive-failure level (a percentage of [`LEVELS`]) that a streak of `failures`
    /// reaches: 50, 70 and 90 when the count equals their share of the threshold (rounded up),
    /// 100 on every failure at or above the threshold.
    pub fn level(&self, failures: u32) -> Option<u32> {
        let threshold = self.consecutive_failure_count?;
        if failures >= threshold {
            return Some(100);
        }
        LEVELS
            .iter()
            .rev()
            .filter(|level| **level < 100)
            .find(|level| share(threshold, **level) == failures)
            .copied()
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let streak = match self.consecutive_failure_count {
            None => "consecutive-failure alerts off".to_string(),
            Some(count) => format!(
                "consecutive-failure alerts at {} of {count} failures{}",
                LEVELS
                    .iter()
                    .map(|level| share(count, *level).to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                if self.auto_disable {
                    ", then the destination is disabled"
                } else {
                    ""
                }
            ),
        };
        let exhausted = match self.exhausted_retries_window_seconds {
            _ if !self.exhausted_retries_enabled() => "exhausted-retries alerts off".to_string(),
            Some(0) => "exhausted-retries alerts on every exhaustion".to_string(),
            Some(window) => {
                format!("exhausted-retries alerts at most once per destination per {window} s")
            }
            None => "exhausted-retries alerts off".to_string(),
        };
        format!("{streak}; {exhausted}")
    }
}

/// `ceil(threshold × percent / 100)`.
fn share(threshold: u32, percent: u32) -> u32 {
    let product = u64::from(threshold) * u64::from(percent);
    u32::try_from(product.div_ceil(100)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(count: u32) -> AlertRules {
        AlertRules {
            consecutive_failure_count: Some(count),
            ..AlertRules::OFF
        }
    }

    fn levels(count: u32, up_to: u32) -> Vec<(u32, u32)> {
        (1..=up_to)
            .filter_map(|f| rules(count).level(f).map(|level| (f, level)))
            .collect()
    }

    #[test]
    fn levels_fire_at_their_share_and_on_every_failure_from_the_threshold() {
        assert_eq!(
            levels(100, 102),
            vec![
                (50, 50),
                (70, 70),
                (90, 90),
                (100, 100),
                (101, 100),
                (102, 100)
            ]
        );
        assert_eq!(
            levels(10, 11),
            vec![(5, 50), (7, 70), (9, 90), (10, 100), (11, 100)]
        );
    }

    #[test]
    fn shares_round_up_and_small_thresholds_go_straight_to_100() {
        // ceil(3 × 0.5) = 2, ceil(3 × 0.7) = 3 = the threshold itself.
        assert_eq!(levels(3, 4), vec![(2, 50), (3, 100), (4, 100)]);
        assert_eq!(levels(1, 2), vec![(1, 100), (2, 100)]);
        assert_eq!(levels(2, 2), vec![(1, 50), (2, 100)]);
    }

    #[test]
    fn tracking_off_has_no_level() {
        assert_eq!(AlertRules::OFF.level(1_000), None);
        assert!(!AlertRules::OFF.any());
    }

    #[test]
    fn exhausted_retries_needs_a_window_setting_and_a_retry_budget() {
        let mut rules = AlertRules {
            exhausted_retries_window_seconds: Some(3600),
            ..AlertRules::OFF
        };
        assert!(
            !rules.exhausted_retries_enabled(),
            "no retries, nothing to exhaust"
        );
        rules.max_retries = 3;
        assert!(rules.exhausted_retries_enabled());
        rules.exhausted_retries_window_seconds = None;
        assert!(!rules.exhausted_retries_enabled());
    }
}
