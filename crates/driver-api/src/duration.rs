//! Durations as registry configurations write them: Go's `time.ParseDuration` syntax.
//!
//! A `config.yml` written for distribution says `duration: 20m` or `updatefrequency: 12h`, and Go
//! parses those with `time.ParseDuration`; the same strings must mean the same here, to the
//! nanosecond. This is the workspace's only duration parser: drivers, middlewares and the CLI
//! all call it, each with the [`Syntax`] its parameters accept.
//!
//! # Syntax
//!
//! [`Syntax::GO`] is exactly Go's: an optional sign, then one or more decimal numbers (with an
//! optional fraction: `1.5`, `.5`, `1.`), each followed by a unit `ns`, `us`, `µs` (U+00B5),
//! `μs` (U+03BC), `ms`, `s`, `m` or `h`, with nothing in between (`1h30m`, not `1h 30m`). A lone
//! `0` needs no unit. No exponents (`1e3s`), no spaces, no other units. Results are whole
//! nanoseconds in an `i64` (±292 years); anything beyond is an error, never a wrap. Two
//! extensions exist, each off in `GO`:
//!
//! * [`Syntax::with_days_and_weeks`]: units `d` (24h) and `w` (7 × 24h). Go has no day unit
//!   (days differ in length across DST changes), so a duration distribution parses never uses
//!   them.
//! * [`Syntax::with_bare_seconds`]: a whole number without unit (`90`) is seconds.
//!
//! # Which parameter accepts what
//!
//! Distribution accepts Go syntax and nothing else wherever it reads a duration string
//! (reference §3.1: the CloudFront middleware's `duration` and `updatefrequency`); it has no `d`
//! or `w` anywhere, so no configuration parameter here takes them:
//!
//! | where | syntax |
//! |---|---|
//! | `cloudfront` middleware `duration`, `updatefrequency` (and its legacy misspelling) | [`Syntax::GO`] — shared with distribution's configs |
//! | `s3` driver `urlexpiry`, `connecttimeout`, `requesttimeout`, `operationtimeout`, `idleconntimeout` | `GO` + bare seconds — regstore's own parameters (distribution has none, reference §2.11); a YAML integer is seconds too |
//! | CLI `--older-than` | `GO` + bare seconds + `d`/`w` — an operator's flag, never part of a shared config |
//!
//! # Why hand-written
//!
//! The one crate that ports Go's parser (`go-parse-duration` 0.1.1, 2021) mis-computes its
//! overflow bound (`1 << 63 - 1` is `1 << 62` in Rust), indexes bytes by character count (so
//! `µs` can panic), and has no formatter; `humantime` and friends parse a different syntax. The
//! parser below follows Go's algorithm step by step, including the `f64` step for fractions,
//! so values agree with Go's bit for bit; [`GoDuration`]'s `Display` is Go's
//! `Duration.String`, and parsing what it prints gives the same value back.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Go's bound in its overflow checks: `-1 << 63` is the only value whose magnitude is `2^63`.
const MAGNITUDE_LIMIT: u64 = 1 << 63;

/// Which duration syntax a parameter accepts; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Syntax {
    days_and_weeks: bool,
    bare_seconds: bool,
}

impl Syntax {
    /// Go's `time.ParseDuration`, exactly.
    pub const GO: Syntax = Syntax {
        days_and_weeks: false,
        bare_seconds: false,
    };

    /// This syntax plus the units `d` (24 hours) and `w` (7 days).
    pub const fn with_days_and_weeks(self) -> Syntax {
        Syntax {
            days_and_weeks: true,
            ..self
        }
    }

    /// This syntax plus a whole number without unit (`"90"`, `"-5"`) meaning seconds.
    pub const fn with_bare_seconds(self) -> Syntax {
        Syntax {
            bare_seconds: true,
            ..self
        }
    }
}

impl Default for Syntax {
    /// [`Syntax::GO`].
    fn default() -> Self {
        Syntax::GO
    }
}

