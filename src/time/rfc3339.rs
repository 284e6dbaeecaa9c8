//! The RFC 3339 reader and writer behind [`super::Timestamp`].
//!
//! Accepted, as Go's `time.Parse(time.RFC3339, …)` accepts it (upstream is Go):
//! `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with an uppercase `T` and `Z`, a fraction of one
//! or more digits of any length (digits past nanoseconds are dropped), seconds `00`–`59`, offset
//! hours `00`–`23` and minutes `00`–`59`, and a date that exists (February 29 only in leap
//! years). The bare date `YYYY-MM-DD` is read as midnight UTC only through
//! [`parse_rfc3339_or_date`], for the query filters that allow it.
//!
//! Rejected, although one of the two earlier readers here took it: a lowercase `t` or `z` and a
//! leap second `:60` (Go's parser refuses all three). Also rejected, although Go's slower
//! fallback path lets them through: a comma before the fraction and one-digit hours — Go's own
//! strict RFC 3339 check treats those as bugs, and no Go client writes them.
//!
//! Written: UTC with `Z`, either whole seconds (Go's `time.RFC3339`) or with the fraction trimmed
//! of trailing zeros (`time.RFC3339Nano`, what upstream's JSON encoder writes), or whole seconds
//! in a given offset (`2024-06-01T10:23:36+02:00`).

use super::civil::{civil_from_days, days_from_civil, days_in_month};
use super::{OffsetTimestamp, Timestamp, NANOS_PER_SECOND};

const SECONDS_PER_DAY: i128 = 86_400;

/// Text that is not an RFC 3339 timestamp this module accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp")]
pub struct ParseTimeError;

/// How much of the second to write.
#[derive(Clone, Copy)]
pub(super) enum Fraction {
    /// Whole seconds: the fraction is dropped.
    Drop,
    /// Up to nine digits, trailing zeros trimmed, none at all for a whole second.
    Trimmed,
}

