//! Time: the [`Timestamp`] type and the one RFC 3339 reader and writer every part of the server
//! uses — the API (request fields, query filters, response times), the templates' `.Timestamp`,
//! the filter input's `time`, delivery headers and the webhook previous-secret expiry.
//!
//! A [`Timestamp`] counts nanoseconds since the Unix epoch in an `i128`, so every instant from
//! year 0000 to 9999 (and far beyond) fits and conversions never wrap. Stored records keep their
//! `i64` nanosecond or millisecond fields; [`Timestamp::from_unix_nanos`] and friends read them,
//! and the `format_*` functions below format them directly. Which texts are accepted, and why, is
//! documented in `rfc3339.rs`.
//!
//! Pure: no clock. Callers pass "now".

mod civil;
mod rfc3339;

pub(crate) use civil::{civil_from_days, days_from_civil};
pub use rfc3339::{
    parse_rfc3339, parse_rfc3339_or_date, parse_rfc3339_with_offset, ParseTimeError,
};

use rfc3339::Fraction;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

/// An instant, as nanoseconds since 1970-01-01T00:00:00Z. Every `i128` is a valid instant, so
/// the count is public; the methods convert to and from the `i64` units records store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub unix_nanos: i128,
}

/// A parsed RFC 3339 text: the instant and the UTC offset (seconds east) it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetTimestamp {
    pub timestamp: Timestamp,
    pub offset_seconds: i32,
}

impl Timestamp {
    pub fn from_unix_nanos(unix_nanos: i64) -> Self {
        Timestamp {
            unix_nanos: i128::from(unix_nanos),
        }
    }

    pub fn from_unix_millis(unix_millis: i64) -> Self {
        Timestamp {
            unix_nanos: i128::from(unix_millis) * NANOS_PER_MILLI,
        }
    }

    pub fn from_unix_seconds(unix_seconds: i64) -> Self {
        Timestamp {
            unix_nanos: i128::from(unix_seconds) * NANOS_PER_SECOND,
        }
    }

    /// Nanoseconds as an `i64`, when they fit (years 1678–2262).
    pub fn unix_nanos_i64(self) -> Option<i64> {
        i64::try_from(self.unix_nanos).ok()
    }

    /// Nanoseconds as an `i64`, clamped to its range.
    pub fn unix_nanos_saturating(self) -> i64 {
        clamp_i64(self.unix_nanos)
    }

    /// Whole milliseconds (floored, like Go's `UnixMilli`), clamped to the `i64` range.
    pub fn unix_millis(self) -> i64 {
        clamp_i64(self.unix_nanos.div_euclid(NANOS_PER_MILLI))
    }

    /// Whole milliseconds since the epoch, 0 for earlier instants: the time part of ids.
    pub fn unix_millis_since_epoch(self) -> u64 {
        u64::try_from(self.unix_nanos.div_euclid(NANOS_PER_MILLI).max(0)).unwrap_or(u64::MAX)
    }

    /// Whole seconds (floored, like Go's `Unix`), clamped to the `i64` range.
    pub fn unix_seconds(self) -> i64 {
        clamp_i64(self.unix_nanos.div_euclid(NANOS_PER_SECOND))
    }

    pub fn saturating_add_millis(self, millis: i64) -> Self {
        Timestamp {
            unix_nanos: self
                .unix_nanos
                .saturating_add(i128::from(millis) * NANOS_PER_MILLI),
        }
    }

    /// UTC with whole seconds, like Go's `time.RFC3339`: `2024-06-01T08:23:36Z`.
    pub fn format_rfc3339(self) -> String {
        rfc3339::format(self, Fraction::Drop, 0)
    }

    /// UTC with the fraction trimmed of trailing zeros, like Go's `time.RFC3339Nano` (and
    /// upstream's JSON encoder): `2024-06-01T08:23:36.08Z`, `2024-06-01T08:23:36Z`.
    pub fn format_rfc3339_nano(self) -> String {
        rfc3339::format(self, Fraction::Trimmed, 0)
    }