/// Why a duration string was rejected; its `Display` quotes the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    value: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?unit)+` (Go: "invalid duration").
    Malformed,
    /// A number without unit (Go: "missing unit in duration").
    MissingUnit,
    /// A unit that is not allowed (Go: "unknown unit").
    UnknownUnit(String),
    /// Beyond ±292 years.
    Overflow,
    /// Negative where only a non-negative duration makes sense.
    Negative,
}

impl DurationError {
    /// The rejected string, as given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = &self.value;
        match &self.reason {
            Reason::Malformed => write!(
                f,
                "invalid duration {value:?}: expected numbers with units, e.g. 90s, 1h30m, 1.5h, 500ms"
            ),
            Reason::MissingUnit => write!(
                f,
                "invalid duration {value:?}: missing unit (ns, us, ms, s, m or h)"
            ),
            Reason::UnknownUnit(unit) => write!(
                f,
                "invalid duration {value:?}: unknown unit {unit:?} (allowed: ns, us, µs, ms, s, m, h)"
            ),
            Reason::Overflow => write!(
                f,
                "invalid duration {value:?}: out of range (at most 2562047h47m16.854775807s)"
            ),
            Reason::Negative => write!(f, "invalid duration {value:?}: must not be negative"),
        }
    }
}

impl std::error::Error for DurationError {}

/// A signed duration with the range, syntax and text form of Go's `time.Duration`: whole
/// nanoseconds in an `i64`.
///
/// ```
/// use regstore_driver_api::duration::GoDuration;
///
/// let d: GoDuration = "1.5h".parse().unwrap();
/// assert_eq!(d.as_nanos(), 90 * 60 * 1_000_000_000);
/// assert_eq!(d.to_string(), "1h30m0s"); // Go's Duration.String
/// assert_eq!("-1m".parse::<GoDuration>().unwrap().to_std(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

impl GoDuration {
    /// Zero.
    pub const ZERO: GoDuration = GoDuration(0);
    /// The shortest: `-2562047h47m16.854775808s`.
    pub const MIN: GoDuration = GoDuration(i64::MIN);
    /// The longest: `2562047h47m16.854775807s`.
    pub const MAX: GoDuration = GoDuration(i64::MAX);

    /// `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> GoDuration {
        GoDuration(nanos)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// As a [`Duration`]; `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }

    /// Parses `value` with Go's `time.ParseDuration` syntax ([`Syntax::GO`]).
    pub fn parse(value: &str) -> Result<GoDuration, DurationError> {
        GoDuration::parse_with(value, Syntax::GO)
    }

