//! The automatic retry policy: exponential `RETRY_INTERVAL_SECONDS × 2^(n−1)` or an explicit
//! `RETRY_SCHEDULE`, bounded by `MAX_RETRY_LIMIT` (or the schedule's length).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Seconds to wait after failed attempt n at index n−1; empty = exponential.
    pub schedule: Vec<u64>,
    pub interval_seconds: u64,
    pub max_retry_limit: u32,
}

impl RetryPolicy {
    /// How many automatic retries an event gets after its first attempt.
    pub fn max_retries(&self) -> u32 {
        if self.schedule.is_empty() {
            self.max_retry_limit
        } else {
            u32::try_from(self.schedule.len()).unwrap_or(u32::MAX)
        }
    }

    /// The delay in milliseconds before the next attempt after failed attempt `attempt_number`
    /// (1-based), or `None` when the budget is spent or the event is not eligible.
    pub fn next_delay_ms(&self, attempt_number: u32, eligible_for_retry: bool) -> Option<u64> {
        if !eligible_for_retry || attempt_number == 0 || attempt_number > self.max_retries() {
            return None;
        }
        let seconds = if self.schedule.is_empty() {
            let factor = 1u64.checked_shl(attempt_number - 1).unwrap_or(u64::MAX);
            self.interval_seconds.saturating_mul(factor)
        } else {
            self.schedule[(attempt_number - 1) as usize]
        };
        Some(seconds.saturating_mul(1000))
    }

    /// One line for the start-up log, e.g. `up to 10 retries, 30 s x 2^(n-1) after attempt n`.
    pub fn describe(&self) -> String {
        if self.schedule.is_empty() {
            format!(
                "up to {} retries, {} s x 2^(n-1) after attempt n",
                self.max_retry_limit, self.interval_seconds
            )
        } else {
            let seconds: Vec<String> = self.schedule.iter().map(u64::to_string).collect();
            format!(
                "up to {} retries, after {} s",
                self.schedule.len(),
                seconds.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![],
            interval_seconds: 30,
            max_retry_limit: 10,
        }
    }

    #[test]
    fn describes_itself() {
        assert_eq!(
            exponential().describe(),
            "up to 10 retries, 30 s x 2^(n-1) after attempt n"
        );
        let schedule = RetryPolicy {
            schedule: vec![1, 5, 10],
            ..exponential()
        };
        assert_eq!(schedule.describe(), "up to 3 retries, after 1, 5, 10 s");
    }

    #[test]
    fn exponential_doubles_until_the_limit() {
        let p = exponential();
        assert_eq!(p.next_delay_ms(1, true), Some(30_000));
        assert_eq!(p.next_delay_ms(2, true), Some(60_000));
        assert_eq!(p.next_delay_ms(10, true), Some(15_360_000));
        assert_eq!(p.next_delay_ms(11, true), None);
        assert_eq!(p.next_delay_ms(1, false), None);
    }

    #[test]
    fn schedule_overrides_the_limit() {
        let p = RetryPolicy {
            schedule: vec![1, 5, 10],
            ..exponential()
        };
        assert_eq!(p.max_retries(), 3);
        assert_eq!(p.next_delay_ms(1, true), Some(1_000));
        assert_eq!(p.next_delay_ms(3, true), Some(10_000));
        assert_eq!(p.next_delay_ms(4, true), None);
    }

    #[test]
    fn huge_attempt_numbers_saturate() {
        let p = RetryPolicy {
            max_retry_limit: 100,
            ..exponential()
        };
        assert!(p.next_delay_ms(90, true).is_some());
    }
}