    /// Whole seconds as seen at `offset_seconds` east of UTC: `2024-06-01T10:23:36+02:00`
    /// (`Z` for 0).
    pub fn format_rfc3339_with_offset(self, offset_seconds: i32) -> String {
        rfc3339::format(self, Fraction::Drop, offset_seconds)
    }
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// Formats a stored unix-nanosecond field like [`Timestamp::format_rfc3339_nano`].
pub fn format_nanos(unix_nanos: i64) -> String {
    Timestamp::from_unix_nanos(unix_nanos).format_rfc3339_nano()
}

/// Formats a stored unix-millisecond field like [`Timestamp::format_rfc3339_nano`].
pub fn format_millis(unix_millis: i64) -> String {
    Timestamp::from_unix_millis(unix_millis).format_rfc3339_nano()
}

/// Formats whole unix seconds like [`Timestamp::format_rfc3339`].
pub fn format_seconds(unix_seconds: i64) -> String {
    Timestamp::from_unix_seconds(unix_seconds).format_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_agree() {
        let t = Timestamp::from_unix_seconds(1_717_230_216);
        assert_eq!(t, Timestamp::from_unix_millis(1_717_230_216_000));
        assert_eq!(t, Timestamp::from_unix_nanos(1_717_230_216_000_000_000));
        assert_eq!(Timestamp::from_unix_nanos(0).unix_nanos, 0);
    }

    #[test]
    fn conversions_floor_and_clamp() {
        let before = Timestamp::from_unix_nanos(-1);
        assert_eq!(before.unix_millis(), -1);
        assert_eq!(before.unix_seconds(), -1);
        assert_eq!(before.unix_millis_since_epoch(), 0);
        let t = Timestamp::from_unix_nanos(1_717_230_216_082_374_000);
        assert_eq!(t.unix_millis(), 1_717_230_216_082);
        assert_eq!(t.unix_millis_since_epoch(), 1_717_230_216_082);
        assert_eq!(t.unix_seconds(), 1_717_230_216);
        assert_eq!(t.unix_nanos_i64(), Some(1_717_230_216_082_374_000));
        let far = Timestamp {
            unix_nanos: i128::from(i64::MAX) + 1,
        };
        assert_eq!(far.unix_nanos_i64(), None);
        assert_eq!(far.unix_nanos_saturating(), i64::MAX);
        let long_ago = Timestamp {
            unix_nanos: i128::from(i64::MIN) - 1,
        };
        assert_eq!(long_ago.unix_nanos_saturating(), i64::MIN);
    }

    #[test]
    fn add_millis() {
        let t = Timestamp::from_unix_millis(1_000).saturating_add_millis(86_400_000);
        assert_eq!(t.format_rfc3339(), "1970-01-02T00:00:01Z");
    }

    #[test]
    fn formats_stored_fields() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(1_717_230_216_080), "2024-06-01T08:23:36.08Z");
        assert_eq!(
            format_nanos(1_717_230_216_082_374_000),
            "2024-06-01T08:23:36.082374Z"
        );
        assert_eq!(format_seconds(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parse_drops_or_keeps_the_offset() {
        let parsed = parse_rfc3339_with_offset("2024-06-01T10:23:36.5+02:00").unwrap();
        assert_eq!(parsed.offset_seconds, 7200);
        assert_eq!(
            parse_rfc3339("2024-06-01T10:23:36.5+02:00"),
            Ok(parsed.timestamp)
        );
        assert_eq!(
            parsed.timestamp.format_rfc3339_nano(),
            "2024-06-01T08:23:36.5Z"
        );
        assert_eq!(
            parsed
                .timestamp
                .format_rfc3339_with_offset(parsed.offset_seconds),
            "2024-06-01T10:23:36+02:00"
        );
    }
}