    /// Parses `value` with `syntax`: Go's algorithm, plus the extensions `syntax` enables.
    pub fn parse_with(value: &str, syntax: Syntax) -> Result<GoDuration, DurationError> {
        let fail = |reason| DurationError {
            value: value.to_owned(),
            reason,
        };
        let (negative, mut s) = match value.as_bytes().first() {
            Some(b'-') => (true, &value[1..]),
            Some(b'+') => (false, &value[1..]),
            _ => (false, value),
        };
        if s == "0" {
            return Ok(GoDuration::ZERO);
        }
        if s.is_empty() {
            return Err(fail(Reason::Malformed));
        }
        if syntax.bare_seconds && s.bytes().all(|c| c.is_ascii_digit()) {
            let (seconds, _) = leading_int(s).ok_or_else(|| fail(Reason::Overflow))?;
            let nanos = seconds
                .checked_mul(NANOS_PER_SECOND)
                .filter(|&n| n <= MAGNITUDE_LIMIT)
                .ok_or_else(|| fail(Reason::Overflow))?;
            return signed(nanos, negative).ok_or_else(|| fail(Reason::Overflow));
        }
        // Magnitude so far; at most 2^63 (only a negative duration may reach it).
        let mut total: u64 = 0;
        while !s.is_empty() {
            if !(s.starts_with('.') || s.as_bytes()[0].is_ascii_digit()) {
                return Err(fail(Reason::Malformed));
            }
            let before = s.len();
            let (mut v, rest) = leading_int(s).ok_or_else(|| fail(Reason::Overflow))?;
            s = rest;
            let has_integer = s.len() != before;
            let (mut fraction, mut scale, mut has_fraction) = (0u64, 1f64, false);
            if let Some(rest) = s.strip_prefix('.') {
                let (f, sc, rest_after) = leading_fraction(rest);
                has_fraction = rest_after.len() != rest.len();
                (fraction, scale, s) = (f, sc, rest_after);
            }
            if !has_integer && !has_fraction {
                return Err(fail(Reason::Malformed)); // ".s", "-.s"
            }
            // The unit runs to the next digit or '.', both ASCII, so the split is on a char
            // boundary even for "µs".
            let unit_len = s
                .bytes()
                .position(|c| c == b'.' || c.is_ascii_digit())
                .unwrap_or(s.len());
            if unit_len == 0 {
                return Err(fail(Reason::MissingUnit));
            }
            let (unit, rest) = s.split_at(unit_len);
            s = rest;
            let unit_nanos = unit_nanos(unit, syntax)
                .ok_or_else(|| fail(Reason::UnknownUnit(unit.to_owned())))?;
            if v > MAGNITUDE_LIMIT / unit_nanos {
                return Err(fail(Reason::Overflow));
            }
            v *= unit_nanos;
            if fraction > 0 {
                // Go computes the fraction's nanoseconds in f64 ("to be nanosecond accurate for
                // fractions of hours"); doing the same keeps results identical to Go's. The
                // product is below one unit, so the conversion never saturates.
                v += (fraction as f64 * (unit_nanos as f64 / scale)) as u64;
                if v > MAGNITUDE_LIMIT {
                    return Err(fail(Reason::Overflow));
                }
            }
            // Go adds in a u64 that could wrap to 0 at exactly 2^63 + 2^63; checked here.
            total = total
                .checked_add(v)
                .filter(|&t| t <= MAGNITUDE_LIMIT)
                .ok_or_else(|| fail(Reason::Overflow))?;
        }
        signed(total, negative).ok_or_else(|| fail(Reason::Overflow))
    }
}

/// The magnitude `nanos` (at most 2^63) with its sign; `None` for +2^63.
fn signed(nanos: u64, negative: bool) -> Option<GoDuration> {
    if negative {
        // 2^63 as i64 is i64::MIN, whose negation is itself: exactly Go's -1 << 63.
        Some(GoDuration((nanos as i64).wrapping_neg()))
    } else {
        i64::try_from(nanos).ok().map(GoDuration)
    }
}

/// Nanoseconds per `unit`, or `None` when `syntax` does not allow it.
fn unit_nanos(unit: &str, syntax: Syntax) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" if syntax.days_and_weeks => 86_400 * NANOS_PER_SECOND,
        "w" if syntax.days_and_weeks => 7 * 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// The leading decimal digits of `s` as a number of at most 2^63, and the rest; `None` on
/// overflow (Go's `leadingInt`).
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for c in s[..digits].bytes() {
        if x > MAGNITUDE_LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > MAGNITUDE_LIMIT {
            return None;
        }
    }
    Some((x, &s[digits..]))
}

