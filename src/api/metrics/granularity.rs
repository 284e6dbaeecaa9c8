//! The metrics `granularity` parameter: `<number><unit>` with upstream's limits and messages,
//! and the UTC time buckets it cuts a range into. `s`, `m` and `h` buckets are whole multiples
//! of their length since the epoch; `d` buckets count whole days from 1970-01-01; `w` buckets
//! start on a Sunday, counted from Sunday 1970-01-04; `M` buckets start on the first of a
//! month, counted from January 1970. Times are unix nanoseconds in `i128`, so no range the API
//! accepts can overflow.

use std::fmt;

use crate::time::{civil_from_days, days_from_civil};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;
/// 1970-01-04, the first Sunday after the epoch, in days since the epoch.
const FIRST_SUNDAY: i128 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Unit {
    fn from_char(c: char) -> Option<Unit> {
        Some(match c {
            's' => Unit::Second,
            'm' => Unit::Minute,
            'h' => Unit::Hour,
            'd' => Unit::Day,
            'w' => Unit::Week,
            'M' => Unit::Month,
            _ => return None,
        })
    }

    fn letter(self) -> char {
        match self {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
            Unit::Month => 'M',
        }
    }

    /// The largest value upstream accepts with this unit.
    fn max(self) -> u64 {
        match self {
            Unit::Second | Unit::Minute => 60,
            Unit::Hour => 24,
            Unit::Day => 31,
            Unit::Week => 4,
            Unit::Month => 12,
        }
    }
}

/// A valid granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granularity {
    pub value: u32,
    pub unit: Unit,
}

/// Why a granularity was refused; the text is upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GranularityError {
    #[error("invalid granularity {0}: must match <number><unit> where unit is one of s,m,h,d,w,M")]
    Format(String),
    #[error("invalid granularity {0}: value must be > 0")]
    NotPositive(String),
    #[error("invalid granularity {quoted}: {unit} value must be between 1 and {max}")]
    TooLarge {
        quoted: String,
        unit: char,
        max: u64,
    },
}

