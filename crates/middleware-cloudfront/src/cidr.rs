//! IPv4 and IPv6 networks in CIDR notation, on `std::net` only.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length (`192.0.2.0/24`, `2001:db8::/32`).
///
/// Host bits of the written address are cleared on parsing (`192.0.2.7/24` is `192.0.2.0/24`),
/// as Go's `net.ParseCIDR` does for the network it returns. IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.1`) are matched as the IPv4 address they carry, because a dual-stack
/// listener reports IPv4 peers that way.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {input:?}: {reason}")]
pub struct CidrError {
    input: String,
    reason: &'static str,
}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits; `None` if `prefix` exceeds the
    /// address width (32 or 128).
    ///
    /// An IPv4-mapped IPv6 network with a prefix of at least 96 becomes the IPv4 network it
    /// denotes, so `::ffff:10.0.0.1/128` matches the peer `10.0.0.1`.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), 96..=128) = (v6.to_ipv4_mapped(), prefix) {
                return Cidr::new(IpAddr::V4(v4), prefix - 96);
            }
        }
        match addr {
            IpAddr::V4(a) if prefix <= 32 => Some(Cidr {
                network: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
                prefix,
            }),
            IpAddr::V6(a) if prefix <= 128 => Some(Cidr {
                network: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
                prefix,
            }),
            _ => None,
        }
    }

    /// The network containing exactly `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Cidr {
            network: addr,
            prefix,
        }
    }

    /// Parses `addr/prefix`; with `allow_bare_address`, a plain address is accepted as a
    /// single-host network.
    pub fn parse(s: &str, allow_bare_address: bool) -> Result<Cidr, CidrError> {
        let err = |reason| CidrError {
            input: s.to_owned(),
            reason,
        };
        let Some((addr, prefix)) = s.split_once('/') else {
            if !allow_bare_address {
                return Err(err("missing /prefix"));
            }
            return IpAddr::from_str(s)
                .map(Cidr::host)
                .map_err(|_| err("not an IP address"));
        };
        let addr = IpAddr::from_str(addr).map_err(|_| err("not an IP address"))?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("prefix length is not a number"));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| err("prefix length is not a number"))?;
        Cidr::new(addr, prefix).ok_or_else(|| err("prefix length exceeds the address width"))
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// Whether `addr` lies inside the network. IPv4 networks never contain IPv6 addresses and
    /// the reverse, except that an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `addr/prefix` (a bare address is rejected; see [`Cidr::parse`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s, false)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_matching() {
        let c: Cidr = "192.168.0.0/24".parse().unwrap();
        assert!(c.contains(ip("192.168.0.0")));
        assert!(c.contains(ip("192.168.0.1")));
        assert!(c.contains(ip("192.168.0.255")));
        assert!(!c.contains(ip("192.169.0.0")));
        assert!(!c.contains(ip("192.168.1.0")));
        assert!(c.contains(ip("::ffff:192.168.0.9")), "mapped v6 is its v4");
        assert!(!c.contains(ip("::1")));
        let host: Cidr = "123.231.123.231/32".parse().unwrap();
        assert!(host.contains(ip("123.231.123.231")));
        assert!(!host.contains(ip("123.231.123.230")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn v6_matching() {
        let c: Cidr = "ff00::/16".parse().unwrap();
        assert!(c.contains(ip("ff00::")));
        assert!(c.contains(ip("ff00:ffff::1")));
        assert!(!c.contains(ip("fe00::")));
        assert!(!c.contains(ip("255.0.0.0")));
        let full: Cidr = "2001:db8::1/128".parse().unwrap();
        assert!(full.contains(ip("2001:db8::1")));
        assert!(!full.contains(ip("2001:db8::2")));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains(ip("2001:db8::2")));
    }

    #[test]
    fn host_bits_are_cleared_and_displayed() {
        let c: Cidr = "192.0.2.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "192.0.2.0/24");
        assert_eq!(c.network(), ip("192.0.2.0"));
        assert_eq!(c.prefix_len(), 24);
        assert!(c.is_ipv4());
        let c: Cidr = "2001:db8:ffff::1/33".parse().unwrap();
        assert_eq!(c.to_string(), "2001:db8:8000::/33");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "9000",
            "192.168.0.0",
            "192.168.0.0/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "1.2.3.4/+8",
            "1.2.3/8",
            "x/8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Cidr::parse("10.1.2.3", true).unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(Cidr::parse("::1", true).unwrap().to_string(), "::1/128");
        let mapped = Cidr::parse("::ffff:10.0.0.1", true).unwrap();
        assert!(mapped.contains(ip("10.0.0.1")));
        assert_eq!(mapped.to_string(), "10.0.0.1/32");
        assert!(Cidr::parse("nope", true).is_err());
    }
}
