//! The two time formats S3 answers with, read without a date library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses the two time formats S3 uses: ISO 8601 in listings (`2026-11-23T15:28:43.000Z`)
/// and RFC 7231 in headers (`Mon, 23 Nov 2026 15:28:43 GMT`). `None` for anything else:
/// a time is informational and must not fail a request.
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (y, mo, d, h, mi, sec, nanos) = if s.as_bytes().get(4) == Some(&b'-') {
        // YYYY-MM-DDTHH:MM:SS[.fff]Z
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
        let nanos = match s.get(19..20) {
            Some(".") => {
                let frac: String = s[20..].chars().take_while(char::is_ascii_digit).collect();
                let digits = frac.len().min(9);
                let v: u64 = frac.get(..digits)?.parse().ok()?;
                v * 10u64.pow(9 - digits as u32)
            }
            _ => 0,
        };
        (
            num(0..4)?,
            num(5..7)?,
            num(8..10)?,
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
            nanos,
        )
    } else {
        // Day, DD Mon YYYY HH:MM:SS GMT
        let mut it = s.split_whitespace();
        let _weekday = it.next()?;
        let d: u64 = it.next()?.parse().ok()?;
        let mon = it.next()?;
        let mo = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .position(|m| m.eq_ignore_ascii_case(mon))? as u64
            + 1;
        let y: u64 = it.next()?.parse().ok()?;
        let mut hms = it.next()?.split(':').map(|v| v.parse::<u64>().ok());
        let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
        (y, mo, d, h, mi, sec, 0)
    };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    // Days from civil (proleptic Gregorian), 1970-01-01 = 0.
    let (y, mo) = (y as i64, mo as i64);
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_formats() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_448_123);
        assert_eq!(parse_time("2026-11-23T15:35:23.000Z"), Some(t));
        assert_eq!(parse_time("2026-11-23T15:35:23Z"), Some(t));
        assert_eq!(parse_time("Mon, 23 Nov 2026 15:35:23 GMT"), Some(t));
        assert_eq!(
            parse_time("2026-11-23T15:35:23.5Z"),
            Some(t + Duration::from_millis(500))
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(
            parse_time("Mon, 23 Nov 99999999999999999 15:35:23 GMT"),
            None
        );
        for bad in [
            "",
            "garbage",
            "2026-13-01T00:00:00Z",
            "Mon, 23 Foo 2026 15:35:23 GMT",
            "2026-11-23T1",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
