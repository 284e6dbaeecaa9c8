//! Minimal RFC 3339 helpers used by the webhook credential lifecycle: parsing the
//! `previous_secret_invalid_at` value (any offset, optional fraction) and formatting generated
//! expiry times as UTC with whole seconds (`2024-06-01T08:23:36Z`).

const MS_PER_SECOND: i64 = 1_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into Unix milliseconds.
///
/// Fractions longer than milliseconds are truncated. Returns `None` for anything that is not a
/// well-formed, in-range timestamp.
pub(super) fn parse_unix_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    let hour = digits(bytes, 11, 2)?;
    let minute = digits(bytes, 14, 2)?;
    let second = digits(bytes, 17, 2)?;
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }

    let mut pos = 19;
    let mut millis = 0;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(bytes[pos] - b'0');
            }
            pos += 1;
        }
        let fraction_len = pos - start;
        if fraction_len == 0 {
            return None;
        }
        for _ in fraction_len..3 {
            millis *= 10;
        }
    }

    let offset_seconds = match &bytes[pos..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let offset_hour = digits(bytes, pos + 1, 2)?;
            let offset_minute = digits(bytes, pos + 4, 2)?;
            if offset_hour > 23 || offset_minute > 59 {
                return None;
            }
            let magnitude = offset_hour * 3_600 + offset_minute * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };

    let local_seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3_600 + minute * 60 + second;
    Some((local_seconds - offset_seconds) * MS_PER_SECOND + millis)
}

/// Formats Unix milliseconds as UTC RFC 3339 with whole seconds, e.g. `2024-06-01T08:23:36Z`.
/// Sub-second precision is truncated.
pub(super) fn format_utc_seconds(unix_ms: i64) -> String {
    let total_seconds = unix_ms.div_euclid(MS_PER_SECOND);
    let days = total_seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = total_seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3_600,
        (second_of_day / 60) % 60,
        second_of_day % 60
    )
}

/// Reads `len` ASCII digits starting at `start`.
fn digits(bytes: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = bytes.get(start..start + len)?;
    slice.iter().try_fold(0_i64, |acc, byte| {
        byte.is_ascii_digit()
            .then(|| acc * 10 + i64::from(byte - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (month 1..=12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Shift the year so that it starts in March; February's leap day is then the last day.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse_unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_unix_ms("2024-06-01T08:23:36Z"),
            Some(1_717_230_216_000)
        );
        assert_eq!(
            parse_unix_ms("2024-06-01T10:23:36+02:00"),
            Some(1_717_230_216_000)
        );
        assert_eq!(
            parse_unix_ms("2024-06-01T03:23:36-05:00"),
            Some(1_717_230_216_000)
        );
    }

    #[test]
    fn parses_fractions() {
        assert_eq!(parse_unix_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_unix_ms("1970-01-01T00:00:01.082374Z"), Some(1_082));
        assert_eq!(parse_unix_ms("1970-01-01T00:00:01.Z"), None);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "tomorrow",
            "2024-06-01",
            "2024-06-01 08:23:36Z",
            "2024-06-01T08:23:36",
            "2024-13-01T08:23:36Z",
            "2023-02-29T08:23:36Z",
            "2024-06-01T24:00:00Z",
            "2024-06-01T08:60:00Z",
            "2024-06-01T08:23:36+2:00",
            "2024-06-01T08:23:36+02:00extra",
            "2024-06-01T08:23:36z",
        ] {
            assert_eq!(parse_unix_ms(bad), None, "{bad}");
        }
        assert!(parse_unix_ms("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(format_utc_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc_seconds(1_717_230_216_999),
            "2024-06-01T08:23:36Z"
        );
        assert_eq!(format_utc_seconds(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_utc_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn round_trips() {
        for ms in [0_i64, 86_399_000, 1_717_230_216_000, 4_102_444_800_000] {
            assert_eq!(parse_unix_ms(&format_utc_seconds(ms)), Some(ms));
        }
    }
}
