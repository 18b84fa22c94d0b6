//! `StoragePath` never panics, and every path it accepts keeps its invariants.
//!
//! Input: two strings separated by the first 0xFF byte (never valid UTF-8, so a natural
//! separator): a path candidate and a relative component string for `join`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use regstore_driver_api::StoragePath;

/// The invariants of an accepted object path (the type's documented grammar).
fn check_invariants(p: &StoragePath) {
    let s = p.as_str();
    assert!(s.starts_with('/'), "{s:?} does not start with '/'");
    if p.is_root() {
        assert_eq!(s, "/");
        return;
    }
    assert!(!s.ends_with('/'), "{s:?} ends with '/'");
    assert!(!s.contains("//"), "{s:?} contains '//'");
    for c in s[1..].split('/') {
        assert!(!c.is_empty(), "{s:?} has an empty component");
        assert!(c != "." && c != "..", "{s:?} has a dot component");
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            "{s:?} has a character outside [A-Za-z0-9._-]"
        );
    }
    assert!(StoragePath::is_valid(s));
    assert!(!p.base_name().is_empty());
    assert!(p.components().count() >= 1);
    assert_eq!(p.components().collect::<Vec<_>>().join("/"), &s[1..]);
    // Display/FromStr round trip.
    assert_eq!(s.parse::<StoragePath>().ok().as_ref(), Some(p));
    assert_eq!(StoragePath::parse(&p.to_string()).as_ref(), Some(p));
    // The parent is a valid directory path above it.
    let parent = p.parent();
    assert!(parent.is_root() || StoragePath::is_valid(parent.as_str()));
    assert!(p.is_under(&parent));
    assert!(p.is_under(p));
    assert!(p.is_under(&StoragePath::root()));
    if !parent.is_root() {
        assert!(!parent.is_under(p), "{parent:?} under its child {p:?}");
    }
    assert_eq!(parent.join(p.base_name()).as_ref(), Some(p));
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&x| x == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);

    let parsed = StoragePath::parse(&a);
    assert_eq!(parsed.is_some(), StoragePath::is_valid(&a));
    let dir = StoragePath::parse_dir(&a);
    match (&parsed, &dir) {
        (Some(p), Some(d)) => assert_eq!(p, d),
        (None, Some(d)) => assert!(d.is_root() && a == "/"),
        (Some(_), None) => panic!("parse accepted {a:?} but parse_dir refused it"),
        (None, None) => {}
    }
    let base = dir.unwrap_or_else(StoragePath::root);
    check_invariants(&base);

    // join never panics; what it returns is valid and below the base.
    if let Some(j) = base.join(&b) {
        check_invariants(&j);
        assert!(j.is_under(&base), "{j:?} not under {base:?}");
        assert_ne!(j, base);
    }
    // is_under between two arbitrary valid paths never panics and is consistent with
    // component prefixes.
    if let Some(other) = StoragePath::parse_dir(&b) {
        check_invariants(&other);
        let under = base.is_under(&other);
        let a_parts: Vec<_> = base.components().collect();
        let o_parts: Vec<_> = other.components().collect();
        assert_eq!(
            under,
            a_parts.len() >= o_parts.len() && a_parts[..o_parts.len()] == o_parts[..],
            "is_under({base:?}, {other:?})"
        );
    }
});
