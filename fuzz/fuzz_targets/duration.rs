//! The duration parser (`regstore_driver_api::duration`) never panics on any string, and
//! formatting round-trips: what it accepts, printed the way Go prints a `time.Duration`, parses
//! back to the same value; and any `i64` of nanoseconds, printed, parses back to itself.
//!
//! Input: the first 8 bytes (when there are 8) are a duration in nanoseconds; all of it, as
//! UTF-8 (lossy), is a string handed to the parser under every syntax.

#![no_main]

use libfuzzer_sys::fuzz_target;
use regstore_driver_api::duration::{parse_duration_with, GoDuration, Syntax};

const SYNTAXES: [Syntax; 4] = [
    Syntax::GO,
    Syntax::GO.with_days_and_weeks(),
    Syntax::GO.with_bare_seconds(),
    Syntax::GO.with_days_and_weeks().with_bare_seconds(),
];

fn round_trips(d: GoDuration) {
    let text = d.to_string();
    assert_eq!(
        GoDuration::parse(&text),
        Ok(d),
        "{text:?} does not parse back to {} ns",
        d.as_nanos()
    );
}

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..8) {
        let nanos = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        round_trips(GoDuration::from_nanos(nanos));
    }

    let text = String::from_utf8_lossy(data);
    let go = GoDuration::parse(&text);
    if let Ok(d) = go {
        round_trips(d);
    }
    for syntax in SYNTAXES {
        let parsed = GoDuration::parse_with(&text, syntax);
        // Extensions only add: whatever Go accepts means the same under every syntax.
        if let Ok(d) = go {
            assert_eq!(parsed, Ok(d), "{text:?} under {syntax:?}");
        }
        if let Ok(d) = parsed {
            round_trips(d);
        }
        // The std form is the same value, or an error exactly when negative or rejected.
        let std = parse_duration_with(&text, syntax);
        match parsed {
            Ok(d) => assert_eq!(std.ok(), d.to_std(), "{text:?}"),
            Err(e) => assert_eq!(std, Err(e)),
        }
    }
});
