//! `NO_PROXY`: which hosts are reached directly.
//!
//! The list is split on commas and white space. Each entry is `*` (every
//! host), an IP address, a CIDR range (`10.0.0.0/8`, `fd00::/8`), or a
//! domain that matches itself and its subdomains (a leading `.` or `*.` is
//! ignored, so `.example.com` matches `example.com` too, as in curl).
//! Any entry but `*` and a CIDR range may end with `:port` to match that
//! port only; an IPv6 address takes a port in brackets (`[::1]:8080`).
//! Matching ignores case and a trailing dot.

use std::net::IpAddr;

use crate::transport::Endpoint;

/// A parsed `NO_PROXY` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    All,
    Ip(IpAddr, Option<u16>),
    Cidr(IpAddr, u8),
    Domain(String, Option<u16>),
}

impl NoProxy {
    /// Parses a list; entries that make no sense are skipped.
    pub(crate) fn parse(list: &str) -> Self {
        let rules = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(parse_rule)
            .collect();
        Self { rules }
    }

    /// Whether `to` should be reached without the proxy.
    pub(crate) fn matches(&self, to: &Endpoint) -> bool {
        let host = to.host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| match rule {
            Rule::All => true,
            Rule::Ip(addr, port) => ip == Some(*addr) && port.is_none_or(|p| p == to.port),
            Rule::Cidr(net, bits) => ip.is_some_and(|ip| in_cidr(ip, *net, *bits)),
            Rule::Domain(domain, port) => {
                let suffix_ok = host == *domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'));
                suffix_ok && port.is_none_or(|p| p == to.port)
            }
        })
    }
}

fn parse_rule(entry: &str) -> Option<Rule> {
    let entry = entry.trim();
    if entry.is_empty() {
        return None;
    }
    if entry == "*" {
        return Some(Rule::All);
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let net: IpAddr = net.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(Rule::Cidr(net, bits));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(Rule::Ip(ip, None));
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip = ip.parse().ok()?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some(Rule::Ip(ip, port));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse().ok()?)),
        None => (entry, None),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Rule::Ip(ip, port));
    }
    let domain = host
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (!domain.is_empty()).then_some(Rule::Domain(domain, port))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => prefix_eq(
            u128::from(ip.to_bits()) << 96,
            u128::from(net.to_bits()) << 96,
            bits,
        ),
        (IpAddr::V6(ip), IpAddr::V6(net)) => prefix_eq(ip.to_bits(), net.to_bits(), bits),
        (IpAddr::V6(ip), IpAddr::V4(_)) => ip
            .to_ipv4_mapped()
            .is_some_and(|ip| in_cidr(IpAddr::V4(ip), net, bits)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// Whether the top `bits` bits of two left-aligned addresses agree.
fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    bits == 0 || (a ^ b) >> (128 - u32::from(bits)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypass(list: &str, host: &str, port: u16) -> bool {
        NoProxy::parse(list).matches(&Endpoint::new(host, port, false))
    }

    #[test]
    fn domains_match_themselves_and_subdomains() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com.",
        ] {
            assert!(bypass(list, "example.com", 80), "{list}");
            assert!(bypass(list, "api.Example.com", 80), "{list}");
            assert!(bypass(list, "example.com.", 80), "{list}");
            assert!(!bypass(list, "badexample.com", 80), "{list}");
            assert!(!bypass(list, "example.org", 80), "{list}");
        }
    }

    #[test]
    fn ports_restrict_a_rule() {
        assert!(bypass("example.com:8080", "example.com", 8080));
        assert!(!bypass("example.com:8080", "example.com", 443));
        assert!(bypass("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!bypass("127.0.0.1:9000", "127.0.0.1", 9001));
        assert!(bypass("[::1]:9000", "::1", 9000));
        assert!(!bypass("[::1]:9000", "::1", 80));
        assert!(!bypass("example.com:x", "example.com", 80));
    }

    #[test]
    fn addresses_and_ranges() {
        assert!(bypass("10.0.0.0/8", "10.200.3.4", 80));
        assert!(!bypass("10.0.0.0/8", "11.0.0.1", 80));
        assert!(bypass("192.168.1.7", "192.168.1.7", 80));
        assert!(!bypass("192.168.1.7", "192.168.1.8", 80));
        assert!(bypass("fd00::/8", "fd12::1", 80));
        assert!(!bypass("fd00::/8", "fe80::1", 80));
        assert!(bypass("::1", "::1", 443));
        assert!(bypass("127.0.0.0/8", "::ffff:127.0.0.1", 80));
        assert!(bypass("0.0.0.0/0", "8.8.8.8", 80));
        assert!(!bypass("10.0.0.0/33", "10.0.0.1", 80));
        // A range never matches a name, even one that looks like a number.
        assert!(!bypass("10.0.0.0/8", "10.example", 80));
    }

    #[test]
    fn lists_wildcards_and_junk() {
        assert!(bypass("*", "anything.test", 1));
        assert!(bypass(" a.test , b.test\tc.test", "c.test", 1));
        assert!(!bypass("", "a.test", 1));
        assert!(!bypass(",,, ,", "a.test", 1));
        assert!(!bypass("[::1", "::1", 1));
    }
}
