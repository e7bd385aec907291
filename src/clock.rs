//! Time: the wall clock and the four formats the daemon speaks (SigV4's basic
//! ISO 8601, HTTP dates, ISO 8601 with milliseconds for XML). Civil-date
//! arithmetic by days since the epoch, so no time zone database is needed.
//!
//! The wall clock can be shifted for tests: `BLEEPSTORE_CLOCK_OFFSET_SECS` (read once,
//! at the first call) moves every reading by that many seconds, so a test can start
//! the daemon "later" (past a TTL, past an expiry) instead of sleeping. Monotonic
//! time (`Instant`) is never shifted.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    now_unix_millis().div_euclid(1000)
}

pub fn now_unix_millis() -> i64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    real + offset_millis()
}

/// The test clock's shift, from the environment; 0 when unset or unreadable.
fn offset_millis() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("BLEEPSTORE_CLOCK_OFFSET_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(0, |secs| secs.saturating_mul(1000))
    })
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn parts(unix: i64) -> Parts {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400) as u32;
    Parts {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// The Unix time of a civil date and time; `None` for an invalid one. Years are the
/// four-digit ones every format here writes (0 to 9999): a longer year from a request
/// header would overflow the arithmetic.
fn to_unix(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    let valid = (0..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// "20130524T000000Z".
pub fn format_amz_date(unix: i64) -> String {
    let p = parts(unix);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    to_unix(
        i64::from(num(0..4)?),
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?,
    )
}

/// "Fri, 24 May 2013 00:00:00 GMT".
pub fn format_http_date(unix: i64) -> String {
    let p = parts(unix);
    let weekday = DAYS[unix.div_euclid(86_400).rem_euclid(7) as usize];
    if !(0..=9999).contains(&p.year) {
        return format!(
            "{weekday}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            p.day,
            MONTHS[p.month as usize - 1],
            p.year,
            p.hour,
            p.minute,
            p.second
        );
    }
    // Written digit by digit: every GET and HEAD formats a Last-Modified.
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let year = p.year as u32;
    let mut out = String::with_capacity(29);
    out.push_str(weekday);
    out.push_str(", ");
    out.extend([digit(p.day / 10), digit(p.day), ' ']);
    out.push_str(MONTHS[p.month as usize - 1]);
    out.push(' ');
    out.extend([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        ' ',
    ]);
    out.extend([digit(p.hour / 10), digit(p.hour), ':']);
    out.extend([digit(p.minute / 10), digit(p.minute), ':']);
    out.extend([digit(p.second / 10), digit(p.second)]);
    out.push_str(" GMT");
    out
}

/// Parses IMF-fixdate, RFC 850 and asctime dates (RFC 7231 section 7.1.1.1).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let month = |name: &str| {
        MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(name))
            .map(|i| i as u32 + 1)
    };
    let time = |hms: &str| -> Option<(u32, u32, u32)> {
        let mut it = hms.split(':').map(|p| p.parse::<u32>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    };
    let fields: Vec<&str> = text.split_whitespace().collect();
    if let Some(rest) = text.split_once(", ").map(|(_, r)| r) {
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() == 5 && f[4] == "GMT" {
            // IMF-fixdate: "24 May 2013 00:00:00 GMT".
            let (h, m, s) = time(f[3])?;
            return to_unix(
                f[2].parse().ok()?,
                month(f[1])?,
                f[0].parse().ok()?,
                h,
                m,
                s,
            );
        }
        if f.len() == 3 && f[2] == "GMT" {
            // RFC 850: "Friday, 24-May-13 00:00:00 GMT".
            let d: Vec<&str> = f[0].split('-').collect();
            if d.len() != 3 {
                return None;
            }
            let year: i64 = d[2].parse().ok()?;
            let year = if year < 70 {
                2000 + year
            } else if year < 100 {
                1900 + year
            } else {
                year
            };
            let (h, m, s) = time(f[1])?;
            return to_unix(year, month(d[1])?, d[0].parse().ok()?, h, m, s);
        }
        return None;
    }
    if fields.len() == 5 {
        // asctime: "Fri May 24 00:00:00 2013".
        let (h, m, s) = time(fields[3])?;
        return to_unix(
            fields[4].parse().ok()?,
            month(fields[1])?,
            fields[2].parse().ok()?,
            h,
            m,
            s,
        );
    }
    None
}

/// "2013-05-24T00:00:00.000Z".
pub fn format_iso8601_millis(unix_millis: i64) -> String {
    let p = parts(unix_millis.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year,
        p.month,
        p.day,
        p.hour,
        p.minute,
        p.second,
        unix_millis.rem_euclid(1000)
    )
}

pub fn parse_iso8601_millis(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-');
    let (year, month, day) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => (hms, format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?),
        None => (time, 0),
    };
    let mut t = hms.split(':');
    let (h, m, s) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    Some(to_unix(year, month, day, h, m, s)? * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: i64 = 1_369_353_600; // 2013-05-24T00:00:00Z, the SigV4 examples' date.

    #[test]
    fn http_dates_round_trip_through_the_parser() {
        // 1940 to 2070 in prime steps, so every field takes many values; the parser
        // reads the digits back independently of how they were written.
        let mut unix = -946_771_200;
        while unix < 3_155_760_000 {
            let text = format_http_date(unix);
            assert_eq!(text.len(), 29, "{text}");
            assert_eq!(parse_http_date(&text), Some(unix), "{text}");
            unix += 86_413 + 7;
        }
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(
            format_http_date(253_402_300_799),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            format_http_date(253_402_300_800),
            "Sat, 01 Jan 10000 00:00:00 GMT"
        );
    }

    #[test]
    fn formats_and_parses_each_form() {
        assert_eq!(format_amz_date(EXAMPLE), "20130524T000000Z");
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(EXAMPLE));
        assert_eq!(format_http_date(EXAMPLE), "Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:00:00 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(
            parse_http_date("Friday, 24-May-13 00:00:00 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(parse_http_date("Fri May 24 00:00:00 2013"), Some(EXAMPLE));
        assert_eq!(
            format_iso8601_millis(EXAMPLE * 1000 + 7),
            "2013-05-24T00:00:00.007Z"
        );
        assert_eq!(
            parse_iso8601_millis("2013-05-24T00:00:00.007Z"),
            Some(EXAMPLE * 1000 + 7)
        );
        assert_eq!(
            parse_iso8601_millis("2013-05-24T00:00:00Z"),
            Some(EXAMPLE * 1000)
        );
    }

    #[test]
    fn leap_years_and_bad_dates() {
        let leap = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(format_http_date(leap), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(format_amz_date(leap + 1), "20240301T000000Z");
        assert_eq!(parse_amz_date("20230229T000000Z"), None);
        assert_eq!(parse_amz_date("2013-05-24T00:00"), None);
        assert_eq!(parse_http_date("yesterday"), None);
        // Found by fuzzing: years past four digits overflowed the day arithmetic.
        for long in [
            "Fri, 24 May 9223372036854775807 00:00:00 GMT",
            "Fri, 24 May -9223372036854775808 00:00:00 GMT",
            "Fri, 24 May 10000 00:00:00 GMT",
            "Fri May 24 00:00:00 213503982336",
        ] {
            assert_eq!(parse_http_date(long), None, "{long}");
        }
        assert_eq!(parse_iso8601_millis("82430909013-05-4T00:00:00.027Z"), None);
        assert_eq!(parse_iso8601_millis("-1-01-01T00:00:00Z"), None);
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        assert_eq!(format_iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_http_date(&format_http_date(951_782_400)),
            Some(951_782_400)
        );
    }
}
