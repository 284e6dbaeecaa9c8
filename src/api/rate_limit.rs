//! The per-caller request rate limit (`API_RATE_LIMIT_PER_SECOND`, `API_RATE_LIMIT_BURST`): a
//! token bucket per caller (the admin API key is one caller, each tenant another), refilled
//! continuously, judged by the time the caller passes in (the server's clock), and the
//! `X-RateLimit-*` / `Retry-After` headers a decision puts on a response.

use std::collections::HashMap;
use std::sync::Mutex;

use hyper::header::{HeaderName, HeaderValue, RETRY_AFTER};
use hyper::HeaderMap;

use crate::config::RateLimit;

/// Thousandths of a token: whole requests cost [`TOKEN`].
const TOKEN: u64 = 1000;
/// Above this many buckets, full ones (callers quiet long enough to be back at the burst)
/// are forgotten; a forgotten bucket comes back full, so nothing changes for its caller.
const PRUNE_ABOVE: usize = 10_000;

pub const LIMIT_HEADER: &str = "x-ratelimit-limit";
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining";
pub const RESET_HEADER: &str = "x-ratelimit-reset";

/// One caller's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    milli_tokens: u64,
    updated_ms: i64,
}

/// What the limit says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst: most requests a caller can make at once.
    pub limit: u32,
    /// Whole requests left right after this one.
    pub remaining: u32,
    /// Seconds until the bucket is full again (rounded up).
    pub reset_seconds: u64,
    /// Refused requests: seconds until one request is allowed again (rounded up, at least 1).
    pub retry_after_seconds: Option<u64>,
}

impl Decision {
    /// Adds `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and, when the
    /// request was refused, `Retry-After`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let pairs = [
            (LIMIT_HEADER, u64::from(self.limit)),
            (REMAINING_HEADER, u64::from(self.remaining)),
            (RESET_HEADER, self.reset_seconds),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

impl Bucket {
    fn full(rule: RateLimit, now_ms: i64) -> Bucket {
        Bucket {
            milli_tokens: u64::from(rule.burst) * TOKEN,
            updated_ms: now_ms,
        }
    }

    /// Refills for the time since the last update (a clock that went back refills nothing),
    /// then takes one request's token if there is one.
    fn take(&mut self, rule: RateLimit, now_ms: i64) -> Decision {
        let capacity = u64::from(rule.burst) * TOKEN;
        // `per_second` tokens a second is `per_second` thousandths a millisecond.
        let per_ms = u64::from(rule.per_second);
        let elapsed = u64::try_from(now_ms.saturating_sub(self.updated_ms)).unwrap_or(0);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(per_ms))
            .min(capacity);
        if now_ms > self.updated_ms {
            self.updated_ms = now_ms;
        }
        let allowed = self.milli_tokens >= TOKEN;
        if allowed {
            self.milli_tokens -= TOKEN;
        }
        let per_second_milli = u64::from(rule.per_second) * TOKEN;
        let reset_seconds = ceil_div(capacity - self.milli_tokens, per_second_milli);
        let retry_after_seconds =
            (!allowed).then(|| ceil_div(TOKEN - self.milli_tokens, per_second_milli).max(1));
        Decision {
            allowed,
            limit: rule.burst,
            remaining: u32::try_from(self.milli_tokens / TOKEN).unwrap_or(u32::MAX),
            reset_seconds,
            retry_after_seconds,
        }
    }

    fn is_full_at(&self, rule: RateLimit, now_ms: i64) -> bool {
        let mut probe = *self;
        let capacity = u64::from(rule.burst) * TOKEN;
        let elapsed = u64::try_from(now_ms.saturating_sub(probe.updated_ms)).unwrap_or(0);
        probe.milli_tokens = probe
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(u64::from(rule.per_second)))
            .min(capacity);
        probe.milli_tokens == capacity
    }
}

