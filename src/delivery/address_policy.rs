//! The outbound address policy (SSRF guard): which IP addresses a delivery may connect to.
//!
//! Two CIDR lists, `DELIVERY_DENY_CIDRS` and `DELIVERY_ALLOW_CIDRS`. An address is refused when
//! it lies in a denied range and in no allowed range (allow wins); addresses in neither list
//! are allowed. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is judged as the IPv4 address it
//! embeds, and a mapped CIDR (`::ffff:a.b.c.d/n`, n ≥ 96) is read as the IPv4 CIDR it covers.
//!
//! The lists are applied where connections are made (see `connect_guard.rs`), to every
//! resolved address, never to host names.

use std::fmt;
use std::net::IpAddr;

/// The setting holding the denied ranges (named in refusals).
pub const DENY_SETTING: &str = "DELIVERY_DENY_CIDRS";
/// The setting holding the allowed ranges.
pub const ALLOW_SETTING: &str = "DELIVERY_ALLOW_CIDRS";

/// The built-in `DELIVERY_DENY_CIDRS`: unspecified, link-local (cloud metadata at
/// 169.254.169.254), multicast and broadcast. Loopback and private ranges stay reachable.
pub const DEFAULT_DENY_CIDRS: &str =
    "0.0.0.0/8,169.254.0.0/16,224.0.0.0/4,255.255.255.255/32,::/128,fe80::/10,ff00::/8";

/// One IPv4 or IPv6 range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a CIDR ({reason})")]
pub struct CidrError {
    pub text: String,
    pub reason: &'static str,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x:y::z/n` or a bare address (a single-address range). Host bits
    /// below the prefix are ignored.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let error = |reason| CidrError {
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        let (address, prefix) = match trimmed.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (trimmed, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| error("not an IPv4 or IPv6 address"))?;
        let width = max_prefix(network);
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| error("prefix length out of range"))?,
        };
        // A mapped IPv6 range covering only mapped addresses is the IPv4 range it embeds.
        if let IpAddr::V6(v6) = network {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Ok(Cidr {
                    network: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(Cidr { network, prefix })
    }

    /// Parses a comma-separated list; empty items are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<Cidr>, CidrError> {
        text.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Cidr::parse)
            .collect()
    }

    /// Whether `address` (already unmapped) lies in this range.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(addr).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(addr), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The top `prefix` bits of a `width`-bit value.
fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let shift = u32::from(width - prefix);
    (value >> shift) << shift
}

/// An address a delivery may not connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection to {address} refused: address denied by {DENY_SETTING}")]
pub struct AddressDenied {
    pub address: IpAddr,
}

/// Denied and allowed ranges; allow wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPolicy {
    deny: Vec<Cidr>,
    allow: Vec<Cidr>,
}

impl Default for AddressPolicy {
    /// The built-in policy: [`DEFAULT_DENY_CIDRS`] denied, nothing explicitly allowed.
    fn default() -> AddressPolicy {
        AddressPolicy {
            deny: Cidr::parse_list(DEFAULT_DENY_CIDRS).unwrap_or_default(),
            allow: Vec::new(),
        }
    }
}

impl AddressPolicy {
    pub fn new(deny: Vec<Cidr>, allow: Vec<Cidr>) -> AddressPolicy {
        AddressPolicy { deny, allow }
    }

    /// A policy that refuses nothing (operator-configured endpoints such as the operator event
    /// sink).
    pub fn unrestricted() -> AddressPolicy {
        AddressPolicy::new(Vec::new(), Vec::new())
    }

    /// `Ok` when a connection to `address` is permitted.
    pub fn check(&self, address: IpAddr) -> Result<(), AddressDenied> {
        let judged = unmapped(address);
        let denied = self.deny.iter().any(|c| c.contains(judged))
            && !self.allow.iter().any(|c| c.contains(judged));
        if denied {
            Err(AddressDenied { address })
        } else {
            Ok(())
        }
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address embeds, else the address itself.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn policy(deny: &str, allow: &str) -> AddressPolicy {
        AddressPolicy::new(
            Cidr::parse_list(deny).unwrap(),
            Cidr::parse_list(allow).unwrap(),
        )
    }

    #[test]
    fn parses_cidrs() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse(" ::1 ").unwrap().to_string(), "::1/128");
        assert_eq!(Cidr::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(
            Cidr::parse("::ffff:169.254.0.0/112").unwrap().to_string(),
            "169.254.0.0/16"
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.com/8",
            "1.2.3.4/",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidr::parse_list(" , 10.0.0.0/8,").unwrap().len(), 1);
        let err = Cidr::parse_list("10.0.0.0/8,nope").unwrap_err();
        assert_eq!(err.text, "nope");
    }

    #[test]
    fn contains_respects_the_prefix() {
        let net = Cidr::parse("192.168.4.0/22").unwrap();
        assert!(net.contains(ip("192.168.7.255")));
        assert!(!net.contains(ip("192.168.8.0")));
        assert!(
            !net.contains(ip("::ffff:192.168.4.1")),
            "unmapping is the policy's job"
        );
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("fe80::/10").unwrap().contains(ip("febf::1")));
        assert!(!Cidr::parse("fe80::/10").unwrap().contains(ip("fec0::1")));
    }

    #[test]
    fn default_denies_metadata_link_local_multicast_and_unspecified() {
        let p = AddressPolicy::default();
        for denied in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "fe80::1",
            "ff02::1",
        ] {
            assert_eq!(
                p.check(ip(denied)),
                Err(AddressDenied {
                    address: ip(denied)
                }),
                "{denied}"
            );
        }
        for allowed in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "fd00::1",
            "93.184.216.34",
            "2606:4700::1",
        ] {
            assert!(p.check(ip(allowed)).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_judged_as_ipv4() {
        let p = AddressPolicy::default();
        let mapped = ip("::ffff:169.254.169.254");
        assert_eq!(p.check(mapped), Err(AddressDenied { address: mapped }));
        assert!(p.check(ip("::ffff:127.0.0.1")).is_ok());
        let loopback = policy("127.0.0.0/8", "");
        assert!(loopback.check(ip("::ffff:127.0.0.1")).is_err());
    }

    #[test]
    fn allow_wins_over_deny() {
        let p = policy("127.0.0.0/8,10.0.0.0/8", "127.0.0.1/32,::ffff:10.9.0.0/112");
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("127.0.0.2")).is_err());
        assert!(p.check(ip("10.9.3.4")).is_ok());
        assert!(p.check(ip("10.8.3.4")).is_err());
        assert!(p.check(ip("8.8.8.8")).is_ok());
        assert!(AddressPolicy::unrestricted()
            .check(ip("169.254.169.254"))
            .is_ok());
    }

    #[test]
    fn refusal_names_the_address_and_the_setting() {
        let err = AddressPolicy::default()
            .check(ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection to 169.254.169.254 refused: address denied by DELIVERY_DENY_CIDRS"
        );
    }
}