/// Writes `timestamp` as seen at `offset_seconds` east of UTC (`Z` when 0).
pub(super) fn format(timestamp: Timestamp, fraction: Fraction, offset_seconds: i32) -> String {
    let local = timestamp.unix_nanos + i128::from(offset_seconds) * NANOS_PER_SECOND;
    let seconds = local.div_euclid(NANOS_PER_SECOND);
    let nanos = local.rem_euclid(NANOS_PER_SECOND);
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let mut out = if year < 0 {
        format!("-{:04}", -year)
    } else {
        format!("{year:04}")
    };
    out.push_str(&format!(
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60
    ));
    if let (Fraction::Trimmed, true) = (fraction, nanos != 0) {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    if offset_seconds == 0 {
        out.push('Z');
    } else {
        let sign = if offset_seconds < 0 { '-' } else { '+' };
        let abs = offset_seconds.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    out
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, ParseTimeError> {
    parse_rfc3339_with_offset(text).map(|parsed| parsed.timestamp)
}

/// Parses an RFC 3339 timestamp, keeping the offset it was written with.
pub fn parse_rfc3339_with_offset(text: &str) -> Result<OffsetTimestamp, ParseTimeError> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let days = parse_date(&mut c)?;
    c.expect(b'T')?;
    let hour = c.digits(2)?;
    c.expect(b':')?;
    let minute = c.digits(2)?;
    c.expect(b':')?;
    let second = c.digits(2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(ParseTimeError);
    }
    let mut nanos: i128 = 0;
    if c.peek() == Some(b'.') {
        c.pos += 1;
        let start = c.pos;
        while let Some(digit @ b'0'..=b'9') = c.peek() {
            if c.pos - start < 9 {
                nanos = nanos * 10 + i128::from(digit - b'0');
            }
            c.pos += 1;
        }
        let count = c.pos - start;
        if count == 0 {
            return Err(ParseTimeError);
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset_seconds: i32 = match c.next() {
        Some(b'Z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let offset_hour = c.digits(2)?;
            c.expect(b':')?;
            let offset_minute = c.digits(2)?;
            if offset_hour > 23 || offset_minute > 59 {
                return Err(ParseTimeError);
            }
            // At most 23 * 3600 + 59 * 60, well inside i32.
            let magnitude = (offset_hour * 3600 + offset_minute * 60) as i32;
            if sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return Err(ParseTimeError),
    };
    if c.pos != c.bytes.len() {
        return Err(ParseTimeError);
    }
    let local_seconds = days * SECONDS_PER_DAY + i128::from(hour * 3600 + minute * 60 + second);
    let utc_seconds = local_seconds - i128::from(offset_seconds);
    Ok(OffsetTimestamp {
        timestamp: Timestamp {
            unix_nanos: utc_seconds * NANOS_PER_SECOND + nanos,
        },
        offset_seconds,
    })
}

/// Parses RFC 3339, or a bare `YYYY-MM-DD` as midnight UTC.
pub fn parse_rfc3339_or_date(text: &str) -> Result<Timestamp, ParseTimeError> {
    if text.len() != "YYYY-MM-DD".len() {
        return parse_rfc3339(text);
    }
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let days = parse_date(&mut c)?;
    Ok(Timestamp {
        unix_nanos: days * SECONDS_PER_DAY * NANOS_PER_SECOND,
    })
}

/// `YYYY-MM-DD`, checked against the calendar, as days since 1970-01-01.
fn parse_date(c: &mut Cursor<'_>) -> Result<i128, ParseTimeError> {
    let year = i128::from(c.digits(4)?);
    c.expect(b'-')?;
    let month = c.digits(2)?;
    c.expect(b'-')?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(ParseTimeError);
    }
    Ok(days_from_civil(year, month, day))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Result<u32, ParseTimeError> {
        let end = self.pos + n;
        let slice = self.bytes.get(self.pos..end).ok_or(ParseTimeError)?;
        let mut value = 0u32;
        for b in slice {
            if !b.is_ascii_digit() {
                return Err(ParseTimeError);
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos = end;
        Ok(value)
    }

    fn expect(&mut self, byte: u8) -> Result<(), ParseTimeError> {
        match self.next() {
            Some(b) if b == byte => Ok(()),
            _ => Err(ParseTimeError),
        }
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> i128 {
        match parse_rfc3339(text) {
            Ok(parsed) => parsed.unix_nanos,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(nanos("1970-01-01T00:00:00Z"), 0);
        assert_eq!(nanos("2024-06-01T08:23:36Z"), 1_717_230_216_000_000_000);
        assert_eq!(
            nanos("2024-06-01T10:23:36+02:00"),
            1_717_230_216_000_000_000
        );
        assert_eq!(
            nanos("2024-06-01T03:23:36-05:00"),
            1_717_230_216_000_000_000
        );
        let parsed = parse_rfc3339_with_offset("2024-06-01T10:23:36.5+02:00").unwrap();
        assert_eq!(parsed.timestamp.unix_nanos, 1_717_230_216_500_000_000);
        assert_eq!(parsed.offset_seconds, 7200);
        let offset = |text| parse_rfc3339_with_offset(text).unwrap().offset_seconds;
        assert_eq!(offset("2024-06-01T08:23:36Z"), 0);
        assert_eq!(offset("2024-06-01T08:23:36-00:30"), -1800);
    }

    #[test]
    fn fractions_of_any_length_keep_nanoseconds() {
        assert_eq!(nanos("1970-01-01T00:00:01.5Z"), 1_500_000_000);
        assert_eq!(nanos("1970-01-01T00:00:01.082374Z"), 1_082_374_000);
        assert_eq!(nanos("1970-01-01T00:00:01.123456789Z"), 1_123_456_789);
        // Digits past the ninth are dropped, as Go does.
        assert_eq!(nanos("1970-01-01T00:00:01.1234567899999Z"), 1_123_456_789);
        assert_eq!(nanos("1969-12-31T23:59:59.5Z"), -500_000_000);
    }

    #[test]
    fn accepts_the_calendar_edges() {
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("0000-01-01T00:00:00Z").is_ok());
        assert!(parse_rfc3339("9999-12-31T23:59:59.999999999+23:59").is_ok());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "tomorrow",
            "2024-06-01",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-06-00T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-06-01T24:00:00Z",
            "2024-06-01T08:60:00Z",
            "2024-06-01T00:00:00",
            "2024-06-01T00:00:00.Z",
            "2024-06-01T00:00:00Zjunk",
            "2024-06-01 00:00:00Z",
            "2024-06-01T08:23:36+2:00",
            "2024-06-01T08:23:36+0200",
            "2024-06-01T08:23:36+24:00",
            "2024-06-01T08:23:36+02:60",
            "2024-06-01T08:23:36+02:00extra",
            "+2024-06-01T08:23:36Z",
            "24-06-01T08:23:36Z",
            " 2024-06-01T08:23:36Z",
        ] {
            assert_eq!(parse_rfc3339_with_offset(bad), Err(ParseTimeError), "{bad}");
            if bad != "2024-06-01" {
                assert!(parse_rfc3339_or_date(bad).is_err(), "{bad}");
            }
        }
    }

    /// Inputs the two earlier readers disagreed on; Go's `time.Parse(time.RFC3339, …)` rejects
    /// every one, and so does this reader.
    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            // Lowercase separator and zone letter.
            "2024-06-01t08:23:36Z",
            "2024-06-01T08:23:36z",
            "2024-06-01t08:23:36.5z",
            // A leap second.
            "2016-12-31T23:59:60Z",
            "2024-06-01T08:23:60+02:00",
            // Go's fallback path only: comma fraction, one-digit hour.
            "2024-06-01T08:23:36,5Z",
            "2024-06-01T8:23:36Z",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(ParseTimeError), "{bad}");
        }
    }

    #[test]
    fn date_only_is_midnight_utc_where_allowed() {
        let parsed = parse_rfc3339_or_date("2024-01-15").unwrap();
        assert_eq!(parsed.unix_nanos, 1_705_276_800 * NANOS_PER_SECOND);
        assert_eq!(
            parse_rfc3339_or_date("2024-01-15T09:30:00Z")
                .unwrap()
                .unix_nanos,
            1_705_311_000 * NANOS_PER_SECOND
        );
        for bad in ["2024-1-15", "2024-02-30", "2024-01-15T", "20240115"] {
            assert!(parse_rfc3339_or_date(bad).is_err(), "{bad}");
        }
    }

    fn at(seconds: i128, nanos: i128) -> Timestamp {
        Timestamp {
            unix_nanos: seconds * NANOS_PER_SECOND + nanos,
        }
    }

    #[test]
    fn formats_whole_seconds() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_717_230_216, "2024-06-01T08:23:36Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-62_135_596_800, "0001-01-01T00:00:00Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(format(at(seconds, 0), Fraction::Drop, 0), expected);
            assert_eq!(
                format(at(seconds, 999_999_999), Fraction::Drop, 0),
                expected
            );
        }
    }

    #[test]
    fn formats_trimmed_fractions() {
        assert_eq!(
            format(at(0, 0), Fraction::Trimmed, 0),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            format(at(1_717_230_216, 80_000_000), Fraction::Trimmed, 0),
            "2024-06-01T08:23:36.08Z"
        );
        assert_eq!(
            format(at(1_717_230_216, 82_374_000), Fraction::Trimmed, 0),
            "2024-06-01T08:23:36.082374Z"
        );
        assert_eq!(
            format(at(-1, 1), Fraction::Trimmed, 0),
            "1969-12-31T23:59:59.000000001Z"
        );
    }

    #[test]
    fn formats_offsets() {
        let t = at(1_717_230_216, 500_000_000);
        assert_eq!(format(t, Fraction::Drop, 7200), "2024-06-01T10:23:36+02:00");
        assert_eq!(
            format(t, Fraction::Drop, -18_000),
            "2024-06-01T03:23:36-05:00"
        );
        assert_eq!(
            format(t, Fraction::Drop, -1800),
            "2024-06-01T07:53:36-00:30"
        );
        assert_eq!(format(t, Fraction::Drop, 0), "2024-06-01T08:23:36Z");
    }

    #[test]
    fn round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-06-01T08:23:36.5Z",
            "2024-06-01T08:23:36.123456789Z",
            "1969-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59Z",
        ] {
            let parsed = parse_rfc3339(text).unwrap();
            assert_eq!(format(parsed, Fraction::Trimmed, 0), text);
        }
        let parsed = parse_rfc3339_with_offset("2024-06-01T10:23:36+02:00").unwrap();
        assert_eq!(
            format(parsed.timestamp, Fraction::Drop, parsed.offset_seconds),
            "2024-06-01T10:23:36+02:00"
        );
    }
}