/// Every caller's bucket under one rule.
pub struct RateLimiter {
    rule: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rule: RateLimit) -> RateLimiter {
        RateLimiter {
            rule,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `caller` at `now_ms` (milliseconds of the server's clock).
    pub fn check(&self, caller: &str, now_ms: i64) -> Decision {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(caller) {
            let rule = self.rule;
            buckets.retain(|_, bucket| !bucket.is_full_at(rule, now_ms));
        }
        buckets
            .entry(caller.to_string())
            .or_insert_with(|| Bucket::full(self.rule, now_ms))
            .take(self.rule, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(per_second: u32, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_a_token_refills() {
        let limiter = RateLimiter::new(rule(2, 3));
        let t0 = 1_000_000;
        let remaining: Vec<u32> = (0..3)
            .map(|_| {
                let d = limiter.check("admin", t0);
                assert!(d.allowed);
                assert_eq!(d.limit, 3);
                assert_eq!(d.retry_after_seconds, None);
                d.remaining
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check("admin", t0);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One token takes 500 ms at 2/s: Retry-After rounds up to a whole second.
        assert_eq!(refused.retry_after_seconds, Some(1));
        // Three tokens take 1.5 s: reset rounds up to 2.
        assert_eq!(refused.reset_seconds, 2);
        // 499 ms later there is still no whole token; at 500 ms there is.
        assert!(!limiter.check("admin", t0 + 499).allowed);
        let later = limiter.check("admin", t0 + 500);
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn callers_have_buckets_of_their_own() {
        let limiter = RateLimiter::new(rule(1, 1));
        assert!(limiter.check("admin", 0).allowed);
        assert!(!limiter.check("admin", 0).allowed);
        assert!(limiter.check("tenant:a", 0).allowed);
        assert!(limiter.check("tenant:b", 0).allowed);
        assert!(!limiter.check("tenant:a", 10).allowed);
    }

    #[test]
    fn refill_stops_at_the_burst_and_ignores_a_clock_going_back() {
        let limiter = RateLimiter::new(rule(10, 5));
        assert_eq!(limiter.check("k", 0).remaining, 4);
        // An hour later the bucket holds the burst, not 36,000 tokens.
        let d = limiter.check("k", 3_600_000);
        assert_eq!(d.remaining, 4);
        assert_eq!(d.reset_seconds, 1);
        // The clock stepping back neither refills nor breaks the bucket.
        let back = limiter.check("k", 1_000);
        assert!(back.allowed);
        assert_eq!(back.remaining, 3);
    }

    #[test]
    fn slow_rates_give_long_retry_after() {
        let limiter = RateLimiter::new(rule(1, 1));
        assert!(limiter.check("k", 0).allowed);
        let refused = limiter.check("k", 200);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds, Some(1));
        assert_eq!(refused.reset_seconds, 1);
    }

    #[test]
    fn headers_carry_the_decision() {
        let limiter = RateLimiter::new(rule(1, 2));
        let mut headers = HeaderMap::new();
        limiter.check("k", 0).write_headers(&mut headers);
        assert_eq!(headers[LIMIT_HEADER], "2");
        assert_eq!(headers[REMAINING_HEADER], "1");
        assert_eq!(headers[RESET_HEADER], "1");
        assert!(!headers.contains_key(RETRY_AFTER));
        limiter.check("k", 0);
        let mut refused = HeaderMap::new();
        limiter.check("k", 0).write_headers(&mut refused);
        assert_eq!(refused[REMAINING_HEADER], "0");
        assert_eq!(refused[RETRY_AFTER], "1");
        assert_eq!(refused[RESET_HEADER], "2");
    }

    #[test]
    fn quiet_callers_are_forgotten_when_there_are_many() {
        let limiter = RateLimiter::new(rule(1000, 1));
        for i in 0..=PRUNE_ABOVE {
            limiter.check(&format!("t{i}"), 0);
        }
        // A second later every bucket is full again; a new caller prunes them.
        limiter.check("new", 1_000);
        let len = limiter.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert_eq!(len, 1);
    }
}