/// A string quoted as Go's `%q` writes it (for the texts of error messages).
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Granularity {
    /// Parses `raw` as upstream does (`^(\d+)([smhdwM])$`, value > 0, at most the unit's
    /// maximum). An empty text means no granularity.
    pub fn parse(raw: &str) -> Result<Option<Granularity>, GranularityError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let format = || GranularityError::Format(go_quote(raw));
        let mut chars = raw.chars();
        let unit = chars
            .next_back()
            .and_then(Unit::from_char)
            .ok_or_else(format)?;
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format());
        }
        // Go's Atoi answers the largest int for a number too long for it: never below the max.
        let value = digits.parse::<u64>().unwrap_or(u64::MAX);
        if value == 0 {
            return Err(GranularityError::NotPositive(go_quote(raw)));
        }
        if value > unit.max() {
            return Err(GranularityError::TooLarge {
                quoted: go_quote(raw),
                unit: unit.letter(),
                max: unit.max(),
            });
        }
        Ok(Some(Granularity {
            value: u32::try_from(value).map_err(|_| format())?,
            unit,
        }))
    }

    /// Length in nanoseconds of the fixed-length units (everything but months).
    fn fixed_nanos(self) -> Option<i128> {
        let value = i128::from(self.value);
        let seconds = match self.unit {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => return None,
        };
        Some(value * seconds * NANOS_PER_SECOND)
    }

    /// The start of the bucket holding `t` (unix nanoseconds).
    pub fn bucket_start(self, t: i128) -> i128 {
        match self.unit {
            Unit::Second | Unit::Minute | Unit::Hour | Unit::Day => {
                let len = self.fixed_nanos().unwrap_or(NANOS_PER_DAY);
                t.div_euclid(len) * len
            }
            Unit::Week => {
                let weeks = 7 * i128::from(self.value);
                let day = t.div_euclid(NANOS_PER_DAY);
                let start = FIRST_SUNDAY + (day - FIRST_SUNDAY).div_euclid(weeks) * weeks;
                start * NANOS_PER_DAY
            }
            Unit::Month => {
                let (year, month, _) = civil_from_days(t.div_euclid(NANOS_PER_DAY));
                let index = (year - 1970) * 12 + i128::from(month) - 1;
                let start = index.div_euclid(i128::from(self.value)) * i128::from(self.value);
                month_start(start)
            }
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next_start(self, start: i128) -> i128 {
        match self.fixed_nanos() {
            Some(len) => start + len,
            None => {
                let (year, month, _) = civil_from_days(start.div_euclid(NANOS_PER_DAY));
                let index = (year - 1970) * 12 + i128::from(month) - 1;
                month_start(index + i128::from(self.value))
            }
        }
    }

    /// Length in seconds of the bucket starting at `start` (calendar months for `M`).
    pub fn bucket_seconds(self, start: i128) -> f64 {
        ((self.next_start(start) - start) / NANOS_PER_SECOND) as f64
    }

    /// The starts of the buckets `[start, end)` touches, or `None` when there are more than
    /// `limit`.
    pub fn bucket_starts(self, start: i128, end: i128, limit: usize) -> Option<Vec<i128>> {
        let mut starts = Vec::new();
        let mut bucket = self.bucket_start(start);
        while bucket < end {
            if starts.len() == limit {
                return None;
            }
            starts.push(bucket);
            bucket = self.next_start(bucket);
        }
        Some(starts)
    }
}

/// The first instant of the month `index` months after January 1970.
fn month_start(index: i128) -> i128 {
    let year = 1970 + index.div_euclid(12);
    // In 1..=12 by construction.
    let month = u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    days_from_civil(year, month, 1) * NANOS_PER_DAY
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn at(text: &str) -> i128 {
        parse_rfc3339(text).expect("test time").unix_nanos
    }

    fn g(text: &str) -> Granularity {
        Granularity::parse(text).expect("valid").expect("some")
    }

    fn start_of(granularity: &str, time: &str) -> String {
        let start = g(granularity).bucket_start(at(time));
        crate::time::Timestamp { unix_nanos: start }.format_rfc3339_nano()
    }

    #[test]
    fn parses_upstream_forms_and_refuses_the_rest() {
        assert_eq!(Granularity::parse(""), Ok(None));
        assert_eq!(
            g("15m"),
            Granularity {
                value: 15,
                unit: Unit::Minute
            }
        );
        assert_eq!(g("01h").to_string(), "1h");
        assert_eq!(g("12M").unit, Unit::Month);
        for (raw, max) in [
            ("60s", 60),
            ("60m", 60),
            ("24h", 24),
            ("31d", 31),
            ("4w", 4),
        ] {
            assert_eq!(g(raw).value, max);
        }
        let message = |raw: &str| Granularity::parse(raw).unwrap_err().to_string();
        assert_eq!(
            message("61s"),
            r#"invalid granularity "61s": s value must be between 1 and 60"#
        );
        assert_eq!(
            message("61m"),
            r#"invalid granularity "61m": m value must be between 1 and 60"#
        );
        assert_eq!(
            message("25h"),
            r#"invalid granularity "25h": h value must be between 1 and 24"#
        );
        assert_eq!(
            message("32d"),
            r#"invalid granularity "32d": d value must be between 1 and 31"#
        );
        assert_eq!(
            message("5w"),
            r#"invalid granularity "5w": w value must be between 1 and 4"#
        );
        assert_eq!(
            message("13M"),
            r#"invalid granularity "13M": M value must be between 1 and 12"#
        );
        assert_eq!(
            message("99999999999999999999999h"),
            r#"invalid granularity "99999999999999999999999h": h value must be between 1 and 24"#
        );
        assert_eq!(
            message("0m"),
            r#"invalid granularity "0m": value must be > 0"#
        );
        assert_eq!(
            message("000d"),
            r#"invalid granularity "000d": value must be > 0"#
        );
        for raw in [
            "5x", "h", "1H", "1.5h", "-1h", " 1h", "1h ", "hourly", "1hh", "١h",
        ] {
            assert_eq!(
                message(raw),
                format!(
                    "invalid granularity {}: must match <number><unit> where unit is one of \
                     s,m,h,d,w,M",
                    go_quote(raw)
                ),
                "{raw}"
            );
        }
        assert_eq!(go_quote("a\"b\\\n\u{1}"), r#""a\"b\\\n\x01""#);
    }

    #[test]
    fn seconds_minutes_and_hours_align_to_the_epoch() {
        assert_eq!(
            start_of("1s", "2024-03-05T10:11:12.9Z"),
            "2024-03-05T10:11:12Z"
        );
        assert_eq!(
            start_of("15s", "2024-03-05T10:11:14Z"),
            "2024-03-05T10:11:00Z"
        );
        assert_eq!(
            start_of("7s", "1970-01-01T00:00:20Z"),
            "1970-01-01T00:00:14Z"
        );
        assert_eq!(
            start_of("1m", "2024-03-05T10:11:59Z"),
            "2024-03-05T10:11:00Z"
        );
        assert_eq!(
            start_of("5m", "2024-03-05T10:14:59Z"),
            "2024-03-05T10:10:00Z"
        );
        assert_eq!(
            start_of("1h", "2024-03-05T10:59:59Z"),
            "2024-03-05T10:00:00Z"
        );
        assert_eq!(
            start_of("6h", "2024-03-05T17:00:00Z"),
            "2024-03-05T12:00:00Z"
        );
        // 7 h does not divide a day: multiples of 7 h since the epoch.
        assert_eq!(
            start_of("7h", "1970-01-02T03:00:00Z"),
            "1970-01-01T21:00:00Z"
        );
        // Before the epoch, floors go down.
        assert_eq!(
            start_of("1h", "1969-12-31T23:30:00Z"),
            "1969-12-31T23:00:00Z"
        );
    }

    #[test]
    fn days_weeks_and_months_follow_the_calendar() {
        assert_eq!(
            start_of("1d", "2024-03-05T23:59:59Z"),
            "2024-03-05T00:00:00Z"
        );
        // Day 19787 (2024-03-05) is 2 mod 3: 3-day buckets started on 2024-03-03.
        assert_eq!(
            start_of("3d", "2024-03-05T12:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        // 2024-03-05 is a Tuesday; its week started on Sunday 2024-03-03.
        assert_eq!(
            start_of("1w", "2024-03-05T12:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            start_of("1w", "2024-03-03T00:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            start_of("1w", "2024-03-02T23:59:59Z"),
            "2024-02-25T00:00:00Z"
        );
        // Two-week buckets from 1970-01-04: 2024-03-03 is 2826 weeks on (even), 2024-03-10 not.
        assert_eq!(
            start_of("2w", "2024-03-05T12:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            start_of("2w", "2024-03-16T12:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            start_of("2w", "2024-03-17T00:00:00Z"),
            "2024-03-17T00:00:00Z"
        );
        assert_eq!(
            start_of("1w", "1970-01-01T00:00:00Z"),
            "1969-12-28T00:00:00Z"
        );
        assert_eq!(
            start_of("1M", "2024-02-29T12:00:00Z"),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(
            start_of("3M", "2024-05-31T12:00:00Z"),
            "2024-04-01T00:00:00Z"
        );
        assert_eq!(
            start_of("12M", "2024-05-31T12:00:00Z"),
            "2024-01-01T00:00:00Z"
        );
        // 5-month buckets from January 1970: month 652 (2024-05) is in the one from 650.
        assert_eq!(
            start_of("5M", "2024-05-31T12:00:00Z"),
            "2024-03-01T00:00:00Z"
        );
        assert_eq!(
            start_of("1M", "1969-12-31T12:00:00Z"),
            "1969-12-01T00:00:00Z"
        );
    }

    #[test]
    fn bucket_lengths_and_counts() {
        let jan = at("2024-01-01T00:00:00Z");
        assert_eq!(g("1M").bucket_seconds(jan), 31.0 * 86_400.0);
        let feb = g("1M").next_start(jan);
        assert_eq!(feb, at("2024-02-01T00:00:00Z"));
        assert_eq!(g("1M").bucket_seconds(feb), 29.0 * 86_400.0);
        assert_eq!(
            g("1M").bucket_seconds(at("2023-02-01T00:00:00Z")),
            28.0 * 86_400.0
        );
        assert_eq!(g("2M").bucket_seconds(jan), 60.0 * 86_400.0);
        assert_eq!(g("1h").bucket_seconds(jan), 3_600.0);
        assert_eq!(g("2w").bucket_seconds(jan), 14.0 * 86_400.0);
        assert_eq!(
            g("1M").next_start(at("2024-12-01T00:00:00Z")),
            at("2025-01-01T00:00:00Z")
        );

        let starts = g("1h")
            .bucket_starts(at("2024-01-01T00:30:00Z"), at("2024-01-01T03:00:00Z"), 100)
            .expect("within the limit");
        assert_eq!(
            starts,
            vec![
                at("2024-01-01T00:00:00Z"),
                at("2024-01-01T01:00:00Z"),
                at("2024-01-01T02:00:00Z")
            ]
        );
        let start = at("2024-01-01T00:00:00Z");
        let end = at("2024-01-02T03:46:40Z"); // 100,000 s later
        assert_eq!(
            g("1s").bucket_starts(start, end, 100_000).map(|s| s.len()),
            Some(100_000)
        );
        assert_eq!(g("1s").bucket_starts(start, end + 1, 100_000), None);
    }
}
