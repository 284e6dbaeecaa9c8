//! RFC 3339 timestamps: formatting unix times the way upstream's Go encoder does (fraction
//! trimmed of trailing zeros, `Z` for UTC) and parsing what clients send (any offset, optional
//! fraction, or a bare `YYYY-MM-DD` where query filters allow it).

/// A parsed instant: nanoseconds since the Unix epoch plus the offset it was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant {
    pub unix_nanos: i128,
    pub offset_seconds: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp")]
pub struct TimestampError;

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Formats unix nanoseconds as UTC RFC 3339 with the fraction trimmed (`…:36.08Z`, `…:36Z`).
pub fn format_nanos(unix_nanos: i64) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let frac = unix_nanos.rem_euclid(1_000_000_000);
    let mut out = format_seconds(secs);
    if frac != 0 {
        out.pop(); // the 'Z'
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
        out.push('Z');
    }
    out
}

/// Formats unix milliseconds as UTC RFC 3339 with the fraction trimmed.
pub fn format_millis(unix_ms: i64) -> String {
    format_nanos(unix_ms.saturating_mul(1_000_000))
}

/// Formats whole unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_seconds(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let rem = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Formats whole seconds in a given offset, as `2024-06-01T10:23:36+02:00` (or `Z` for 0).
pub fn format_seconds_with_offset(unix_seconds: i64, offset_seconds: i32) -> String {
    if offset_seconds == 0 {
        return format_seconds(unix_seconds);
    }
    let local = format_seconds(unix_seconds + offset_seconds as i64);
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let abs = offset_seconds.unsigned_abs();
    format!(
        "{}{sign}{:02}:{:02}",
        &local[..local.len() - 1],
        abs / 3600,
        (abs % 3600) / 60
    )
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Instant {
    /// Milliseconds since the epoch (saturating far outside the representable range).
    pub fn unix_millis(&self) -> i64 {
        let ms = self.unix_nanos.div_euclid(1_000_000);
        ms.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Nanoseconds since the epoch, when they fit in an `i64` (years 1678–2262).
    pub fn unix_nanos_i64(&self) -> Option<i64> {
        i64::try_from(self.unix_nanos).ok()
    }
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Result<u32, TimestampError> {
        let end = self.pos + n;
        let slice = self.bytes.get(self.pos..end).ok_or(TimestampError)?;
        let mut value = 0u32;
        for b in slice {
            if !b.is_ascii_digit() {
                return Err(TimestampError);
            }
            value = value * 10 + (b - b'0') as u32;
        }
        self.pos = end;
        Ok(value)
    }
    fn expect(&mut self, accepted: &[u8]) -> Result<u8, TimestampError> {
        match self.bytes.get(self.pos) {
            Some(b) if accepted.contains(b) => {
                self.pos += 1;
                Ok(*b)
            }
            _ => Err(TimestampError),
        }
    }
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
}

fn parse_date(c: &mut Cursor<'_>) -> Result<i64, TimestampError> {
    let year = c.digits(4)? as i64;
    c.expect(b"-")?;
    let month = c.digits(2)?;
    c.expect(b"-")?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(TimestampError);
    }
    Ok(days_from_civil(year, month, day))
}

/// Parses an RFC 3339 timestamp (`T` or `t` separator, optional fraction, `Z` or `±HH:MM`).
pub fn parse_rfc3339(text: &str) -> Result<Instant, TimestampError> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let days = parse_date(&mut c)?;
    c.expect(b"Tt")?;
    let hour = c.digits(2)?;
    c.expect(b":")?;
    let minute = c.digits(2)?;
    c.expect(b":")?;
    let second = c.digits(2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimestampError);
    }
    let mut nanos: i64 = 0;
    if c.peek() == Some(b'.') {
        c.pos += 1;
        let start = c.pos;
        while matches!(c.peek(), Some(b'0'..=b'9')) {
            if c.pos - start < 9 {
                nanos = nanos * 10 + (c.bytes[c.pos] - b'0') as i64;
            }
            c.pos += 1;
        }
        let count = c.pos - start;
        if count == 0 {
            return Err(TimestampError);
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset_seconds: i32 = match c.expect(b"Zz+-")? {
        b'Z' | b'z' => 0,
        sign => {
            let oh = c.digits(2)?;
            c.expect(b":")?;
            let om = c.digits(2)?;
            if oh > 23 || om > 59 {
                return Err(TimestampError);
            }
            let value = (oh * 3600 + om * 60) as i32;
            if sign == b'-' {
                -value
            } else {
                value
            }
        }
    };
    if c.pos != c.bytes.len() {
        return Err(TimestampError);
    }
    let local_seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let utc_seconds = local_seconds - offset_seconds as i64;
    let unix_nanos = utc_seconds as i128 * 1_000_000_000 + nanos as i128;
    Ok(Instant {
        unix_nanos,
        offset_seconds,
    })
}

/// Parses RFC 3339 or a bare `YYYY-MM-DD` (midnight UTC), as the log query filters accept.
pub fn parse_rfc3339_or_date(text: &str) -> Result<Instant, TimestampError> {
    if text.len() == 10 {
        let mut c = Cursor {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let days = parse_date(&mut c)?;
        return Ok(Instant {
            unix_nanos: days as i128 * 86_400 * 1_000_000_000,
            offset_seconds: 0,
        });
    }
    parse_rfc3339(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_trimmed_fractions() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(1_717_230_216_080), "2024-06-01T08:23:36.08Z");
        assert_eq!(
            format_nanos(1_717_230_216_082_374_000),
            "2024-06-01T08:23:36.082374Z"
        );
        assert_eq!(format_seconds(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = parse_rfc3339("2024-06-01T10:23:36.5+02:00").unwrap();
        assert_eq!(t.unix_nanos, 1_717_230_216_500_000_000);
        assert_eq!(t.offset_seconds, 7200);
        assert_eq!(
            format_seconds_with_offset(1_717_230_216, 7200),
            "2024-06-01T10:23:36+02:00"
        );
        assert_eq!(
            parse_rfc3339("2024-06-01T08:23:36Z")
                .unwrap()
                .offset_seconds,
            0
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2024-06-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-06-01T24:00:00Z",
            "2024-06-01T00:00:00",
            "2024-06-01T00:00:00.Z",
            "2024-06-01T00:00:00Zjunk",
            "2024-06-01 00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_only_is_midnight_utc() {
        let t = parse_rfc3339_or_date("2024-01-15").unwrap();
        assert_eq!(
            format_nanos(t.unix_nanos_i64().unwrap()),
            "2024-01-15T00:00:00Z"
        );
        assert!(parse_rfc3339_or_date("2024-1-15").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_875, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