/// The leading decimal digits of `s` as a fraction `x / scale`, and the rest. Digits past what
/// a u64 holds are consumed but ignored, as in Go's `leadingFraction`.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut x, mut scale) = (0u64, 1f64);
    for c in s[..digits].bytes() {
        if x > (MAGNITUDE_LIMIT - 1) / 10 {
            break;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > MAGNITUDE_LIMIT {
            break;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[digits..])
}

impl FromStr for GoDuration {
    type Err = DurationError;

    /// [`GoDuration::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GoDuration::parse(s)
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String`: `0s`, `1.5µs`, `250ms`, `1h30m0s`, `-2m0.5s`; largest unit
    /// hours, no trailing zeros in fractions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Filled from the end; the longest text is "-2562047h47m16.854775808s" (25 bytes).
        let mut buf = [0u8; 32];
        let mut w = buf.len();
        let mut u = self.0.unsigned_abs();
        if u == 0 {
            return f.write_str("0s");
        }
        let mut put = |w: &mut usize, bytes: &[u8]| {
            *w -= bytes.len();
            buf[*w..*w + bytes.len()].copy_from_slice(bytes);
        };
        if u < NANOS_PER_SECOND {
            // Below a second the unit shrinks instead: ns, µs, ms.
            let (unit, precision): (&[u8], u32) = match u {
                0..=999 => (b"ns", 0),
                1_000..=999_999 => ("\u{b5}s".as_bytes(), 3),
                _ => (b"ms", 6),
            };
            put(&mut w, unit);
            u = put_fraction(&mut put, &mut w, u, precision);
            put_int(&mut put, &mut w, u);
        } else {
            put(&mut w, b"s");
            u = put_fraction(&mut put, &mut w, u, 9);
            put_int(&mut put, &mut w, u % 60);
            u /= 60;
            if u > 0 {
                put(&mut w, b"m");
                put_int(&mut put, &mut w, u % 60);
                u /= 60;
                if u > 0 {
                    put(&mut w, b"h");
                    put_int(&mut put, &mut w, u);
                }
            }
        }
        if self.0 < 0 {
            put(&mut w, b"-");
        }
        // Only ASCII and the whole two bytes of 'µ' were written.
        f.write_str(std::str::from_utf8(&buf[w..]).map_err(|_| fmt::Error)?)
    }
}

/// Writes the last `precision` digits of `v` as `.ddd` without trailing zeros (nothing when
/// they are all zero) and returns `v` without them.
fn put_fraction(
    put: &mut impl FnMut(&mut usize, &[u8]),
    w: &mut usize,
    mut v: u64,
    precision: u32,
) -> u64 {
    let mut significant = false;
    for _ in 0..precision {
        let digit = (v % 10) as u8;
        significant |= digit != 0;
        if significant {
            put(w, &[b'0' + digit]);
        }
        v /= 10;
    }
    if significant {
        put(w, b".");
    }
    v
}

/// Writes `v` in decimal.
fn put_int(put: &mut impl FnMut(&mut usize, &[u8]), w: &mut usize, mut v: u64) {
    loop {
        put(w, &[b'0' + (v % 10) as u8]);
        v /= 10;
        if v == 0 {
            break;
        }
    }
}

/// Parses a non-negative duration with Go's syntax ([`Syntax::GO`]); a negative one is an
/// error. Callers wrap the error to name their parameter.
///
/// ```
/// use std::time::Duration;
/// use regstore_driver_api::duration::parse_duration;
///
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
/// assert!(parse_duration("3000 s").is_err()); // as in Go
/// ```
pub fn parse_duration(value: &str) -> Result<Duration, DurationError> {
    parse_duration_with(value, Syntax::GO)
}

/// Parses a non-negative duration with `syntax`; a negative one is an error.
pub fn parse_duration_with(value: &str, syntax: Syntax) -> Result<Duration, DurationError> {
    GoDuration::parse_with(value, syntax)?
        .to_std()
        .ok_or_else(|| DurationError {
            value: value.to_owned(),
            reason: Reason::Negative,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn go(s: &str) -> i64 {
        GoDuration::parse(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .as_nanos()
    }

    #[test]
    fn accepts_what_go_accepts() {
        for (s, nanos) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("0s", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("+2s", 2 * S),
            ("-0s", 0),
            ("+0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            ("1.s", S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("-1m", -60 * S),
            ("1.5h", 5400 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3723 * S + 4_000_000 + 5_000 + 6),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            (
                "0.830103483285477580700h",
                49 * 60 * S + 48 * S + 372_539_827,
            ),
        ] {
            assert_eq!(go(s), nanos, "{s:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for (s, why) in [
            ("", "expected numbers"),
            ("+", "expected numbers"),
            ("-", "expected numbers"),
            ("3", "missing unit"),
            ("1", "missing unit"),
            ("-3", "missing unit"),
            ("s", "expected numbers"),
            (".", "expected numbers"),
            ("-.", "expected numbers"),
            (".s", "expected numbers"),
            ("+.s", "expected numbers"),
            ("1.2.3s", "missing unit"),
            ("1e3s", "unknown unit \"e\""),
            ("3000 s", "unknown unit \" s\""),
            (" 1h", "expected numbers"),
            ("1h ", "unknown unit \"h \""),
            ("1h 30m", "unknown unit \"h \""),
            ("1d", "unknown unit \"d\""),
            ("2w", "unknown unit \"w\""),
            ("1x", "unknown unit \"x\""),
            ("10m5", "missing unit"),
            ("s20", "expected numbers"),
            ("9223372036854775808ns", "out of range"),
            ("9223372036854775.808us", "out of range"),
            ("9223372036854ms775us808ns", "out of range"),
            ("-9223372036854775809ns", "out of range"),
            ("3000000h", "out of range"),
            ("9999999999999h", "out of range"),
            ("99999999999999999999ns", "out of range"),
        ] {
            let e = GoDuration::parse(s).expect_err(s);
            let text = e.to_string();
            assert!(text.contains(why), "{s:?}: {text}");
            assert!(text.contains(&format!("{s:?}")), "{s:?}: {text}");
            assert_eq!(e.value(), s);
        }
    }

    #[test]
    fn extensions_only_where_enabled() {
        let days = Syntax::GO.with_days_and_weeks();
        let bare = Syntax::GO.with_bare_seconds();
        let parse = |s, syntax| GoDuration::parse_with(s, syntax).map(GoDuration::as_nanos);
        assert_eq!(parse("7d", days), Ok(7 * 86_400 * S));
        assert_eq!(parse("2w1d12h", days), Ok(15 * 86_400 * S + 12 * 3600 * S));
        assert_eq!(parse("1.5d", days), Ok(36 * 3600 * S));
        assert!(parse("7d", bare).is_err());
        assert_eq!(parse("90", bare), Ok(90 * S));
        assert_eq!(parse("-90", bare), Ok(-90 * S));
        assert_eq!(parse("9223372036", bare), Ok(9_223_372_036 * S));
        assert!(parse("9223372037", bare).is_err());
        assert!(parse("99999999999999999999", bare).is_err());
        assert!(parse("90", days).is_err());
        assert!(parse("1.5", bare).is_err(), "bare seconds are whole");
        assert!(parse("106751d23h47m16.854775807s", days).is_ok());
        assert!(parse("106751d23h47m16.854775808s", days).is_err());
    }

    #[test]
    fn std_durations_are_never_negative() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-0s"), Ok(Duration::ZERO));
        let e = parse_duration("-1m").unwrap_err().to_string();
        assert!(e.contains("\"-1m\"") && e.contains("negative"), "{e}");
        assert_eq!(
            parse_duration("9223372036854775807ns"),
            Ok(Duration::from_nanos(i64::MAX as u64))
        );
        assert_eq!(
            parse_duration_with("2w", Syntax::GO.with_days_and_weeks()),
            Ok(Duration::from_secs(14 * 86_400))
        );
    }

    #[test]
    fn formats_like_go() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * 60 * S + 5 * S, "4m5s"),
            (4 * 60 * S + 5 * S + 1_000_000, "4m5.001s"),
            (5 * 3600 * S + 6 * 60 * S + 7 * S + 1_000_000, "5h6m7.001s"),
            (8 * 60 * S + 1, "8m0.000000001s"),
            (3600 * S, "1h0m0s"),
            (-60 * S, "-1m0s"),
            (-1, "-1ns"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(GoDuration::from_nanos(nanos).to_string(), want);
        }
    }

    #[test]
    fn formatting_round_trips() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let samples = (0..10_000).map(|_| {
            // xorshift64: spread over the whole i64 range, and every magnitude.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as i64) >> (x % 64)
        });
        for nanos in samples.chain([0, 1, -1, 999, 1_000, 999_999, i64::MAX, i64::MIN]) {
            let d = GoDuration::from_nanos(nanos);
            assert_eq!(GoDuration::parse(&d.to_string()), Ok(d), "{nanos}");
        }
    }
}
