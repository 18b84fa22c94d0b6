//! The ip-ranges JSON parser of the CloudFront middleware never panics, and the networks
//! built from any document it accepts behave.
//!
//! Input: raw bytes handed to the same `serde_json::from_slice::<IpRanges>` the AWS IP filter
//! uses on a fetched body.

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use regstore_middleware_cloudfront::ipfilter::{IpRanges, Networks};
use regstore_middleware_cloudfront::Cidr;

fuzz_target!(|data: &[u8]| {
    let Ok(ranges) = serde_json::from_slice::<IpRanges>(data) else {
        return;
    };
    let all = Networks::from_ranges(&ranges, None);
    let total = ranges.prefixes.len() + ranges.ipv6_prefixes.len();
    assert!(all.ipv4_count() + all.ipv6_count() <= total);

    // Every prefix the filter accepted contains its own network address, and the filter
    // matches it.
    let prefixes = ranges
        .prefixes
        .iter()
        .map(|p| &p.ip_prefix)
        .chain(ranges.ipv6_prefixes.iter().map(|p| &p.ipv6_prefix));
    for raw in prefixes {
        if let Ok(c) = raw.trim().parse::<Cidr>() {
            assert!(c.prefix_len() <= if c.is_ipv4() { 32 } else { 128 });
            assert!(
                c.contains(c.network()),
                "{c:?} does not contain its network"
            );
            assert!(all.contains(c.network()), "filter misses {c:?}");
        }
        let _ = Cidr::parse(raw, true);
    }

    // Region filtering keeps a subset.
    let regions: Vec<String> = ranges
        .prefixes
        .iter()
        .take(3)
        .map(|p| p.region.trim().to_ascii_lowercase())
        .collect();
    let some = Networks::from_ranges(&ranges, Some(&regions));
    assert!(some.ipv4_count() <= all.ipv4_count());
    assert!(some.ipv6_count() <= all.ipv6_count());

    for ip in [
        "127.0.0.1",
        "52.95.110.1",
        "::1",
        "2600:1f00::1",
        "::ffff:52.95.110.1",
    ] {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            if some.contains(ip) {
                assert!(
                    all.contains(ip),
                    "{ip} in a region subset but not in the whole"
                );
            }
        }
    }
});
